package disbursement

import (
	"fmt"
	"slices"

	"github.com/ansinh/ansinh/domain"
)

// MaxLinesPerBeneficiary bounds the candidate lines of one beneficiary in one
// run: 20 programs x 36 periods would already be absurd; the bound keeps a
// page's memory and event sizes predictable.
const MaxLinesPerBeneficiary = 200

// Candidates lists what a run considers for one beneficiary: the owed lines
// in the run's scope and the approved top-ups of the run's programs (a
// top-up is paid whatever its period: it is arrears by nature), sorted by
// stream name. Lines outside the scope are dropped, so the source may send
// more than asked. Malformed input is an error: it comes from the ledger's
// own registry and entitlements, where it was validated.
func Candidates(scope Scope, owed Owed, adj Adjustments) ([]OwedLine, error) {
	if err := ValidateCitizenID("citizen_id", owed.CitizenID); err != nil {
		return nil, fmt.Errorf("owed: %w", err)
	}
	var out []OwedLine
	seen := map[string]bool{}
	add := func(l OwedLine) error {
		if err := l.Key.Validate(); err != nil {
			return fmt.Errorf("owed %s: %w", owed.CitizenID, err)
		}
		if l.Key.CitizenID != owed.CitizenID {
			return fmt.Errorf("owed %s: line of another beneficiary %s", owed.CitizenID, l.Key.CitizenID)
		}
		if l.Amount.Currency != domain.VND || !l.Amount.IsWhole() || !l.Amount.IsPositive() {
			return fmt.Errorf("owed %s: %s has amount %s, want a positive whole VND amount", owed.CitizenID, l.Key.Stream(), l.Amount)
		}
		s := l.Key.Stream()
		if seen[s] {
			return fmt.Errorf("owed %s: %s listed twice", owed.CitizenID, s)
		}
		seen[s] = true
		out = append(out, l)
		return nil
	}
	for _, l := range owed.Lines {
		if l.Key.TopUp != "" {
			return nil, fmt.Errorf("owed %s: the entitlement rules do not owe top-ups (%s)", owed.CitizenID, l.Key.Stream())
		}
		if !scope.Covers(l.Key.Program, l.Key.Period) {
			continue
		}
		if err := add(l); err != nil {
			return nil, err
		}
	}
	for _, t := range adj.TopUps {
		if !slices.Contains(scope.Programs, t.Obligation.Program) {
			continue
		}
		if err := add(OwedLine{Key: t.Obligation, Amount: t.Amount, Trace: Trace{Entitlement: t.Correction, Rule: "top-up: " + t.Reason}}); err != nil {
			return nil, err
		}
	}
	if len(out) > MaxLinesPerBeneficiary {
		return nil, fmt.Errorf("owed %s: %d lines in one run, at most %d", owed.CitizenID, len(out), MaxLinesPerBeneficiary)
	}
	slices.SortFunc(out, func(a, b OwedLine) int { return compareStrings(a.Key.Stream(), b.Key.Stream()) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// PlanInput is everything the calculation knows about one beneficiary.
type PlanInput struct {
	RunID string
	Scope Scope
	Owed  Owed
	// Lines are the candidates (see Candidates).
	Lines       []OwedLine
	Adjustments Adjustments
	// Obligations holds the loaded state of every candidate's payment stream,
	// by stream name; a stream that has no events may be absent.
	Obligations map[string]Obligation
	// RunCancelled reports whether another run was cancelled: its leftover
	// claims and reservations are void.
	RunCancelled func(runID string) bool
}

// PlannedLine is one obligation attempt a run pays, with its payment.
type PlannedLine struct {
	PaymentID string
	Payee     Payee
	Line      RunLine
}

// Claim is what to append to one payment stream, at the revision loaded.
type Claim struct {
	Stream string
	Events []domain.Event // PaymentIssued, preceded by PaymentCancelled when it supersedes a void claim
	PlannedLine
	// Offsets of this attempt that were reserved by this plan; if the claim
	// loses its race they are released.
	Offsets []Offset
}

// Skip is a candidate the run leaves alone, and why.
type Skip struct {
	Obligation ObligationKey `json:"obligation"`
	Reason     string        `json:"reason"` // paid, in_run, reversed
	RunID      string        `json:"run_id,omitempty"`
}

// Plan is the calculation's decision for one beneficiary.
type Plan struct {
	// Reserve goes to the adjustments stream first, at the revision loaded.
	Reserve []domain.Event
	// Claims go to payment streams, each at the revision loaded.
	Claims []Claim
	// Held are lines this run already claimed (a resumed or raced
	// calculation): they belong in the page without any write.
	Held    []PlannedLine
	Skipped []Skip
}

// PlanBeneficiary decides, for one beneficiary, which candidate obligations
// the run claims, to whom and how they are paid, and what recoveries keep
// back. It is deterministic: a resumed calculation, or a second replica
// calculating the same run, makes the same plan and so writes the same
// events with the same IDs.
func PlanBeneficiary(in PlanInput) (Plan, error) {
	var plan Plan
	cancelled := in.RunCancelled
	if cancelled == nil {
		cancelled = func(string) bool { return false }
	}
	payee := in.Owed.Payee
	if in.Scope.CashOnly || accountFailedBefore(in) {
		payee = payee.AsCash()
	}
	payee, err := payee.Validate()
	if err != nil {
		return plan, fmt.Errorf("payee of %s: %w", in.Owed.CitizenID, err)
	}
	outstanding := map[string]domain.Money{}
	for _, r := range in.Adjustments.Recoveries {
		if r.Mode == RecoverByOffset {
			outstanding[r.Correction] = r.Outstanding(cancelled)
		}
	}
	for _, l := range in.Lines {
		stream := l.Key.Stream()
		ob := in.Obligations[stream]
		ob.Key = l.Key
		last, tried := ob.Last()
		var superseded *PaymentCancelled
		switch {
		case tried && last.RunID == in.RunID && !last.Status.Reopens():
			plan.Held = append(plan.Held, PlannedLine{PaymentID: last.PaymentID, Payee: last.Payee,
				Line: RunLine{Obligation: l.Key, Attempt: last.Attempt, Gross: last.Gross, Net: last.Net}})
			continue
		case tried && last.Status == StatusIssued && cancelled(last.RunID):
			// Left behind by a run cancelled before it recorded this line
			// (a crash mid-page): withdraw it in the same append.
			superseded = &PaymentCancelled{AttemptRef: last.AttemptRef, Amounts: last.Amounts, Reason: "run " + last.RunID + " was cancelled"}
			ob = ob.Evolve(*superseded)
		case !ob.Owed():
			plan.Skipped = append(plan.Skipped, skipOf(l.Key, last))
			continue
		}
		attempt := len(ob.Attempts) + 1
		offsets, fresh := planOffsets(in, stream, attempt, l, outstanding)
		amounts := Amounts{Gross: l.Amount, Offsets: offsets, Net: l.Amount}
		amounts.Net = l.Amount.Sub(amounts.OffsetTotal())
		p := payee
		if amounts.Net.IsZero() {
			p.Method, p.BankCode, p.AccountNumber = MethodOffset, "", ""
		}
		ref := AttemptRef{Obligation: l.Key, Attempt: attempt, RunID: in.RunID, PaymentID: PaymentID(in.RunID, p)}
		issued, err := ob.Issue(ref, p, amounts, l.Trace)
		if err != nil {
			return plan, err
		}
		c := Claim{Stream: stream, PlannedLine: PlannedLine{PaymentID: ref.PaymentID, Payee: p,
			Line: RunLine{Obligation: l.Key, Attempt: attempt, Gross: amounts.Gross, Net: amounts.Net}}, Offsets: fresh}
		if superseded != nil {
			c.Events = append(c.Events, *superseded)
		}
		c.Events = append(c.Events, issued)
		plan.Claims = append(plan.Claims, c)
		for _, o := range fresh {
			plan.Reserve = append(plan.Reserve, RecoveryOffsetReserved{CitizenID: in.Owed.CitizenID, Correction: o.Correction,
				RunID: in.RunID, Obligation: stream, Attempt: attempt, Amount: o.Amount})
		}
	}
	return plan, nil
}

// planOffsets returns the offsets of one new attempt: the reservations this
// run already made for it (a resumed calculation), else fresh ones taken
// from the outstanding recoveries of the same program, oldest correction ID
// first. fresh are the ones to reserve now.
func planOffsets(in PlanInput, stream string, attempt int, l OwedLine, outstanding map[string]domain.Money) (all, fresh []Offset) {
	recs := slices.Clone(in.Adjustments.Recoveries)
	slices.SortFunc(recs, func(a, b Recovery) int { return compareStrings(a.Correction, b.Correction) })
	for _, r := range recs {
		if x, ok := r.reservation(in.RunID, stream, attempt); ok {
			all = append(all, Offset{Correction: r.Correction, Amount: x.Amount})
		}
	}
	if len(all) > 0 {
		return all, nil
	}
	left := l.Amount
	for _, r := range recs {
		if r.Mode != RecoverByOffset || r.Program != l.Key.Program || !left.IsPositive() {
			continue
		}
		o := outstanding[r.Correction]
		if !o.IsPositive() {
			continue
		}
		take := o
		if take.Cmp(left) > 0 {
			take = left
		}
		outstanding[r.Correction] = o.Sub(take)
		left = left.Sub(take)
		fresh = append(fresh, Offset{Correction: r.Correction, Amount: take})
	}
	return fresh, fresh
}

// accountFailedBefore reports whether an earlier bank attempt of one of the
// candidates failed (or came back) because of the account the payee still
// has: reissuing to it would fail again, so the run pays cash instead.
func accountFailedBefore(in PlanInput) bool {
	p := in.Owed.Payee
	if p.Method != MethodBank {
		return false
	}
	for _, l := range in.Lines {
		for _, a := range in.Obligations[l.Key.Stream()].Attempts {
			if (a.Status == StatusFailed || a.Status == StatusReturned) && a.Failure.AccountProblem() &&
				a.Payee.Method == MethodBank && a.Payee.BankCode == p.BankCode && a.Payee.AccountNumber == p.AccountNumber {
				return true
			}
		}
	}
	return false
}

func skipOf(k ObligationKey, last Attempt) Skip {
	switch last.Status {
	case StatusSettled:
		return Skip{Obligation: k, Reason: "paid", RunID: last.RunID}
	case StatusReversed:
		return Skip{Obligation: k, Reason: "reversed", RunID: last.RunID}
	}
	return Skip{Obligation: k, Reason: "in_run", RunID: last.RunID}
}

// GroupPayments groups planned lines by payment, in order of first
// appearance, which is the order of the page event.
func GroupPayments(lines []PlannedLine) []RunPayment {
	var out []RunPayment
	index := map[string]int{}
	for _, l := range lines {
		i, ok := index[l.PaymentID]
		if !ok {
			i = len(out)
			index[l.PaymentID] = i
			out = append(out, RunPayment{PaymentID: l.PaymentID, Payee: l.Payee})
		}
		out[i].Lines = append(out[i].Lines, l.Line)
	}
	return out
}
