package disbursement

import (
	"fmt"
	"slices"
	"time"

	"github.com/ansinh/ansinh/domain"
)

// Status is where one payment attempt of an obligation stands.
//
//	issued -> released -> settled -> returned
//	   |          |          \-> reversed (by an approved correction)
//	   |          \-> failed
//	   \-> cancelled (the run was cancelled before release)
//
// failed, returned and cancelled put the obligation back to owed: the next
// run that covers it issues a new attempt. reversed closes it for good.
type Status string

const (
	StatusIssued    Status = "issued"
	StatusReleased  Status = "released"
	StatusSettled   Status = "settled"
	StatusFailed    Status = "failed"
	StatusReturned  Status = "returned"
	StatusCancelled Status = "cancelled"
	StatusReversed  Status = "reversed"
)

// Reopens reports whether an attempt in status s leaves the obligation owed.
func (s Status) Reopens() bool {
	return s == StatusFailed || s == StatusReturned || s == StatusCancelled
}

// Offset is the part of an attempt's gross amount kept back to recover an
// earlier overpayment (an approved recovery correction with mode offset).
type Offset struct {
	Correction string       `json:"correction_id"`
	Amount     domain.Money `json:"amount"`
}

// Amounts of one attempt: Gross is what the obligation is worth, Net what
// reaches the payee; Gross = Net + sum(Offsets).
type Amounts struct {
	Gross   domain.Money `json:"gross"`
	Offsets []Offset     `json:"offsets,omitempty"`
	Net     domain.Money `json:"net"`
}

// OffsetTotal is the sum of the offsets.
func (a Amounts) OffsetTotal() domain.Money {
	t := domain.ZeroVND()
	for _, o := range a.Offsets {
		t = t.Add(o.Amount)
	}
	return t
}

// check asserts Gross = Net + offsets, all whole, none negative. Deciders
// call it before they emit an event; a violation is a bug in this package.
func (a Amounts) check() error {
	for _, m := range []domain.Money{a.Gross, a.Net} {
		if m.Currency != domain.VND || !m.IsWhole() || m.IsNegative() {
			return fmt.Errorf("amounts: %s is not a whole, non-negative VND amount", m)
		}
	}
	for _, o := range a.Offsets {
		if o.Amount.Currency != domain.VND || !o.Amount.IsPositive() || !o.Amount.IsWhole() {
			return fmt.Errorf("amounts: offset %s of %s must be a positive whole VND amount", o.Amount, o.Correction)
		}
	}
	if !a.Gross.IsPositive() {
		return fmt.Errorf("amounts: gross %s must be positive", a.Gross)
	}
	if !a.Net.Add(a.OffsetTotal()).Equal(a.Gross) {
		return fmt.Errorf("amounts: net %s + offsets %s != gross %s", a.Net, a.OffsetTotal(), a.Gross)
	}
	return nil
}

// AttemptRef names one attempt of one obligation and the payment (transfer)
// it travels in.
type AttemptRef struct {
	Obligation ObligationKey `json:"obligation"`
	Attempt    int           `json:"attempt"`
	RunID      string        `json:"run_id"`
	PaymentID  string        `json:"payment_id"`
}

// Events of a payment stream (payment-<citizen>-<program>-<period>[...]).
// Every event repeats the attempt's reference and, where money moves, the
// amounts, so that Postings needs nothing but the event.
type (
	// PaymentIssued: a run claimed the obligation for one attempt.
	PaymentIssued struct {
		AttemptRef
		Payee Payee `json:"payee"`
		Amounts
		Trace Trace `json:"trace"`
	}
	// PaymentCancelled: the attempt was withdrawn before release (its run
	// was cancelled); the obligation is owed again.
	PaymentCancelled struct {
		AttemptRef
		Amounts
		Reason string `json:"reason"`
	}
	// PaymentReleased: the attempt left in a bank file or a cash list.
	PaymentReleased struct {
		AttemptRef
		Method Method       `json:"method"`
		Net    domain.Money `json:"net"`
	}
	// PaymentSettled: the bank (or the ward cashier) paid it.
	PaymentSettled struct {
		AttemptRef
		Method    Method       `json:"method"`
		Net       domain.Money `json:"net"`
		Reference string       `json:"reference"`
		SettledAt time.Time    `json:"settled_at"`
	}
	// PaymentFailed: the bank refused it, or nobody collected the cash; the
	// obligation is owed again.
	PaymentFailed struct {
		AttemptRef
		Method Method `json:"method"`
		Amounts
		Reason   FailureReason `json:"reason"`
		Detail   string        `json:"detail,omitempty"`
		FailedAt time.Time     `json:"failed_at"`
	}
	// PaymentReturned: settled money came back (the bank returned it after
	// settlement); the obligation is owed again.
	PaymentReturned struct {
		AttemptRef
		Method Method `json:"method"`
		Amounts
		Reference  string        `json:"reference"`
		Reason     FailureReason `json:"reason"`
		Detail     string        `json:"detail,omitempty"`
		ReturnedAt time.Time     `json:"returned_at"`
	}
	// PaymentReversed: an approved reversal correction voids the settled
	// attempt; the obligation is closed and the amount becomes a recovery
	// (RecoveryRaised in the beneficiary's adjustments stream carries the
	// postings).
	PaymentReversed struct {
		AttemptRef
		Correction string       `json:"correction_id"`
		Gross      domain.Money `json:"gross"`
	}
)

func (PaymentIssued) EventType() string    { return "PaymentIssued.v1" }
func (PaymentCancelled) EventType() string { return "PaymentCancelled.v1" }
func (PaymentReleased) EventType() string  { return "PaymentReleased.v1" }
func (PaymentSettled) EventType() string   { return "PaymentSettled.v1" }
func (PaymentFailed) EventType() string    { return "PaymentFailed.v1" }
func (PaymentReturned) EventType() string  { return "PaymentReturned.v1" }
func (PaymentReversed) EventType() string  { return "PaymentReversed.v1" }

// Attempt is one try at paying an obligation.
type Attempt struct {
	AttemptRef
	Payee Payee
	Amounts
	Trace       Trace
	Status      Status
	Reference   string        // bank reference or cash receipt of the settlement
	ReturnedRef string        // bank reference of the return
	Failure     FailureReason // why it failed or was returned
	At          time.Time     // when it settled, failed or was returned
}

// Obligation is the state of one payment stream: its attempts, oldest first.
type Obligation struct {
	Key      ObligationKey
	Attempts []Attempt
}

// Last returns the latest attempt, if any.
func (o Obligation) Last() (Attempt, bool) {
	if len(o.Attempts) == 0 {
		return Attempt{}, false
	}
	return o.Attempts[len(o.Attempts)-1], true
}

// Owed reports whether a run may issue a new attempt: never tried, or the
// last attempt failed, was returned or was cancelled.
func (o Obligation) Owed() bool {
	last, ok := o.Last()
	return !ok || last.Status.Reopens()
}

// Attempt returns attempt number n (1-based).
func (o Obligation) Attempt(n int) (Attempt, bool) {
	if n < 1 || n > len(o.Attempts) {
		return Attempt{}, false
	}
	return o.Attempts[n-1], true
}

// ByPayment returns the latest attempt that travels in payment id.
func (o Obligation) ByPayment(id string) (Attempt, bool) {
	for i := len(o.Attempts) - 1; i >= 0; i-- {
		if o.Attempts[i].PaymentID == id {
			return o.Attempts[i], true
		}
	}
	return Attempt{}, false
}

// Evolve returns the obligation after e. It copies the attempts it changes,
// so earlier states stay valid.
func (o Obligation) Evolve(e domain.Event) Obligation {
	set := func(ref AttemptRef, f func(*Attempt)) {
		if ref.Attempt < 1 || ref.Attempt > len(o.Attempts) {
			return // deciders never emit this; tolerate a hand-written stream
		}
		o.Attempts = slices.Clone(o.Attempts)
		f(&o.Attempts[ref.Attempt-1])
	}
	switch e := e.(type) {
	case PaymentIssued:
		o.Key = e.Obligation
		o.Attempts = append(slices.Clip(o.Attempts), Attempt{
			AttemptRef: e.AttemptRef, Payee: e.Payee, Amounts: e.Amounts, Trace: e.Trace, Status: StatusIssued,
		})
	case PaymentCancelled:
		set(e.AttemptRef, func(a *Attempt) { a.Status = StatusCancelled })
	case PaymentReleased:
		set(e.AttemptRef, func(a *Attempt) { a.Status = StatusReleased })
	case PaymentSettled:
		set(e.AttemptRef, func(a *Attempt) { a.Status, a.Reference, a.At = StatusSettled, e.Reference, e.SettledAt })
	case PaymentFailed:
		set(e.AttemptRef, func(a *Attempt) { a.Status, a.Failure, a.At = StatusFailed, e.Reason, e.FailedAt })
	case PaymentReturned:
		set(e.AttemptRef, func(a *Attempt) {
			a.Status, a.Failure, a.At, a.ReturnedRef = StatusReturned, e.Reason, e.ReturnedAt, e.Reference
		})
	case PaymentReversed:
		set(e.AttemptRef, func(a *Attempt) { a.Status = StatusReversed })
	}
	return o
}

// Issue decides a new attempt of o for a run. It refuses unless the
// obligation is owed; the ledger appends the event at the revision it loaded,
// so a second claimant is refused by the store even if both saw it owed.
func (o Obligation) Issue(ref AttemptRef, payee Payee, amounts Amounts, trace Trace) (PaymentIssued, error) {
	if !o.Owed() {
		last, _ := o.Last()
		return PaymentIssued{}, domain.Rejectf(domain.Conflict, "already_claimed", "obligation",
			"%s is %s in run %s", o.streamOr(ref.Obligation), last.Status, last.RunID)
	}
	if ref.Attempt != len(o.Attempts)+1 {
		return PaymentIssued{}, fmt.Errorf("issue %s: attempt %d, want %d", ref.Obligation.Stream(), ref.Attempt, len(o.Attempts)+1)
	}
	if err := amounts.check(); err != nil {
		return PaymentIssued{}, fmt.Errorf("issue %s: %w", ref.Obligation.Stream(), err)
	}
	return PaymentIssued{AttemptRef: ref, Payee: payee, Amounts: amounts, Trace: trace}, nil
}

// Cancel withdraws the attempt run runID issued. Nothing to do (nil, nil)
// when it was already cancelled or the obligation holds no attempt of that
// run; an attempt already released cannot be cancelled.
func (o Obligation) Cancel(runID, reason string) (*PaymentCancelled, error) {
	a, ok := o.lastOfRun(runID)
	if !ok || a.Status == StatusCancelled {
		return nil, nil
	}
	if a.Status != StatusIssued {
		return nil, domain.Rejectf(domain.Conflict, "already_released", "run_id",
			"%s attempt %d is %s; only an attempt not yet released can be cancelled", o.Key.Stream(), a.Attempt, a.Status)
	}
	return &PaymentCancelled{AttemptRef: a.AttemptRef, Amounts: a.Amounts, Reason: reason}, nil
}

// Release sends the attempt of run runID. Nothing to do when it is already
// past issued (a re-driven release).
func (o Obligation) Release(runID string) (*PaymentReleased, error) {
	a, ok := o.lastOfRun(runID)
	if !ok {
		return nil, fmt.Errorf("release %s: no attempt of run %s", o.Key.Stream(), runID)
	}
	switch a.Status {
	case StatusIssued:
		return &PaymentReleased{AttemptRef: a.AttemptRef, Method: a.Payee.Method, Net: a.Net}, nil
	case StatusCancelled:
		return nil, domain.Rejectf(domain.Conflict, "payment_cancelled", "run_id", "%s attempt %d was cancelled", o.Key.Stream(), a.Attempt)
	}
	return nil, nil
}

func (o Obligation) lastOfRun(runID string) (Attempt, bool) {
	for i := len(o.Attempts) - 1; i >= 0; i-- {
		if o.Attempts[i].RunID == runID {
			return o.Attempts[i], true
		}
	}
	return Attempt{}, false
}

func (o Obligation) streamOr(k ObligationKey) string {
	if o.Key.CitizenID != "" {
		return o.Key.Stream()
	}
	return k.Stream()
}

// Reverse voids the latest attempt, which must be settled, for an approved
// reversal correction. Nothing to do when that correction already reversed
// it.
func (o Obligation) Reverse(correctionID string) (*PaymentReversed, error) {
	last, ok := o.Last()
	if !ok {
		return nil, domain.Rejectf(domain.NotFound, "payment_not_found", "obligation", "%s was never paid", o.Key.Stream())
	}
	if last.Status == StatusReversed {
		return nil, nil
	}
	if last.Status != StatusSettled {
		return nil, domain.Rejectf(domain.Conflict, "not_settled", "obligation",
			"%s attempt %d is %s; only a settled payment can be reversed", o.Key.Stream(), last.Attempt, last.Status)
	}
	return &PaymentReversed{AttemptRef: last.AttemptRef, Correction: correctionID, Gross: last.Gross}, nil
}
