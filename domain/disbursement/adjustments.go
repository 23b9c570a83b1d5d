package disbursement

import (
	"slices"

	"github.com/ansinh/ansinh/domain"
)

// RecoveryMode says how an overpayment is recovered.
type RecoveryMode string

const (
	// RecoverByOffset keeps the amount back from the beneficiary's next
	// payments of the same program until it is recovered.
	RecoverByOffset RecoveryMode = "offset"
	// RecoverAsReceivable records it as owed by the beneficiary, to be
	// collected outside the payout runs.
	RecoverAsReceivable RecoveryMode = "receivable"
)

// Events of a beneficiary's adjustments stream (adjustments-<citizenID>):
// what approved corrections added to or took from what the entitlement rules
// say. A calculation reads this one stream per beneficiary.
type (
	// TopUpGranted: an underpayment is owed as its own obligation
	// (ObligationKey.TopUp = the correction ID), paid by the next run that
	// covers its program.
	TopUpGranted struct {
		CitizenID  string        `json:"citizen_id"`
		Correction string        `json:"correction_id"`
		Obligation ObligationKey `json:"obligation"`
		Amount     domain.Money  `json:"amount"`
		Reason     string        `json:"reason"`
	}
	// RecoveryRaised: the beneficiary owes Amount back (an overpayment, or a
	// reversed payment). It moves the amount from program expense to the
	// beneficiary's receivable.
	RecoveryRaised struct {
		CitizenID  string         `json:"citizen_id"`
		Correction string         `json:"correction_id"`
		Kind       CorrectionKind `json:"kind"` // recovery or reversal
		Program    string         `json:"program"`
		Amount     domain.Money   `json:"amount"`
		Mode       RecoveryMode   `json:"mode"`
	}
	// RecoveryOffsetReserved: a run will keep Amount of one obligation
	// attempt back for a recovery. Written before the attempt is issued, with
	// the expected revision of this stream, so that two runs cannot spend the
	// same recovery twice. The money moves in PaymentIssued.
	RecoveryOffsetReserved struct {
		CitizenID  string       `json:"citizen_id"`
		Correction string       `json:"correction_id"`
		RunID      string       `json:"run_id"`
		Obligation string       `json:"obligation"` // stream
		Attempt    int          `json:"attempt"`
		Amount     domain.Money `json:"amount"`
	}
	// RecoveryOffsetReleased: the reserved amount is due again, because the
	// attempt was never issued (another run claimed the obligation), or
	// failed, or came back.
	RecoveryOffsetReleased struct {
		CitizenID  string       `json:"citizen_id"`
		Correction string       `json:"correction_id"`
		RunID      string       `json:"run_id"`
		Obligation string       `json:"obligation"`
		Attempt    int          `json:"attempt"`
		Amount     domain.Money `json:"amount"`
		Why        string       `json:"why"`
	}
)

func (TopUpGranted) EventType() string           { return "TopUpGranted.v1" }
func (RecoveryRaised) EventType() string         { return "RecoveryRaised.v1" }
func (RecoveryOffsetReserved) EventType() string { return "RecoveryOffsetReserved.v1" }
func (RecoveryOffsetReleased) EventType() string { return "RecoveryOffsetReleased.v1" }

// TopUp is an approved top-up.
type TopUp struct {
	Correction string
	Obligation ObligationKey
	Amount     domain.Money
	Reason     string
}

// Reservation is an amount of a recovery a run keeps back from one attempt.
type Reservation struct {
	RunID      string
	Obligation string
	Attempt    int
	Amount     domain.Money
	Released   bool
}

// Recovery is an approved recovery and what was kept back for it.
type Recovery struct {
	Correction   string
	Program      string
	Amount       domain.Money
	Mode         RecoveryMode
	Reservations []Reservation
}

// Outstanding is what is still to be kept back: the amount less the live
// reservations. A reservation of a cancelled run is void: cancelling a run
// withdraws its attempts, and with them what they kept back, so nobody needs
// to write a release for it (which makes cancelling after a crash safe).
func (r Recovery) Outstanding(cancelled func(runID string) bool) domain.Money {
	out := r.Amount
	for _, x := range r.Reservations {
		if !x.Released && !cancelled(x.RunID) {
			out = out.Sub(x.Amount)
		}
	}
	return out
}

// Adjustments is the state of an adjustments stream.
type Adjustments struct {
	CitizenID  string
	TopUps     []TopUp
	Recoveries []Recovery
}

// Evolve returns the adjustments after e, copying what it changes.
func (a Adjustments) Evolve(e domain.Event) Adjustments {
	find := func(corr string) int {
		return slices.IndexFunc(a.Recoveries, func(r Recovery) bool { return r.Correction == corr })
	}
	switch e := e.(type) {
	case TopUpGranted:
		a.CitizenID = e.CitizenID
		a.TopUps = append(slices.Clip(a.TopUps), TopUp{Correction: e.Correction, Obligation: e.Obligation, Amount: e.Amount, Reason: e.Reason})
	case RecoveryRaised:
		a.CitizenID = e.CitizenID
		a.Recoveries = append(slices.Clip(a.Recoveries), Recovery{Correction: e.Correction, Program: e.Program, Amount: e.Amount, Mode: e.Mode})
	case RecoveryOffsetReserved:
		if i := find(e.Correction); i >= 0 {
			a.Recoveries = slices.Clone(a.Recoveries)
			r := &a.Recoveries[i]
			r.Reservations = append(slices.Clip(r.Reservations), Reservation{RunID: e.RunID, Obligation: e.Obligation, Attempt: e.Attempt, Amount: e.Amount})
		}
	case RecoveryOffsetReleased:
		if i := find(e.Correction); i >= 0 {
			a.Recoveries = slices.Clone(a.Recoveries)
			r := &a.Recoveries[i]
			r.Reservations = slices.Clone(r.Reservations)
			for j := range r.Reservations {
				x := &r.Reservations[j]
				if x.RunID == e.RunID && x.Obligation == e.Obligation && x.Attempt == e.Attempt && !x.Released {
					x.Released = true
					break
				}
			}
		}
	}
	return a
}

// reservation finds the live reservation of a recovery for one attempt.
func (r Recovery) reservation(runID, obligation string, attempt int) (Reservation, bool) {
	for _, x := range r.Reservations {
		if x.RunID == runID && x.Obligation == obligation && x.Attempt == attempt && !x.Released {
			return x, true
		}
	}
	return Reservation{}, false
}

// ReleaseOffsets returns the events that make the offsets of an undone
// attempt (failed or returned) due again. Offsets of cancelled attempts need
// none (see Outstanding).
func (a Adjustments) ReleaseOffsets(ref AttemptRef, offsets []Offset, why string) []domain.Event {
	var out []domain.Event
	for _, o := range offsets {
		i := slices.IndexFunc(a.Recoveries, func(r Recovery) bool { return r.Correction == o.Correction })
		if i < 0 {
			continue
		}
		if _, live := a.Recoveries[i].reservation(ref.RunID, ref.Obligation.Stream(), ref.Attempt); !live {
			continue
		}
		out = append(out, RecoveryOffsetReleased{CitizenID: ref.Obligation.CitizenID, Correction: o.Correction, RunID: ref.RunID,
			Obligation: ref.Obligation.Stream(), Attempt: ref.Attempt, Amount: o.Amount, Why: why})
	}
	return out
}
