package disbursement

import (
	"testing"

	"github.com/ansinh/ansinh/domain"
)

func topUpCmd() RequestCorrection {
	return RequestCorrection{CorrectionID: "C1", Kind: CorrectTopUp, CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Period: jan,
		Amount: vnd(180_000), Reason: "coefficient 2.0 from January, paid 1.5", DocumentRef: "QD-123/2024"}
}

func requested(t *testing.T, cmd RequestCorrection, ob Obligation) Correction {
	t.Helper()
	evs, err := Correction{}.Request(cmd, ob, officer)
	mustNoErr(t, err)
	c := Correction{}
	for _, e := range evs {
		c = c.Evolve(e)
	}
	return c
}

func TestRequestCorrectionValidation(t *testing.T) {
	cases := []struct {
		name string
		edit func(*RequestCorrection)
		code string
	}{
		{"ok", func(*RequestCorrection) {}, ""},
		{"no reason", func(c *RequestCorrection) { c.Reason = " " }, "required"},
		{"no document", func(c *RequestCorrection) { c.DocumentRef = "" }, "required"},
		{"zero amount", func(c *RequestCorrection) { c.Amount = vnd(0) }, "invalid_amount"},
		{"over the cap", func(c *RequestCorrection) { c.Amount = vnd(MaxCorrectionDong + 1) }, "amount_above_cap"},
		{"recovery without mode", func(c *RequestCorrection) { c.Kind = CorrectRecovery }, "invalid_mode"},
		{"top-up with a mode", func(c *RequestCorrection) { c.Mode = RecoverByOffset }, "invalid_mode"},
		{"unknown kind", func(c *RequestCorrection) { c.Kind = "refund" }, "invalid_kind"},
		{"reversal of nothing", func(c *RequestCorrection) { c.Kind, c.Mode = CorrectReversal, RecoverAsReceivable }, "payment_not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := topUpCmd()
			c.edit(&cmd)
			_, err := Correction{}.Request(cmd, Obligation{Key: key(cidAn, "SOCIAL_MONTHLY", jan)}, officer)
			if c.code == "" {
				mustNoErr(t, err)
				return
			}
			re, ok := domain.AsRuleError(err)
			if !ok || re.Code != c.code {
				t.Fatalf("want %s, got %v", c.code, err)
			}
		})
	}
	_, err := Correction{}.Request(topUpCmd(), Obligation{}, approver)
	wantRule(t, err, domain.Forbidden, "role_forbidden")
}

func TestCorrectionFourEyesAndIdempotence(t *testing.T) {
	c := requested(t, topUpCmd(), Obligation{})
	if evs, err := c.Request(topUpCmd(), Obligation{}, officer); err != nil || evs != nil {
		t.Fatal("a resent request is not a read")
	}
	other := topUpCmd()
	other.Amount = vnd(1)
	_, err := c.Request(other, Obligation{}, officer)
	wantRule(t, err, domain.Conflict, "correction_exists")

	_, err = c.Approve("C1", domain.Actor{UserID: officer.UserID, Role: domain.RoleAdmin})
	wantRule(t, err, domain.Forbidden, "self_approval")
	_, err = c.Approve("C1", officer2)
	wantRule(t, err, domain.Forbidden, "role_forbidden")
	_, _, err = c.Effects(Obligation{}, Adjustments{})
	wantRule(t, err, domain.Conflict, "not_approved")

	approved := c.Evolve(mustEvents(c.Approve("C1", approver))[0])
	if evs, err := approved.Approve("C1", approver); err != nil || evs != nil {
		t.Fatal("a resent approval is not a read")
	}
	_, err = approved.Reject("C1", domain.Actor{UserID: "hoa", Role: domain.RoleApprover}, "no")
	wantRule(t, err, domain.Conflict, "already_approved")

	_, adj, err := approved.Effects(Obligation{}, Adjustments{})
	mustNoErr(t, err)
	if len(adj) != 1 {
		t.Fatalf("effects: %v", adj)
	}
	g := adj[0].(TopUpGranted)
	if g.Obligation.Stream() != "payment-001150000001-SOCIAL_MONTHLY-2024-01-topup-C1" || !g.Amount.Equal(vnd(180_000)) {
		t.Fatalf("top-up: %+v", g)
	}
	// Effects already written are not written again.
	_, adj, err = approved.Effects(Obligation{}, Adjustments{}.Evolve(g))
	mustNoErr(t, err)
	if len(adj) != 0 {
		t.Fatal("effects written twice")
	}

	rejected := c.Evolve(mustEvents(c.Reject("C1", approver, "not justified"))[0])
	_, err = rejected.Approve("C1", approver)
	wantRule(t, err, domain.Conflict, "already_rejected")
}

func TestReversalEffects(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	p := bankPayee(cidAn)
	o, _ := issued(t, k, "R1", p, 540_000, Offset{Correction: "C0", Amount: vnd(40_000)})
	o = o.Evolve(must(o.Release("R1")))
	ev, _ := o.Settle(Settlement{PaymentID: PaymentID("R1", p), Outcome: OutcomeSettled, Reference: "FT", At: at})
	o = o.Evolve(ev)
	cmd := RequestCorrection{CorrectionID: "C5", Kind: CorrectReversal, CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Period: jan,
		Mode: RecoverByOffset, Reason: "died 2023-12-28, notified late", DocumentRef: "GCT-77"}
	bad := cmd
	bad.Amount = vnd(500_000)
	_, err := Correction{}.Request(bad, o, officer)
	wantRule(t, err, domain.Invalid, "invalid_amount")
	c := requested(t, cmd, o)
	if !c.Requested.Amount.Equal(vnd(540_000)) || c.Requested.Attempt != 1 {
		t.Fatalf("reversal takes the gross of the settled attempt: %+v", c.Requested)
	}
	c = c.Evolve(mustEvents(c.Approve("C5", approver))[0])
	pay, adj, err := c.Effects(o, Adjustments{})
	mustNoErr(t, err)
	if len(pay) != 1 || len(adj) != 1 {
		t.Fatalf("effects: %v %v", pay, adj)
	}
	rr := adj[0].(RecoveryRaised)
	if !rr.Amount.Equal(vnd(540_000)) || rr.Kind != CorrectReversal || rr.Mode != RecoverByOffset {
		t.Fatalf("recovery: %+v", rr)
	}
	// If the payment came back meanwhile, the approval cannot take effect.
	back, _ := o.Settle(Settlement{PaymentID: PaymentID("R1", p), Outcome: OutcomeReturned, Reference: "RT", Reason: ReasonDeceased, At: at})
	_, _, err = c.Effects(o.Evolve(back), Adjustments{})
	wantRule(t, err, domain.Conflict, "not_settled")
}
