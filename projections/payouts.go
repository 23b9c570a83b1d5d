package projections

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// The payouts read model: every payment attempt with its status and the
// bank or cash details it travelled with (account numbers are masked before
// they are stored: the read model never holds a usable one), listed per
// beneficiary and per run, and a summary of every run.
//
//	a/<obligation stream>/<attempt:4>                 PaymentRow
//	r/<run>/<payment>/<obligation stream>/<attempt:4> index of a run's lines
//	run/<run>                                         PayoutRun
//	rc/<payment>                                      Reconciliation of a payment
//
// Obligation streams are payment-<citizen ID>-..., so a beneficiary's
// history is the keys under a/payment-<citizen ID>-, in program and period
// order. Run and payment IDs cannot hold '/', so the separators are
// unambiguous.
const payoutsName = "payouts"

type payoutsProjection struct{}

func (payoutsProjection) Name() string { return payoutsName }
func (payoutsProjection) Version() int { return 1 }

// PaymentPayee is who a payment went to, and how.
type PaymentPayee struct {
	CitizenID     string              `json:"citizen_id"`
	Name          string              `json:"name"`
	Proxy         bool                `json:"proxy"`
	Method        disbursement.Method `json:"method"`
	BankCode      string              `json:"bank_code,omitempty"`
	AccountMasked string              `json:"account_number,omitempty"`
	District      string              `json:"district"`
	Ward          string              `json:"ward"`
}

// PaymentRow is one attempt to pay one obligation.
type PaymentRow struct {
	Obligation disbursement.ObligationKey `json:"obligation"`
	Attempt    int                        `json:"attempt"`
	RunID      string                     `json:"run_id"`
	PaymentID  string                     `json:"payment_id"`
	Payee      PaymentPayee               `json:"payee"`
	Gross      domain.Money               `json:"gross"`
	Net        domain.Money               `json:"net"`
	Offsets    []disbursement.Offset      `json:"offsets,omitempty"`
	Status     disbursement.Status        `json:"status"`
	// Reference is the bank reference or cash receipt of the settlement
	// (or of the return); Reason and Detail why it failed, came back or
	// was cancelled.
	Reference string `json:"reference,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// IssuedAt and UpdatedAt are when the ledger recorded the first and the
	// latest event of the attempt; AnsweredAt when the bank or cashier says
	// it settled, failed or came back.
	IssuedAt   time.Time          `json:"issued_at"`
	UpdatedAt  time.Time          `json:"updated_at"`
	AnsweredAt time.Time          `json:"answered_at,omitzero"`
	Trace      disbursement.Trace `json:"trace"`
}

// StatusTotal counts lines and sums their amounts.
type StatusTotal struct {
	Lines int          `json:"lines"`
	Gross domain.Money `json:"gross"`
	Net   domain.Money `json:"net"`
}

// PayoutRun is a run's summary: its state, who did what when, what it
// calculated, and where its lines stand now.
type PayoutRun struct {
	RunID        string                 `json:"run_id"`
	Status       disbursement.RunStatus `json:"status"`
	Scope        disbursement.Scope     `json:"scope"`
	Note         string                 `json:"note,omitempty"`
	OpenedBy     string                 `json:"opened_by"`
	OpenedAt     time.Time              `json:"opened_at"`
	CalculatedBy string                 `json:"calculated_by,omitempty"`
	CalculatedAt time.Time              `json:"calculated_at,omitzero"`
	ApprovedBy   string                 `json:"approved_by,omitempty"`
	ApprovedAt   time.Time              `json:"approved_at,omitzero"`
	ReleasedBy   string                 `json:"released_by,omitempty"`
	ReleasedAt   time.Time              `json:"released_at,omitzero"`
	CancelledBy  string                 `json:"cancelled_by,omitempty"`
	CancelReason string                 `json:"cancel_reason,omitempty"`
	ClosedBy     string                 `json:"closed_by,omitempty"`
	EndedAt      time.Time              `json:"ended_at,omitzero"`
	// What the calculation recorded.
	Beneficiaries int          `json:"beneficiaries"`
	Payments      int          `json:"payments"`
	Lines         int          `json:"lines"`
	Gross         domain.Money `json:"gross"`
	Net           domain.Money `json:"net"`
	Skipped       int          `json:"skipped"`
	Problems      int          `json:"problems"`
	// ByStatus is where the run's lines stand now.
	ByStatus   map[disbursement.Status]StatusTotal `json:"by_status"`
	Reconciled int                                 `json:"reconciled_payments"`
}

func (r *PayoutRun) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, r) }
func (r *PayoutRun) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, r) }

// runState is a run's summary while Apply updates it. Every payment event
// moves a line from one status to another, so the totals by status are
// kept in dong (see dong) and turned into ByStatus only when the run is
// stored, once per commit: the stored bytes are those of the PayoutRun
// the queries read.
type runState struct {
	PayoutRun // ByStatus unused: see totals
	totals    map[disbursement.Status]statusCount
}

func (s *runState) AppendBinary(b []byte) ([]byte, error) {
	r := s.PayoutRun
	r.ByStatus = make(map[disbursement.Status]StatusTotal, len(s.totals))
	for st, c := range s.totals {
		r.ByStatus[st] = StatusTotal{Lines: c.Lines, Gross: c.Gross.money(), Net: c.Net.money()}
	}
	return appendJSON(b, &r)
}

func (s *runState) UnmarshalBinary(b []byte) error {
	if err := s.PayoutRun.UnmarshalBinary(b); err != nil {
		return err
	}
	s.totals = make(map[disbursement.Status]statusCount, len(s.ByStatus))
	for st, t := range s.ByStatus {
		gross, err1 := dongOf(t.Gross)
		net, err2 := dongOf(t.Net)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("run %s, %s: %w", s.RunID, st, err)
		}
		s.totals[st] = statusCount{Lines: t.Lines, Gross: gross, Net: net}
	}
	s.ByStatus = nil
	return nil
}

// Reconciliation is what a bank statement said about a payment.
type Reconciliation struct {
	Reconciliation string       `json:"reconciliation_id"`
	Amount         domain.Money `json:"amount"`
	Transaction    string       `json:"bank_transaction"`
}

func (r *Reconciliation) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, r) }
func (r *Reconciliation) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, r) }

func attemptKey(stream string, attempt int) []byte { return appendAttemptKey(nil, stream, attempt) }

// appendAttemptKey appends attemptKey(stream, attempt) to b.
func appendAttemptKey(b []byte, stream string, attempt int) []byte {
	return binary.BigEndian.AppendUint32(joinKey(b, "a/", stream, "/"), uint32(attempt))
}

func appendRunLineKey(b []byte, ch *attemptChange) []byte {
	ref := ch.ref
	return binary.BigEndian.AppendUint32(joinKey(b, "r/", ref.RunID, "/", ref.PaymentID, "/", ch.stream, "/"), uint32(ref.Attempt))
}

func runKey(id string) []byte { return []byte("run/" + id) }

func (payoutsProjection) Apply(tx *Tx, ev *Event) error {
	de, err := domainEvent(ev)
	if de == nil {
		return err
	}
	if ch, ok := ev.payment(); ok {
		return applyAttempt(tx, ev, ch)
	}
	if e, ok := de.(disbursement.PaymentsReconciled); ok {
		for _, p := range e.Payments {
			tx.Put([]byte("rc/"+p.PaymentID), &Reconciliation{Reconciliation: e.Reconciliation, Amount: p.Amount, Transaction: p.Transaction})
		}
		return updateRun(tx, e.RunID, run(func(r *runState) { r.Reconciled += len(e.Payments) }))
	}
	at := ev.RecordedAt
	switch e := de.(type) {
	case disbursement.PayoutRunOpened:
		tx.Put(runKey(e.RunID), &runState{PayoutRun: PayoutRun{RunID: e.RunID, Status: disbursement.RunOpened, Scope: e.Scope, Note: e.Note,
			OpenedBy: e.OpenedBy, OpenedAt: at, Gross: domain.ZeroVND(), Net: domain.ZeroVND()}, totals: map[disbursement.Status]statusCount{}})
	case disbursement.PayoutRunPaymentsCalculated:
		return updateRun(tx, e.RunID, run(func(r *runState) {
			r.Beneficiaries += e.Beneficiaries
			r.Skipped += e.Skipped
			r.Problems += len(e.Problems)
		}))
	case disbursement.PayoutRunCalculated:
		return updateRun(tx, e.RunID, run(func(r *runState) {
			r.Status, r.CalculatedBy, r.CalculatedAt = disbursement.RunCalculated, e.CalculatedBy, at
			r.Payments, r.Lines, r.Gross, r.Net = e.Payments, e.Lines, e.Gross, e.Net
		}))
	case disbursement.PayoutRunApproved:
		return updateRun(tx, e.RunID, run(func(r *runState) {
			r.Status, r.ApprovedBy, r.ApprovedAt = disbursement.RunApproved, e.ApprovedBy, at
		}))
	case disbursement.PayoutRunReleased:
		return updateRun(tx, e.RunID, run(func(r *runState) {
			r.Status, r.ReleasedBy, r.ReleasedAt = disbursement.RunReleased, e.ReleasedBy, at
		}))
	case disbursement.PayoutRunCancelled:
		return updateRun(tx, e.RunID, run(func(r *runState) {
			r.Status, r.CancelledBy, r.CancelReason, r.EndedAt = disbursement.RunCancelled, e.CancelledBy, e.Reason, at
		}))
	case disbursement.PayoutRunClosed:
		return updateRun(tx, e.RunID, run(func(r *runState) {
			r.Status, r.ClosedBy, r.EndedAt = disbursement.RunClosed, e.ClosedBy, at
		}))
	}
	return nil
}

// updateRun changes a run's summary; events of a run that was never opened
// (impossible from the ledger) are ignored, as the domain's Evolve does.
func updateRun(tx *Tx, id string, f func(*runState) error) error {
	var kb [keyBytes]byte
	key := joinKey(kb[:0], "run/", id)
	r, found, err := Load[runState](tx, key)
	if err != nil || !found {
		return err
	}
	if err := f(r); err != nil {
		return err
	}
	tx.Put(key, r)
	return nil
}

// run is updateRun for the changes that cannot fail.
func run(f func(*runState)) func(*runState) error {
	return func(r *runState) error { f(r); return nil }
}

// paymentState is a PaymentRow while Apply updates it, with its amounts
// also in dong: every event of the attempt moves them from one status
// total of its run to another, and converting the row's domain.Money at
// each event (a big.Int behind a pointer) was a few percent of a rebuild.
// It is stored exactly as the PaymentRow the queries read.
type paymentState struct {
	PaymentRow
	gross, net dong
}

func (s *paymentState) AppendBinary(b []byte) ([]byte, error) { return s.PaymentRow.AppendBinary(b) }

func (s *paymentState) UnmarshalBinary(b []byte) error {
	if err := s.PaymentRow.UnmarshalBinary(b); err != nil {
		return err
	}
	return s.setAmounts()
}

func (s *paymentState) setAmounts() error {
	gross, err1 := dongOf(s.Gross)
	net, err2 := dongOf(s.Net)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("payouts: %s attempt %d: %w", s.Obligation.Stream(), s.Attempt, err)
	}
	s.gross, s.net = gross, net
	return nil
}

func applyAttempt(tx *Tx, ev *Event, ch *attemptChange) error {
	var kb [keyBytes]byte
	key := appendAttemptKey(kb[:0], ch.stream, ch.ref.Attempt)
	var row *paymentState
	var before disbursement.Status
	if e := ch.issued; e != nil {
		row = &paymentState{PaymentRow: PaymentRow{
			Obligation: e.Obligation, Attempt: e.Attempt, RunID: e.RunID, PaymentID: e.PaymentID,
			Payee: PaymentPayee{
				CitizenID: e.Payee.CitizenID, Name: e.Payee.Name, Proxy: e.Payee.Proxy, Method: e.Payee.Method,
				BankCode: e.Payee.BankCode, AccountMasked: MaskAccount(e.Payee.AccountNumber),
				District: e.Payee.District, Ward: e.Payee.Ward,
			},
			Gross: e.Gross, Net: e.Net, Offsets: e.Offsets, IssuedAt: ev.RecordedAt, Trace: e.Trace,
		}}
		if err := row.setAmounts(); err != nil {
			return err
		}
		var lb [keyBytes]byte
		tx.Set(appendRunLineKey(lb[:0], ch), nil)
	} else {
		var found bool
		var err error
		if row, found, err = Load[paymentState](tx, key); err != nil || !found {
			return err
		}
		before = row.Status
	}
	row.Status, row.UpdatedAt = ch.status, ev.RecordedAt
	if ch.reference != "" {
		row.Reference = ch.reference
	}
	if ch.reason != "" {
		row.Reason, row.Detail = ch.reason, ch.detail
	}
	if !ch.at.IsZero() {
		row.AnsweredAt = ch.at
	}
	tx.Put(key, row)
	gross, net := row.gross, row.net
	return updateRun(tx, row.RunID, func(r *runState) error {
		var err1 error
		if before != "" {
			c := r.totals[before]
			err1 = c.add(-1, gross, net)
			if c.Lines == 0 {
				delete(r.totals, before)
			} else {
				r.totals[before] = c
			}
		}
		c := r.totals[row.Status]
		err2 := c.add(+1, gross, net)
		r.totals[row.Status] = c
		return errors.Join(err1, err2)
	})
}

// HistoryPage is one page of a beneficiary's payment attempts, oldest
// program and period first.
type HistoryPage struct {
	Items []PaymentRow `json:"items"`
	Next  string       `json:"next"`
}

func paymentHistory(r *Reader, cid string, cursor string, limit int) (HistoryPage, error) {
	if err := checkLimit(limit); err != nil {
		return HistoryPage{}, err
	}
	prefix := []byte("a/" + disbursement.PaymentStreamPrefix + cid + "-")
	lower, err := afterCursor(prefix, cursor)
	if err != nil {
		return HistoryPage{}, err
	}
	page := HistoryPage{Items: []PaymentRow{}}
	var last []byte
	err = r.Scan(lower, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		if len(page.Items) == limit {
			page.Next = base64.RawURLEncoding.EncodeToString(last)
			return false, nil
		}
		var row PaymentRow
		if err := row.UnmarshalBinary(v); err != nil {
			return false, fmt.Errorf("payouts: row %q: %w", k, err)
		}
		page.Items = append(page.Items, row)
		last = append(last[:0], k...)
		return true, nil
	})
	return page, err
}

// afterCursor is where a page starts: after the key the cursor names,
// which must lie under prefix.
func afterCursor(prefix []byte, cursor string) ([]byte, error) {
	if cursor == "" {
		return prefix, nil
	}
	c, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(c), string(prefix)) {
		return nil, ErrInvalidCursor
	}
	return append(c, 0), nil
}

// RunPayment is one payment (transfer or cash handout) of a run: one
// payee, the lines it pays, and where it stands.
type RunPayment struct {
	PaymentID string       `json:"payment_id"`
	Payee     PaymentPayee `json:"payee"`
	Gross     domain.Money `json:"gross"`
	Net       domain.Money `json:"net"`
	// Status is the lines' status when they agree, "mixed" otherwise.
	Status         string          `json:"status"`
	Lines          []PaymentRow    `json:"lines"`
	Reconciliation *Reconciliation `json:"reconciliation,omitempty"`
}

// RunPaymentsPage is one page of a run's payments, in payment ID order.
type RunPaymentsPage struct {
	Items []RunPayment `json:"items"`
	Next  string       `json:"next"`
}

func runPayments(r *Reader, runID, cursor string, limit int) (RunPaymentsPage, error) {
	if err := checkLimit(limit); err != nil {
		return RunPaymentsPage{}, err
	}
	prefix := []byte("r/" + runID + "/")
	lower := prefix
	if cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || strings.ContainsRune(string(c), '/') || len(c) == 0 {
			return RunPaymentsPage{}, ErrInvalidCursor
		}
		// After every line of the cursor's payment.
		lower = prefixEnd(append(append([]byte(nil), prefix...), append(c, '/')...))
	}
	page := RunPaymentsPage{Items: []RunPayment{}}
	var refs [][]byte // attempt keys of the current payment
	var current string
	flush := func() error {
		if current == "" {
			return nil
		}
		p := RunPayment{PaymentID: current, Gross: domain.ZeroVND(), Net: domain.ZeroVND()}
		for _, ak := range refs {
			row, found, err := Read[PaymentRow](r, ak)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("payouts: run index names %q, which has no row", ak)
			}
			p.Payee = row.Payee
			p.Gross, p.Net = p.Gross.Add(row.Gross), p.Net.Add(row.Net)
			switch {
			case p.Status == "":
				p.Status = string(row.Status)
			case p.Status != string(row.Status):
				p.Status = "mixed"
			}
			p.Lines = append(p.Lines, *row)
		}
		rc, found, err := Read[Reconciliation](r, []byte("rc/"+current))
		if err != nil {
			return err
		}
		if found {
			p.Reconciliation = rc
		}
		page.Items = append(page.Items, p)
		return nil
	}
	err := r.Scan(lower, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		rest := string(k[len(prefix):])
		pid, line, ok := strings.Cut(rest, "/")
		if !ok || len(line) < 5 {
			return false, fmt.Errorf("payouts: run index key %q is corrupt", k)
		}
		if pid != current {
			if len(page.Items)+1 == limit && current != "" {
				// The page is full once the current payment is out.
				if err := flush(); err != nil {
					return false, err
				}
				page.Next = base64.RawURLEncoding.EncodeToString([]byte(current))
				current = ""
				return false, nil
			}
			if err := flush(); err != nil {
				return false, err
			}
			current, refs = pid, refs[:0]
		}
		stream, attempt := line[:len(line)-5], line[len(line)-4:]
		refs = append(refs, attemptKey(stream, int(binary.BigEndian.Uint32([]byte(attempt)))))
		return true, nil
	})
	if err != nil {
		return RunPaymentsPage{}, err
	}
	if err := flush(); err != nil {
		return RunPaymentsPage{}, err
	}
	return page, nil
}

func payoutRun(r *Reader, id string) (*PayoutRun, bool, error) {
	return Read[PayoutRun](r, runKey(id))
}
