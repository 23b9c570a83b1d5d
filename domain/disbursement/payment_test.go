package disbursement

import (
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
)

func TestIssueRequiresOwed(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	o, _ := issued(t, k, "R1", bankPayee(cidAn), 540_000)
	p := bankPayee(cidAn)
	_, err := o.Issue(AttemptRef{Obligation: k, Attempt: 2, RunID: "R2", PaymentID: PaymentID("R2", p)}, p, Amounts{Gross: vnd(540_000), Net: vnd(540_000)}, Trace{})
	wantRule(t, err, domain.Conflict, "already_claimed")

	// Back to owed after a failure: a second attempt is allowed, numbered 2.
	rel, err := o.Release("R1")
	mustNoErr(t, err)
	o = o.Evolve(*rel)
	failed, err := o.Settle(Settlement{PaymentID: PaymentID("R1", p), Outcome: OutcomeFailed, Reason: ReasonAccountClosed, At: at})
	mustNoErr(t, err)
	o = o.Evolve(failed)
	if !o.Owed() {
		t.Fatal("a failed obligation is not owed again")
	}
	if _, err := o.Issue(AttemptRef{Obligation: k, Attempt: 1, RunID: "R2"}, p, Amounts{Gross: vnd(1), Net: vnd(1)}, Trace{}); err == nil {
		t.Fatal("issued attempt 1 twice")
	}
	ev, err := o.Issue(AttemptRef{Obligation: k, Attempt: 2, RunID: "R2", PaymentID: PaymentID("R2", p.AsCash())}, p.AsCash(), Amounts{Gross: vnd(540_000), Net: vnd(540_000)}, Trace{})
	mustNoErr(t, err)
	if ev.Attempt != 2 {
		t.Fatalf("attempt = %d", ev.Attempt)
	}
}

func TestIssueChecksAmounts(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	ref := AttemptRef{Obligation: k, Attempt: 1, RunID: "R1"}
	for _, am := range []Amounts{
		{Gross: vnd(0), Net: vnd(0)},
		{Gross: vnd(100), Net: vnd(90)},
		{Gross: vnd(100), Net: vnd(-10), Offsets: []Offset{{Correction: "C", Amount: vnd(110)}}},
		{Gross: vnd(100), Net: vnd(100), Offsets: []Offset{{Correction: "C", Amount: vnd(0)}}},
	} {
		if _, err := (Obligation{Key: k}).Issue(ref, bankPayee(cidAn), am, Trace{}); err == nil {
			t.Errorf("Issue accepted %+v", am)
		}
	}
}

func TestSettleDecisions(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	p := bankPayee(cidAn)
	pid := PaymentID("R1", p)
	base, _ := issued(t, k, "R1", p, 540_000)
	released := base.Evolve(must(base.Release("R1")))
	settledEv, err := released.Settle(Settlement{PaymentID: pid, Outcome: OutcomeSettled, Reference: "FT1", At: at})
	mustNoErr(t, err)
	settled := released.Evolve(settledEv)
	failedEv, err := released.Settle(Settlement{PaymentID: pid, Outcome: OutcomeFailed, Reason: ReasonNameMismatch, At: at})
	mustNoErr(t, err)
	failed := released.Evolve(failedEv)
	returnedEv, err := settled.Settle(Settlement{PaymentID: pid, Outcome: OutcomeReturned, Reference: "RT1", Reason: ReasonAccountClosed, At: at.Add(time.Hour)})
	mustNoErr(t, err)
	returned := settled.Evolve(returnedEv)

	s := func(o Outcome, ref string, r FailureReason) Settlement {
		return Settlement{PaymentID: pid, Outcome: o, Reference: ref, Reason: r, At: at}
	}
	cases := []struct {
		name string
		ob   Obligation
		s    Settlement
		want string // event type, "" for no-op, or an error code
	}{
		{"settle released", released, s(OutcomeSettled, "FT1", ""), "PaymentSettled.v1"},
		{"settle issued", base, s(OutcomeSettled, "FT1", ""), "not_released"},
		{"settle again, same ref", settled, s(OutcomeSettled, "FT1", ""), ""},
		{"settle again, other ref", settled, s(OutcomeSettled, "FT2", ""), "settlement_conflict"},
		{"settle a failed one", failed, s(OutcomeSettled, "FT1", ""), "settlement_conflict"},
		{"fail released", released, s(OutcomeFailed, "", ReasonAccountClosed), "PaymentFailed.v1"},
		{"fail again, same reason", failed, s(OutcomeFailed, "", ReasonNameMismatch), ""},
		{"fail again, other reason", failed, s(OutcomeFailed, "", ReasonAccountClosed), "settlement_conflict"},
		{"fail a settled one", settled, s(OutcomeFailed, "", ReasonAccountClosed), "already_settled"},
		{"return settled", settled, s(OutcomeReturned, "RT1", ReasonAccountClosed), "PaymentReturned.v1"},
		{"return released", released, s(OutcomeReturned, "RT1", ReasonAccountClosed), "not_settled"},
		{"return again, same ref", returned, s(OutcomeReturned, "RT1", ReasonAccountClosed), ""},
		{"return again, other ref", returned, s(OutcomeReturned, "RT2", ReasonAccountClosed), "settlement_conflict"},
		{"settlement resent after return", returned, s(OutcomeSettled, "FT1", ""), ""},
		{"unknown payment", released, Settlement{PaymentID: "R9-001150000001-b000000", Outcome: OutcomeSettled, Reference: "x", At: at}, "unknown_payment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := c.ob.Settle(c.s)
			switch {
			case c.want == "":
				mustNoErr(t, err)
				if ev != nil {
					t.Fatalf("want no-op, got %s", ev.EventType())
				}
			case c.want[0] >= 'A' && c.want[0] <= 'Z':
				mustNoErr(t, err)
				if ev == nil || ev.EventType() != c.want {
					t.Fatalf("want %s, got %v", c.want, ev)
				}
			default:
				re, ok := domain.AsRuleError(err)
				if !ok || re.Code != c.want {
					t.Fatalf("want %s, got %v", c.want, err)
				}
			}
		})
	}
	if !returned.Owed() || !failed.Owed() || settled.Owed() || released.Owed() {
		t.Fatal("owed after failed/returned only")
	}
}

func TestCashIsNotReturned(t *testing.T) {
	k := key(cidChi, "SOCIAL_MONTHLY", jan)
	p := cashPayee(cidChi)
	o, _ := issued(t, k, "R1", p, 720_000)
	o = o.Evolve(must(o.Release("R1")))
	ev, err := o.Settle(Settlement{PaymentID: PaymentID("R1", p), Outcome: OutcomeSettled, Reference: "PT-0001", At: at})
	mustNoErr(t, err)
	o = o.Evolve(ev)
	_, err = o.Settle(Settlement{PaymentID: PaymentID("R1", p), Outcome: OutcomeReturned, Reference: "X", Reason: ReasonOther, At: at})
	wantRule(t, err, domain.Conflict, "not_returnable")
}

func TestCancelAndRelease(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	o, _ := issued(t, k, "R1", bankPayee(cidAn), 540_000)
	if ev, err := o.Cancel("R2", "x"); ev != nil || err != nil {
		t.Fatal("cancelling for another run did something")
	}
	c, err := o.Cancel("R1", "run R1 was cancelled")
	mustNoErr(t, err)
	cancelled := o.Evolve(*c)
	if again, err := cancelled.Cancel("R1", "again"); again != nil || err != nil {
		t.Fatal("a second cancel is not a no-op")
	}
	if !cancelled.Owed() {
		t.Fatal("a cancelled obligation is not owed")
	}
	_, err = cancelled.Release("R1")
	wantRule(t, err, domain.Conflict, "payment_cancelled")

	rel := o.Evolve(must(o.Release("R1")))
	if again, err := rel.Release("R1"); again != nil || err != nil {
		t.Fatal("a second release is not a no-op")
	}
	_, err = rel.Cancel("R1", "too late")
	wantRule(t, err, domain.Conflict, "already_released")
}

func TestReverse(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	p := bankPayee(cidAn)
	o, _ := issued(t, k, "R1", p, 540_000)
	_, err := o.Reverse("C1")
	wantRule(t, err, domain.Conflict, "not_settled")
	o = o.Evolve(must(o.Release("R1")))
	ev, _ := o.Settle(Settlement{PaymentID: PaymentID("R1", p), Outcome: OutcomeSettled, Reference: "FT1", At: at})
	o = o.Evolve(ev)
	rev, err := o.Reverse("C1")
	mustNoErr(t, err)
	if !rev.Gross.Equal(vnd(540_000)) {
		t.Fatalf("reversal gross %s", rev.Gross)
	}
	o = o.Evolve(*rev)
	if o.Owed() {
		t.Fatal("a reversed obligation is owed again")
	}
	if again, err := o.Reverse("C1"); again != nil || err != nil {
		t.Fatal("a second reversal is not a no-op")
	}
}

func must[E any](e *E, err error) E {
	if err != nil {
		panic(err)
	}
	if e == nil {
		panic("no event")
	}
	return *e
}
