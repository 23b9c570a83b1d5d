package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
)

// crowd registers n beneficiaries at coefficient 1.5 (540,000 a month),
// every other one with the 600,000 gift, every third paid by bank. It returns
// their citizen IDs and what they are owed for January and February 2024
// with the gift.
func (f *payoutFixture) crowd(n int) ([]string, int64) {
	f.t.Helper()
	var ids []string
	var owed int64
	for i := range n {
		name := crowdName(i)
		cid := f.person(100+i, name, registry.Female, 1940+i%30, ngocThuy)
		f.allowance(cid, domain.MustPeriod("2023-07"), "1.5")
		owed += 2 * 540_000
		if i%2 == 0 {
			f.gift(cid, 600_000)
			owed += 600_000
		}
		if i%3 == 0 {
			f.bank(cid, name, "VCB", fmt.Sprintf("0011%08d", i))
		}
		ids = append(ids, cid)
	}
	return ids, owed
}

// crowdName is a name without digits (names hold letters only).
func crowdName(i int) string {
	return "Nguyễn Thị " + string(rune('A'+i/26%26)) + string(rune('a'+i%26))
}

var janFebGift = []string{entitlement.SocialMonthly, entitlement.PresidentTetGift}

// checkPaidOnce asserts that every obligation of ids for January, February
// and the gift has exactly one live attempt, held by one of runs, and that
// each run's record lists exactly the attempts it holds.
func (f *payoutFixture) checkPaidOnce(ids []string, runs ...string) {
	f.t.Helper()
	listed := map[string]string{} // obligation stream -> run
	for _, id := range runs {
		r := f.run(id)
		for _, pid := range r.PaymentIDs {
			for _, ln := range r.Payments[pid].Lines {
				s := ln.Obligation.Stream()
				if other, dup := listed[s]; dup {
					f.t.Fatalf("%s is in run %s and in run %s", s, other, id)
				}
				listed[s] = id
			}
		}
	}
	n := 0
	for i, cid := range ids {
		keys := []disbursement.ObligationKey{
			{CitizenID: cid, Program: entitlement.SocialMonthly, Period: jan24},
			{CitizenID: cid, Program: entitlement.SocialMonthly, Period: feb24},
		}
		if i%2 == 0 {
			keys = append(keys, disbursement.ObligationKey{CitizenID: cid, Program: entitlement.PresidentTetGift, Period: jan24})
		}
		for _, k := range keys {
			n++
			ob := f.obligation(k.CitizenID, k.Program, k.Period)
			live := 0
			var holder string
			for _, a := range ob.Attempts {
				if !a.Status.Reopens() {
					live++
					holder = a.RunID
				}
			}
			if live != 1 {
				f.t.Fatalf("%s has %d live attempts", k.Stream(), live)
			}
			if listed[k.Stream()] != holder {
				f.t.Fatalf("%s is held by run %s but listed in run %q", k.Stream(), holder, listed[k.Stream()])
			}
		}
	}
	if n != len(listed) {
		f.t.Fatalf("runs list %d lines, %d obligations exist", len(listed), n)
	}
}

// TestConcurrentRunsNeverPayTwice races two runs of the same scope and two
// replicas calculating the same run, with small pages so that they
// interleave: every obligation is claimed exactly once.
func TestConcurrentRunsNeverPayTwice(t *testing.T) {
	f := newPayoutFixture(t)
	ids, owed := f.crowd(24)
	roster := NewStaticRoster(ids...)
	f.open("A", []domain.Period{jan24, feb24}, janFebGift...)
	f.open("B", []domain.Period{jan24, feb24}, janFebGift...)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, id := range []string{"A", "B", "A", "B"} { // two replicas per run
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.l.CalculateRun(f.ctx, thu, id, roster, CalculateOptions{PageSize: 1 + i, Workers: 3})
			if err != nil && !errors.Is(err, ErrTooManyConflicts) {
				errs <- fmt.Errorf("run %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A replica that gave up on conflicts leaves the run resumable.
	for _, id := range []string{"A", "B"} {
		f.calculate(id, roster)
	}
	f.checkPaidOnce(ids, "A", "B")
	a, b := f.run("A"), f.run("B")
	if got := a.Net.Add(b.Net); !got.Equal(domain.VNDAmount(owed)) {
		t.Fatalf("runs pay %s together, %d is owed", got, owed)
	}
	f.wantBalances("two runs calculated", map[disbursement.Account]int64{
		disbursement.ProgramExpense: owed, disbursement.BeneficiaryPayable: -owed,
	})
	// A third run finds nothing left.
	f.open("C", []domain.Period{jan24, feb24}, janFebGift...)
	if s := f.calculate("C", roster); s.Lines != 0 || s.Payments != 0 || s.Skipped != a.Lines+b.Lines {
		t.Fatalf("run C: %+v", s)
	}
}

// TestCalculationResumes interrupts a calculation twice: once between pages
// (the roster fails), once inside a page after the claims were written but
// before the page was recorded (a crash). Resuming pays everything once.
func TestCalculationResumes(t *testing.T) {
	f := newPayoutFixture(t)
	ids, owed := f.crowd(9)
	roster := NewStaticRoster(ids...)
	f.open("R", []domain.Period{jan24, feb24}, janFebGift...)

	failing := &flakyRoster{Roster: roster, failAfter: 2}
	_, err := f.l.CalculateRun(f.ctx, thu, "R", failing, CalculateOptions{PageSize: 2})
	if err == nil || !errors.Is(err, errRosterDown) {
		t.Fatalf("want the roster's error, got %v", err)
	}
	r := f.run("R")
	if r.Status != disbursement.RunOpened || r.Pages != 2 || r.Cursor != ids[3] {
		t.Fatalf("after the failure: status %s, %d pages, cursor %s", r.Status, r.Pages, r.Cursor)
	}
	// The crash: the next beneficiary's claims land, the page does not.
	c := &calculation{l: f.l, meta: mustMeta(t, f.l, thu), run: r, cat: mustCatalogue(t, f.l), today: f.l.Today(), cancelled: map[string]bool{}}
	res, err := c.beneficiary(f.ctx, ids[4])
	if err != nil || len(res.lines) == 0 {
		t.Fatalf("crash simulation: %+v %v", res, err)
	}
	var progress []CalculationProgress
	s, err := f.l.CalculateRun(f.ctx, thu, "R", roster, CalculateOptions{PageSize: 2, Progress: func(p CalculationProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != disbursement.RunCalculated || s.Beneficiaries != 9 || !s.Net.Equal(domain.VNDAmount(owed)) || s.Skipped != 0 {
		t.Fatalf("resumed: %+v", s)
	}
	if len(progress) != 4 || progress[0].Pages != 3 || !progress[3].Done || progress[3].Beneficiaries != 9 {
		t.Fatalf("progress: %+v", progress)
	}
	f.checkPaidOnce(ids, "R")
}

var errRosterDown = errors.New("roster down")

type flakyRoster struct {
	Roster
	failAfter int
	calls     int
}

func (r *flakyRoster) CitizenIDs(ctx context.Context, d []string, after string, limit int) ([]string, error) {
	r.calls++
	if r.calls > r.failAfter {
		return nil, errRosterDown
	}
	return r.Roster.CitizenIDs(ctx, d, after, limit)
}

func mustMeta(t testing.TB, l *Ledger, req Request) domain.Metadata {
	t.Helper()
	m, err := l.processMeta(req)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCatalogue(t testing.TB, l *Ledger) entitlement.Catalogue {
	t.Helper()
	c, _, err := l.Catalogue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCancelledRunOwesAgain cancels a calculated run, and a run that crashed
// mid-page: their claims are withdrawn (at once, or when the next run meets
// them) and the next run pays everything once.
func TestCancelledRunOwesAgain(t *testing.T) {
	f := newPayoutFixture(t)
	ids, owed := f.crowd(6)
	roster := NewStaticRoster(ids...)
	f.open("A", []domain.Period{jan24, feb24}, janFebGift...)
	f.calculate("A", roster)
	if _, err := f.l.CancelRun(f.ctx, thu, "A", "wrong districts"); err != nil {
		t.Fatal(err)
	}
	f.wantBalances("A cancelled", map[disbursement.Account]int64{})

	// B crashes after claiming the first beneficiary, then is cancelled: its
	// record lists nothing, so its claim stays until C meets it.
	f.open("B", []domain.Period{jan24, feb24}, janFebGift...)
	c := &calculation{l: f.l, meta: mustMeta(t, f.l, thu), run: f.run("B"), cat: mustCatalogue(t, f.l), today: f.l.Today(), cancelled: map[string]bool{}}
	if _, err := c.beneficiary(f.ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.CancelRun(f.ctx, thu, "B", "opened by mistake"); err != nil {
		t.Fatal(err)
	}
	if last, _ := f.obligation(ids[0], entitlement.SocialMonthly, jan24).Last(); last.RunID != "B" || last.Status != disbursement.StatusIssued {
		t.Fatalf("B's leftover claim: %+v", last)
	}

	f.open("C", []domain.Period{jan24, feb24}, janFebGift...)
	s := f.calculate("C", roster)
	if !s.Net.Equal(domain.VNDAmount(owed)) {
		t.Fatalf("C pays %s, %d is owed", s.Net, owed)
	}
	f.checkPaidOnce(ids, "C")
	ob := f.obligation(ids[0], entitlement.SocialMonthly, jan24)
	if len(ob.Attempts) != 3 || ob.Attempts[1].Status != disbursement.StatusCancelled || ob.Attempts[2].RunID != "C" {
		t.Fatalf("attempts of the first obligation: %+v", ob.Attempts)
	}
	f.wantBalances("C calculated", map[disbursement.Account]int64{
		disbursement.ProgramExpense: owed, disbursement.BeneficiaryPayable: -owed,
	})
	_, err := f.l.CancelRun(f.ctx, thu, "C", "")
	payoutRule(t, err, domain.Invalid, "required")
	f.approveAndRelease("C")
	_, err = f.l.CancelRun(f.ctx, thu, "C", "too late")
	payoutRule(t, err, domain.Conflict, "already_released")
	// The bank file exists only after release.
	f.open("D", []domain.Period{mar24}, entitlement.SocialMonthly)
	err = f.l.BankFile(f.ctx, "D", &discard{})
	payoutRule(t, err, domain.Conflict, "not_released")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestRunBudgetAndProblems(t *testing.T) {
	f := newPayoutFixture(t)
	ids, _ := f.crowd(3)
	// A beneficiary paid by a proxy's account whose authorization lapsed
	// cannot be paid: the run records the problem and pays the others.
	broken := f.person(900, "Đỗ Văn Hải", registry.Male, 1944, giangBien)
	f.allowance(broken, domain.MustPeriod("2023-07"), "1.0")
	f.ok(f.l.Beneficiary(f.ctx, reg, broken, registry.AuthorizeProxy{FullName: "Đỗ Thị Hoa", CitizenID: registry.MakeCitizenID("001", registry.Female, 1970, 901),
		Relationship: "con", Reason: registry.IllnessOrImmobility, ValidFrom: domain.MustDate("2024-01-01"), ValidTo: domain.MustDate("2024-01-31"), DocumentRef: "UQ-9"}))
	f.bank(broken, "Đỗ Thị Hoa", "VCB", "0011999999")
	max := domain.VNDAmount(1_000_000)
	if _, err := f.l.OpenRun(f.ctx, thu, disbursement.OpenRun{RunID: "B1", Scope: disbursement.Scope{Periods: []domain.Period{feb24}, Programs: []string{entitlement.SocialMonthly}},
		Budget: disbursement.Budget{MaxAmount: &max}}); err != nil {
		t.Fatal(err)
	}
	// Calculated on 1 March, when the authorization has lapsed.
	cfg := DefaultConfig()
	cfg.Clock = func() time.Time { return time.Date(2024, 3, 1, 3, 0, 0, 0, time.UTC) }
	later := New(f.store, cfg)
	s, err := later.CalculateRun(f.ctx, thu, "B1", NewStaticRoster(append(ids, broken)...), CalculateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.ProblemCount != 1 || s.Problems[0].CitizenID != broken || s.Problems[0].Code != "account_holder_not_authorized" || s.Lines != 3 {
		t.Fatalf("problems: %+v", s)
	}
	// 3 x 540,000 = 1,620,000 is over the 1,000,000 budget.
	_, err = f.l.ApproveRun(f.ctx, minh, "B1")
	payoutRule(t, err, domain.Invalid, "over_budget")
}

// TestRedonePageKeepsItsClaims: a page started, one beneficiary's claims
// landed, the service crashed; before the resume the beneficiary moved to
// another district. The redone page still records the claims, so the run
// releases or cancels them with the rest.
func TestRedonePageKeepsItsClaims(t *testing.T) {
	f := newPayoutFixture(t)
	ids, owed := f.crowd(4)
	f.open("R", []domain.Period{jan24, feb24}, janFebGift...)
	ld, err := f.l.LoadRun(f.ctx, "R")
	if err != nil {
		t.Fatal(err)
	}
	start := disbursement.PayoutRunPageStarted{RunID: "R", Page: 1, CitizenIDs: ids[:2]}
	if _, err := f.l.appendDerived(f.ctx, disbursement.RunStream("R"), eventstore.Exact(uint64(ld.Revision)), mustMeta(t, f.l, thu), "start:1", []domain.Event{start}); err != nil {
		t.Fatal(err)
	}
	c := &calculation{l: f.l, meta: mustMeta(t, f.l, thu), run: f.run("R"), cat: mustCatalogue(t, f.l), today: f.l.Today(), cancelled: map[string]bool{}}
	if _, err := c.beneficiary(f.ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	f.ok(f.l.Beneficiary(f.ctx, reg, ids[0], registry.CorrectDetails{Reason: "moved to Ba Dinh before the crash was noticed",
		Address: &registry.AddressInput{DistrictCode: "001", WardCode: "00001"}}))
	// The roster no longer lists her; the pending page does.
	s, err := f.l.CalculateRun(f.ctx, thu, "R", NewStaticRoster(ids[1:]...), CalculateOptions{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Net.Equal(domain.VNDAmount(owed)) || s.Pages != 2 {
		t.Fatalf("resumed: %+v", s)
	}
	f.checkPaidOnce(ids, "R")
}
