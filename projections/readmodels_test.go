package projections

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	espebble "github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections/audit"
)

// The read models are checked against the worked example of
// docs/disbursement.md, driven through the real ledger (so the events are
// exactly those the service writes), with two more people in another
// district. Every expected figure is computed by hand in the comments.

var (
	registrar = ledger.Request{Actor: domain.Actor{UserID: "an.registrar", Role: domain.RoleRegistrar}}
	thu       = ledger.Request{Actor: domain.Actor{UserID: "thu.finance", Role: domain.RoleFinanceOfficer}}
	lan       = ledger.Request{Actor: domain.Actor{UserID: "lan.finance", Role: domain.RoleFinanceOfficer}}
	minh      = ledger.Request{Actor: domain.Actor{UserID: "minh.approver", Role: domain.RoleApprover}}
	hoa       = ledger.Request{Actor: domain.Actor{UserID: "hoa.approver", Role: domain.RoleApprover}}

	scenarioNow = time.Date(2024, 1, 15, 3, 0, 0, 0, time.UTC) // 10:00 in Hanoi
	bankDay     = time.Date(2024, 1, 20, 9, 30, 0, 0, domain.VietnamZone)

	nov23 = domain.MustPeriod("2023-11")
	dec23 = domain.MustPeriod("2023-12")
	jan24 = domain.MustPeriod("2024-01")
	feb24 = domain.MustPeriod("2024-02")
	mar24 = domain.MustPeriod("2024-03")
)

const (
	longBien   = "004"
	ngocThuy   = "00118"
	giangBien  = "00121"
	hoanKiem   = "002"
	dongXuan   = "00040"
	monthly    = entitlement.SocialMonthly
	tetGift    = entitlement.PresidentTetGift
	vnd        = domain.VND
	noBankWant = false
)

type scenario struct {
	t      *testing.T
	ctx    context.Context
	store  *espebble.Store
	l      *ledger.Ledger
	codec  *domain.Codec
	set    *Set
	sealer *audit.Sealer
	key    ed25519.PrivateKey
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	store := openStore(t)
	cfg := ledger.DefaultConfig()
	cfg.Clock = func() time.Time { return scenarioNow }
	s := &scenario{t: t, ctx: context.Background(), store: store, l: ledger.New(store, cfg)}
	s.codec = s.l.Codec()
	if _, err := s.l.SeedCatalogue(s.ctx); err != nil {
		t.Fatal(err)
	}
	db := openMemDB(t)
	set, err := NewSet(db, store, s.codec, SetOptions{Runner: Options{CountablePositions: true, MaxWait: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	s.set = set
	runSet(t, set)
	_, s.key, _ = ed25519.GenerateKey(nil)
	if s.sealer, err = audit.NewSealer(store, db.Pebble(), ComponentPrefix("sealer"), s.key, audit.SealerOptions{Every: 50}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.sealer.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("sealer: %v", err)
		}
	})
	return s
}

func runSet(t *testing.T, set *Set) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
}

// sync waits until the read models have applied everything written so far.
func (s *scenario) sync() eventstore.Position {
	s.t.Helper()
	head, err := s.store.Head(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	waitFor(s.t, s.set, head)
	return head
}

func (s *scenario) ok(_ ledger.Result, err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) person(serial int, name string, sex registry.Sex, born int, district, ward string, cat registry.Category) string {
	s.t.Helper()
	cid := registry.MakeCitizenID("001", sex, born, serial)
	s.ok(s.l.Register(s.ctx, registrar, registry.Register{CitizenID: cid, FullName: name, DateOfBirth: domain.MustDate(fmt.Sprintf("%d-05-01", born)),
		Sex: sex, Address: registry.AddressInput{DistrictCode: district, WardCode: ward}, Category: cat}))
	return cid
}

func (s *scenario) allowance(cid string, from domain.Period, coefficient string) {
	s.t.Helper()
	c := decimal.RequireFromString(coefficient)
	s.ok(s.l.Entitlement(s.ctx, registrar, cid, entitlement.Grant{Program: monthly, Start: from, Coefficient: &c}))
}

func (s *scenario) gift(cid string, amount int64) {
	s.t.Helper()
	m := domain.VNDAmount(amount)
	s.ok(s.l.Entitlement(s.ctx, registrar, cid, entitlement.Grant{Program: tetGift, Start: jan24, Amount: &m}))
}

func (s *scenario) bank(cid, holder, bankCode, number string) {
	s.t.Helper()
	s.ok(s.l.Beneficiary(s.ctx, registrar, cid, registry.LinkBankAccount{BankCode: bankCode, AccountNumber: number, HolderName: holder}))
	s.ok(s.l.Beneficiary(s.ctx, registrar, cid, registry.ChoosePaymentMethod{Method: registry.BankTransfer}))
}

// run opens, calculates (with the read models as the roster), approves and
// releases a Long Bien run.
func (s *scenario) run(id string, periods []domain.Period, programs ...string) {
	s.t.Helper()
	if _, err := s.l.OpenRun(s.ctx, thu, disbursement.OpenRun{RunID: id, Scope: disbursement.Scope{Periods: periods, Programs: programs, Districts: []string{longBien}}}); err != nil {
		s.t.Fatal(err)
	}
	s.sync() // the roster is the registry read model: it must have every registration
	if _, err := s.l.CalculateRun(s.ctx, thu, id, s.set, ledger.CalculateOptions{PageSize: 2}); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.l.ApproveRun(s.ctx, minh, id); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.l.ReleaseRun(s.ctx, thu, id); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) paymentOf(runID, payee string, m disbursement.Method) string {
	s.t.Helper()
	ld, err := s.l.LoadRun(s.ctx, runID)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, id := range ld.State.PaymentIDs {
		if p := ld.State.Payments[id]; p.Payee.CitizenID == payee && p.Payee.Method == m {
			return id
		}
	}
	s.t.Fatalf("run %s has no %s payment to %s", runID, m, payee)
	return ""
}

func (s *scenario) settle(paymentID, ref string) {
	s.t.Helper()
	if _, err := s.l.RecordSettlement(s.ctx, lan, disbursement.Settlement{PaymentID: paymentID, Outcome: disbursement.OutcomeSettled, Reference: ref, At: bankDay}); err != nil {
		s.t.Fatal(err)
	}
}

func vndOf(n int64) domain.Money { return domain.VNDAmount(n) }

func money(t *testing.T, what string, got domain.Money, want int64) {
	t.Helper()
	if !got.Equal(vndOf(want)) {
		t.Errorf("%s: %s, want %d VND", what, got, want)
	}
}

func periodsOf(ps ...domain.Period) string { return fmt.Sprint(ps) }

func (s *scenario) wantBooks(when string, want map[disbursement.Account]int64) {
	s.t.Helper()
	tb, err := s.set.TrialBalance(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	checkBooks(s.t, when, tb.TrialBalance, want)
}

func checkBooks(t *testing.T, when string, tb TrialBalance, want map[disbursement.Account]int64) {
	t.Helper()
	if !tb.Balanced || !tb.Total.IsZero() {
		t.Errorf("%s: trial balance does not net to zero: %s", when, tb.Total)
	}
	got := map[disbursement.Account]int64{}
	for _, a := range tb.Accounts {
		if !a.Balance.IsZero() {
			got[a.Account] = a.Balance.Amount.IntPart()
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: books %v, want %v", when, got, want)
	}
}

func TestReadModelsWorkedExample(t *testing.T) {
	s := newScenario(t)
	an := s.person(1, "Nguyễn Văn An", registry.Male, 1950, longBien, ngocThuy, registry.SocialProtection)
	binh := s.person(2, "Trần Thị Bình", registry.Female, 1948, longBien, ngocThuy, registry.SocialProtection)
	chi := s.person(3, "Lê Thị Chi", registry.Female, 1935, longBien, giangBien, registry.SocialProtection)
	em := s.person(4, "Phạm Văn Em", registry.Male, 1940, longBien, giangBien, registry.SocialProtection)
	anh := s.person(5, "Nguyễn Văn Anh", registry.Male, 1945, hoanKiem, dongXuan, registry.Meritorious)
	dao := s.person(6, "Đỗ Thị Đào", registry.Female, 1930, hoanKiem, dongXuan, registry.MartyrWorship)
	dung := registry.MakeCitizenID("001", registry.Female, 1968, 7)
	// An's allowance starts in November 2023, before the ledger paid
	// anything: those two months stay owed (no run covers them).
	s.allowance(an, nov23, "1.5")
	s.allowance(binh, jan24, "1.5")
	s.allowance(chi, jan24, "2.0")
	s.allowance(em, jan24, "1.0")
	s.gift(an, 600_000)
	s.gift(binh, 600_000)
	s.gift(chi, 300_000)
	s.bank(an, "NGUYEN VAN AN", "VCB", "0011001234567")
	s.bank(binh, "Trần Thị Bình", "BIDV", "12010000456789")
	s.bank(em, "Phạm Văn Em", "CTG", "100867543210")
	s.ok(s.l.Beneficiary(s.ctx, registrar, chi, registry.AuthorizeProxy{FullName: "Lê Thị Dung", CitizenID: dung, Relationship: "con gái",
		Reason: registry.IllnessOrImmobility, ValidFrom: domain.MustDate("2024-01-01"), ValidTo: domain.MustDate("2024-12-31"), DocumentRef: "UQ-2024-017"}))
	s.ok(s.l.Beneficiary(s.ctx, registrar, dao, registry.RecordDeath{DateOfDeath: domain.MustDate("2024-01-10"), DocumentRef: "KT-2024-001"}))
	s.sync()

	t.Run("beneficiary record", func(t *testing.T) {
		b, _, err := s.set.Beneficiary(s.ctx, an)
		if err != nil {
			t.Fatal(err)
		}
		// Masked: 13 digits, the last four shown.
		if b.FullName != "Nguyễn Văn An" || b.Status != StatusActive || b.BankAccount == nil ||
			b.BankAccount.AccountNumber != "*********4567" || b.PaymentMethod != registry.BankTransfer ||
			b.Address.DistrictName != "Quận Long Biên" {
			t.Errorf("record: %+v", b)
		}
		if len(b.Entitlements) != 2 {
			t.Fatalf("entitlements: %+v", b.Entitlements)
		}
		e1, e2 := b.Entitlements[0], b.Entitlements[1]
		if e1.ID != "E1" || e1.Program != monthly || e1.Start.Period != nov23 || !e1.End.IsZero() ||
			len(e1.Terms) != 1 || e1.Terms[0].Coefficient.String() != "1.5" {
			t.Errorf("E1: %+v", e1)
		}
		if e2.ID != "E2" || e2.Program != tetGift || e2.Kind != entitlement.Gift || !e2.Terms[0].Amount.Equal(vndOf(600_000)) {
			t.Errorf("E2: %+v", e2)
		}
		c, _, err := s.set.Beneficiary(s.ctx, chi)
		if err != nil || len(c.Proxies) != 1 || c.Proxies[0].CitizenID != dung || !c.Proxies[0].RevokedFrom.Date.IsZero() {
			t.Errorf("Chi's proxy: %+v %v", c.Proxies, err)
		}
		d, _, err := s.set.Beneficiary(s.ctx, dao)
		if err != nil || d.Status != StatusDeceased || d.Exit == nil || d.Exit.LastPeriod.Period != jan24 {
			t.Errorf("Dao: %+v %v", d, err)
		}
		if _, _, err := s.set.Beneficiary(s.ctx, dung); !errors.Is(err, ErrNotFound) {
			t.Errorf("a proxy is not a beneficiary: %v", err)
		}
	})

	t.Run("search", func(t *testing.T) {
		yes, no := true, false
		cases := []struct {
			name string
			q    SearchQuery
			want []string
		}{
			// "NGUYEN VAN AN\x00" sorts before "NGUYEN VAN ANH\x00".
			{"name with diacritics", SearchQuery{Text: "Nguyễn Văn An"}, []string{an, anh}},
			{"name without diacritics", SearchQuery{Text: "Nguyen Van An"}, []string{an, anh}},
			{"lower case", SearchQuery{Text: "nguyen van an"}, []string{an, anh}},
			{"from the middle name", SearchQuery{Text: "van an"}, []string{an, anh}},
			{"one word, every name that has it", SearchQuery{Text: "Văn"}, []string{an, anh, em}},
			{"đ folds to d", SearchQuery{Text: "do thi dao"}, []string{dao}},
			{"ordered by the matching words", SearchQuery{Text: "thi"}, []string{binh, chi, dao}},
			{"district", SearchQuery{District: longBien}, sorted(an, binh, chi, em)},
			{"ward", SearchQuery{Ward: giangBien}, sorted(chi, em)},
			{"category", SearchQuery{Category: string(registry.MartyrWorship)}, []string{dao}},
			{"status", SearchQuery{Status: StatusDeceased}, []string{dao}},
			{"status and district", SearchQuery{Status: StatusActive, District: hoanKiem}, []string{anh}},
			{"name and district", SearchQuery{Text: "Nguyen", District: longBien}, []string{an}},
			{"without a bank account", SearchQuery{District: longBien, HasBankAccount: &no}, []string{chi}},
			{"with a bank account", SearchQuery{HasBankAccount: &yes}, sorted(an, binh, em)},
			{"citizen ID", SearchQuery{Text: an}, []string{an}},
			{"nobody", SearchQuery{Text: "Hoàng"}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.q.Limit = 50
				res, err := s.set.Search(s.ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if got := hitIDs(res.Items); !slices.Equal(got, tc.want) || res.Next != "" {
					t.Errorf("found %v (next %q), want %v", got, res.Next, tc.want)
				}
			})
		}
		t.Run("pages", func(t *testing.T) {
			p1, err := s.set.Search(s.ctx, SearchQuery{Text: "thi", Limit: 2})
			if err != nil || !slices.Equal(hitIDs(p1.Items), []string{binh, chi}) || p1.Next == "" {
				t.Fatalf("page 1: %v %q %v", hitIDs(p1.Items), p1.Next, err)
			}
			p2, err := s.set.Search(s.ctx, SearchQuery{Text: "thi", Limit: 2, Cursor: p1.Next})
			if err != nil || !slices.Equal(hitIDs(p2.Items), []string{dao}) || p2.Next != "" {
				t.Fatalf("page 2: %v %q %v", hitIDs(p2.Items), p2.Next, err)
			}
			// A cursor of another query is refused.
			if _, err := s.set.Search(s.ctx, SearchQuery{Text: "van", Limit: 2, Cursor: p1.Next}); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("foreign cursor: %v", err)
			}
		})
		t.Run("limits", func(t *testing.T) {
			for _, q := range []SearchQuery{{Limit: 0}, {Limit: MaxPageLimit + 1}, {Text: string(make([]rune, MaxQueryRunes+1)), Limit: 1}, {Text: "1234567890123", Limit: 1}} {
				if _, err := s.set.Search(s.ctx, q); err == nil {
					t.Errorf("%+v accepted", q)
				}
			}
		})
	})

	t.Run("roster", func(t *testing.T) {
		ids, err := s.set.CitizenIDs(s.ctx, []string{longBien}, "", 3)
		if err != nil || !slices.Equal(ids, sorted(an, binh, chi, em)[:3]) {
			t.Errorf("first page: %v %v", ids, err)
		}
		ids, err = s.set.CitizenIDs(s.ctx, []string{longBien, hoanKiem}, sorted(an, binh, chi, em)[2], 10)
		want := sorted(an, binh, chi, em, anh, dao)
		i := slices.Index(want, sorted(an, binh, chi, em)[2])
		if err != nil || !slices.Equal(ids, want[i+1:]) {
			t.Errorf("after: %v, want %v (%v)", ids, want[i+1:], err)
		}
	})

	t.Run("district report before any payment", func(t *testing.T) {
		rep := s.report(t)
		lb, hk := rep.district(t, longBien), rep.district(t, hoanKiem)
		// Long Bien: 4 active, all social protection, 3 with an account.
		if lb.Active != 4 || lb.ByCategory[registry.SocialProtection] != 4 || lb.WithBank != 3 || lb.BankAccountShare != "75.00" ||
			lb.DistrictName != "Quận Long Biên" || lb.Catalogue != registry.AdminCatalogueVersion {
			t.Errorf("Long Bien: %+v", lb.DistrictCounts)
		}
		// Hoan Kiem: Anh active (meritorious), Dao deceased; nobody banked.
		if hk.Active != 1 || hk.Deceased != 1 || hk.ByCategory[registry.Meritorious] != 1 || len(hk.ByCategory) != 1 || hk.BankAccountShare != "0.00" {
			t.Errorf("Hoan Kiem: %+v", hk.DistrictCounts)
		}
		// City: 3 of 5 active people have an account.
		if rep.City.Active != 5 || rep.City.WithBank != 3 || rep.City.BankAccountShare != "60.00" {
			t.Errorf("city: %+v", rep.City.DistrictCounts)
		}
	})

	// --- Run 1: January, February and the Tet gift. Hand-computed, as in
	// docs/disbursement.md: An 540,000 x 2 + 600,000 = 1,680,000; Binh the
	// same; Chi (to Dung) 720,000 x 2 + 300,000 = 1,740,000; Em 360,000 x 2
	// = 720,000. 11 lines, 4 payments, 5,820,000 VND.
	s.run("LB-2024-T1", []domain.Period{jan24, feb24}, monthly, tetGift)
	s.sync()
	s.wantBooks("run 1 released", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_820_000, disbursement.PaymentsInTransit: -5_820_000,
	})
	t.Run("balance in transit", func(t *testing.T) {
		b := s.balance(t, an, feb24)
		// Accrued: Nov, Dec, Jan, Feb at 540,000 and the gift 600,000.
		money(t, "accrued", b.Accrued.Gross, 4*540_000+600_000)
		if got := periodsOf(b.Accrued.Periods...); got != periodsOf(nov23, dec23, jan24, feb24) {
			t.Errorf("accrued periods %s", got)
		}
		money(t, "in transit", b.InTransit.Net, 540_000*2+600_000)
		money(t, "paid", b.Paid.Net, 0)
		// Outstanding: November and December, never issued.
		money(t, "outstanding", b.Outstanding.Gross, 2*540_000)
		if got := periodsOf(b.Outstanding.Periods...); got != periodsOf(nov23, dec23) {
			t.Errorf("outstanding periods %s", got)
		}
	})
	t.Run("run summary", func(t *testing.T) {
		r, _, err := s.set.PayoutRun(s.ctx, "LB-2024-T1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != disbursement.RunReleased || r.Payments != 4 || r.Lines != 11 || !r.Net.Equal(vndOf(5_820_000)) ||
			r.OpenedBy != "thu.finance" || r.ApprovedBy != "minh.approver" || r.Beneficiaries != 4 ||
			r.ByStatus[disbursement.StatusReleased].Lines != 11 || len(r.ByStatus) != 1 {
			t.Errorf("run 1: %+v", r)
		}
		if _, _, err := s.set.PayoutRun(s.ctx, "NO-SUCH-RUN"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing run: %v", err)
		}
	})

	// The bank answers: An and Em settled, Binh's account is closed; the
	// ward cashier pays Dung (receipt PT-0001).
	payAn := s.paymentOf("LB-2024-T1", an, disbursement.MethodBank)
	payBinh := s.paymentOf("LB-2024-T1", binh, disbursement.MethodBank)
	payEm := s.paymentOf("LB-2024-T1", em, disbursement.MethodBank)
	payDung := s.paymentOf("LB-2024-T1", dung, disbursement.MethodCash)
	s.settle(payAn, "FT24020001")
	s.settle(payEm, "FT24020003")
	if _, err := s.l.RecordSettlement(s.ctx, lan, disbursement.Settlement{PaymentID: payBinh, Outcome: disbursement.OutcomeFailed,
		Reason: disbursement.ReasonAccountClosed, Detail: "tai khoan da dong", At: bankDay}); err != nil {
		t.Fatal(err)
	}
	s.settle(payDung, "PT-0001")
	answered := s.sync()
	// Expense 5,820,000 - Binh's 1,680,000 = 4,140,000. Bank: An 1,680,000
	// + Em 720,000. Cash: Chi's 1,740,000 to Dung.
	s.wantBooks("run 1 answered", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 4_140_000, disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -1_740_000,
	})
	t.Run("failed payment history", func(t *testing.T) {
		h, err := s.set.History(s.ctx, binh, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		// Gift (January), monthly January and February: stream order puts
		// PRESIDENT_TET_GIFT before SOCIAL_MONTHLY.
		if len(h.Items) != 3 || h.Next != "" {
			t.Fatalf("%d rows, next %q", len(h.Items), h.Next)
		}
		wantLines := []struct {
			program string
			period  domain.Period
			gross   int64
		}{{tetGift, jan24, 600_000}, {monthly, jan24, 540_000}, {monthly, feb24, 540_000}}
		for i, row := range h.Items {
			w := wantLines[i]
			if row.Obligation.Program != w.program || row.Obligation.Period != w.period || !row.Gross.Equal(vndOf(w.gross)) ||
				row.Status != disbursement.StatusFailed || row.Reason != string(disbursement.ReasonAccountClosed) ||
				row.Detail != "tai khoan da dong" || row.Attempt != 1 || row.PaymentID != payBinh ||
				row.Payee.Method != disbursement.MethodBank || row.Payee.BankCode != "BIDV" ||
				row.Payee.AccountMasked != "**********6789" || !row.AnsweredAt.Equal(bankDay) {
				t.Errorf("row %d: %+v", i, row)
			}
		}
		// Paged by one: the same rows.
		var paged []PaymentRow
		for cursor := ""; ; {
			p, err := s.set.History(s.ctx, binh, cursor, 1)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, p.Items...)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if len(paged) != 3 || paged[2].Obligation != h.Items[2].Obligation {
			t.Errorf("paged history: %+v", paged)
		}
	})
	t.Run("balance after a failure", func(t *testing.T) {
		b := s.balance(t, binh, feb24)
		money(t, "accrued", b.Accrued.Gross, 1_680_000)
		money(t, "paid", b.Paid.Net, 0)
		money(t, "in transit", b.InTransit.Net, 0)
		// Failed: owed again.
		money(t, "outstanding", b.Outstanding.Gross, 1_680_000)
		if got := periodsOf(b.Outstanding.Periods...); got != periodsOf(jan24, feb24) {
			t.Errorf("outstanding periods %s", got)
		}
		a := s.balance(t, an, feb24)
		money(t, "An paid", a.Paid.Net, 1_680_000)
		money(t, "An in transit", a.InTransit.Net, 0)
		money(t, "An bank_disbursed", a.Accounts[disbursement.BankDisbursed], -1_680_000)
	})
	t.Run("run payments", func(t *testing.T) {
		p, err := s.set.RunPayments(s.ctx, "LB-2024-T1", "", 50)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]RunPayment{}
		for _, x := range p.Items {
			byID[x.PaymentID] = x
		}
		if len(p.Items) != 4 {
			t.Fatalf("%d payments", len(p.Items))
		}
		d := byID[payDung]
		if d.Payee.Name != "Lê Thị Dung" || !d.Payee.Proxy || d.Payee.Method != disbursement.MethodCash || len(d.Lines) != 3 ||
			!d.Net.Equal(vndOf(1_740_000)) || d.Status != string(disbursement.StatusSettled) || d.Lines[0].Obligation.CitizenID != chi {
			t.Errorf("Dung's payment: %+v", d)
		}
		if b := byID[payBinh]; b.Status != string(disbursement.StatusFailed) || !b.Gross.Equal(vndOf(1_680_000)) {
			t.Errorf("Binh's payment: %+v", b)
		}
		// Two per page: the same four payments, each with all its lines.
		var ids []string
		for cursor := ""; ; {
			pg, err := s.set.RunPayments(s.ctx, "LB-2024-T1", cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range pg.Items {
				ids = append(ids, x.PaymentID)
				if len(x.Lines) != len(byID[x.PaymentID].Lines) {
					t.Errorf("%s split across pages", x.PaymentID)
				}
			}
			if cursor = pg.Next; cursor == "" {
				break
			}
		}
		if !slices.Equal(ids, sorted(payAn, payBinh, payEm, payDung)) {
			t.Errorf("paged payments %v", ids)
		}
	})
	t.Run("district report after run 1", func(t *testing.T) {
		lb := s.report(t).district(t, longBien)
		if len(lb.Periods) != 2 {
			t.Fatalf("periods %+v", lb.Periods)
		}
		jan, feb := lb.Periods[0], lb.Periods[1]
		// January: An 2 lines (540,000 + 600,000), Binh 2 (the same), Chi
		// 2 (720,000 + 300,000), Em 1 (360,000): 7 lines, 3,660,000. Paid
		// An, Chi, Em: 5 lines, 1,140,000 + 1,020,000 + 360,000 =
		// 2,520,000. Failed Binh's 2: 1,140,000. 5/7 = 71.43%.
		wantPeriod(t, jan, jan24, 7, 3_660_000, 5, 2_520_000, 2, 1_140_000, "71.43")
		// February: 4 lines 540,000 + 540,000 + 720,000 + 360,000 =
		// 2,160,000; Binh's 540,000 failed; 3/4 = 75%.
		wantPeriod(t, feb, feb24, 4, 2_160_000, 3, 1_620_000, 1, 540_000, "75.00")
		// Totals: 8 of 11 paid: 72.73%.
		if lb.Totals.Due.Lines != 11 || lb.Totals.Paid.Lines != 8 || lb.Totals.Completion != "72.73" {
			t.Errorf("totals %+v", lb.Totals)
		}
	})
	if _, err := s.l.CloseRun(s.ctx, thu, "LB-2024-T1"); err != nil {
		t.Fatal(err)
	}

	// --- Run 2: only Binh's three lines are owed; her account failed as
	// closed, so they are reissued in cash (receipt PT-0002). Then she is
	// switched to cash and her account unlinked.
	s.run("LB-2024-T1-R", []domain.Period{jan24, feb24}, monthly, tetGift)
	s.settle(s.paymentOf("LB-2024-T1-R", binh, disbursement.MethodCash), "PT-0002")
	s.ok(s.l.Beneficiary(s.ctx, registrar, binh, registry.ChoosePaymentMethod{Method: registry.Cash}))
	s.ok(s.l.Beneficiary(s.ctx, registrar, binh, registry.UnlinkBankAccount{Reason: "account closed (bank answer of 2024-01-20)"}))
	s.sync()
	s.wantBooks("run 2 answered", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_820_000, disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -3_420_000,
	})
	t.Run("Long Bien at 100%", func(t *testing.T) {
		lb := s.report(t).district(t, longBien)
		wantPeriod(t, lb.Periods[0], jan24, 7, 3_660_000, 7, 3_660_000, 0, 0, "100.00")
		wantPeriod(t, lb.Periods[1], feb24, 4, 2_160_000, 4, 2_160_000, 0, 0, "100.00")
		if lb.Totals.Completion != "100.00" || lb.WithBank != 2 || lb.BankAccountShare != "50.00" {
			t.Errorf("Long Bien: totals %+v, bank %d share %s", lb.Totals, lb.WithBank, lb.BankAccountShare)
		}
		h, err := s.set.History(s.ctx, binh, "", 50)
		if err != nil || len(h.Items) != 6 {
			t.Fatalf("Binh's history: %d rows %v", len(h.Items), err)
		}
		// Each obligation: attempt 1 failed by bank, attempt 2 settled in cash.
		for i := 0; i < 6; i += 2 {
			a1, a2 := h.Items[i], h.Items[i+1]
			if a1.Attempt != 1 || a1.Status != disbursement.StatusFailed || a2.Attempt != 2 || a2.Status != disbursement.StatusSettled ||
				a2.Payee.Method != disbursement.MethodCash || a2.Reference != "PT-0002" || a2.RunID != "LB-2024-T1-R" || a2.Payee.AccountMasked != "" {
				t.Errorf("attempts %+v / %+v", a1, a2)
			}
		}
	})

	// --- Correction: An's coefficient is 1.0 from February; he was paid
	// 540,000 instead of 360,000: 180,000 to recover by offset.
	one := decimal.RequireFromString("1.0")
	s.ok(s.l.Entitlement(s.ctx, registrar, an, entitlement.Adjust{EntitlementID: "E1", From: feb24, Coefficient: &one, Reason: "QD-45/2024"}))
	if _, err := s.l.RequestCorrection(s.ctx, lan, disbursement.RequestCorrection{CorrectionID: "CORR-2024-001", Kind: disbursement.CorrectRecovery,
		CitizenID: an, Program: monthly, Period: feb24, Amount: vndOf(180_000), Mode: disbursement.RecoverByOffset,
		Reason: "coefficient 1.0 from 2024-02, paid 1.5", DocumentRef: "QD-45/2024"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.l.ApproveCorrection(s.ctx, hoa, "CORR-2024-001"); err != nil {
		t.Fatal(err)
	}
	s.sync()
	s.wantBooks("correction approved", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 5_640_000, disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -3_420_000,
		disbursement.BeneficiaryReceivable: 180_000,
	})
	t.Run("overpaid", func(t *testing.T) {
		b := s.balance(t, an, feb24)
		// Accrued now: Nov, Dec, Jan at 540,000, the gift, February at
		// 360,000 = 2,580,000. Paid 1,680,000; outstanding Nov and Dec.
		money(t, "accrued", b.Accrued.Gross, 3*540_000+600_000+360_000)
		money(t, "paid", b.Paid.Net, 1_680_000)
		money(t, "outstanding", b.Outstanding.Gross, 1_080_000)
		money(t, "overpaid", b.Overpaid, 180_000)
		if len(b.Recoveries) != 1 || b.Recoveries[0].Correction != "CORR-2024-001" || b.Recoveries[0].Mode != disbursement.RecoverByOffset {
			t.Errorf("recoveries %+v", b.Recoveries)
		}
	})

	// --- Run 3, March: An 360,000 of which 180,000 is kept back; Binh
	// 540,000 in cash; Chi 720,000 to Dung; Em 360,000. Gross 1,980,000,
	// net 1,800,000. All paid.
	s.run("LB-2024-03", []domain.Period{mar24}, monthly)
	for _, p := range []struct{ payee, ref string }{{an, "FT24030001"}, {em, "FT24030002"}} {
		s.settle(s.paymentOf("LB-2024-03", p.payee, disbursement.MethodBank), p.ref)
	}
	s.settle(s.paymentOf("LB-2024-03", binh, disbursement.MethodCash), "PT-0003")
	s.settle(s.paymentOf("LB-2024-03", dung, disbursement.MethodCash), "PT-0004")
	final := s.sync()
	// 7,620,000 = 2,940,000 + 4,680,000; the receivable is recovered.
	s.wantBooks("run 3 settled", map[disbursement.Account]int64{
		disbursement.ProgramExpense: 7_620_000, disbursement.BankDisbursed: -2_940_000, disbursement.CashDisbursed: -4_680_000,
	})
	t.Run("final balance", func(t *testing.T) {
		b := s.balance(t, an, mar24)
		// Accrued 2,580,000 + March 360,000 = 2,940,000. Paid net: 540,000
		// + 600,000 + 540,000 + 180,000 = 1,860,000 (gross 2,040,000: the
		// other 180,000 of March repaid February's overpayment).
		money(t, "accrued", b.Accrued.Gross, 2_940_000)
		money(t, "paid net", b.Paid.Net, 1_860_000)
		money(t, "paid gross", b.Paid.Gross, 2_040_000)
		money(t, "outstanding", b.Outstanding.Gross, 1_080_000)
		money(t, "overpaid", b.Overpaid, 0)
		money(t, "bank_disbursed", b.Accounts[disbursement.BankDisbursed], -1_860_000)
		if got := periodsOf(b.Paid.Periods...); got != periodsOf(jan24, feb24, mar24) {
			t.Errorf("paid periods %s", got)
		}
		h, err := s.set.History(s.ctx, an, "", 50)
		if err != nil || len(h.Items) != 4 {
			t.Fatalf("An's history: %+v %v", h.Items, err)
		}
		m := h.Items[3] // SOCIAL_MONTHLY 2024-03
		if m.Obligation.Period != mar24 || !m.Gross.Equal(vndOf(360_000)) || !m.Net.Equal(vndOf(180_000)) ||
			len(m.Offsets) != 1 || m.Offsets[0].Correction != "CORR-2024-001" || m.Status != disbursement.StatusSettled {
			t.Errorf("March row %+v", m)
		}
		lb := s.report(t).district(t, longBien)
		wantPeriod(t, lb.Periods[2], mar24, 4, 1_980_000, 4, 1_980_000, 0, 0, "100.00")
	})

	t.Run("as of a past position", func(t *testing.T) {
		past, err := AsOf(s.ctx, s.store, s.codec, UntilPosition(answered), SetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer past.Close()
		tb, err := past.TrialBalance(s.ctx)
		if err != nil || tb.Position != answered {
			t.Fatalf("as of %s: position %s, %v", answered, tb.Position, err)
		}
		checkBooks(t, "as of run 1 answered", tb.TrialBalance, map[disbursement.Account]int64{
			disbursement.ProgramExpense: 4_140_000, disbursement.BankDisbursed: -2_400_000, disbursement.CashDisbursed: -1_740_000,
		})
		b, err := past.Balance(s.ctx, binh, feb24)
		if err != nil {
			t.Fatal(err)
		}
		money(t, "Binh outstanding then", b.Outstanding.Gross, 1_680_000)
		// The live read models are untouched: Binh is paid now.
		now := s.balance(t, binh, feb24)
		money(t, "Binh outstanding now", now.Outstanding.Gross, 0)
		if pos := s.set.Position(); pos.Compare(final) < 0 {
			t.Errorf("live position %s went back", pos)
		}
	})
	t.Run("as of a past instant", func(t *testing.T) {
		// The first event recorded after the answers were applied: replaying
		// up to the instant before it gives the answered books.
		recs, err := s.store.ReadAll(s.ctx, answered, 1)
		if err != nil || len(recs) != 1 {
			t.Fatal(err)
		}
		at := recs[0].RecordedAt.Add(-time.Nanosecond)
		all := allEvents(t, s.store)
		want := uint64(0)
		for _, ev := range all {
			if !ev.RecordedAt.After(at) {
				want = ev.Position.Commit
			}
		}
		past, err := AsOf(s.ctx, s.store, s.codec, UntilTime(at), SetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer past.Close()
		if got := past.Position(); got.Commit != want {
			t.Errorf("as of %s: position %s, want %d", at, got, want)
		}
	})
	t.Run("verify", func(t *testing.T) {
		waitUntilSealed(t, s.sealer, final)
		rep, err := s.set.Verify(s.ctx, s.store, s.codec, []ed25519.PublicKey{s.key.Public().(ed25519.PublicKey)}, audit.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Chain.Seals == 0 || len(rep.Projections) != len(ReadModels()) {
			t.Fatalf("verify: %+v", rep)
		}
	})
}

func waitUntilSealed(t *testing.T, sl *audit.Sealer, pos eventstore.Position) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard
	for sl.Status().Position.Compare(pos) < 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sealer did not reach the head")
		}
		time.Sleep(time.Millisecond)
	}
}

func sorted(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

func hitIDs(hits []SearchHit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.CitizenID)
	}
	return out
}

func (s *scenario) balance(t *testing.T, cid string, through domain.Period) BalanceResult {
	t.Helper()
	b, err := s.set.Balance(s.ctx, cid, through)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type reportResult struct{ DistrictReportResult }

func (s *scenario) report(t *testing.T) reportResult {
	t.Helper()
	r, err := s.set.DistrictReport(s.ctx, ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return reportResult{r}
}

func (r reportResult) district(t *testing.T, code string) DistrictFigures {
	t.Helper()
	for _, d := range r.Districts {
		if d.District == code {
			return d
		}
	}
	t.Fatalf("no district %s in %+v", code, r.Districts)
	return DistrictFigures{}
}

func wantPeriod(t *testing.T, got PeriodFigures, p domain.Period, due int, dueGross int64, paid int, paidGross int64, failed int, failedGross int64, completion string) {
	t.Helper()
	if got.Period != p || got.Due.Lines != due || !got.Due.Gross.Equal(vndOf(dueGross)) ||
		got.Paid.Lines != paid || !got.Paid.Gross.Equal(vndOf(paidGross)) ||
		got.Failed.Lines != failed || !got.Failed.Gross.Equal(vndOf(failedGross)) || got.Completion != completion {
		t.Errorf("%s: %+v, want due %d (%d), paid %d (%d), failed %d (%d), completion %s",
			p, got, due, dueGross, paid, paidGross, failed, failedGross, completion)
	}
}
