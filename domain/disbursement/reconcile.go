package disbursement

import (
	"github.com/ansinh/ansinh/domain"
)

// MatchStatus is how one statement line compares with the payments sent.
type MatchStatus string

const (
	// Matched: a payment we sent and recorded as settled, same amount.
	Matched MatchStatus = "matched"
	// AlreadyReconciled: the same line was matched by an earlier statement.
	AlreadyReconciled MatchStatus = "already_reconciled"
	// AmountMismatch: the payment exists, the bank moved another amount.
	AmountMismatch MatchStatus = "amount_mismatch"
	// UnknownReference: no payment of the statement's runs has this ID.
	UnknownReference MatchStatus = "unknown_reference"
	// DuplicateLine: a second line for the same payment or the same bank
	// transaction (the bank paid twice, or the export repeats a line).
	DuplicateLine MatchStatus = "duplicate_line"
	// NotSettled: the bank shows money out for a payment we record as still
	// in transit or failed: its settlement answer is missing or wrong.
	NotSettled MatchStatus = "not_settled"
)

// ExpectedPayment is a bank payment of the runs a statement is matched
// against, as our records have it.
type ExpectedPayment struct {
	PaymentID string
	Net       domain.Money
	// Status of its lines: settled (or returned, which was settled first),
	// released (no answer yet), failed, ...
	Status Status
	// Reconciled is set when an earlier statement matched it.
	Reconciled *ReconciledPayment
}

// LineResult is the verdict on one statement line.
type LineResult struct {
	Line        int           `json:"line"`
	Reference   string        `json:"reference"`
	Amount      domain.Money  `json:"amount"`
	ValueDate   domain.Date   `json:"value_date"`
	Transaction string        `json:"bank_transaction"`
	Status      MatchStatus   `json:"status"`
	Expected    *domain.Money `json:"expected,omitempty"`
}

// MissingPayment is a settled payment the statement does not show.
type MissingPayment struct {
	PaymentID string       `json:"payment_id"`
	Amount    domain.Money `json:"amount"`
}

// Reconciliation is the result of matching one statement.
type Reconciliation struct {
	Lines   []LineResult
	Missing []MissingPayment
	// Matched are the payments to mark reconciled in their runs.
	Matched []ReconciledPayment
	Counts  map[MatchStatus]int
}

// Reconcile matches statement lines against the expected payments (listed in
// their runs' order). It refuses the whole statement (a Conflict) when a
// line contradicts a payment an earlier statement reconciled: another
// amount or another bank transaction for it. That takes a separately
// authorized override, not an import.
func Reconcile(lines []StatementLine, expected []ExpectedPayment) (Reconciliation, error) {
	res := Reconciliation{Counts: map[MatchStatus]int{}}
	byID := make(map[string]ExpectedPayment, len(expected))
	for _, e := range expected {
		byID[e.PaymentID] = e
	}
	for _, l := range lines {
		e, ok := byID[l.Reference]
		if !ok || e.Reconciled == nil {
			continue
		}
		if !e.Reconciled.Amount.Equal(l.Amount) || e.Reconciled.Transaction != l.Transaction {
			return Reconciliation{}, domain.Rejectf(domain.Conflict, "contradicts_reconciled", "file",
				"line %d: payment %s was reconciled as %s in bank transaction %s, this statement says %s in %s; the statement is refused whole",
				l.Line, l.Reference, e.Reconciled.Amount, e.Reconciled.Transaction, l.Amount, l.Transaction)
		}
	}
	seenRef := map[string]bool{}
	seenTx := map[string]bool{}
	for _, l := range lines {
		r := LineResult{Line: l.Line, Reference: l.Reference, Amount: l.Amount, ValueDate: l.ValueDate, Transaction: l.Transaction}
		e, known := byID[l.Reference]
		if known {
			net := e.Net
			r.Expected = &net
		}
		switch {
		case seenRef[l.Reference] || seenTx[l.Transaction]:
			r.Status = DuplicateLine
		case !known:
			r.Status = UnknownReference
		case e.Reconciled != nil:
			r.Status = AlreadyReconciled
		case !l.Amount.Equal(e.Net):
			r.Status = AmountMismatch
		case e.Status != StatusSettled && e.Status != StatusReturned && e.Status != StatusReversed:
			r.Status = NotSettled
		default:
			r.Status = Matched
			res.Matched = append(res.Matched, ReconciledPayment{PaymentID: e.PaymentID, Amount: l.Amount, Transaction: l.Transaction})
		}
		seenRef[l.Reference] = true
		seenTx[l.Transaction] = true
		res.Counts[r.Status]++
		res.Lines = append(res.Lines, r)
	}
	for _, e := range expected {
		if seenRef[e.PaymentID] || e.Reconciled != nil {
			continue
		}
		if e.Status == StatusSettled || e.Status == StatusReturned || e.Status == StatusReversed {
			res.Missing = append(res.Missing, MissingPayment{PaymentID: e.PaymentID, Amount: e.Net})
		}
	}
	res.Counts["missing"] = len(res.Missing)
	return res, nil
}

// Reconciliation events, in the stream reconciliation-<id>.
type (
	StatementImported struct {
		Reconciliation string   `json:"reconciliation_id"`
		Runs           []string `json:"runs"`
		FileSHA256     string   `json:"file_sha256"`
		Lines          int      `json:"lines"`
		ImportedBy     string   `json:"imported_by"`
	}
	// StatementLinesMatched carries the verdicts in parts (a statement can
	// be too large for one event).
	StatementLinesMatched struct {
		Reconciliation string           `json:"reconciliation_id"`
		Part           int              `json:"part"`
		Lines          []LineResult     `json:"lines,omitempty"`
		Missing        []MissingPayment `json:"missing,omitempty"`
	}
	ReconciliationCompleted struct {
		Reconciliation string              `json:"reconciliation_id"`
		Counts         map[MatchStatus]int `json:"counts"`
	}
)

func (StatementImported) EventType() string       { return "StatementImported.v1" }
func (StatementLinesMatched) EventType() string   { return "StatementLinesMatched.v1" }
func (ReconciliationCompleted) EventType() string { return "ReconciliationCompleted.v1" }

// MaxResultsPerEvent bounds the lines (or missing payments) one
// StatementLinesMatched event holds: about 250 bytes each, well under the
// store's 256 KiB per event.
const MaxResultsPerEvent = 500

// ReconciliationEvents returns the events that record res, in order.
func ReconciliationEvents(id string, runs []string, sha string, lines int, by string, res Reconciliation) []domain.Event {
	out := []domain.Event{StatementImported{Reconciliation: id, Runs: runs, FileSHA256: sha, Lines: lines, ImportedBy: by}}
	part := 0
	for i := 0; i < len(res.Lines); i += MaxResultsPerEvent {
		out = append(out, StatementLinesMatched{Reconciliation: id, Part: part, Lines: res.Lines[i:min(i+MaxResultsPerEvent, len(res.Lines))]})
		part++
	}
	for i := 0; i < len(res.Missing); i += MaxResultsPerEvent {
		out = append(out, StatementLinesMatched{Reconciliation: id, Part: part, Missing: res.Missing[i:min(i+MaxResultsPerEvent, len(res.Missing))]})
		part++
	}
	return append(out, ReconciliationCompleted{Reconciliation: id, Counts: res.Counts})
}

// ReconciliationState is the state of a reconciliation stream.
type ReconciliationState struct {
	Imported  *StatementImported
	Lines     []LineResult
	Missing   []MissingPayment
	Completed *ReconciliationCompleted
}

// Evolve returns the state after e.
func (s ReconciliationState) Evolve(e domain.Event) ReconciliationState {
	switch e := e.(type) {
	case StatementImported:
		s.Imported = &e
	case StatementLinesMatched:
		s.Lines = append(s.Lines, e.Lines...)
		s.Missing = append(s.Missing, e.Missing...)
	case ReconciliationCompleted:
		s.Completed = &e
	}
	return s
}
