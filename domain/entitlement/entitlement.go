package entitlement

import (
	"fmt"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

// Entitlement is one beneficiary's right to one program's amount from a
// start period, maybe to an end period. Its history is kept, not edited: the
// terms in force change by adjustment from a period, suspensions are spans.
type Entitlement struct {
	ID      string // "E1", "E2", ... in grant order within the beneficiary
	Program string
	Kind    Kind // copied from the program at grant; programs never change
	Start   domain.Period
	// End is the last period owed; zero means open-ended. An End before
	// Start means the entitlement was cancelled before anything was owed.
	End         domain.Period
	EndCause    EndCause
	Terms       []Terms      // sorted by From; Terms[0].From == Start
	Suspensions []Suspension // sorted, not overlapping; only the last may be open
}

// Terms are what an entitlement pays from a period on: a coefficient of the
// program's base level, or a fixed amount.
type Terms struct {
	From        domain.Period    `json:"from"`
	Coefficient *decimal.Decimal `json:"coefficient,omitempty"`
	Amount      *domain.Money    `json:"amount,omitempty"`
}

// Suspension is a span of periods not owed: From up to, not including,
// Until. A zero Until means still suspended.
type Suspension struct {
	From   domain.Period
	Until  domain.Period
	Reason string
}

// EndCause says why an entitlement ended.
type EndCause string

const (
	EndedByDecision EndCause = "decision"   // a registrar ended it
	EndedByDeath    EndCause = "death"      // the beneficiary died
	EndedByMove     EndCause = "moved_away" // the beneficiary moved out of the city
)

// Ended reports whether e has an end period.
func (e Entitlement) Ended() bool { return !e.End.IsZero() }

// Covers reports whether p is within Start..End (ignoring suspensions).
func (e Entitlement) Covers(p domain.Period) bool {
	return !p.Before(e.Start) && (e.End.IsZero() || !p.After(e.End))
}

// Cancelled reports whether e ended before it started.
func (e Entitlement) Cancelled() bool { return !e.End.IsZero() && e.End.Before(e.Start) }

// SuspendedIn reports whether p falls in a suspension.
func (e Entitlement) SuspendedIn(p domain.Period) bool {
	for _, s := range e.Suspensions {
		if !p.Before(s.From) && (s.Until.IsZero() || p.Before(s.Until)) {
			return true
		}
	}
	return false
}

// OpenSuspension returns the suspension not yet resumed, if any.
func (e Entitlement) OpenSuspension() (Suspension, bool) {
	if n := len(e.Suspensions); n > 0 && e.Suspensions[n-1].Until.IsZero() {
		return e.Suspensions[n-1], true
	}
	return Suspension{}, false
}

// TermsAt returns the terms in force in period p (p must not be before Start).
func (e Entitlement) TermsAt(p domain.Period) Terms {
	t := e.Terms[0]
	for _, x := range e.Terms[1:] {
		if x.From.After(p) {
			break
		}
		t = x
	}
	return t
}

// DuePeriod is the period a once-owed entitlement (one-time or gift) is
// owed in: the first period from Start that is not suspended, within End.
// ok is false while it is suspended without end, or if it was cancelled.
func (e Entitlement) DuePeriod() (p domain.Period, ok bool) {
	p = e.Start
	for _, s := range e.Suspensions {
		if p.Before(s.From) {
			break
		}
		if s.Until.IsZero() {
			return domain.Period{}, false
		}
		if p.Before(s.Until) {
			p = s.Until
		}
	}
	return p, e.Covers(p)
}

// Book is a beneficiary's entitlements, in grant order. It lives in the
// beneficiary's stream, so that "no two active entitlements of one program"
// and "nothing after death" are checked in one consistency boundary.
type Book struct {
	Entitlements []Entitlement
}

// Find returns the entitlement with the given ID.
func (b Book) Find(id string) (Entitlement, bool) {
	i := b.index(id)
	if i < 0 {
		return Entitlement{}, false
	}
	return b.Entitlements[i], true
}

func (b Book) index(id string) int {
	return slices.IndexFunc(b.Entitlements, func(e Entitlement) bool { return e.ID == id })
}

// nextID is the ID the next grant gets.
func (b Book) nextID() string { return fmt.Sprintf("E%d", len(b.Entitlements)+1) }

// Entitlement events. They live in the beneficiary's stream
// ("beneficiary-<citizen ID>") and carry the citizen ID so that a projection
// needs nothing but the event.
type (
	// EntitlementGranted: a beneficiary is entitled to a program from Start
	// (to End when set). Exactly one of Coefficient and Amount is set.
	EntitlementGranted struct {
		CitizenID     string           `json:"citizen_id"`
		EntitlementID string           `json:"entitlement_id"`
		Program       string           `json:"program"`
		Kind          Kind             `json:"kind"`
		Start         domain.Period    `json:"start_period"`
		End           domain.Period    `json:"end_period,omitzero"`
		Coefficient   *decimal.Decimal `json:"coefficient,omitempty"`
		Amount        *domain.Money    `json:"amount,omitempty"`
		Note          string           `json:"note,omitempty"`
	}
	// EntitlementAdjusted: new terms from a period on; terms from that
	// period or later are replaced.
	EntitlementAdjusted struct {
		CitizenID     string           `json:"citizen_id"`
		EntitlementID string           `json:"entitlement_id"`
		From          domain.Period    `json:"from_period"`
		Coefficient   *decimal.Decimal `json:"coefficient,omitempty"`
		Amount        *domain.Money    `json:"amount,omitempty"`
		Reason        string           `json:"reason"`
	}
	// EntitlementSuspended: nothing is owed from a period until resumed.
	EntitlementSuspended struct {
		CitizenID     string        `json:"citizen_id"`
		EntitlementID string        `json:"entitlement_id"`
		From          domain.Period `json:"from_period"`
		Reason        string        `json:"reason"`
	}
	// EntitlementResumed: owed again from a period (a period before today
	// makes the suspended months between owed again: arrears).
	EntitlementResumed struct {
		CitizenID     string        `json:"citizen_id"`
		EntitlementID string        `json:"entitlement_id"`
		From          domain.Period `json:"from_period"`
		Reason        string        `json:"reason"`
	}
	// EntitlementEnded: the last period owed is LastPeriod. A LastPeriod
	// before the start cancels the entitlement.
	EntitlementEnded struct {
		CitizenID     string        `json:"citizen_id"`
		EntitlementID string        `json:"entitlement_id"`
		LastPeriod    domain.Period `json:"last_period"`
		Cause         EndCause      `json:"cause"`
		Reason        string        `json:"reason"`
	}
)

func (EntitlementGranted) EventType() string   { return "EntitlementGranted.v1" }
func (EntitlementAdjusted) EventType() string  { return "EntitlementAdjusted.v1" }
func (EntitlementSuspended) EventType() string { return "EntitlementSuspended.v1" }
func (EntitlementResumed) EventType() string   { return "EntitlementResumed.v1" }
func (EntitlementEnded) EventType() string     { return "EntitlementEnded.v1" }

// RegisterEvents adds this package's events to a codec.
func RegisterEvents(c *domain.Codec) {
	domain.Register[ProgramDefined](c)
	domain.Register[BaseLevelDefined](c)
	domain.Register[BaseLevelRateSet](c)
	domain.Register[EntitlementGranted](c)
	domain.Register[EntitlementAdjusted](c)
	domain.Register[EntitlementSuspended](c)
	domain.Register[EntitlementResumed](c)
	domain.Register[EntitlementEnded](c)
}

// Evolve returns the book after e; other events leave it unchanged. It
// copies what it changes, so earlier states stay valid.
func (b Book) Evolve(e domain.Event) Book {
	switch e := e.(type) {
	case EntitlementGranted:
		b.Entitlements = append(slices.Clip(b.Entitlements), Entitlement{
			ID: e.EntitlementID, Program: e.Program, Kind: e.Kind, Start: e.Start, End: e.End,
			Terms: []Terms{{From: e.Start, Coefficient: e.Coefficient, Amount: e.Amount}},
		})
	case EntitlementAdjusted:
		b = b.update(e.EntitlementID, func(x *Entitlement) {
			kept := slices.DeleteFunc(slices.Clone(x.Terms), func(t Terms) bool { return !t.From.Before(e.From) })
			x.Terms = append(kept, Terms{From: e.From, Coefficient: e.Coefficient, Amount: e.Amount})
		})
	case EntitlementSuspended:
		b = b.update(e.EntitlementID, func(x *Entitlement) {
			x.Suspensions = append(slices.Clone(x.Suspensions), Suspension{From: e.From, Reason: e.Reason})
		})
	case EntitlementResumed:
		b = b.update(e.EntitlementID, func(x *Entitlement) {
			x.Suspensions = slices.Clone(x.Suspensions)
			if n := len(x.Suspensions); n > 0 {
				x.Suspensions[n-1].Until = e.From
			}
		})
	case EntitlementEnded:
		b = b.update(e.EntitlementID, func(x *Entitlement) {
			x.End, x.EndCause = e.LastPeriod, e.Cause
		})
	}
	return b
}

func (b Book) update(id string, f func(*Entitlement)) Book {
	i := b.index(id)
	if i < 0 {
		return b // decide never emits this; tolerate a hand-written stream
	}
	b.Entitlements = slices.Clone(b.Entitlements)
	f(&b.Entitlements[i])
	return b
}
