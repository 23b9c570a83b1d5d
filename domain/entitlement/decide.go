package entitlement

import (
	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

// Holder is what the entitlement rules need to know about the beneficiary
// whose book it is. The registry derives it from the beneficiary's state.
type Holder struct {
	CitizenID string
	// LastPeriod is the last period anything may be owed: the period of death
	// or of moving away. Zero while the beneficiary is on the registry.
	LastPeriod domain.Period
	ExitCause  EndCause
}

// Env is what deciding an entitlement command reads besides the book: the
// catalogue (programs, base levels) and the configured limits.
type Env struct {
	Catalogue Catalogue
	Limits    Limits
}

// Command is a command decided against a beneficiary's entitlement book.
type Command interface {
	decide(b Book, h Holder, env Env) ([]domain.Event, error)
}

// Decide decides cmd against book b of holder h. It returns the events to
// append, or a *domain.RuleError saying why not.
func Decide(b Book, h Holder, env Env, cmd Command) ([]domain.Event, error) {
	return cmd.decide(b, h, env)
}

// Entitlement commands.
type (
	// Grant entitles the beneficiary to a program from Start (to End, if
	// set). Coefficient is for base-level programs; Amount for fixed ones (it
	// may be omitted when the program has a default amount). A Start before
	// today is a retroactive grant: the months since are owed as arrears.
	Grant struct {
		Program     string
		Start       domain.Period
		End         domain.Period
		Coefficient *decimal.Decimal
		Amount      *domain.Money
		Note        string
	}
	// Adjust sets new terms (coefficient or amount) from a period on.
	Adjust struct {
		EntitlementID string
		From          domain.Period
		Coefficient   *decimal.Decimal
		Amount        *domain.Money
		Reason        string
	}
	// Suspend stops an entitlement being owed from a period until resumed.
	Suspend struct {
		EntitlementID string
		From          domain.Period
		Reason        string
	}
	// Resume makes a suspended entitlement owed again from a period.
	Resume struct {
		EntitlementID string
		From          domain.Period
		Reason        string
	}
	// End sets the last period owed. A LastPeriod one before the start
	// cancels an entitlement granted in error.
	End struct {
		EntitlementID string
		LastPeriod    domain.Period
		Reason        string
	}
)

func (cmd Grant) decide(b Book, h Holder, env Env) ([]domain.Event, error) {
	prog, ok := env.Catalogue.Programs[cmd.Program]
	if !ok {
		if err := ValidateCode("program", cmd.Program); err != nil {
			return nil, err
		}
		return nil, domain.Rejectf(domain.NotFound, "program_not_found", "program", "program %s does not exist in the catalogue", cmd.Program)
	}
	if cmd.Start.IsZero() {
		return nil, domain.Reject("required", "start_period", "is required: the first period (YYYY-MM) owed")
	}
	note, err := domain.CleanText("note", cmd.Note, 0, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	end := cmd.End
	if !end.IsZero() {
		if prog.Kind.Once() {
			return nil, domain.Reject("end_not_allowed", "end_period", "a %s program is owed once; it has no end period", prog.Kind)
		}
		if end.Before(cmd.Start) {
			return nil, domain.Reject("end_before_start", "end_period", "%s is before the start period %s", end, cmd.Start)
		}
	}
	if !h.LastPeriod.IsZero() {
		if cmd.Start.After(h.LastPeriod) {
			return nil, domain.Rejectf(domain.Conflict, "beneficiary_exited", "start_period",
				"the beneficiary %s in %s; nothing can be owed from %s", exitWords(h.ExitCause), h.LastPeriod, cmd.Start)
		}
		// Nothing is owed after death or moving away: an open or later end
		// is cut to the last period, so the grant can still pay arrears.
		if end.IsZero() || end.After(h.LastPeriod) {
			end = h.LastPeriod
		}
	}
	terms, err := resolveTerms(prog, env, cmd.Start, end, cmd.Coefficient, cmd.Amount)
	if err != nil {
		return nil, err
	}
	if len(b.Entitlements) >= MaxEntitlements {
		return nil, domain.Rejectf(domain.Conflict, "too_many_entitlements", "", "the beneficiary already has %d entitlements, the most one record holds", MaxEntitlements)
	}
	for _, x := range b.Entitlements {
		if x.Program != prog.Code || x.Cancelled() {
			continue
		}
		switch prog.Kind {
		case OneTime:
			return nil, domain.Rejectf(domain.Conflict, "already_granted", "program",
				"%s is a one-time allowance and was already granted (%s, from %s); it is owed once", prog.Code, x.ID, x.Start)
		case Gift:
			if x.Start.Year != cmd.Start.Year {
				continue
			}
			cur := x.TermsAt(x.Start)
			if terms.Amount.Cmp(*cur.Amount) > 0 {
				// One gift per person: when eligible for two tiers, the
				// higher one is owed, so a higher grant raises the first.
				return []domain.Event{EntitlementAdjusted{
					CitizenID: h.CitizenID, EntitlementID: x.ID, From: x.Start, Amount: terms.Amount,
					Reason: "eligible for the higher tier " + terms.Amount.String() + "; one gift per person",
				}}, nil
			}
			return nil, domain.Rejectf(domain.Conflict, "already_granted", "program",
				"the beneficiary already receives %s of %s for %d (%s); one gift per person, the higher tier", cur.Amount, prog.Code, x.Start.Year, x.ID)
		default:
			if overlaps(x.Start, x.End, cmd.Start, end) {
				return nil, domain.Rejectf(domain.Conflict, "overlapping_entitlement", "start_period",
					"the beneficiary already has %s of %s from %s%s; end or adjust it instead of granting it twice",
					x.ID, prog.Code, x.Start, untilWords(x.End))
			}
		}
	}
	return []domain.Event{EntitlementGranted{
		CitizenID: h.CitizenID, EntitlementID: b.nextID(), Program: prog.Code, Kind: prog.Kind,
		Start: cmd.Start, End: end, Coefficient: terms.Coefficient, Amount: terms.Amount, Note: note,
	}}, nil
}

func (cmd Adjust) decide(b Book, h Holder, env Env) ([]domain.Event, error) {
	x, err := findLive(b, cmd.EntitlementID)
	if err != nil {
		return nil, err
	}
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	if err := withinEntitlement(x, "from_period", cmd.From); err != nil {
		return nil, err
	}
	if x.Kind.Once() && cmd.From != x.Start {
		return nil, domain.Reject("invalid_period", "from_period", "a %s entitlement is owed once; adjust it from its start period %s", x.Kind, x.Start)
	}
	prog, ok := env.Catalogue.Programs[x.Program]
	if !ok {
		return nil, domain.Rejectf(domain.Conflict, "program_not_found", "", "program %s of %s is missing from the catalogue", x.Program, x.ID)
	}
	terms, err := resolveTerms(prog, env, cmd.From, x.End, cmd.Coefficient, cmd.Amount)
	if err != nil {
		return nil, err
	}
	if last := x.Terms[len(x.Terms)-1]; !last.From.After(cmd.From) && sameTerms(last, terms) {
		return nil, domain.Rejectf(domain.Conflict, "no_change", "", "%s already pays these terms from %s", x.ID, cmd.From)
	}
	return []domain.Event{EntitlementAdjusted{
		CitizenID: h.CitizenID, EntitlementID: x.ID, From: cmd.From,
		Coefficient: terms.Coefficient, Amount: terms.Amount, Reason: reason,
	}}, nil
}

func (cmd Suspend) decide(b Book, h Holder, _ Env) ([]domain.Event, error) {
	x, err := findLive(b, cmd.EntitlementID)
	if err != nil {
		return nil, err
	}
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	if err := withinEntitlement(x, "from_period", cmd.From); err != nil {
		return nil, err
	}
	if s, open := x.OpenSuspension(); open {
		return nil, domain.Rejectf(domain.Conflict, "already_suspended", "", "%s is already suspended from %s (%s)", x.ID, s.From, s.Reason)
	}
	if n := len(x.Suspensions); n > 0 && cmd.From.Before(x.Suspensions[n-1].Until) {
		return nil, domain.Rejectf(domain.Conflict, "overlapping_suspension", "from_period",
			"%s was suspended until %s; a new suspension can start from %s", x.ID, x.Suspensions[n-1].Until, x.Suspensions[n-1].Until)
	}
	return []domain.Event{EntitlementSuspended{CitizenID: h.CitizenID, EntitlementID: x.ID, From: cmd.From, Reason: reason}}, nil
}

func (cmd Resume) decide(b Book, h Holder, _ Env) ([]domain.Event, error) {
	x, err := findLive(b, cmd.EntitlementID)
	if err != nil {
		return nil, err
	}
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	s, open := x.OpenSuspension()
	if !open {
		return nil, domain.Rejectf(domain.Conflict, "not_suspended", "", "%s is not suspended", x.ID)
	}
	if cmd.From.IsZero() {
		return nil, domain.Reject("required", "from_period", "is required: the first period (YYYY-MM) owed again")
	}
	if cmd.From.Before(s.From) {
		return nil, domain.Reject("invalid_period", "from_period", "%s is before the suspension began (%s)", cmd.From, s.From)
	}
	if x.Ended() && cmd.From.After(x.End) {
		return nil, domain.Rejectf(domain.Conflict, "entitlement_ended", "from_period", "%s ended in %s; nothing to resume from %s", x.ID, x.End, cmd.From)
	}
	return []domain.Event{EntitlementResumed{CitizenID: h.CitizenID, EntitlementID: x.ID, From: cmd.From, Reason: reason}}, nil
}

func (cmd End) decide(b Book, h Holder, _ Env) ([]domain.Event, error) {
	x, err := findLive(b, cmd.EntitlementID)
	if err != nil {
		return nil, err
	}
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	if cmd.LastPeriod.IsZero() {
		return nil, domain.Reject("required", "last_period", "is required: the last period (YYYY-MM) owed")
	}
	if cmd.LastPeriod.Before(x.Start.AddMonths(-1)) {
		return nil, domain.Reject("invalid_period", "last_period",
			"%s is before the start %s; to cancel the entitlement, end it in %s", cmd.LastPeriod, x.Start, x.Start.AddMonths(-1))
	}
	if x.Ended() && !cmd.LastPeriod.Before(x.End) {
		return nil, domain.Rejectf(domain.Conflict, "already_ended", "last_period",
			"%s already ends in %s; to pay beyond it, grant the program again", x.ID, x.End)
	}
	return []domain.Event{EntitlementEnded{CitizenID: h.CitizenID, EntitlementID: x.ID, LastPeriod: cmd.LastPeriod, Cause: EndedByDecision, Reason: reason}}, nil
}

// EndForExit returns the events that end every entitlement still owed
// after last, because the beneficiary died or moved away in that period.
// The registry emits them with the death or move, so that the book itself
// says nothing is owed after it.
func EndForExit(b Book, citizenID string, last domain.Period, cause EndCause) []domain.Event {
	var out []domain.Event
	for _, x := range b.Entitlements {
		if x.Cancelled() || x.Ended() && !x.End.After(last) {
			continue
		}
		out = append(out, EntitlementEnded{
			CitizenID: citizenID, EntitlementID: x.ID, LastPeriod: last, Cause: cause,
			Reason: "the beneficiary " + exitWords(cause) + " in " + last.String(),
		})
	}
	return out
}

// findLive finds an entitlement that can still be changed: it exists and
// was not cancelled.
func findLive(b Book, id string) (Entitlement, error) {
	x, ok := b.Find(id)
	if !ok {
		return Entitlement{}, domain.Rejectf(domain.NotFound, "entitlement_not_found", "entitlement_id", "the beneficiary has no entitlement %q", clip(id))
	}
	if x.Cancelled() {
		return Entitlement{}, domain.Rejectf(domain.Conflict, "entitlement_cancelled", "entitlement_id", "%s was cancelled; grant the program again instead", x.ID)
	}
	return x, nil
}

// withinEntitlement checks that period p is within x's start and end.
func withinEntitlement(x Entitlement, field string, p domain.Period) error {
	if p.IsZero() {
		return domain.Reject("required", field, "is required (YYYY-MM)")
	}
	if p.Before(x.Start) {
		return domain.Reject("invalid_period", field, "%s is before %s starts (%s)", p, x.ID, x.Start)
	}
	if x.Ended() && p.After(x.End) {
		return domain.Rejectf(domain.Conflict, "entitlement_ended", field, "%s ended in %s (%s)", x.ID, x.End, x.EndCause)
	}
	return nil
}

// resolveTerms checks a coefficient or amount against the program's rule and
// the cap, for every rate the terms would meet from..end, and returns the
// terms to record (a fixed program's default amount filled in).
func resolveTerms(prog Program, env Env, from, end domain.Period, coef *decimal.Decimal, amount *domain.Money) (Terms, error) {
	lim := env.Limits
	switch prog.Rule.Kind {
	case BaseTimesCoefficient:
		if amount != nil {
			return Terms{}, domain.Reject("amount_not_allowed", "amount", "%s pays the base level times a coefficient; give a coefficient, not an amount", prog.Code)
		}
		if coef == nil {
			return Terms{}, domain.Reject("required", "coefficient", "is required: %s pays the base level times a coefficient (e.g. 1.5)", prog.Code)
		}
		if err := checkCoefficient("coefficient", *coef); err != nil {
			return Terms{}, err
		}
		base := env.Catalogue.BaseLevels[prog.Rule.BaseLevel]
		if _, ok := base.RateAt(from); !ok {
			return Terms{}, domain.Reject("no_rate", "start_period",
				"base level %s has no rate in force in %s%s", base.Code, from, firstRateWords(base))
		}
		for _, r := range ratesMet(base, from, end) {
			m := domain.RoundToDong(r.Amount.Amount.Mul(*coef))
			if m.Cmp(lim.AmountCap) > 0 {
				return Terms{}, domain.Reject("amount_above_cap", "coefficient",
					"%s x %s = %s is above the cap of %s for one amount; check for a typo", r.Amount, coef, m, lim.AmountCap)
			}
			if !m.IsPositive() {
				return Terms{}, domain.Reject("invalid_coefficient", "coefficient", "%s x %s rounds to nothing", r.Amount, coef)
			}
		}
		c := *coef
		return Terms{From: from, Coefficient: &c}, nil
	case Fixed:
		if coef != nil {
			return Terms{}, domain.Reject("coefficient_not_allowed", "coefficient", "%s pays a fixed amount; give an amount, not a coefficient", prog.Code)
		}
		if amount == nil {
			if prog.Rule.Amount == nil {
				return Terms{}, domain.Reject("required", "amount", "is required: %s has no default amount%s", prog.Code, tierWords(prog.Rule))
			}
			amount = prog.Rule.Amount
		}
		if err := checkAmount("amount", *amount, lim); err != nil {
			return Terms{}, err
		}
		if len(prog.Rule.Tiers) > 0 && !prog.Rule.hasTier(*amount) {
			return Terms{}, domain.Reject("not_a_tier", "amount", "%s is not a tier of %s%s", *amount, prog.Code, tierWords(prog.Rule))
		}
		m := *amount
		return Terms{From: from, Amount: &m}, nil
	}
	return Terms{}, domain.Rejectf(domain.Conflict, "invalid_rule", "", "program %s has an unknown rule %q", prog.Code, prog.Rule.Kind)
}

// ratesMet returns the rates in force somewhere in from..end (end zero:
// open, so every later rate).
func ratesMet(b BaseLevel, from, end domain.Period) []Rate {
	var out []Rate
	if r, ok := b.RateAt(from); ok {
		out = append(out, r)
	}
	for _, r := range b.Rates {
		if r.From.After(from) && (end.IsZero() || !r.From.After(end)) {
			out = append(out, r)
		}
	}
	return out
}

func sameTerms(a, b Terms) bool {
	switch {
	case a.Coefficient != nil && b.Coefficient != nil:
		return a.Coefficient.Equal(*b.Coefficient)
	case a.Amount != nil && b.Amount != nil:
		return a.Amount.Equal(*b.Amount)
	}
	return false
}

// overlaps reports whether two period ranges meet; a zero end is open.
func overlaps(s1, e1, s2, e2 domain.Period) bool {
	return (e1.IsZero() || !s2.After(e1)) && (e2.IsZero() || !s1.After(e2))
}

func exitWords(c EndCause) string {
	if c == EndedByMove {
		return "moved away"
	}
	return "died"
}

func untilWords(end domain.Period) string {
	if end.IsZero() {
		return " with no end"
	}
	return " to " + end.String()
}

func firstRateWords(b BaseLevel) string {
	if len(b.Rates) == 0 {
		return "; it has no rates yet"
	}
	return "; its first rate applies from " + b.Rates[0].From.String()
}

func tierWords(r AmountRule) string {
	if len(r.Tiers) == 0 {
		return ""
	}
	s := "; the tiers are"
	for i, t := range r.Tiers {
		if i > 0 {
			s += ","
		}
		s += " " + t.String()
	}
	return s
}
