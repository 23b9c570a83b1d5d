package entitlement

import (
	"testing"

	"github.com/ansinh/ansinh/domain"
)

func TestStarterCatalogue(t *testing.T) {
	c := starter(t)
	for _, code := range []string{SocialMonthly, MeritMonthly, ResistanceOneTime, MartyrWorship, PresidentTetGift} {
		if _, ok := c.Programs[code]; !ok {
			t.Errorf("program %s missing", code)
		}
	}
	cases := []struct {
		base   string
		period string
		want   int64
		decree string
	}{
		{SocialAssistanceBase, "2021-07", 360_000, "Decree 20/2021/ND-CP"},
		{SocialAssistanceBase, "2024-06", 360_000, "Decree 20/2021/ND-CP"},
		{SocialAssistanceBase, "2024-07", 500_000, "Decree 76/2024/ND-CP"},
		{SocialAssistanceBase, "2030-01", 500_000, "Decree 76/2024/ND-CP"},
		{PreferentialStandard, "2023-07", 2_055_000, "Decree 55/2023/ND-CP"},
		{PreferentialStandard, "2024-07", 2_789_000, "Decree 77/2024/ND-CP"},
	}
	for _, tc := range cases {
		r, ok := c.BaseLevels[tc.base].RateAt(per(tc.period))
		if !ok || !r.Amount.Equal(vnd(tc.want)) || r.DecreeRef != tc.decree {
			t.Errorf("%s in %s: got %v %v %q, want %d %q", tc.base, tc.period, ok, r.Amount, r.DecreeRef, tc.want, tc.decree)
		}
	}
	if _, ok := c.BaseLevels[SocialAssistanceBase].RateAt(per("2021-06")); ok {
		t.Error("a rate before the first one")
	}
}

func TestSeedingTwiceDecidesNothing(t *testing.T) {
	c := starter(t)
	for _, cmd := range StarterCatalogue() {
		evs, err := DecideCatalogue(c, cmd, DefaultLimits())
		if err != nil || len(evs) != 0 {
			t.Fatalf("%T again: %v %v", cmd, evs, err)
		}
	}
}

func TestCatalogueRules(t *testing.T) {
	c := starter(t)
	lim := DefaultLimits()
	cases := []struct {
		name string
		cmd  CatalogueCommand
		kind domain.Kind
		code string
	}{
		{"bad code", DefineProgram{Code: "social monthly", Name: "x", Kind: Monthly, Rule: AmountRule{Kind: Fixed}}, domain.Invalid, "invalid_code"},
		{"no name", DefineProgram{Code: "NEW", Name: "  ", Kind: Monthly, Rule: AmountRule{Kind: Fixed}}, domain.Invalid, "required"},
		{"bad kind", DefineProgram{Code: "NEW", Name: "x", Kind: "weekly", Rule: AmountRule{Kind: Fixed}}, domain.Invalid, "invalid_kind"},
		{"unknown base", DefineProgram{Code: "NEW", Name: "x", Kind: Monthly, Rule: AmountRule{Kind: BaseTimesCoefficient, BaseLevel: "NOPE"}}, domain.NotFound, "base_level_not_found"},
		{"base rule with amount", DefineProgram{Code: "NEW", Name: "x", Kind: Monthly, Rule: AmountRule{Kind: BaseTimesCoefficient, BaseLevel: SocialAssistanceBase, Amount: money(1)}}, domain.Invalid, "invalid_rule"},
		{"fixed above cap", DefineProgram{Code: "NEW", Name: "x", Kind: Monthly, Rule: AmountRule{Kind: Fixed, Amount: money(50_000_001)}}, domain.Invalid, "amount_above_cap"},
		{"duplicate tier", DefineProgram{Code: "NEW", Name: "x", Kind: Gift, Rule: AmountRule{Kind: Fixed, Tiers: []domain.Money{vnd(1), vnd(1)}}}, domain.Invalid, "invalid_rule"},
		{"default not a tier", DefineProgram{Code: "NEW", Name: "x", Kind: Gift, Rule: AmountRule{Kind: Fixed, Amount: money(2), Tiers: []domain.Money{vnd(1)}}}, domain.Invalid, "invalid_rule"},
		{"program redefined", DefineProgram{Code: SocialMonthly, Name: "other", Kind: Monthly, Rule: AmountRule{Kind: BaseTimesCoefficient, BaseLevel: SocialAssistanceBase}}, domain.Conflict, "program_exists"},
		{"base redefined", DefineBaseLevel{Code: SocialAssistanceBase, Name: "other"}, domain.Conflict, "base_level_exists"},
		{"rate edited", SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: per("2024-07"), Amount: vnd(600_000), DecreeRef: "Decree 76/2024/ND-CP"}, domain.Conflict, "rate_exists"},
		{"rate of unknown base", SetBaseLevelRate{Code: "NOPE", EffectiveFrom: per("2024-07"), Amount: vnd(1), DecreeRef: "x"}, domain.NotFound, "base_level_not_found"},
		{"rate without decree", SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: per("2026-01"), Amount: vnd(600_000)}, domain.Invalid, "required"},
		{"rate zero", SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: per("2026-01"), Amount: vnd(0), DecreeRef: "x"}, domain.Invalid, "invalid_amount"},
		{"rate without period", SetBaseLevelRate{Code: SocialAssistanceBase, Amount: vnd(1), DecreeRef: "x"}, domain.Invalid, "required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := DecideCatalogue(c, tc.cmd, lim)
			if len(evs) != 0 {
				t.Fatalf("rejected command decided events: %v", evs)
			}
			wantRule(t, err, tc.kind, tc.code)
		})
	}
}

func TestRateChangeIsAnEvent(t *testing.T) {
	c := starter(t)
	evs, err := DecideCatalogue(c, SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: per("2026-01"), Amount: vnd(600_000), DecreeRef: "Hanoi resolution 1/2025"}, DefaultLimits())
	if err != nil || len(evs) != 1 {
		t.Fatalf("got %v %v", evs, err)
	}
	c2 := c.Evolve(evs[0])
	if r, _ := c2.BaseLevels[SocialAssistanceBase].RateAt(per("2026-03")); !r.Amount.Equal(vnd(600_000)) {
		t.Errorf("new rate not in force: %v", r)
	}
	if r, _ := c.BaseLevels[SocialAssistanceBase].RateAt(per("2026-03")); !r.Amount.Equal(vnd(500_000)) {
		t.Errorf("Evolve changed the earlier state: %v", r)
	}
	// A rate set out of order lands in its place.
	evs, _ = DecideCatalogue(c2, SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: per("2022-01"), Amount: vnd(400_000), DecreeRef: "x"}, DefaultLimits())
	c3 := c2.Evolve(evs[0])
	if r, _ := c3.BaseLevels[SocialAssistanceBase].RateAt(per("2023-06")); !r.Amount.Equal(vnd(400_000)) {
		t.Errorf("back-filled rate: %v", r)
	}
	if r, _ := c3.BaseLevels[SocialAssistanceBase].RateAt(per("2024-07")); !r.Amount.Equal(vnd(500_000)) {
		t.Errorf("later rate lost: %v", r)
	}
}
