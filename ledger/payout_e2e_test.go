package ledger

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// TestPayoutEndToEnd is the worked example of docs/disbursement.md: Long
// Bien pays January and February 2024 and the Tet gift in one run, one
// transfer fails and is reissued in cash, an overpayment is recovered from
// March, and a statement is reconciled. Every figure is computed by hand in
// the comments and checked against the books.
func TestPayoutEndToEnd(t *testing.T) {
	f := newPayoutFixture(t)
	const (
		gift  = entitlement.PresidentTetGift
		month = entitlement.SocialMonthly
	)
	// Four beneficiaries in Long Bien. Base level 360,000 VND (Decree
	// 20/2021/ND-CP) in January-March 2024.
	//   An   coefficient 1.5 -> 540,000 a month, gift 600,000, Vietcombank
	//   Binh coefficient 1.5 -> 540,000 a month, gift 600,000, BIDV
	//   Chi  coefficient 2.0 -> 720,000 a month, gift 300,000, cash to her
	//        daughter Dung (proxy), ward Giang Bien
	//   Em   coefficient 1.0 -> 360,000 a month, no gift, VietinBank
	an := f.person(1, "Nguyễn Văn An", registry.Male, 1950, ngocThuy)
	binh := f.person(2, "Trần Thị Bình", registry.Female, 1948, ngocThuy)
	chi := f.person(3, "Lê Thị Chi", registry.Female, 1935, giangBien)
	em := f.person(4, "Phạm Văn Em", registry.Male, 1940, giangBien)
	dung := registry.MakeCitizenID("001", registry.Female, 1968, 5)
	f.allowance(an, domain.MustPeriod("2023-07"), "1.5")
	f.allowance(binh, domain.MustPeriod("2023-07"), "1.5")
	f.allowance(chi, domain.MustPeriod("2023-07"), "2.0")
	f.allowance(em, domain.MustPeriod("2023-07"), "1.0")
	f.gift(an, 600_000)
	f.gift(binh, 600_000)
	f.gift(chi, 300_000)
	f.bank(an, "NGUYEN VAN AN", "VCB", "0011001234567")
	f.bank(binh, "Trần Thị Bình", "BIDV", "12010000456789")
	f.bank(em, "Phạm Văn Em", "CTG", "100867543210")
	f.proxy(chi, "Lê Thị Dung", dung)
	roster, err := f.l.ScanRoster(f.ctx)
	if err != nil {
		t.Fatal(err)
	}

	// --- Run 1: January + February + Tet gift, opened and calculated by Thu.
	f.open("LB-2024-T1", []domain.Period{jan24, feb24}, month, gift)
	s := f.calculate("LB-2024-T1", roster)
	// An 540,000 x 2 + 600,000 = 1,680,000; Binh the same; Chi (to Dung)
	// 720,000 x 2 + 300,000 = 1,740,000; Em 360,000 x 2 = 720,000.
	// 11 lines, 4 payments, 5,820,000 VND.
	if s.Status != disbursement.RunCalculated || s.Payments != 4 || s.Lines != 11 || !s.Net.Equal(domain.VNDAmount(5_820_000)) || s.Beneficiaries != 4 {
		t.Fatalf("run 1 calculated: %+v", s)
	}
	// Traced line by line: An's January line names entitlement E1 and the
	// decree of the base level.
	a1, _ := f.obligation(an, month, jan24).Last()
	if a1.Trace.Entitlement != "E1" || a1.Trace.Decree != "Decree 20/2021/ND-CP" || !a1.Gross.Equal(domain.VNDAmount(540_000)) {
		t.Fatalf("trace of An's January: %+v", a1.Trace)
	}
	f.wantBalances("run 1 calculated", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_820_000, disbursement.BeneficiaryPayable: -5_820_000,
	})
	// Calculating again is a read.
	if again := f.calculate("LB-2024-T1", roster); again.Revision != s.Revision {
		t.Fatal("a second calculation wrote something")
	}

	// Four eyes: Thu opened and calculated it; she cannot approve it even as
	// an administrator. Minh can.
	_, err = f.l.ApproveRun(f.ctx, Request{Actor: domain.Actor{UserID: thu.Actor.UserID, Role: domain.RoleAdmin}}, "LB-2024-T1")
	payoutRule(t, err, domain.Forbidden, "self_approval")
	s = f.approveAndRelease("LB-2024-T1")
	if s.Status != disbursement.RunReleased || s.ApprovedBy != minh.Actor.UserID {
		t.Fatalf("run 1 released: %+v", s)
	}
	f.wantBalances("run 1 released", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_820_000, disbursement.PaymentsInTransit: -5_820_000,
	})

	// The bank file holds the three transfers; the cash list of Giang Bien
	// holds Dung's 1,740,000; Ngoc Thuy has no cash this run.
	payAn := f.paymentOf("LB-2024-T1", an, disbursement.MethodBank)
	payBinh := f.paymentOf("LB-2024-T1", binh, disbursement.MethodBank)
	payEm := f.paymentOf("LB-2024-T1", em, disbursement.MethodBank)
	payDung := f.paymentOf("LB-2024-T1", dung, disbursement.MethodCash)
	desc := ",ANSINH LB-2024-T1 2024-01 2024-02\n"
	// Rows in citizen ID order, the order of the calculation: Em (born
	// 1940), An (1950), Binh (a woman, 1948).
	wantFile := strings.Join(disbursement.BankFileHeader, ",") + "\n" +
		payEm.PaymentID + ",Phạm Văn Em," + em + ",CTG,100867543210,720000,VND," + payEm.PaymentID + desc +
		payAn.PaymentID + ",NGUYEN VAN AN," + an + ",VCB,0011001234567,1680000,VND," + payAn.PaymentID + desc +
		payBinh.PaymentID + ",Trần Thị Bình," + binh + ",BIDV,12010000456789,1680000,VND," + payBinh.PaymentID + desc
	if got := f.bankFile("LB-2024-T1"); got != wantFile {
		t.Fatalf("bank file:\n%s\nwant:\n%s", got, wantFile)
	}
	wantCash := strings.Join(disbursement.CashListHeader, ",") + "\n" +
		payDung.PaymentID + ",Lê Thị Dung," + dung + ",yes," + chi + ",004,00121,1740000,VND,\n"
	if got := f.cashList("LB-2024-T1", giangBien); got != wantCash {
		t.Fatalf("cash list:\n%s\nwant:\n%s", got, wantCash)
	}
	if got := f.cashList("LB-2024-T1", ngocThuy); strings.Count(got, "\n") != 1 {
		t.Fatalf("Ngoc Thuy cash list should be empty: %s", got)
	}

	// --- The bank answers: An and Em settled, Binh's account is closed. One
	// line names a payment that does not exist, one is malformed.
	at := bankDay.Format("2006-01-02T15:04:05-07:00")
	answers := strings.Join(disbursement.SettlementHeader, ",") + "\n" +
		payAn.PaymentID + ",settled,FT24020001," + at + ",1680000,,\n" +
		payBinh.PaymentID + ",failed,," + at + ",,account_closed,tai khoan da dong\n" +
		payEm.PaymentID + ",settled,FT24020003," + at + ",720000,,\n" +
		"LB-2024-T1-001999999999-b000000,settled,FT24020004," + at + ",,,\n" +
		payEm.PaymentID + "x,settled,,nonsense,,,\n"
	rep, err := f.l.ImportSettlements(f.ctx, lan, strings.NewReader(answers))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 5 || rep.Applied != 3 || rep.Unchanged != 0 || len(rep.Rejected) != 2 ||
		rep.Rejected[0].Line != 5 || rep.Rejected[0].Code != "unknown_payment" || rep.Rejected[1].Line != 6 {
		t.Fatalf("settlement report: %+v", rep)
	}
	// The same file again changes nothing.
	rep, err = f.l.ImportSettlements(f.ctx, lan, strings.NewReader(answers))
	if err != nil || rep.Applied != 0 || rep.Unchanged != 3 || len(rep.Rejected) != 2 {
		t.Fatalf("second import: %+v %v", rep, err)
	}
	// Dung signed the cash list: the ward cashier posts receipt PT-0001.
	if _, err := f.l.RecordSettlement(f.ctx, lan, disbursement.Settlement{PaymentID: payDung.PaymentID, Outcome: disbursement.OutcomeSettled,
		Reference: "PT-0001", At: bankDay}); err != nil {
		t.Fatal(err)
	}
	// Expense: 5,820,000 - Binh's 1,680,000 back to owed = 4,140,000.
	// Bank: An 1,680,000 + Em 720,000 = 2,400,000 out. Cash: 1,740,000.
	f.wantBalances("run 1 answered", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 4_140_000, disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -1_740_000,
	})
	if !f.obligation(binh, gift, jan24).Owed() {
		t.Fatal("Binh's failed gift is not owed again")
	}
	// The run cannot close while... it can now: every line has an answer.
	if s, err := f.l.CloseRun(f.ctx, thu, "LB-2024-T1"); err != nil || s.Status != disbursement.RunClosed {
		t.Fatalf("close run 1: %+v %v", s, err)
	}

	// --- Run 2: the same scope again. Only Binh's three lines are owed; her
	// account failed as closed, so they are reissued in cash at Ngoc Thuy.
	f.open("LB-2024-T1-R", []domain.Period{jan24, feb24}, month, gift)
	s = f.calculate("LB-2024-T1-R", roster)
	if s.Payments != 1 || s.Lines != 3 || s.Skipped != 8 || !s.Net.Equal(domain.VNDAmount(1_680_000)) {
		t.Fatalf("run 2 calculated: %+v", s)
	}
	f.approveAndRelease("LB-2024-T1-R")
	payBinhCash := f.paymentOf("LB-2024-T1-R", binh, disbursement.MethodCash)
	if got := f.cashList("LB-2024-T1-R", ngocThuy); !strings.Contains(got, payBinhCash.PaymentID+",Trần Thị Bình,"+binh+",no,"+binh+",004,00118,1680000,VND,") {
		t.Fatalf("run 2 cash list: %s", got)
	}
	if _, err := f.l.RecordSettlement(f.ctx, lan, disbursement.Settlement{PaymentID: payBinhCash.PaymentID, Outcome: disbursement.OutcomeSettled,
		Reference: "PT-0002", At: bankDay}); err != nil {
		t.Fatal(err)
	}
	// Expense 4,140,000 + 1,680,000 = 5,820,000: everything owed for
	// January, February and the gift is paid. Cash 1,740,000 + 1,680,000.
	f.wantBalances("run 2 answered", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_820_000, disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -3_420_000,
	})
	// The registrar records that Binh's account is closed: cash from now on.
	f.ok(f.l.Beneficiary(f.ctx, reg, binh, registry.ChoosePaymentMethod{Method: registry.Cash}))
	f.ok(f.l.Beneficiary(f.ctx, reg, binh, registry.UnlinkBankAccount{Reason: "account closed (bank answer of 2024-01-20)"}))

	// --- Correction: An's coefficient is 1.0 from February (decision
	// QD-45/2024), he was paid 540,000 instead of 360,000: 180,000 to
	// recover from his next payments. Lan requests, Hoa approves.
	one := decimal.RequireFromString("1.0")
	f.ok(f.l.Entitlement(f.ctx, reg, an, entitlement.Adjust{EntitlementID: "E1", From: feb24, Coefficient: &one, Reason: "QD-45/2024"}))
	corr := disbursement.RequestCorrection{CorrectionID: "CORR-2024-001", Kind: disbursement.CorrectRecovery, CitizenID: an,
		Program: month, Period: feb24, Amount: domain.VNDAmount(180_000), Mode: disbursement.RecoverByOffset,
		Reason: "coefficient 1.0 from 2024-02, paid 1.5", DocumentRef: "QD-45/2024"}
	if _, err := f.l.RequestCorrection(f.ctx, lan, corr); err != nil {
		t.Fatal(err)
	}
	f.wantBalances("correction requested (no effect yet)", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_820_000, disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -3_420_000,
	})
	_, err = f.l.ApproveCorrection(f.ctx, Request{Actor: domain.Actor{UserID: lan.Actor.UserID, Role: domain.RoleAdmin}}, "CORR-2024-001")
	payoutRule(t, err, domain.Forbidden, "self_approval")
	if c, err := f.l.ApproveCorrection(f.ctx, hoa, "CORR-2024-001"); err != nil || c.Status != disbursement.CorrectionApprovedStatus {
		t.Fatalf("approve correction: %+v %v", c, err)
	}
	// Receivable 180,000; expense 5,820,000 - 180,000 = 5,640,000.
	f.wantBalances("correction approved", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_640_000, disbursement.BeneficiaryReceivable: 180_000,
		disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -3_420_000,
	})

	// --- Run 3: March. An is owed 360,000, of which 180,000 is kept back:
	// 180,000 to his account. Binh 540,000 cash, Chi 720,000 cash to Dung,
	// Em 360,000. Gross 1,980,000, net 1,800,000.
	f.open("LB-2024-03", []domain.Period{mar24}, month)
	s = f.calculate("LB-2024-03", roster)
	if s.Payments != 4 || s.Lines != 4 || !s.Gross.Equal(domain.VNDAmount(1_980_000)) || !s.Net.Equal(domain.VNDAmount(1_800_000)) {
		t.Fatalf("run 3 calculated: %+v", s)
	}
	f.approveAndRelease("LB-2024-03")
	r3 := f.run("LB-2024-03")
	var answers3 strings.Builder
	answers3.WriteString(strings.Join(disbursement.SettlementHeader, ",") + "\n")
	for i, id := range r3.PaymentIDs {
		fmt.Fprintf(&answers3, "%s,settled,R3-%d,%s,%s,,\n", id, i, at, r3.Payments[id].Net().Amount)
	}
	if rep, err := f.l.ImportSettlements(f.ctx, lan, strings.NewReader(answers3.String())); err != nil || rep.Applied != 4 {
		t.Fatalf("run 3 answers: %+v %v", rep, err)
	}
	// Expense 5,640,000 + 1,980,000 = 7,620,000; receivable 0 (kept back);
	// bank 2,400,000 + 180,000 + 360,000 = 2,940,000; cash 3,420,000 +
	// 540,000 + 720,000 = 4,680,000. 7,620,000 = 2,940,000 + 4,680,000.
	final := map[disbursement.Account]int64{
		disbursement.ProgramExpense: 7_620_000, disbursement.BankDisbursed: -2_940_000, disbursement.CashDisbursed: -4_680_000,
	}
	f.wantBalances("run 3 answered", final)
	adj, err := f.l.LoadAdjustments(f.ctx, an)
	if err != nil || !adj.State.Recoveries[0].Outstanding(func(string) bool { return false }).IsZero() {
		t.Fatalf("An's recovery is not fully kept back: %+v %v", adj.State, err)
	}

	// --- Reconciliation of the bank's statement for run 1: An's transfer
	// matches; Em's is missing; a line repeats An's payment; one names an
	// unknown reference.
	stmt := strings.Join(disbursement.StatementHeader, ",") + "\n" +
		payAn.PaymentID + ",1680000,2024-01-20,TX0001\n" +
		"LB-2024-T1-001999999999-b000000,500000,2024-01-20,TX0002\n" +
		payAn.PaymentID + ",1680000,2024-01-20,TX0003\n"
	rec, err := f.l.ImportStatement(f.ctx, lan, "STMT-2024-01-20", []string{"LB-2024-T1"}, strings.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := map[disbursement.MatchStatus]int{disbursement.Matched: 1, disbursement.UnknownReference: 1, disbursement.DuplicateLine: 1, "missing": 1}
	for k, v := range wantCounts {
		if rec.Counts[k] != v {
			t.Fatalf("reconciliation counts %v, want %v", rec.Counts, wantCounts)
		}
	}
	if len(rec.Missing) != 1 || rec.Missing[0].PaymentID != payEm.PaymentID || rec.Lines[0].Status != disbursement.Matched {
		t.Fatalf("reconciliation: %+v", rec)
	}
	// The same statement again is a read; a statement contradicting the
	// reconciled transfer of An is refused whole.
	again, err := f.l.ImportStatement(f.ctx, lan, "STMT-2024-01-20", []string{"LB-2024-T1"}, strings.NewReader(stmt))
	if err != nil || !again.Replayed || again.Counts[disbursement.Matched] != 1 {
		t.Fatalf("second import: %+v %v", again, err)
	}
	contra := strings.Join(disbursement.StatementHeader, ",") + "\n" + payAn.PaymentID + ",1680000,2024-01-21,TX9999\n" + payEm.PaymentID + ",720000,2024-01-21,TX0004\n"
	_, err = f.l.ImportStatement(f.ctx, lan, "STMT-2024-01-21", []string{"LB-2024-T1"}, strings.NewReader(contra))
	payoutRule(t, err, domain.Conflict, "contradicts_reconciled")
	if _, err := f.l.LoadReconciliation(f.ctx, "STMT-2024-01-21"); err == nil {
		t.Fatal("a refused statement left a reconciliation behind")
	}

	// Nothing of the reconciliation moved money; history was never edited.
	f.wantBalances("end", final)
	_, postings, err := f.l.TrialBalance(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Per beneficiary: An received 1,680,000 + 180,000 = 1,860,000, which is
	// what he was owed (540,000 + 360,000 + 600,000 + 360,000) = 1,860,000.
	out := domain.ZeroVND()
	for _, p := range postings {
		if p.CitizenID == an && (p.Account == disbursement.BankDisbursed || p.Account == disbursement.CashDisbursed) {
			out = out.Sub(p.Amount)
		}
	}
	if !out.Equal(domain.VNDAmount(1_860_000)) {
		t.Fatalf("An received %s, want 1,860,000", out)
	}
}
