package ledger

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
)

// People of the disbursement tests. Four eyes compares user IDs.
var (
	thu  = Request{Actor: domain.Actor{UserID: "thu.finance", Role: domain.RoleFinanceOfficer}}
	lan  = Request{Actor: domain.Actor{UserID: "lan.finance", Role: domain.RoleFinanceOfficer}}
	minh = Request{Actor: domain.Actor{UserID: "minh.approver", Role: domain.RoleApprover}}
	hoa  = Request{Actor: domain.Actor{UserID: "hoa.approver", Role: domain.RoleApprover}}
	reg  = Request{Actor: domain.Actor{UserID: "an.registrar", Role: domain.RoleRegistrar}}

	// payoutNow is 10:00 on 15 January 2024 in Hanoi, before Tet Giap Thin.
	payoutNow = time.Date(2024, 1, 15, 3, 0, 0, 0, time.UTC)
	bankDay   = time.Date(2024, 1, 20, 9, 30, 0, 0, domain.VietnamZone)

	jan24 = domain.MustPeriod("2024-01")
	feb24 = domain.MustPeriod("2024-02")
	mar24 = domain.MustPeriod("2024-03")
)

// Long Bien district and two of its wards.
const (
	longBien  = "004"
	ngocThuy  = "00118"
	giangBien = "00121"
)

type payoutFixture struct {
	t     testing.TB
	ctx   context.Context
	l     *Ledger
	store eventstore.Store
}

func newPayoutFixture(t testing.TB) *payoutFixture {
	t.Helper()
	store, err := pebble.Open(t.Name(), pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := DefaultConfig()
	cfg.Clock = func() time.Time { return payoutNow }
	f := &payoutFixture{t: t, ctx: context.Background(), l: New(store, cfg), store: store}
	if _, err := f.l.SeedCatalogue(f.ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *payoutFixture) ok(_ Result, err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// person registers a beneficiary in Long Bien.
func (f *payoutFixture) person(serial int, name string, sex registry.Sex, born int, ward string) string {
	f.t.Helper()
	cid := registry.MakeCitizenID("001", sex, born, serial)
	f.ok(f.l.Register(f.ctx, reg, registry.Register{CitizenID: cid, FullName: name, DateOfBirth: domain.MustDate(itoa4(born) + "-05-01"), Sex: sex,
		Address: registry.AddressInput{DistrictCode: longBien, WardCode: ward}, Category: registry.SocialProtection}))
	return cid
}

func itoa4(n int) string { return decimal.NewFromInt(int64(n)).String() }

// allowance grants the monthly social allowance at a coefficient.
func (f *payoutFixture) allowance(cid string, from domain.Period, coefficient string) {
	f.t.Helper()
	c := decimal.RequireFromString(coefficient)
	f.ok(f.l.Entitlement(f.ctx, reg, cid, entitlement.Grant{Program: entitlement.SocialMonthly, Start: from, Coefficient: &c}))
}

// gift grants the President's Tet gift of 2024.
func (f *payoutFixture) gift(cid string, amount int64) {
	f.t.Helper()
	m := domain.VNDAmount(amount)
	f.ok(f.l.Entitlement(f.ctx, reg, cid, entitlement.Grant{Program: entitlement.PresidentTetGift, Start: jan24, Amount: &m}))
}

// bank links an account in the beneficiary's name and pays by transfer.
func (f *payoutFixture) bank(cid, holder, bankCode, number string) {
	f.t.Helper()
	f.ok(f.l.Beneficiary(f.ctx, reg, cid, registry.LinkBankAccount{BankCode: bankCode, AccountNumber: number, HolderName: holder}))
	f.ok(f.l.Beneficiary(f.ctx, reg, cid, registry.ChoosePaymentMethod{Method: registry.BankTransfer}))
}

// proxy authorizes someone to receive for the beneficiary for a year.
func (f *payoutFixture) proxy(cid, name, proxyCID string) {
	f.t.Helper()
	f.ok(f.l.Beneficiary(f.ctx, reg, cid, registry.AuthorizeProxy{FullName: name, CitizenID: proxyCID, Relationship: "con gái",
		Reason: registry.IllnessOrImmobility, ValidFrom: domain.MustDate("2024-01-01"), ValidTo: domain.MustDate("2024-12-31"), DocumentRef: "UQ-2024-017"}))
}

func (f *payoutFixture) open(id string, periods []domain.Period, programs ...string) RunSummary {
	f.t.Helper()
	s, err := f.l.OpenRun(f.ctx, thu, disbursement.OpenRun{RunID: id, Scope: disbursement.Scope{Periods: periods, Programs: programs, Districts: []string{longBien}}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.asStored("open", s)
	return s
}

// asStored checks that a run command's summary, built from the state the
// command left, is what a fresh load of the run's stream gives (the
// position aside: a release reports the last payment event it wrote).
func (f *payoutFixture) asStored(step string, s RunSummary) {
	f.t.Helper()
	stored, err := f.l.RunStatus(f.ctx, s.RunID)
	if err != nil {
		f.t.Fatal(err)
	}
	s.Position, stored.Position = eventstore.Position{}, eventstore.Position{}
	if !reflect.DeepEqual(s, stored) {
		f.t.Fatalf("%s: summary\n%+v\nfrom the stream\n%+v", step, s, stored)
	}
}

func (f *payoutFixture) calculate(id string, roster Roster) RunSummary {
	f.t.Helper()
	s, err := f.l.CalculateRun(f.ctx, thu, id, roster, CalculateOptions{PageSize: 2})
	if err != nil {
		f.t.Fatal(err)
	}
	f.asStored("calculate", s)
	return s
}

func (f *payoutFixture) approveAndRelease(id string) RunSummary {
	f.t.Helper()
	approved, err := f.l.ApproveRun(f.ctx, minh, id)
	if err != nil {
		f.t.Fatal(err)
	}
	f.asStored("approve", approved)
	s, err := f.l.ReleaseRun(f.ctx, thu, id)
	if err != nil {
		f.t.Fatal(err)
	}
	f.asStored("release", s)
	// Read-your-writes: the position a release reports covers the payment
	// events it wrote after the run event.
	after, err := f.store.ReadAll(f.ctx, s.Position, eventstore.MaxReadLimit)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, ev := range after {
		if ev.Type == "PaymentReleased.v1" {
			f.t.Fatalf("release of %s reported position %s, but a payment it released is at %s", id, s.Position, ev.Position)
		}
	}
	return s
}

func (f *payoutFixture) bankFile(id string) string {
	f.t.Helper()
	var b bytes.Buffer
	if err := f.l.BankFile(f.ctx, id, &b); err != nil {
		f.t.Fatal(err)
	}
	return b.String()
}

func (f *payoutFixture) cashList(id, ward string) string {
	f.t.Helper()
	var b bytes.Buffer
	if err := f.l.CashList(f.ctx, id, ward, &b); err != nil {
		f.t.Fatal(err)
	}
	return b.String()
}

// run loads a run's state.
func (f *payoutFixture) run(id string) disbursement.Run {
	f.t.Helper()
	ld, err := f.l.LoadRun(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return ld.State
}

// paymentOf finds the payment of a run that pays payee by method.
func (f *payoutFixture) paymentOf(runID, payeeCID string, m disbursement.Method) *disbursement.RunPayment {
	f.t.Helper()
	r := f.run(runID)
	for _, id := range r.PaymentIDs {
		if p := r.Payments[id]; p.Payee.CitizenID == payeeCID && p.Payee.Method == m {
			return p
		}
	}
	f.t.Fatalf("run %s has no %s payment to %s", runID, m, payeeCID)
	return nil
}

// balances folds the whole log into a trial balance and checks it nets to
// zero.
func (f *payoutFixture) balances() *disbursement.TrialBalance {
	f.t.Helper()
	tb, _, err := f.l.TrialBalance(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return tb
}

// wantBalances compares every account with a hand computation (dong; debit
// positive).
func (f *payoutFixture) wantBalances(step string, want map[disbursement.Account]int64) {
	f.t.Helper()
	tb := f.balances()
	for _, a := range disbursement.Accounts {
		if got := tb.Balance(a); !got.Equal(domain.VNDAmount(want[a])) {
			f.t.Errorf("%s: %s = %s, want %d", step, a, got.Amount, want[a])
		}
	}
}

func (f *payoutFixture) obligation(cid, prog string, p domain.Period) disbursement.Obligation {
	f.t.Helper()
	ld, err := f.l.LoadObligation(f.ctx, disbursement.ObligationKey{CitizenID: cid, Program: prog, Period: p})
	if err != nil {
		f.t.Fatal(err)
	}
	return ld.State
}

func payoutRule(t testing.TB, err error, kind domain.Kind, code string) {
	t.Helper()
	re, ok := domain.AsRuleError(err)
	if !ok {
		t.Fatalf("want RuleError %s/%s, got %v", kind, code, err)
	}
	if re.Kind != kind || re.Code != code {
		t.Fatalf("want RuleError %s/%s, got %s/%s: %s", kind, code, re.Kind, re.Code, re.Message)
	}
}
