package entitlement

import (
	"maps"
	"slices"

	"github.com/ansinh/ansinh/domain"
)

// CatalogueStream is the one stream that holds every program and base-level
// schedule. One stream keeps the catalogue a single consistency boundary (a
// program can only name a base level that exists) and lets the ledger load
// the whole catalogue with one small read; it changes a few times a year.
const CatalogueStream = "catalogue"

// Catalogue is the state of the catalogue stream: the programs and the
// base-level schedules. The zero value is the empty catalogue.
type Catalogue struct {
	Programs   map[string]Program
	BaseLevels map[string]BaseLevel
}

// BaseLevel is a schedule of rates with effective periods, e.g. the
// social-assistance base level: 360,000 VND from 2021-07, 500,000 from
// 2024-07.
type BaseLevel struct {
	Code      string
	Name      string
	Reference string
	Rates     []Rate // sorted by From, no two with the same From
}

// Rate is one entry of a base-level schedule: the amount in force from a
// period until the next rate, and the decree that set it.
type Rate struct {
	From      domain.Period `json:"effective_from"`
	Amount    domain.Money  `json:"amount"`
	DecreeRef string        `json:"decree_ref"`
}

// RateAt returns the rate in force in period p: the latest rate whose From is
// not after p. ok is false before the first rate.
func (b BaseLevel) RateAt(p domain.Period) (r Rate, ok bool) {
	for _, x := range b.Rates {
		if x.From.After(p) {
			break
		}
		r, ok = x, true
	}
	return r, ok
}

// Catalogue events. They live in CatalogueStream.
type (
	// ProgramDefined: a program exists from now on, with this rule.
	ProgramDefined struct {
		Program
	}
	// BaseLevelDefined: a base-level schedule exists (without rates yet).
	BaseLevelDefined struct {
		Code      string `json:"code"`
		Name      string `json:"name"`
		Reference string `json:"reference,omitempty"`
	}
	// BaseLevelRateSet: a rate applies from a period, by a decree.
	BaseLevelRateSet struct {
		Code string `json:"code"`
		Rate
	}
)

func (ProgramDefined) EventType() string   { return "ProgramDefined.v1" }
func (BaseLevelDefined) EventType() string { return "BaseLevelDefined.v1" }
func (BaseLevelRateSet) EventType() string { return "BaseLevelRateSet.v1" }

// Evolve returns the catalogue after e. Events of other aggregates leave it
// unchanged. It copies what it changes, so earlier states stay valid.
func (c Catalogue) Evolve(e domain.Event) Catalogue {
	switch e := e.(type) {
	case ProgramDefined:
		c.Programs = maps.Clone(c.Programs)
		if c.Programs == nil {
			c.Programs = map[string]Program{}
		}
		c.Programs[e.Code] = e.Program
	case BaseLevelDefined:
		c.BaseLevels = maps.Clone(c.BaseLevels)
		if c.BaseLevels == nil {
			c.BaseLevels = map[string]BaseLevel{}
		}
		c.BaseLevels[e.Code] = BaseLevel{Code: e.Code, Name: e.Name, Reference: e.Reference}
	case BaseLevelRateSet:
		b, ok := c.BaseLevels[e.Code]
		if !ok {
			return c // decide never emits this; tolerate a hand-written stream
		}
		rates := slices.Clone(b.Rates)
		i, found := slices.BinarySearchFunc(rates, e.From, func(r Rate, p domain.Period) int { return r.From.Compare(p) })
		if found {
			rates[i] = e.Rate
		} else {
			rates = slices.Insert(rates, i, e.Rate)
		}
		b.Rates = rates
		c.BaseLevels = maps.Clone(c.BaseLevels)
		c.BaseLevels[e.Code] = b
	}
	return c
}

// CatalogueCommand is a command decided against the catalogue.
type CatalogueCommand interface {
	decideCatalogue(c Catalogue, lim Limits) ([]domain.Event, error)
}

// DecideCatalogue decides cmd against the catalogue. Re-sending a command
// whose effect is already in the catalogue (the same program, the same rate)
// decides nothing and succeeds, which makes seeding idempotent; the same code
// with different content is a Conflict, because definitions and rates are
// never edited.
func DecideCatalogue(c Catalogue, cmd CatalogueCommand, lim Limits) ([]domain.Event, error) {
	return cmd.decideCatalogue(c, lim)
}

// Catalogue commands.
type (
	DefineProgram struct {
		Code      string
		Name      string
		Kind      Kind
		Rule      AmountRule
		Reference string
	}
	DefineBaseLevel struct {
		Code      string
		Name      string
		Reference string
	}
	SetBaseLevelRate struct {
		Code          string
		EffectiveFrom domain.Period
		Amount        domain.Money
		DecreeRef     string
	}
)

func (cmd DefineProgram) decideCatalogue(c Catalogue, lim Limits) ([]domain.Event, error) {
	if err := ValidateCode("code", cmd.Code); err != nil {
		return nil, err
	}
	name, err := domain.CleanText("name", cmd.Name, 1, MaxNameRunes)
	if err != nil {
		return nil, err
	}
	ref, err := domain.CleanText("reference", cmd.Reference, 0, MaxReferenceRunes)
	if err != nil {
		return nil, err
	}
	if !cmd.Kind.Valid() {
		return nil, domain.Reject("invalid_kind", "kind", "must be one of monthly, one_time, annual, gift")
	}
	if err := cmd.Rule.validate(c, lim); err != nil {
		return nil, err
	}
	p := Program{Code: cmd.Code, Name: name, Kind: cmd.Kind, Rule: cmd.Rule, Reference: ref}
	if old, ok := c.Programs[cmd.Code]; ok {
		if old.Name == p.Name && old.Kind == p.Kind && old.Reference == p.Reference && old.Rule.equal(p.Rule) {
			return nil, nil
		}
		return nil, domain.Rejectf(domain.Conflict, "program_exists", "code",
			"program %s is already defined with another name, kind or rule; a program is never changed, define a new code instead", cmd.Code)
	}
	return []domain.Event{ProgramDefined{Program: p}}, nil
}

func (cmd DefineBaseLevel) decideCatalogue(c Catalogue, _ Limits) ([]domain.Event, error) {
	if err := ValidateCode("code", cmd.Code); err != nil {
		return nil, err
	}
	name, err := domain.CleanText("name", cmd.Name, 1, MaxNameRunes)
	if err != nil {
		return nil, err
	}
	ref, err := domain.CleanText("reference", cmd.Reference, 0, MaxReferenceRunes)
	if err != nil {
		return nil, err
	}
	if old, ok := c.BaseLevels[cmd.Code]; ok {
		if old.Name == name && old.Reference == ref {
			return nil, nil
		}
		return nil, domain.Rejectf(domain.Conflict, "base_level_exists", "code",
			"base level %s is already defined with another name", cmd.Code)
	}
	return []domain.Event{BaseLevelDefined{Code: cmd.Code, Name: name, Reference: ref}}, nil
}

// MaxRates bounds a schedule; a base level changes about once a year.
const MaxRates = 200

func (cmd SetBaseLevelRate) decideCatalogue(c Catalogue, lim Limits) ([]domain.Event, error) {
	b, ok := c.BaseLevels[cmd.Code]
	if !ok {
		return nil, domain.Rejectf(domain.NotFound, "base_level_not_found", "code", "base level %s is not defined; define it first", clip(cmd.Code))
	}
	if cmd.EffectiveFrom.IsZero() {
		return nil, domain.Reject("required", "effective_from", "is required: the first period (YYYY-MM) the rate applies to")
	}
	if err := checkAmount("amount", cmd.Amount, lim); err != nil {
		return nil, err
	}
	decree, err := domain.CleanText("decree_ref", cmd.DecreeRef, 1, MaxReferenceRunes)
	if err != nil {
		return nil, err
	}
	for _, r := range b.Rates {
		if r.From == cmd.EffectiveFrom {
			if r.Amount.Equal(cmd.Amount) && r.DecreeRef == decree {
				return nil, nil
			}
			return nil, domain.Rejectf(domain.Conflict, "rate_exists", "effective_from",
				"base level %s already has a rate of %s from %s (%s); a rate is never edited, set a rate from another period",
				b.Code, r.Amount, r.From, r.DecreeRef)
		}
	}
	if len(b.Rates) >= MaxRates {
		return nil, domain.Rejectf(domain.Conflict, "too_many_rates", "code", "base level %s already has %d rates", b.Code, MaxRates)
	}
	return []domain.Event{BaseLevelRateSet{Code: b.Code, Rate: Rate{From: cmd.EffectiveFrom, Amount: cmd.Amount, DecreeRef: decree}}}, nil
}
