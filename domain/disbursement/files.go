package disbursement

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ansinh/ansinh/domain"
)

// Limits on files exchanged with the bank. A month of Hanoi is about 300,000
// payments; a settlement file may carry a whole run, a statement is daily.
const (
	MaxSettlementLines = 500_000
	MaxStatementLines  = 500_000
	MaxFileBytes       = 128 << 20
	maxCellBytes       = 1024
)

// BankFileHeader is the first line of a bank transfer file. The layout is
// documented in docs/disbursement.md; the bank echoes payment_id (also given
// as reference) in its answers and statements.
var BankFileHeader = []string{"payment_id", "payee_name", "payee_citizen_id", "bank_code", "account_number", "amount", "currency", "reference", "description"}

// WriteBankFile writes the transfers of a released run: one row per bank
// payment with something to pay, in the order the run recorded them.
func WriteBankFile(w io.Writer, r Run) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(BankFileHeader); err != nil {
		return fmt.Errorf("bank file: %w", err)
	}
	desc := "ANSINH " + r.ID + " " + periodsText(r.Scope)
	for _, id := range r.PaymentIDs {
		p := r.Payments[id]
		if p.Payee.Method != MethodBank || !p.Net().IsPositive() {
			continue
		}
		row := []string{p.PaymentID, cell(p.Payee.Name), p.Payee.CitizenID, p.Payee.BankCode, p.Payee.AccountNumber,
			p.Net().Amount.String(), string(domain.VND), p.PaymentID, desc}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("bank file: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("bank file: %w", err)
	}
	return nil
}

// CashListHeader is the first line of a ward's cash list; signature is left
// empty for the payee to sign on the printed list.
var CashListHeader = []string{"payment_id", "payee_name", "payee_citizen_id", "proxy", "beneficiaries", "district", "ward", "amount", "currency", "signature"}

// WriteCashList writes the cash payments of a run handed out at one ward
// office.
func WriteCashList(w io.Writer, r Run, ward string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CashListHeader); err != nil {
		return fmt.Errorf("cash list: %w", err)
	}
	for _, id := range r.PaymentIDs {
		p := r.Payments[id]
		if p.Payee.Method != MethodCash || p.Payee.Ward != ward || !p.Net().IsPositive() {
			continue
		}
		var bens []string
		for _, l := range p.Lines {
			if len(bens) == 0 || bens[len(bens)-1] != l.Obligation.CitizenID {
				bens = append(bens, l.Obligation.CitizenID)
			}
		}
		proxy := "no"
		if p.Payee.Proxy {
			proxy = "yes"
		}
		row := []string{p.PaymentID, cell(p.Payee.Name), p.Payee.CitizenID, proxy, strings.Join(bens, " "),
			p.Payee.District, p.Payee.Ward, p.Net().Amount.String(), string(domain.VND), ""}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("cash list: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("cash list: %w", err)
	}
	return nil
}

// Wards lists the wards that have cash payments in r, in first-seen order.
func Wards(r Run) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range r.PaymentIDs {
		p := r.Payments[id]
		if p.Payee.Method == MethodCash && !seen[p.Payee.Ward] {
			seen[p.Payee.Ward] = true
			out = append(out, p.Payee.Ward)
		}
	}
	return out
}

func periodsText(s Scope) string {
	parts := make([]string, len(s.Periods))
	for i, p := range s.Periods {
		parts[i] = p.String()
	}
	return strings.Join(parts, " ")
}

// cell defuses a text cell a spreadsheet would read as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Rejection is a line of an imported file that changed nothing, and why.
type Rejection struct {
	Line      int    `json:"line"`
	PaymentID string `json:"payment_id,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

func rejection(line int, id string, err error) Rejection {
	if re, ok := domain.AsRuleError(err); ok {
		msg := re.Message
		if re.Field != "" {
			msg = re.Field + ": " + msg
		}
		return Rejection{Line: line, PaymentID: id, Code: re.Code, Message: msg}
	}
	return Rejection{Line: line, PaymentID: id, Code: "invalid_line", Message: err.Error()}
}

// SettlementHeader is the layout of a settlement file from the bank (or from
// the ward cashiers): occurred_at is RFC 3339; amount and reason may be
// empty.
var SettlementHeader = []string{"payment_id", "outcome", "reference", "occurred_at", "amount", "reason", "detail"}

// ErrFileTooLarge means an imported file is over MaxFileBytes.
var ErrFileTooLarge = errors.New("file too large")

// ParseSettlements reads a settlement file. Lines that do not parse are
// returned as rejections (the rest is still imported); a file that is not
// CSV of this layout, or is too large, is an error and nothing is imported.
func ParseSettlements(r io.Reader) ([]Settlement, []Rejection, error) {
	var out []Settlement
	var rejected []Rejection
	err := readCSV(r, SettlementHeader, MaxSettlementLines, MaxFileBytes, func(line int, f []string) {
		s := Settlement{Line: line, PaymentID: f[0], Outcome: Outcome(f[1]), Reference: f[2], Reason: FailureReason(f[5]), Detail: f[6]}
		at, err := time.Parse(time.RFC3339, f[3])
		if err != nil {
			rejected = append(rejected, Rejection{Line: line, PaymentID: f[0], Code: "invalid_time", Message: "occurred_at: want RFC 3339, e.g. 2024-01-20T09:30:00+07:00"})
			return
		}
		s.At = at
		if f[4] != "" {
			m, err := domain.ParseVND(f[4])
			if err != nil {
				rejected = append(rejected, Rejection{Line: line, PaymentID: f[0], Code: "invalid_amount", Message: "amount: " + err.Error()})
				return
			}
			s.Amount = &m
		}
		s, err = s.Validate()
		if err != nil {
			rejected = append(rejected, rejection(line, f[0], err))
			return
		}
		out = append(out, s)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("settlement file: %w", err)
	}
	return out, rejected, nil
}

// StatementHeader is the layout of a bank statement (CSV export): one line
// per debit of the program's account; reference is the payment ID the bank
// echoes; value_date is YYYY-MM-DD.
var StatementHeader = []string{"reference", "amount", "value_date", "bank_transaction"}

// StatementLine is one line of a bank statement.
type StatementLine struct {
	Line        int          `json:"line"`
	Reference   string       `json:"reference"`
	Amount      domain.Money `json:"amount"`
	ValueDate   domain.Date  `json:"value_date"`
	Transaction string       `json:"bank_transaction"`
}

// ParseStatement reads a statement. Unlike a settlement file it is all or
// nothing: a statement is the bank's account of a day, and matching half of
// it would report payments as missing that are merely on a bad line.
func ParseStatement(r io.Reader) ([]StatementLine, error) {
	var out []StatementLine
	var bad error
	err := readCSV(r, StatementHeader, MaxStatementLines, MaxFileBytes, func(line int, f []string) {
		if bad != nil {
			return
		}
		m, err := domain.ParseVND(f[1])
		if err != nil || !m.IsPositive() {
			bad = domain.Reject("invalid_statement", "amount", "line %d: want a positive whole number of dong, got %q", line, clipID(f[1]))
			return
		}
		d, err := domain.ParseDate(f[2])
		if err != nil {
			bad = domain.Reject("invalid_statement", "value_date", "line %d: %v", line, err)
			return
		}
		if f[0] == "" || len(f[0]) > MaxReferenceBytes {
			bad = domain.Reject("invalid_statement", "reference", "line %d: want 1 to %d characters", line, MaxReferenceBytes)
			return
		}
		if err := validateReference("bank_transaction", f[3]); err != nil || f[3] == "" {
			bad = domain.Reject("invalid_statement", "bank_transaction", "line %d: want 1 to %d letters, digits or - _ . / :", line, MaxReferenceBytes)
			return
		}
		out = append(out, StatementLine{Line: line, Reference: f[0], Amount: m, ValueDate: d, Transaction: f[3]})
	})
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if bad != nil {
		return nil, bad
	}
	return out, nil
}

// readCSV reads a CSV file with the given header, calling row for each data
// line with its 1-based line number (the header is line 1).
func readCSV(r io.Reader, header []string, maxLines int, maxBytes int64, row func(line int, fields []string)) error {
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	cr := csv.NewReader(lr)
	cr.FieldsPerRecord = len(header)
	cr.ReuseRecord = true
	first, err := cr.Read()
	if err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("%w: more than %d bytes", ErrFileTooLarge, maxBytes)
		}
		return domain.Reject("invalid_file", "file", "want a CSV header %s: %v", strings.Join(header, ","), err)
	}
	for i, h := range header {
		if strings.TrimSpace(strings.TrimPrefix(first[i], "\ufeff")) != h {
			return domain.Reject("invalid_file", "file", "want the CSV header %s", strings.Join(header, ","))
		}
	}
	for n := 0; ; n++ {
		f, err := cr.Read()
		if lr.N <= 0 {
			return fmt.Errorf("%w: more than %d bytes", ErrFileTooLarge, maxBytes)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return domain.Reject("invalid_file", "file", "%v", err)
		}
		if n >= maxLines {
			return domain.Reject("too_many_lines", "file", "more than %d lines; split the file", maxLines)
		}
		line, _ := cr.FieldPos(0)
		for i := range f {
			if len(f[i]) > maxCellBytes {
				return domain.Reject("invalid_file", "file", "line %d: a cell of more than %d bytes", line, maxCellBytes)
			}
			f[i] = strings.TrimSpace(f[i])
		}
		row(line, f)
	}
}
