package disbursement

import (
	"testing"

	"github.com/ansinh/ansinh/domain"
)

func owedAn(p Payee) Owed {
	return Owed{CitizenID: cidAn, Payee: p, Lines: []OwedLine{
		{Key: key(cidAn, "SOCIAL_MONTHLY", jan), Amount: vnd(540_000), Trace: Trace{Entitlement: "E1", Rule: "360000 x 1.5"}},
		{Key: key(cidAn, "SOCIAL_MONTHLY", feb), Amount: vnd(540_000), Trace: Trace{Entitlement: "E1", Rule: "360000 x 1.5"}},
		{Key: key(cidAn, "TET_GIFT", jan), Amount: vnd(600_000), Trace: Trace{Entitlement: "E2", Rule: "fixed 600000"}},
		{Key: key(cidAn, "SOCIAL_MONTHLY", mar), Amount: vnd(540_000), Trace: Trace{Entitlement: "E1"}}, // out of scope
	}}
}

func scopeJanFeb() Scope {
	return Scope{Periods: []domain.Period{jan, feb}, Programs: []string{"SOCIAL_MONTHLY", "TET_GIFT"}}
}

func plan(t *testing.T, in PlanInput) Plan {
	t.Helper()
	if in.Lines == nil {
		var err error
		in.Lines, err = Candidates(in.Scope, in.Owed, in.Adjustments)
		mustNoErr(t, err)
	}
	p, err := PlanBeneficiary(in)
	mustNoErr(t, err)
	return p
}

func TestCandidates(t *testing.T) {
	adj := Adjustments{CitizenID: cidAn, TopUps: []TopUp{
		{Correction: "C1", Obligation: ObligationKey{CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Period: domain.MustPeriod("2023-12"), TopUp: "C1"}, Amount: vnd(50_000)},
		{Correction: "C2", Obligation: ObligationKey{CitizenID: cidAn, Program: "OTHER", Period: jan, TopUp: "C2"}, Amount: vnd(10_000)},
	}}
	got, err := Candidates(scopeJanFeb(), owedAn(bankPayee(cidAn)), adj)
	mustNoErr(t, err)
	want := []string{
		"payment-001150000001-SOCIAL_MONTHLY-2023-12-topup-C1",
		"payment-001150000001-SOCIAL_MONTHLY-2024-01",
		"payment-001150000001-SOCIAL_MONTHLY-2024-02",
		"payment-001150000001-TET_GIFT-2024-01",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d candidates, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Key.Stream() != want[i] {
			t.Errorf("candidate %d = %s, want %s", i, got[i].Key.Stream(), want[i])
		}
	}
	bad := owedAn(bankPayee(cidAn))
	bad.Lines = append(bad.Lines, bad.Lines[0])
	if _, err := Candidates(scopeJanFeb(), bad, Adjustments{}); err == nil {
		t.Error("a line listed twice was accepted")
	}
	bad = owedAn(bankPayee(cidAn))
	bad.Lines[0].Key.CitizenID = cidBinh
	if _, err := Candidates(scopeJanFeb(), bad, Adjustments{}); err == nil {
		t.Error("a line of another beneficiary was accepted")
	}
}

func TestPlanFreshRun(t *testing.T) {
	p := plan(t, PlanInput{RunID: "R1", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn))})
	if len(p.Claims) != 3 || len(p.Held) != 0 || len(p.Skipped) != 0 || len(p.Reserve) != 0 {
		t.Fatalf("plan: %d claims, %d held, %d skipped", len(p.Claims), len(p.Held), len(p.Skipped))
	}
	pays := GroupPayments(linesOf(p))
	if len(pays) != 1 || !pays[0].Net().Equal(vnd(1_680_000)) || pays[0].Payee.Method != MethodBank {
		t.Fatalf("one bank payment of 1,680,000 expected, got %+v", pays)
	}
	for _, c := range p.Claims {
		if len(c.Events) != 1 || c.Events[0].(PaymentIssued).Attempt != 1 {
			t.Fatalf("claim events: %+v", c.Events)
		}
	}
}

func linesOf(p Plan) []PlannedLine {
	out := append([]PlannedLine{}, p.Held...)
	for _, c := range p.Claims {
		out = append(out, c.PlannedLine)
	}
	return out
}

// obligationsAfter applies a plan's claims, as the store would.
func obligationsAfter(p Plan, obs map[string]Obligation) map[string]Obligation {
	out := map[string]Obligation{}
	for k, v := range obs {
		out[k] = v
	}
	for _, c := range p.Claims {
		out[c.Stream] = fold(out[c.Stream], c.Events...)
	}
	return out
}

func TestPlanIsStableWhenResumed(t *testing.T) {
	in := PlanInput{RunID: "R1", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn))}
	first := plan(t, in)
	// The claims landed; the page was not recorded (a crash). The same run
	// plans again: everything is held, nothing is written twice.
	in.Obligations = obligationsAfter(first, nil)
	again := plan(t, in)
	if len(again.Claims) != 0 || len(again.Held) != 3 {
		t.Fatalf("resumed plan: %d claims, %d held", len(again.Claims), len(again.Held))
	}
	a, b := GroupPayments(linesOf(first)), GroupPayments(linesOf(again))
	if a[0].PaymentID != b[0].PaymentID || !a[0].Net().Equal(b[0].Net()) {
		t.Fatal("a resumed plan pays differently")
	}
	// Another run sees them claimed.
	in.RunID = "R2"
	other := plan(t, in)
	if len(other.Claims) != 0 || len(other.Skipped) != 3 || other.Skipped[0].Reason != "in_run" || other.Skipped[0].RunID != "R1" {
		t.Fatalf("other run: %+v", other)
	}
	// Unless R1 was cancelled before it recorded them: then R2 withdraws the
	// leftover claim and issues attempt 2 in one append.
	in.RunCancelled = func(id string) bool { return id == "R1" }
	taken := plan(t, in)
	if len(taken.Claims) != 3 {
		t.Fatalf("claims over a cancelled run: %d", len(taken.Claims))
	}
	c := taken.Claims[0]
	if len(c.Events) != 2 || c.Events[0].EventType() != "PaymentCancelled.v1" || c.Events[1].(PaymentIssued).Attempt != 2 {
		t.Fatalf("supersede events: %+v", c.Events)
	}
}

func TestPlanSkipsPaidAndReversed(t *testing.T) {
	in := PlanInput{RunID: "R1", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn))}
	first := plan(t, in)
	obs := obligationsAfter(first, nil)
	pid := first.Claims[0].PaymentID
	for s, o := range obs {
		o = o.Evolve(must(o.Release("R1")))
		ev, err := o.Settle(Settlement{PaymentID: pid, Outcome: OutcomeSettled, Reference: "FT", At: at})
		mustNoErr(t, err)
		obs[s] = o.Evolve(ev)
	}
	s := key(cidAn, "TET_GIFT", jan).Stream()
	obs[s] = obs[s].Evolve(must(obs[s].Reverse("C9")))
	p := plan(t, PlanInput{RunID: "R2", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn)), Obligations: obs})
	if len(p.Claims) != 0 || len(p.Skipped) != 3 {
		t.Fatalf("plan over paid obligations: %+v", p)
	}
	reasons := map[string]int{}
	for _, sk := range p.Skipped {
		reasons[sk.Reason]++
	}
	if reasons["paid"] != 2 || reasons["reversed"] != 1 {
		t.Fatalf("skip reasons: %v", reasons)
	}
}

func TestPlanPaysCashAfterAccountFailure(t *testing.T) {
	in := PlanInput{RunID: "R1", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn))}
	first := plan(t, in)
	obs := obligationsAfter(first, nil)
	for s, o := range obs {
		o = o.Evolve(must(o.Release("R1")))
		reason := ReasonAccountClosed
		if s == key(cidAn, "TET_GIFT", jan).Stream() {
			reason = ReasonRejectedByBank // not an account problem, but the account is closed all the same
		}
		ev, err := o.Settle(Settlement{PaymentID: first.Claims[0].PaymentID, Outcome: OutcomeFailed, Reason: reason, At: at})
		mustNoErr(t, err)
		obs[s] = o.Evolve(ev)
	}
	p := plan(t, PlanInput{RunID: "R2", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn)), Obligations: obs})
	if len(p.Claims) != 3 {
		t.Fatalf("reissue: %d claims", len(p.Claims))
	}
	for _, c := range p.Claims {
		if c.Payee.Method != MethodCash || c.Line.Attempt != 2 {
			t.Fatalf("reissued as %s attempt %d", c.Payee.Method, c.Line.Attempt)
		}
	}
	// With a new account linked, the reissue goes to the bank again.
	fresh := bankPayee(cidAn)
	fresh.AccountNumber = "0011007654321"
	owed := owedAn(fresh)
	p = plan(t, PlanInput{RunID: "R2", Scope: scopeJanFeb(), Owed: owed, Obligations: obs})
	if p.Claims[0].Payee.Method != MethodBank {
		t.Fatal("a new account is not used")
	}
	// A cash-only run pays cash whatever the account.
	cash := scopeJanFeb()
	cash.CashOnly = true
	p = plan(t, PlanInput{RunID: "R3", Scope: cash, Owed: owed})
	if p.Claims[0].Payee.Method != MethodCash {
		t.Fatal("a cash-only run pays by bank")
	}
}

func recovery(corr string, amount int64, mode RecoveryMode, res ...Reservation) Recovery {
	return Recovery{Correction: corr, Program: "SOCIAL_MONTHLY", Amount: vnd(amount), Mode: mode, Reservations: res}
}

func TestPlanOffsets(t *testing.T) {
	adj := Adjustments{CitizenID: cidAn, Recoveries: []Recovery{
		recovery("C2", 600_000, RecoverByOffset),
		recovery("C1", 100_000, RecoverByOffset),
		recovery("C3", 999_000, RecoverAsReceivable), // never offset
	}}
	p := plan(t, PlanInput{RunID: "R1", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn)), Adjustments: adj})
	// SOCIAL_MONTHLY lines in stream order: 2024-01 (540,000), 2024-02
	// (540,000). C1 first (100,000 on January), then C2: 440,000 of
	// January, 160,000 of February. The gift is another program.
	got := map[string]Amounts{}
	for _, c := range p.Claims {
		got[c.Line.Obligation.Period.String()+c.Line.Obligation.Program] = c.Events[0].(PaymentIssued).Amounts
	}
	janL, febL, gift := got["2024-01SOCIAL_MONTHLY"], got["2024-02SOCIAL_MONTHLY"], got["2024-01TET_GIFT"]
	if !janL.Net.IsZero() || len(janL.Offsets) != 2 || !janL.Offsets[0].Amount.Equal(vnd(100_000)) || !janL.Offsets[1].Amount.Equal(vnd(440_000)) {
		t.Fatalf("January: %+v", janL)
	}
	if !febL.Net.Equal(vnd(380_000)) || len(febL.Offsets) != 1 || !febL.Offsets[0].Amount.Equal(vnd(160_000)) {
		t.Fatalf("February: %+v", febL)
	}
	if len(gift.Offsets) != 0 || !gift.Net.Equal(vnd(600_000)) {
		t.Fatalf("gift: %+v", gift)
	}
	if len(p.Reserve) != 3 {
		t.Fatalf("reservations: %d", len(p.Reserve))
	}
	// January is fully kept back: it travels in a payment of its own that
	// is never sent.
	pays := GroupPayments(linesOf(p))
	if len(pays) != 2 {
		t.Fatalf("payments: %d", len(pays))
	}
	for _, pay := range pays {
		if pay.Payee.Method == MethodOffset && !pay.Net().IsZero() {
			t.Fatal("an offset payment carries money")
		}
	}

	// Resumed after the reservations and claims landed: same amounts, no
	// new reservation.
	for _, ev := range p.Reserve {
		adj = adj.Evolve(ev)
	}
	for _, r := range adj.Recoveries {
		if r.Correction == "C2" && !r.Outstanding(func(string) bool { return false }).IsZero() {
			t.Fatalf("C2 outstanding after reservation: %s", r.Outstanding(func(string) bool { return false }))
		}
	}
	again := plan(t, PlanInput{RunID: "R1", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn)), Adjustments: adj})
	if len(again.Reserve) != 0 {
		t.Fatalf("resumed plan reserves again: %d", len(again.Reserve))
	}
	for _, c := range again.Claims {
		k := c.Line.Obligation.Period.String() + c.Line.Obligation.Program
		if !c.Line.Net.Equal(got[k].Net) {
			t.Fatalf("%s: resumed net %s, first %s", k, c.Line.Net, got[k].Net)
		}
	}
	// A second run finds nothing left to keep back, unless R1 was cancelled.
	other := plan(t, PlanInput{RunID: "R2", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn)), Adjustments: adj})
	if len(other.Reserve) != 0 {
		t.Fatal("R2 spends what R1 reserved")
	}
	other = plan(t, PlanInput{RunID: "R2", Scope: scopeJanFeb(), Owed: owedAn(bankPayee(cidAn)), Adjustments: adj,
		RunCancelled: func(id string) bool { return id == "R1" }})
	if len(other.Reserve) != 3 {
		t.Fatalf("R2 after R1's cancellation reserves %d", len(other.Reserve))
	}
}

func TestPlanRefusesBadPayee(t *testing.T) {
	p := bankPayee(cidAn)
	p.AccountNumber = "12"
	_, err := PlanBeneficiary(PlanInput{RunID: "R1", Scope: scopeJanFeb(), Owed: owedAn(p), Lines: owedAn(p).Lines[:1]})
	wantRule(t, err, domain.Invalid, "invalid_account")
}
