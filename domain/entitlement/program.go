package entitlement

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

// Kind says how often a program's amount is owed.
type Kind string

const (
	// Monthly: owed for every period from the start to the end.
	Monthly Kind = "monthly"
	// OneTime: owed once in a lifetime (e.g. the one-time resistance allowance).
	OneTime Kind = "one_time"
	// Annual: owed once a year, in the start period's month.
	Annual Kind = "annual"
	// Gift: owed once, at most one per program per calendar year (the
	// President's Tet gift).
	Gift Kind = "gift"
)

// Valid reports whether k is one of the four kinds.
func (k Kind) Valid() bool {
	switch k {
	case Monthly, OneTime, Annual, Gift:
		return true
	}
	return false
}

// Once reports whether an entitlement of this kind is owed a single time.
func (k Kind) Once() bool { return k == OneTime || k == Gift }

// RuleKind says how a program computes an amount.
type RuleKind string

const (
	// Fixed: an amount in dong, set by the program (a default or a list of
	// tiers) or by each grant.
	Fixed RuleKind = "fixed"
	// BaseTimesCoefficient: a base level in force for the period, times the
	// coefficient of the beneficiary's grant, rounded to whole dong.
	BaseTimesCoefficient RuleKind = "base_times_coefficient"
)

// AmountRule is a program's amount rule. For Fixed, Amount is the default a
// grant may omit, and Tiers, when set, are the only amounts a grant may name
// (the Tet gift's 600,000 and 300,000). For BaseTimesCoefficient, BaseLevel is
// the code of the base-level schedule.
type AmountRule struct {
	Kind      RuleKind       `json:"kind"`
	Amount    *domain.Money  `json:"amount,omitempty"`
	Tiers     []domain.Money `json:"tiers,omitempty"`
	BaseLevel string         `json:"base_level,omitempty"`
}

// Program is a kind of benefit. Programs are data: defined by a
// ProgramDefined event, never by code, and never changed afterwards (a
// different rule is a different program; a rate change is a base-level
// event).
type Program struct {
	Code      string     `json:"code"`
	Name      string     `json:"name"`
	Kind      Kind       `json:"kind"`
	Rule      AmountRule `json:"rule"`
	Reference string     `json:"reference,omitempty"` // legal basis, e.g. a decree
}

// Limits are the configurable bounds of the entitlement rules.
type Limits struct {
	// AmountCap is the largest amount one owed line may have. It protects
	// against a typo in a coefficient or a rate; the largest real monthly
	// amount in DOMAIN.md is 8,367,000 VND.
	AmountCap domain.Money
}

// DefaultAmountCapDong is the default per-line cap: 50,000,000 VND.
const DefaultAmountCapDong = 50_000_000

// DefaultLimits returns the default limits.
func DefaultLimits() Limits { return Limits{AmountCap: domain.VNDAmount(DefaultAmountCapDong)} }

// Bounds on client-controlled values in this package.
const (
	MaxCodeLen        = 40  // program and base-level codes
	MaxNameRunes      = 200 // program and base-level names
	MaxReferenceRunes = 200 // decree and legal references
	MaxReasonRunes    = 500 // reasons and notes
	MaxTiers          = 10
	// MaxCoefficient bounds a coefficient: the largest in DOMAIN.md is 3
	// (relatives of three or more martyrs, or community care); 10 leaves room
	// without letting a slipped decimal point through.
	MaxCoefficient       = 10
	MaxCoefficientPlaces = 2
	// MaxEntitlements bounds one beneficiary's entitlement history, which
	// lives in one stream and is loaded whole.
	MaxEntitlements = 500
)

// ValidateCode checks a program or base-level code: 2 to 40 of A-Z, 0-9 and
// underscore, starting with a letter (it becomes part of IDs and URLs).
func ValidateCode(field, code string) error {
	if len(code) < 2 || len(code) > MaxCodeLen {
		return domain.Reject("invalid_code", field, "must be 2 to %d characters of A-Z, 0-9 and _", MaxCodeLen)
	}
	for i, c := range code {
		ok := c >= 'A' && c <= 'Z' || c == '_' && i > 0 || c >= '0' && c <= '9' && i > 0
		if !ok {
			return domain.Reject("invalid_code", field, "%q must be upper-case letters, digits and _, starting with a letter, e.g. SOCIAL_MONTHLY", clip(code))
		}
	}
	return nil
}

// ParseCoefficient reads a coefficient such as "1.5": positive, at most
// MaxCoefficient, at most two decimal places.
func ParseCoefficient(field, s string) (decimal.Decimal, error) {
	if len(s) == 0 || len(s) > 8 {
		return decimal.Decimal{}, domain.Reject("invalid_coefficient", field, "must be a number such as 1.5")
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return decimal.Decimal{}, domain.Reject("invalid_coefficient", field, "%q must be a number such as 1.5 (digits and a decimal point only)", clip(s))
		}
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, domain.Reject("invalid_coefficient", field, "%q must be a number such as 1.5", clip(s))
	}
	if err := checkCoefficient(field, d); err != nil {
		return decimal.Decimal{}, err
	}
	return d, nil
}

func checkCoefficient(field string, d decimal.Decimal) error {
	if !d.IsPositive() || d.GreaterThan(decimal.NewFromInt(MaxCoefficient)) {
		return domain.Reject("invalid_coefficient", field, "must be more than 0 and at most %d, got %s", MaxCoefficient, d)
	}
	if !d.Equal(d.Round(MaxCoefficientPlaces)) {
		return domain.Reject("invalid_coefficient", field, "may have at most %d decimal places, got %s", MaxCoefficientPlaces, d)
	}
	return nil
}

// checkAmount checks an amount a person typed: whole dong, positive, at most
// the cap.
func checkAmount(field string, m domain.Money, lim Limits) error {
	switch {
	case m.Currency != domain.VND:
		return domain.Reject("invalid_amount", field, "must be in VND")
	case !m.IsWhole():
		return domain.Reject("invalid_amount", field, "must be whole dong, got %s", m)
	case !m.IsPositive():
		return domain.Reject("invalid_amount", field, "must be more than 0 dong, got %s", m)
	case m.Cmp(lim.AmountCap) > 0:
		return domain.Reject("amount_above_cap", field, "%s is above the cap of %s for one amount; check for a typo", m, lim.AmountCap)
	}
	return nil
}

func (r AmountRule) validate(cat Catalogue, lim Limits) error {
	switch r.Kind {
	case Fixed:
		if r.BaseLevel != "" {
			return domain.Reject("invalid_rule", "rule.base_level", "a fixed rule has no base level")
		}
		if len(r.Tiers) > MaxTiers {
			return domain.Reject("invalid_rule", "rule.tiers", "at most %d tiers", MaxTiers)
		}
		for i, t := range r.Tiers {
			if err := checkAmount(fmt.Sprintf("rule.tiers[%d]", i), t, lim); err != nil {
				return err
			}
			for _, u := range r.Tiers[:i] {
				if u.Equal(t) {
					return domain.Reject("invalid_rule", "rule.tiers", "tier %s is listed twice", t)
				}
			}
		}
		if r.Amount != nil {
			if err := checkAmount("rule.amount", *r.Amount, lim); err != nil {
				return err
			}
			if len(r.Tiers) > 0 && !r.hasTier(*r.Amount) {
				return domain.Reject("invalid_rule", "rule.amount", "the default amount %s must be one of the tiers", *r.Amount)
			}
		}
	case BaseTimesCoefficient:
		if r.Amount != nil || len(r.Tiers) > 0 {
			return domain.Reject("invalid_rule", "rule.amount", "a base-level rule takes no fixed amount or tiers; the grant gives a coefficient")
		}
		if err := ValidateCode("rule.base_level", r.BaseLevel); err != nil {
			return err
		}
		if _, ok := cat.BaseLevels[r.BaseLevel]; !ok {
			return domain.Rejectf(domain.NotFound, "base_level_not_found", "rule.base_level", "base level %s is not defined; define it first", r.BaseLevel)
		}
	default:
		return domain.Reject("invalid_rule", "rule.kind", "must be %q or %q", Fixed, BaseTimesCoefficient)
	}
	return nil
}

func (r AmountRule) hasTier(m domain.Money) bool {
	for _, t := range r.Tiers {
		if t.Equal(m) {
			return true
		}
	}
	return false
}

func (r AmountRule) equal(o AmountRule) bool {
	if r.Kind != o.Kind || r.BaseLevel != o.BaseLevel || len(r.Tiers) != len(o.Tiers) {
		return false
	}
	if (r.Amount == nil) != (o.Amount == nil) || r.Amount != nil && !r.Amount.Equal(*o.Amount) {
		return false
	}
	for i := range r.Tiers {
		if !r.Tiers[i].Equal(o.Tiers[i]) {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
