package entitlement

import (
	"testing"

	"github.com/ansinh/ansinh/domain"
)

var alive = Holder{CitizenID: cid}

// social is a book with one social allowance E1 from 2024-01, coefficient 1.5.
func social(t *testing.T) Book {
	return apply(t, Book{}, alive, env(t), Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("1.5")})
}

func TestGrantRejections(t *testing.T) {
	e := env(t)
	dead := Holder{CitizenID: cid, LastPeriod: per("2024-03"), ExitCause: EndedByDeath}
	withResistance := apply(t, Book{}, alive, e, Grant{Program: ResistanceOneTime, Start: per("2024-01"), Amount: money(2_000_000)})
	withGift := apply(t, Book{}, alive, e, Grant{Program: PresidentTetGift, Start: per("2024-01"), Amount: money(600_000)})
	cases := []struct {
		name string
		book Book
		h    Holder
		cmd  Grant
		kind domain.Kind
		code string
	}{
		{"unknown program", Book{}, alive, Grant{Program: "NOPE", Start: per("2024-01"), Amount: money(1)}, domain.NotFound, "program_not_found"},
		{"malformed program", Book{}, alive, Grant{Program: "no pe", Start: per("2024-01")}, domain.Invalid, "invalid_code"},
		{"no start", Book{}, alive, Grant{Program: SocialMonthly, Coefficient: coef("1")}, domain.Invalid, "required"},
		{"end before start", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2024-05"), End: per("2024-04"), Coefficient: coef("1")}, domain.Invalid, "end_before_start"},
		{"end on one-time", Book{}, alive, Grant{Program: ResistanceOneTime, Start: per("2024-05"), End: per("2024-06"), Amount: money(1)}, domain.Invalid, "end_not_allowed"},
		{"no coefficient", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2024-01")}, domain.Invalid, "required"},
		{"amount on base rule", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2024-01"), Amount: money(500_000)}, domain.Invalid, "amount_not_allowed"},
		{"coefficient on fixed", Book{}, alive, Grant{Program: MartyrWorship, Start: per("2024-01"), Coefficient: coef("1")}, domain.Invalid, "coefficient_not_allowed"},
		{"zero coefficient", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("0")}, domain.Invalid, "invalid_coefficient"},
		{"coefficient above 10", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("10.5")}, domain.Invalid, "invalid_coefficient"},
		{"three decimals", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("1.505")}, domain.Invalid, "invalid_coefficient"},
		{"before first rate", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2021-06"), Coefficient: coef("1")}, domain.Invalid, "no_rate"},
		{"fixed without amount", Book{}, alive, Grant{Program: MartyrWorship, Start: per("2024-01")}, domain.Invalid, "required"},
		{"negative amount", Book{}, alive, Grant{Program: MartyrWorship, Start: per("2024-01"), Amount: money(-5)}, domain.Invalid, "invalid_amount"},
		{"amount above cap", Book{}, alive, Grant{Program: MartyrWorship, Start: per("2024-01"), Amount: money(50_000_001)}, domain.Invalid, "amount_above_cap"},
		{"not a tier", Book{}, alive, Grant{Program: PresidentTetGift, Start: per("2024-01"), Amount: money(500_000)}, domain.Invalid, "not_a_tier"},
		{"after death", Book{}, dead, Grant{Program: SocialMonthly, Start: per("2024-04"), Coefficient: coef("1")}, domain.Conflict, "beneficiary_exited"},
		{"same program overlapping", social(t), alive, Grant{Program: SocialMonthly, Start: per("2025-01"), Coefficient: coef("2")}, domain.Conflict, "overlapping_entitlement"},
		{"same program before, open-ended", social(t), alive, Grant{Program: SocialMonthly, Start: per("2023-01"), Coefficient: coef("2")}, domain.Conflict, "overlapping_entitlement"},
		{"one-time twice", withResistance, alive, Grant{Program: ResistanceOneTime, Start: per("2025-01"), Amount: money(1_000_000)}, domain.Conflict, "already_granted"},
		{"gift: same tier again", withGift, alive, Grant{Program: PresidentTetGift, Start: per("2024-02"), Amount: money(600_000)}, domain.Conflict, "already_granted"},
		{"gift: lower tier", withGift, alive, Grant{Program: PresidentTetGift, Start: per("2024-01"), Amount: money(300_000)}, domain.Conflict, "already_granted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decide(tc.book, tc.h, e, tc.cmd)
			if len(evs) != 0 {
				t.Fatalf("rejected command decided %v", evs)
			}
			wantRule(t, err, tc.kind, tc.code)
		})
	}
}

func TestCapAppliesToEveryRateMet(t *testing.T) {
	// 8 x 360,000 = 2,880,000 is under a 3,000,000 cap, but 8 x 500,000
	// (from 2024-07) is not: an open grant from 2024-01 meets both rates.
	e := env(t)
	e.Limits.AmountCap = vnd(3_000_000)
	_, err := Decide(Book{}, alive, e, Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("8")})
	wantRule(t, err, domain.Invalid, "amount_above_cap")
	// Ending before the new rate keeps it under the cap.
	if _, err := Decide(Book{}, alive, e, Grant{Program: SocialMonthly, Start: per("2024-01"), End: per("2024-06"), Coefficient: coef("8")}); err != nil {
		t.Fatal(err)
	}
}

func TestGrantAccepted(t *testing.T) {
	e := env(t)
	cases := []struct {
		name string
		book Book
		h    Holder
		cmd  Grant
		want EntitlementGranted
	}{
		{"social, open", Book{}, alive, Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("2.5"), Note: "  elderly,\tsevere  disability "},
			EntitlementGranted{CitizenID: cid, EntitlementID: "E1", Program: SocialMonthly, Kind: Monthly, Start: per("2024-01"), Coefficient: coef("2.5"), Note: "elderly, severe disability"}},
		{"same program after the first ends", apply(t, Book{}, alive, e, Grant{Program: SocialMonthly, Start: per("2023-01"), End: per("2023-12"), Coefficient: coef("1")}), alive,
			Grant{Program: SocialMonthly, Start: per("2024-01"), Coefficient: coef("2")},
			EntitlementGranted{CitizenID: cid, EntitlementID: "E2", Program: SocialMonthly, Kind: Monthly, Start: per("2024-01"), Coefficient: coef("2")}},
		{"retroactive grant for a deceased: end cut to death", Book{}, Holder{CitizenID: cid, LastPeriod: per("2024-03"), ExitCause: EndedByDeath},
			Grant{Program: SocialMonthly, Start: per("2023-01"), Coefficient: coef("1")},
			EntitlementGranted{CitizenID: cid, EntitlementID: "E1", Program: SocialMonthly, Kind: Monthly, Start: per("2023-01"), End: per("2024-03"), Coefficient: coef("1")}},
		{"gift next year", apply(t, Book{}, alive, e, Grant{Program: PresidentTetGift, Start: per("2024-01"), Amount: money(600_000)}), alive,
			Grant{Program: PresidentTetGift, Start: per("2025-01"), Amount: money(300_000)},
			EntitlementGranted{CitizenID: cid, EntitlementID: "E2", Program: PresidentTetGift, Kind: Gift, Start: per("2025-01"), Amount: money(300_000)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decide(tc.book, tc.h, e, tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events", len(evs))
			}
			got := evs[0].(EntitlementGranted)
			if !equalGranted(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func equalGranted(a, b EntitlementGranted) bool {
	ca, cb := a.Coefficient, b.Coefficient
	aa, ab := a.Amount, b.Amount
	a.Coefficient, b.Coefficient, a.Amount, b.Amount = nil, nil, nil, nil
	if a != b || (ca == nil) != (cb == nil) || (aa == nil) != (ab == nil) {
		return false
	}
	return (ca == nil || ca.Equal(*cb)) && (aa == nil || aa.Equal(*ab))
}

func TestGiftHigherTierRaisesTheFirst(t *testing.T) {
	e := env(t)
	b := apply(t, Book{}, alive, e, Grant{Program: PresidentTetGift, Start: per("2024-01"), Amount: money(300_000)})
	evs, err := Decide(b, alive, e, Grant{Program: PresidentTetGift, Start: per("2024-02"), Amount: money(600_000)})
	if err != nil {
		t.Fatal(err)
	}
	adj, ok := evs[0].(EntitlementAdjusted)
	if len(evs) != 1 || !ok || adj.EntitlementID != "E1" || !adj.Amount.Equal(vnd(600_000)) || adj.From != per("2024-01") {
		t.Fatalf("got %+v", evs)
	}
	b = b.Evolve(adj)
	lines, err := OwedThrough(b, alive, e.Catalogue, per("2024-12"), e.Limits)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !lines[0].Amount.Equal(vnd(600_000)) {
		t.Fatalf("one gift of the higher tier, got %+v", lines)
	}
}

func TestLifecycleRejections(t *testing.T) {
	e := env(t)
	b := social(t)
	suspended := apply(t, b, alive, e, Suspend{EntitlementID: "E1", From: per("2024-05"), Reason: "hospitalised"})
	ended := apply(t, b, alive, e, End{EntitlementID: "E1", LastPeriod: per("2024-06"), Reason: "no longer eligible"})
	cancelled := apply(t, b, alive, e, End{EntitlementID: "E1", LastPeriod: per("2023-12"), Reason: "granted in error"})
	resumed := apply(t, suspended, alive, e, Resume{EntitlementID: "E1", From: per("2024-08"), Reason: "back home"})
	cases := []struct {
		name string
		book Book
		cmd  Command
		kind domain.Kind
		code string
	}{
		{"adjust unknown", b, Adjust{EntitlementID: "E9", From: per("2024-02"), Coefficient: coef("2"), Reason: "r"}, domain.NotFound, "entitlement_not_found"},
		{"adjust without reason", b, Adjust{EntitlementID: "E1", From: per("2024-02"), Coefficient: coef("2")}, domain.Invalid, "required"},
		{"adjust before start", b, Adjust{EntitlementID: "E1", From: per("2023-12"), Coefficient: coef("2"), Reason: "r"}, domain.Invalid, "invalid_period"},
		{"adjust after end", ended, Adjust{EntitlementID: "E1", From: per("2024-07"), Coefficient: coef("2"), Reason: "r"}, domain.Conflict, "entitlement_ended"},
		{"adjust to same", b, Adjust{EntitlementID: "E1", From: per("2024-03"), Coefficient: coef("1.50"), Reason: "r"}, domain.Conflict, "no_change"},
		{"adjust with amount", b, Adjust{EntitlementID: "E1", From: per("2024-03"), Amount: money(1), Reason: "r"}, domain.Invalid, "amount_not_allowed"},
		{"adjust cancelled", cancelled, Adjust{EntitlementID: "E1", From: per("2024-03"), Coefficient: coef("2"), Reason: "r"}, domain.Conflict, "entitlement_cancelled"},
		{"suspend twice", suspended, Suspend{EntitlementID: "E1", From: per("2024-06"), Reason: "r"}, domain.Conflict, "already_suspended"},
		{"suspend inside an earlier suspension", resumed, Suspend{EntitlementID: "E1", From: per("2024-07"), Reason: "r"}, domain.Conflict, "overlapping_suspension"},
		{"suspend without reason", b, Suspend{EntitlementID: "E1", From: per("2024-06")}, domain.Invalid, "required"},
		{"suspend after end", ended, Suspend{EntitlementID: "E1", From: per("2024-07"), Reason: "r"}, domain.Conflict, "entitlement_ended"},
		{"resume not suspended", b, Resume{EntitlementID: "E1", From: per("2024-06"), Reason: "r"}, domain.Conflict, "not_suspended"},
		{"resume before suspension", suspended, Resume{EntitlementID: "E1", From: per("2024-04"), Reason: "r"}, domain.Invalid, "invalid_period"},
		{"end twice", ended, End{EntitlementID: "E1", LastPeriod: per("2024-08"), Reason: "r"}, domain.Conflict, "already_ended"},
		{"end long before start", b, End{EntitlementID: "E1", LastPeriod: per("2023-06"), Reason: "r"}, domain.Invalid, "invalid_period"},
		{"end without period", b, End{EntitlementID: "E1", Reason: "r"}, domain.Invalid, "required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decide(tc.book, alive, e, tc.cmd)
			if len(evs) != 0 {
				t.Fatalf("rejected command decided %v", evs)
			}
			wantRule(t, err, tc.kind, tc.code)
		})
	}
}

func TestEndForExit(t *testing.T) {
	e := env(t)
	b := social(t)
	b = apply(t, b, alive, e, Grant{Program: MartyrWorship, Start: per("2023-01"), End: per("2023-12"), Amount: money(1_400_000)})
	b = apply(t, b, alive, e, Grant{Program: ResistanceOneTime, Start: per("2024-09"), Amount: money(2_000_000)})
	evs := EndForExit(b, cid, per("2024-06"), EndedByDeath)
	// E1 (open) and E3 (due after death) end; E2 ended before and stays.
	if len(evs) != 2 {
		t.Fatalf("got %+v", evs)
	}
	for i, id := range []string{"E1", "E3"} {
		ev := evs[i].(EntitlementEnded)
		if ev.EntitlementID != id || ev.LastPeriod != per("2024-06") || ev.Cause != EndedByDeath {
			t.Errorf("event %d: %+v", i, ev)
		}
		b = b.Evolve(ev)
	}
	if x, _ := b.Find("E3"); !x.Cancelled() {
		t.Error("a one-time allowance due after death is cancelled")
	}
}
