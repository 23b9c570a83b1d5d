package ledger

import (
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// oneTransfer releases a run paying one beneficiary 1,080,000 by bank
// (January and February at 540,000).
func oneTransfer(t *testing.T) (*payoutFixture, string, *disbursement.RunPayment) {
	f := newPayoutFixture(t)
	cid := f.person(1, "Nguyễn Văn An", registry.Male, 1950, ngocThuy)
	f.allowance(cid, domain.MustPeriod("2023-07"), "1.5")
	f.bank(cid, "Nguyễn Văn An", "VCB", "0011001234567")
	f.open("S1", []domain.Period{jan24, feb24}, entitlement.SocialMonthly)
	f.calculate("S1", NewStaticRoster(cid))
	return f, cid, f.paymentOf("S1", cid, disbursement.MethodBank)
}

func settlementFile(lines ...string) *strings.Reader {
	return strings.NewReader(strings.Join(disbursement.SettlementHeader, ",") + "\n" + strings.Join(lines, "\n") + "\n")
}

func TestSettlementRules(t *testing.T) {
	f, _, pay := oneTransfer(t)
	at := "2024-01-20T09:30:00+07:00"
	// Not released yet: every answer is refused.
	rep, err := f.l.ImportSettlements(f.ctx, lan, settlementFile(pay.PaymentID+",settled,FT1,"+at+",,,"))
	if err != nil || len(rep.Rejected) != 1 || rep.Rejected[0].Code != "not_released" {
		t.Fatalf("before release: %+v %v", rep, err)
	}
	f.approveAndRelease("S1")
	_, err = f.l.ImportSettlements(f.ctx, reg, settlementFile(pay.PaymentID+",settled,FT1,"+at+",,,"))
	payoutRule(t, err, domain.Forbidden, "role_not_allowed")

	rep, err = f.l.ImportSettlements(f.ctx, lan, settlementFile(
		pay.PaymentID+",settled,FT1,"+at+",1080001,,", // wrong amount
		pay.PaymentID+",settled,FT1,"+at+",1080000,,",
		pay.PaymentID+",failed,,"+at+",,account_closed,",
	))
	if err != nil {
		t.Fatal(err)
	}
	// The first line names the payment: it is refused for its amount, and
	// the other two answer the same payment differently.
	if rep.Applied != 0 || len(rep.Rejected) != 3 || rep.Rejected[0].Code != "amount_mismatch" ||
		rep.Rejected[1].Code != "duplicate_in_file" || rep.Rejected[2].Code != "duplicate_in_file" {
		t.Fatalf("report: %+v", rep)
	}
	rep, err = f.l.ImportSettlements(f.ctx, lan, settlementFile(pay.PaymentID+",settled,FT1,"+at+",1080000,,", pay.PaymentID+",settled,FT1,"+at+",1080000,,"))
	if err != nil || rep.Applied != 1 || rep.Unchanged != 1 {
		t.Fatalf("settle: %+v %v", rep, err)
	}
	rep, err = f.l.ImportSettlements(f.ctx, lan, settlementFile(pay.PaymentID+",settled,FT2,"+at+",,,", pay.PaymentID+"x,settled,FT2,"+at+",,,"))
	if err != nil || len(rep.Rejected) != 2 || rep.Rejected[0].Code != "settlement_conflict" || rep.Rejected[1].Code != "invalid_payment_id" {
		t.Fatalf("conflicting answer: %+v %v", rep, err)
	}
	// Posted singly, a refused answer is the error itself.
	_, err = f.l.RecordSettlement(f.ctx, lan, disbursement.Settlement{PaymentID: pay.PaymentID, Outcome: disbursement.OutcomeFailed, Reason: disbursement.ReasonAccountClosed, At: bankDay})
	payoutRule(t, err, domain.Conflict, "already_settled")
	// Returned after settlement: owed again, the expense reversed.
	if _, err := f.l.RecordSettlement(f.ctx, lan, disbursement.Settlement{PaymentID: pay.PaymentID, Outcome: disbursement.OutcomeReturned,
		Reference: "RT1", Reason: disbursement.ReasonAccountClosed, At: bankDay}); err != nil {
		t.Fatal(err)
	}
	f.wantBalances("returned", map[disbursement.Account]int64{})
	if !f.obligation(pay.Lines[0].Obligation.CitizenID, entitlement.SocialMonthly, jan24).Owed() {
		t.Fatal("a returned payment is not owed again")
	}
	if s, err := f.l.CloseRun(f.ctx, thu, "S1"); err != nil || s.Status != disbursement.RunClosed {
		t.Fatalf("close: %+v %v", s, err)
	}
}

func TestCloseWaitsForAnswers(t *testing.T) {
	f, _, _ := oneTransfer(t)
	f.approveAndRelease("S1")
	_, err := f.l.CloseRun(f.ctx, thu, "S1")
	payoutRule(t, err, domain.Conflict, "payments_pending")
}

// TestOffsetFailureRestoresRecovery: a payment that kept a recovery back
// fails; the recovery is due again, and kept back by the next run.
func TestOffsetFailureRestoresRecovery(t *testing.T) {
	f := newPayoutFixture(t)
	cid := f.person(1, "Nguyễn Văn An", registry.Male, 1950, ngocThuy)
	f.allowance(cid, domain.MustPeriod("2023-07"), "1.5")
	f.bank(cid, "Nguyễn Văn An", "VCB", "0011001234567")
	if _, err := f.l.RequestCorrection(f.ctx, lan, disbursement.RequestCorrection{CorrectionID: "K1", Kind: disbursement.CorrectRecovery, CitizenID: cid,
		Program: entitlement.SocialMonthly, Period: domain.MustPeriod("2023-12"), Amount: domain.VNDAmount(700_000), Mode: disbursement.RecoverByOffset,
		Reason: "paid twice in December", DocumentRef: "BB-12"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.ApproveCorrection(f.ctx, hoa, "K1"); err != nil {
		t.Fatal(err)
	}
	// January 540,000 is kept back whole (a payment that is never sent);
	// February 540,000 gives 160,000 more: 380,000 to the account.
	f.open("O1", []domain.Period{jan24, feb24}, entitlement.SocialMonthly)
	s := f.calculate("O1", NewStaticRoster(cid))
	if s.Payments != 2 || !s.Net.Equal(domain.VNDAmount(380_000)) || !s.Gross.Equal(domain.VNDAmount(1_080_000)) {
		t.Fatalf("O1: %+v", s)
	}
	f.approveAndRelease("O1")
	if file := f.bankFile("O1"); !strings.Contains(file, ",380000,VND,") || strings.Count(file, "\n") != 2 {
		t.Fatalf("bank file: %s", file)
	}
	// Expense 1,080,000 - 700,000 recovered = 380,000 ... all kept back
	// from the receivable; 380,000 in transit; January settled by offset.
	f.wantBalances("O1 released", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 380_000, disbursement.PaymentsInTransit: -380_000,
	})
	pay := f.paymentOf("O1", cid, disbursement.MethodBank)
	if _, err := f.l.RecordSettlement(f.ctx, lan, disbursement.Settlement{PaymentID: pay.PaymentID, Outcome: disbursement.OutcomeFailed,
		Reason: disbursement.ReasonNameMismatch, At: bankDay}); err != nil {
		t.Fatal(err)
	}
	// February's attempt is undone: 540,000 expense out, its 160,000 back
	// to the receivable.
	f.wantBalances("O1 failed", map[disbursement.Account]int64{
		disbursement.ProgramExpense: -160_000, disbursement.BeneficiaryReceivable: 160_000,
	})
	adj, err := f.l.LoadAdjustments(f.ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	if o := adj.State.Recoveries[0].Outstanding(func(string) bool { return false }); !o.Equal(domain.VNDAmount(160_000)) {
		t.Fatalf("outstanding after the failure: %s", o)
	}
	// The reissue (cash: the name did not match) keeps the 160,000 back
	// again: 380,000 in cash.
	f.open("O2", []domain.Period{jan24, feb24}, entitlement.SocialMonthly)
	s = f.calculate("O2", NewStaticRoster(cid))
	if s.Lines != 1 || !s.Net.Equal(domain.VNDAmount(380_000)) || f.paymentOf("O2", cid, disbursement.MethodCash) == nil {
		t.Fatalf("O2: %+v", s)
	}
}

func TestReversal(t *testing.T) {
	f, cid, pay := oneTransfer(t)
	f.approveAndRelease("S1")
	if _, err := f.l.RecordSettlement(f.ctx, lan, disbursement.Settlement{PaymentID: pay.PaymentID, Outcome: disbursement.OutcomeSettled, Reference: "FT1", At: bankDay}); err != nil {
		t.Fatal(err)
	}
	cmd := disbursement.RequestCorrection{CorrectionID: "V1", Kind: disbursement.CorrectReversal, CitizenID: cid, Program: entitlement.SocialMonthly,
		Period: feb24, Mode: disbursement.RecoverAsReceivable, Reason: "died 2024-01-28, reported late", DocumentRef: "TB-55"}
	c, err := f.l.RequestCorrection(f.ctx, lan, cmd)
	if err != nil || !c.Request.Amount.Equal(domain.VNDAmount(540_000)) {
		t.Fatalf("request: %+v %v", c, err)
	}
	// Rejected by a second person: no effect, and no approval afterwards.
	r, err := f.l.RejectCorrection(f.ctx, hoa, "V1", "the certificate says March")
	if err != nil || r.Status != disbursement.CorrectionRejectedStatus {
		t.Fatalf("reject: %+v %v", r, err)
	}
	_, err = f.l.ApproveCorrection(f.ctx, minh, "V1")
	payoutRule(t, err, domain.Conflict, "already_rejected")

	cmd.CorrectionID = "V2"
	if _, err := f.l.RequestCorrection(f.ctx, lan, cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.ApproveCorrection(f.ctx, hoa, "V2"); err != nil {
		t.Fatal(err)
	}
	// Approving again (a retry) writes nothing more.
	if _, err := f.l.ApproveCorrection(f.ctx, hoa, "V2"); err != nil {
		t.Fatal(err)
	}
	// 1,080,000 was paid; 540,000 of it is now owed back.
	f.wantBalances("reversed", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 540_000, disbursement.BeneficiaryReceivable: 540_000, disbursement.BankDisbursed: -1_080_000,
	})
	last, _ := f.obligation(cid, entitlement.SocialMonthly, feb24).Last()
	if last.Status != disbursement.StatusReversed {
		t.Fatalf("February: %s", last.Status)
	}
	// A reversed obligation is never paid again.
	f.open("S2", []domain.Period{feb24}, entitlement.SocialMonthly)
	if s := f.calculate("S2", NewStaticRoster(cid)); s.Lines != 0 || s.Skipped != 1 {
		t.Fatalf("S2: %+v", s)
	}
	// A reversal of something never paid is refused.
	cmd.CorrectionID, cmd.Period = "V3", mar24
	_, err = f.l.RequestCorrection(f.ctx, lan, cmd)
	payoutRule(t, err, domain.NotFound, "payment_not_found")
}

func TestTopUpIsPaidByTheNextRun(t *testing.T) {
	f, cid, pay := oneTransfer(t)
	f.approveAndRelease("S1")
	if _, err := f.l.RecordSettlement(f.ctx, lan, disbursement.Settlement{PaymentID: pay.PaymentID, Outcome: disbursement.OutcomeSettled, Reference: "FT1", At: bankDay}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.RequestCorrection(f.ctx, lan, disbursement.RequestCorrection{CorrectionID: "T1", Kind: disbursement.CorrectTopUp, CitizenID: cid,
		Program: entitlement.SocialMonthly, Period: jan24, Amount: domain.VNDAmount(180_000), Reason: "coefficient 2.0 from January", DocumentRef: "QD-7"}); err != nil {
		t.Fatal(err)
	}
	// Until approved it is owed to nobody.
	f.open("S2", []domain.Period{mar24}, entitlement.SocialMonthly)
	if _, err := f.l.ApproveCorrection(f.ctx, hoa, "T1"); err != nil {
		t.Fatal(err)
	}
	s := f.calculate("S2", NewStaticRoster(cid))
	// March 540,000 + the top-up 180,000.
	if s.Lines != 2 || !s.Net.Equal(domain.VNDAmount(720_000)) {
		t.Fatalf("S2: %+v", s)
	}
	ob, err := f.l.LoadObligation(f.ctx, disbursement.ObligationKey{CitizenID: cid, Program: entitlement.SocialMonthly, Period: jan24, TopUp: "T1"})
	if err != nil || len(ob.State.Attempts) != 1 || ob.State.Attempts[0].RunID != "S2" || ob.State.Attempts[0].Trace.Entitlement != "T1" {
		t.Fatalf("top-up obligation: %+v %v", ob.State, err)
	}
}
