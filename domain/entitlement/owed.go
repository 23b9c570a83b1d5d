package entitlement

import (
	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

// Line is one amount owed: one entitlement, one period, with the trace of
// the rule and rate that produced it, so an auditor can see which decree
// applied to which month.
type Line struct {
	CitizenID     string        `json:"citizen_id"`
	EntitlementID string        `json:"entitlement_id"`
	Program       string        `json:"program"`
	Kind          Kind          `json:"kind"`
	Period        domain.Period `json:"period"`
	Amount        domain.Money  `json:"amount"`
	Trace         Trace         `json:"trace"`
}

// Trace says how a line's amount was computed.
type Trace struct {
	Rule RuleKind `json:"rule"`
	// TermsFrom is the period from which the applied terms (the grant or its
	// latest adjustment before the period) are in force.
	TermsFrom   domain.Period    `json:"terms_from"`
	Coefficient *decimal.Decimal `json:"coefficient,omitempty"`
	FixedAmount *domain.Money    `json:"fixed_amount,omitempty"`
	// For BaseTimesCoefficient: the base level, its rate in force in the
	// period, from when, and by which decree.
	BaseLevel     string        `json:"base_level,omitempty"`
	BaseAmount    *domain.Money `json:"base_amount,omitempty"`
	BaseFrom      domain.Period `json:"base_effective_from,omitzero"`
	BaseDecreeRef string        `json:"decree_ref,omitempty"`
}

// OwedIn returns what is owed to the holder of book b for period p: one line
// per entitlement owed in p, in grant order. Nothing is owed after the
// holder's last period, in a suspended period, outside an entitlement's
// start..end, or, for a one-time or gift entitlement, in any period but its
// due period. Every line is positive, whole dong and at most the cap; an
// amount that breaks this (a rate changed after the grant) is an error, not
// a silent payment.
func OwedIn(b Book, h Holder, cat Catalogue, p domain.Period, lim Limits) ([]Line, error) {
	var out []Line
	for _, x := range b.Entitlements {
		if !owedIn(x, h, p) {
			continue
		}
		line, err := lineFor(x, h, cat, p, lim)
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}
	return out, nil
}

// OwedThrough returns every line owed for every period up to and including
// through, ordered by period and then grant order. Its total is the sum of
// OwedIn over those periods; what was already paid is disbursement's
// business, not this function's.
func OwedThrough(b Book, h Holder, cat Catalogue, through domain.Period, lim Limits) ([]Line, error) {
	first := through.Next()
	for _, x := range b.Entitlements {
		if x.Start.Before(first) {
			first = x.Start
		}
	}
	if !first.After(through) {
		// Sized for a line a month per entitlement, the usual case (a
		// balance query runs this for every beneficiary asked about).
		months := (through.Year-first.Year)*12 + int(through.Month) - int(first.Month) + 1
		if n := months * len(b.Entitlements); n <= maxPresizedLines {
			return owedThrough(b, h, cat, first, through, lim, make([]Line, 0, n))
		}
	}
	return owedThrough(b, h, cat, first, through, lim, nil)
}

// maxPresizedLines bounds what OwedThrough allocates up front.
const maxPresizedLines = 4096

// owedThrough appends to out what OwedIn gives for each period from first
// through through. An entitlement whose terms and base rate are those of
// the period before owes the same amount with the same trace, so the
// line is copied rather than computed again: a monthly grant over years
// changes terms or rate a few times, and computing each month anew (a
// decimal multiplication, rounding and checks) was most of a balance
// query's time in this function.
func owedThrough(b Book, h Holder, cat Catalogue, first, through domain.Period, lim Limits, out []Line) ([]Line, error) {
	type memo struct {
		ok                  bool
		termsFrom, rateFrom domain.Period
		line                Line
	}
	memos := make([]memo, len(b.Entitlements))
	for p := first; !p.After(through); p = p.Next() {
		for i, x := range b.Entitlements {
			if !owedIn(x, h, p) {
				continue
			}
			m := &memos[i]
			termsFrom, rateFrom := x.TermsAt(p).From, rateFromAt(x, cat, p)
			if m.ok && m.termsFrom == termsFrom && m.rateFrom == rateFrom {
				line := m.line
				line.Period = p
				out = append(out, line)
				continue
			}
			line, err := lineFor(x, h, cat, p, lim)
			if err != nil {
				return nil, err
			}
			*m = memo{ok: true, termsFrom: termsFrom, rateFrom: rateFrom, line: line}
			out = append(out, line)
		}
	}
	return out, nil
}

// rateFromAt is when the base rate x's program applies in p came into
// force (zero for a program without a base level, or without a rate in p).
func rateFromAt(x Entitlement, cat Catalogue, p domain.Period) domain.Period {
	prog, ok := cat.Programs[x.Program]
	if !ok || prog.Rule.Kind != BaseTimesCoefficient {
		return domain.Period{}
	}
	rate, _ := cat.BaseLevels[prog.Rule.BaseLevel].RateAt(p)
	return rate.From
}

// Total adds up lines.
func Total(lines []Line) domain.Money {
	t := domain.ZeroVND()
	for _, l := range lines {
		t = t.Add(l.Amount)
	}
	return t
}

// owedIn reports whether x is owed in p.
func owedIn(x Entitlement, h Holder, p domain.Period) bool {
	if !x.Covers(p) || !h.LastPeriod.IsZero() && p.After(h.LastPeriod) {
		return false
	}
	switch x.Kind {
	case Monthly:
		return !x.SuspendedIn(p)
	case Annual:
		return p.Month == x.Start.Month && !x.SuspendedIn(p)
	case OneTime, Gift:
		due, ok := x.DuePeriod()
		return ok && due == p
	}
	return false
}

func lineFor(x Entitlement, h Holder, cat Catalogue, p domain.Period, lim Limits) (Line, error) {
	prog, ok := cat.Programs[x.Program]
	if !ok {
		return Line{}, notComputable(h, x, p, "program "+x.Program+" is missing from the catalogue")
	}
	terms := x.TermsAt(p)
	tr := Trace{Rule: prog.Rule.Kind, TermsFrom: terms.From}
	var amount domain.Money
	switch {
	case prog.Rule.Kind == BaseTimesCoefficient && terms.Coefficient != nil:
		base := cat.BaseLevels[prog.Rule.BaseLevel]
		rate, ok := base.RateAt(p)
		if !ok {
			return Line{}, notComputable(h, x, p, "base level "+prog.Rule.BaseLevel+" has no rate in force")
		}
		amount = domain.RoundToDong(rate.Amount.Amount.Mul(*terms.Coefficient))
		ra := rate.Amount
		tr.Coefficient, tr.BaseLevel, tr.BaseAmount, tr.BaseFrom, tr.BaseDecreeRef =
			terms.Coefficient, base.Code, &ra, rate.From, rate.DecreeRef
	case prog.Rule.Kind == Fixed && terms.Amount != nil:
		amount = *terms.Amount
		tr.FixedAmount = terms.Amount
	default:
		return Line{}, notComputable(h, x, p, "its terms do not fit the program's rule")
	}
	if !amount.IsPositive() || !amount.IsWhole() || amount.Cmp(lim.AmountCap) > 0 {
		return Line{}, notComputable(h, x, p, "the amount "+amount.String()+" is not between 1 dong and the cap of "+lim.AmountCap.String()+"; check the rates")
	}
	return Line{CitizenID: h.CitizenID, EntitlementID: x.ID, Program: x.Program, Kind: x.Kind, Period: p, Amount: amount, Trace: tr}, nil
}

func notComputable(h Holder, x Entitlement, p domain.Period, why string) error {
	return domain.Rejectf(domain.Conflict, "owed_not_computable", "",
		"cannot compute what %s owes %s for %s: %s", x.ID, h.CitizenID, p, why)
}
