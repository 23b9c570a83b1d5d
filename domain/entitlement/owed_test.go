package entitlement

import (
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
)

// owedMap returns period -> entitlement -> amount in dong, for compact
// expectations.
func owedMap(t *testing.T, b Book, h Holder, c Catalogue, through string) map[string]map[string]int64 {
	t.Helper()
	lines, err := OwedThrough(b, h, c, per(through), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, l := range lines {
		if out[l.Period.String()] == nil {
			out[l.Period.String()] = map[string]int64{}
		}
		out[l.Period.String()][l.EntitlementID] = l.Amount.Amount.IntPart()
	}
	return out
}

func sameOwed(t *testing.T, got, want map[string]map[string]int64) {
	t.Helper()
	for p, w := range want {
		for id, amt := range w {
			if got[p][id] != amt {
				t.Errorf("%s %s: got %d, want %d", p, id, got[p][id], amt)
			}
		}
		if len(got[p]) != len(w) {
			t.Errorf("%s: got %v, want %v", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: owed %v, want nothing", p, got[p])
		}
	}
}

func TestOwedAcrossARateChangeWithTrace(t *testing.T) {
	e := env(t)
	b := apply(t, Book{}, alive, e, Grant{Program: SocialMonthly, Start: per("2024-05"), Coefficient: coef("2.5")})
	b = apply(t, b, alive, e, Grant{Program: MeritMonthly, Start: per("2024-06"), Coefficient: coef("2")})
	sameOwed(t, owedMap(t, b, alive, e.Catalogue, "2024-07"), map[string]map[string]int64{
		"2024-05": {"E1": 900_000},
		"2024-06": {"E1": 900_000, "E2": 4_110_000},
		"2024-07": {"E1": 1_250_000, "E2": 5_578_000}, // 2.5 x 500,000; relative of two martyrs: 2 x 2,789,000
	})
	lines, err := OwedIn(b, alive, e.Catalogue, per("2024-07"), e.Limits)
	if err != nil {
		t.Fatal(err)
	}
	tr := lines[0].Trace
	if tr.Rule != BaseTimesCoefficient || tr.BaseLevel != SocialAssistanceBase || !tr.BaseAmount.Equal(vnd(500_000)) ||
		tr.BaseFrom != per("2024-07") || tr.BaseDecreeRef != "Decree 76/2024/ND-CP" || !tr.Coefficient.Equal(*coef("2.5")) || tr.TermsFrom != per("2024-05") {
		t.Errorf("trace: %+v", tr)
	}
	if lines[0].CitizenID != cid || lines[0].Program != SocialMonthly || lines[0].Kind != Monthly {
		t.Errorf("line: %+v", lines[0])
	}
}

func TestOwedRules(t *testing.T) {
	e := env(t)
	dead := Holder{CitizenID: cid, LastPeriod: per("2024-03"), ExitCause: EndedByDeath}
	cases := []struct {
		name    string
		h       Holder
		cmds    []Command
		through string
		want    map[string]map[string]int64
	}{
		{"end period", alive, []Command{Grant{Program: SocialMonthly, Start: per("2024-01"), End: per("2024-02"), Coefficient: coef("1")}}, "2024-06",
			map[string]map[string]int64{"2024-01": {"E1": 360_000}, "2024-02": {"E1": 360_000}}},
		{"adjust from a period", alive, []Command{
			Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("1")},
			Adjust{EntitlementID: "E1", From: per("2024-03"), Coefficient: coef("2"), Reason: "turned 80"},
		}, "2024-03", map[string]map[string]int64{"2024-01": {"E1": 360_000}, "2024-02": {"E1": 360_000}, "2024-03": {"E1": 720_000}}},
		{"later adjustment replaced by an earlier-from one", alive, []Command{
			Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("1")},
			Adjust{EntitlementID: "E1", From: per("2024-03"), Coefficient: coef("2"), Reason: "r"},
			Adjust{EntitlementID: "E1", From: per("2024-02"), Coefficient: coef("3"), Reason: "r"},
		}, "2024-03", map[string]map[string]int64{"2024-01": {"E1": 360_000}, "2024-02": {"E1": 1_080_000}, "2024-03": {"E1": 1_080_000}}},
		{"suspension and resume", alive, []Command{
			Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("1")},
			Suspend{EntitlementID: "E1", From: per("2024-02"), Reason: "r"},
			Resume{EntitlementID: "E1", From: per("2024-04"), Reason: "r"},
		}, "2024-04", map[string]map[string]int64{"2024-01": {"E1": 360_000}, "2024-04": {"E1": 360_000}}},
		{"retroactive grant: arrears", alive, []Command{Grant{Program: SocialMonthly, Start: per("2023-11"), Coefficient: coef("1")}}, "2024-01",
			map[string]map[string]int64{"2023-11": {"E1": 360_000}, "2023-12": {"E1": 360_000}, "2024-01": {"E1": 360_000}}},
		{"annual: in the start month each year", alive, []Command{Grant{Program: MartyrWorship, Start: per("2023-07"), Amount: money(1_400_000)}}, "2025-06",
			map[string]map[string]int64{"2023-07": {"E1": 1_400_000}, "2024-07": {"E1": 1_400_000}}},
		{"one-time: once", alive, []Command{Grant{Program: ResistanceOneTime, Start: per("2024-02"), Amount: money(2_500_000)}}, "2026-01",
			map[string]map[string]int64{"2024-02": {"E1": 2_500_000}}},
		{"one-time suspended at its start: owed when resumed", alive, []Command{
			Grant{Program: ResistanceOneTime, Start: per("2024-02"), Amount: money(2_500_000)},
			Suspend{EntitlementID: "E1", From: per("2024-02"), Reason: "papers missing"},
			Resume{EntitlementID: "E1", From: per("2024-05"), Reason: "papers found"},
		}, "2026-01", map[string]map[string]int64{"2024-05": {"E1": 2_500_000}}},
		{"one-time still suspended: not owed", alive, []Command{
			Grant{Program: ResistanceOneTime, Start: per("2024-02"), Amount: money(2_500_000)},
			Suspend{EntitlementID: "E1", From: per("2024-02"), Reason: "r"},
		}, "2026-01", map[string]map[string]int64{}},
		{"cancelled: nothing", alive, []Command{
			Grant{Program: SocialMonthly, Start: per("2024-02"), Coefficient: coef("1")},
			End{EntitlementID: "E1", LastPeriod: per("2024-01"), Reason: "granted in error"},
		}, "2024-12", map[string]map[string]int64{}},
		{"deceased: nothing after death", dead, []Command{Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("1")}}, "2024-12",
			map[string]map[string]int64{"2024-01": {"E1": 360_000}, "2024-02": {"E1": 360_000}, "2024-03": {"E1": 360_000}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b Book
			for _, c := range tc.cmds {
				b = apply(t, b, tc.h, e, c)
			}
			sameOwed(t, owedMap(t, b, tc.h, e.Catalogue, tc.through), tc.want)
		})
	}
}

func TestOwedRoundsHalfUpOnce(t *testing.T) {
	var c Catalogue
	for _, cmd := range []CatalogueCommand{
		DefineBaseLevel{Code: "ODD", Name: "odd"},
		SetBaseLevelRate{Code: "ODD", EffectiveFrom: per("2024-01"), Amount: vnd(333_333), DecreeRef: "test"},
		DefineProgram{Code: "ODD_MONTHLY", Name: "odd", Kind: Monthly, Rule: AmountRule{Kind: BaseTimesCoefficient, BaseLevel: "ODD"}},
	} {
		evs, err := DecideCatalogue(c, cmd, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		c = c.Evolve(evs[0])
	}
	e := Env{Catalogue: c, Limits: DefaultLimits()}
	b := apply(t, Book{}, alive, e, Grant{Program: "ODD_MONTHLY", Start: per("2024-01"), Coefficient: coef("1.5")})
	lines, err := OwedIn(b, alive, c, per("2024-01"), e.Limits)
	if err != nil {
		t.Fatal(err)
	}
	if !lines[0].Amount.Equal(vnd(500_000)) { // 499,999.5 rounds half away from zero
		t.Fatalf("got %s", lines[0].Amount)
	}
}

func TestOwedRefusesAnAmountAboveTheCap(t *testing.T) {
	e := env(t)
	b := apply(t, Book{}, alive, e, Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("10")})
	// A later rate (a typo: one zero too many) pushes 10 x rate past the cap.
	evs, err := DecideCatalogue(e.Catalogue, SetBaseLevelRate{Code: SocialAssistanceBase, EffectiveFrom: per("2025-01"), Amount: vnd(5_000_001), DecreeRef: "typo"}, e.Limits)
	if err != nil {
		t.Fatal(err)
	}
	cat := e.Catalogue.Evolve(evs[0])
	if _, err := OwedIn(b, alive, cat, per("2024-12"), e.Limits); err != nil {
		t.Fatalf("before the bad rate: %v", err)
	}
	_, err = OwedIn(b, alive, cat, per("2025-01"), e.Limits)
	wantRule(t, err, domain.Conflict, "owed_not_computable")
	if !strings.Contains(err.Error(), "2025-01") || !strings.Contains(err.Error(), cid) {
		t.Errorf("the error says where: %v", err)
	}
}
