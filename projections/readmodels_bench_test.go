package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	espebble "github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/ansinh/ansinh/ledger"
)

// Benchmarks of the real read models over a generated Hanoi-like log:
// beneficiaries registered with an allowance, 87% of them with a bank
// account, then monthly payout runs in which every payment is issued,
// released and settled (2% fail), in that order across the whole run, as
// the ledger writes them. About 4 + 3 x months events per beneficiary.
//
//	ANSINH_BENCH_PEOPLE=30000 ANSINH_BENCH_MONTHS=10 \
//	  go test -run '^$' -bench ReadModels -benchtime 1x -timeout 60m ./projections/
//
// ANSINH_BENCH_LOG=<dir> keeps the generated log (and the read models the
// restart benchmark opens) there between runs. ANSINH_BENCH_CACHE_MIB sizes
// the read models' block cache (default 64 MiB); ANSINH_BENCH_BATCH_EVENTS,
// ANSINH_BENCH_BATCH_KEYS, ANSINH_BENCH_CACHE_KEYS, ANSINH_BENCH_KEPT_KEYS and
// ANSINH_BENCH_PAGE_EVENTS the runner's bounds in the rebuild benchmark;
// ANSINH_BENCH_PEBBLE_METRICS=1 logs the read models' Pebble metrics after
// the rebuild (with -test.v).

func benchInt(b *testing.B, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

type genPerson struct {
	cid, name, district, ward string
	bank                      bool
	account                   string
}

var (
	familyNames = []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"}
	middleNames = []string{"Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quang", "Xuân", "Thu"}
	givenNames  = []string{"An", "Bình", "Chi", "Dung", "Em", "Giang", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Minh", "Nam", "Nga", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vân", "Việt", "Yến"}
)

// buildLedgerLog writes the generated log into an on-disk store, or opens
// the one kept from an earlier run.
func buildLedgerLog(b testing.TB, people, months int) (*espebble.Store, int) {
	store, n, _ := buildLedgerLogIn(b, people, months)
	return store, n
}

func buildLedgerLogIn(b testing.TB, people, months int) (*espebble.Store, int, string) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "events")
	if keep := os.Getenv("ANSINH_BENCH_LOG"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("ledger-%d-%d", people, months))
	}
	store, err := espebble.Open(dir, espebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if head, err := store.Head(ctx); err == nil && !head.IsStart() {
		return store, int(head.Commit), dir
	}
	l := ledger.New(store, ledger.DefaultConfig())
	if _, err := l.SeedCatalogue(ctx); err != nil {
		b.Fatal(err)
	}
	codec := l.Codec()
	units := registry.HanoiAdminUnits()
	meta, _ := json.Marshal(domain.Metadata{Actor: domain.Actor{UserID: "bench", Role: domain.RoleFinanceOfficer},
		RecordedAt: time.Date(2024, 1, 15, 3, 0, 0, 0, time.UTC), SchemaVersion: 1})
	encode := func(es ...domain.Event) []eventstore.EventData {
		out := make([]eventstore.EventData, len(es))
		for i, e := range es {
			typ, data, err := codec.Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: meta}
		}
		return out
	}
	ps := make([]genPerson, people)
	coef := decimal.RequireFromString("1.5")
	// Registrations: one append per person, as the ledger does.
	parallel(b, people, func(i int) []appendJob {
		d := units.Districts[i%len(units.Districts)]
		w := d.Wards[(i/len(units.Districts))%len(d.Wards)]
		sex := registry.Male
		if i%2 == 1 {
			sex = registry.Female
		}
		name := familyNames[i%len(familyNames)] + " " + middleNames[(i/7)%len(middleNames)] + " " + givenNames[(i/3)%len(givenNames)]
		p := genPerson{cid: registry.MakeCitizenID("001", sex, 1930+i%60, i), name: name, district: d.Code, ward: w.Code,
			bank: i%100 < 87, account: fmt.Sprintf("%013d", 1_000_000_000+i)}
		ps[i] = p
		evs := []domain.Event{
			registry.BeneficiaryRegistered{CitizenID: p.cid, FullName: name, DateOfBirth: domain.MustDate(fmt.Sprintf("%d-05-01", 1930+i%60)), Sex: sex,
				Address:  registry.Address{DistrictCode: d.Code, DistrictName: d.Name, WardCode: w.Code, WardName: w.Name, Catalogue: registry.AdminCatalogueVersion},
				Category: registry.Categories[i%len(registry.Categories)]},
			entitlement.EntitlementGranted{CitizenID: p.cid, EntitlementID: "E1", Program: entitlement.SocialMonthly, Kind: entitlement.Monthly,
				Start: domain.MustPeriod("2024-01"), Coefficient: &coef},
		}
		if p.bank {
			evs = append(evs,
				registry.BankAccountLinked{CitizenID: p.cid, BankAccount: registry.BankAccount{BankCode: "VCB", AccountNumber: p.account, HolderName: registry.NameKey(name), Holder: registry.HolderBeneficiary}},
				registry.PaymentMethodChosen{CitizenID: p.cid, Method: registry.BankTransfer})
		}
		return []appendJob{{stream: registry.Stream(p.cid), events: encode(evs...)}}
	}, store)
	for m := range months {
		period := domain.Period{Year: 2024, Month: time.Month(1 + m%12)}
		if m >= 12 {
			period.Year += m / 12
		}
		runID := "BENCH-" + period.String()
		run := func(evs ...domain.Event) {
			if _, err := store.Append(ctx, disbursement.RunStream(runID), eventstore.Any(), encode(evs...)...); err != nil {
				b.Fatal(err)
			}
		}
		run(disbursement.PayoutRunOpened{RunID: runID, Scope: disbursement.Scope{Periods: []domain.Period{period}, Programs: []string{entitlement.SocialMonthly}}, OpenedBy: "bench"})
		amount := domain.VNDAmount(540_000)
		refs := make([]disbursement.AttemptRef, people)
		payees := make([]disbursement.Payee, people)
		// The ledger writes a run's phases one after the other: every
		// payment issued, then every one released, then answered. With
		// ANSINH_BENCH_FAST_LOG=1 each payment's three events are one append
		// instead (a third of the appends, to build a large log quickly;
		// the read models then find each payment's rows hot in memory).
		fast := os.Getenv("ANSINH_BENCH_FAST_LOG") == "1"
		var pending [][]domain.Event
		if fast {
			pending = make([][]domain.Event, people)
		}
		for phase := range 3 {
			parallel(b, people, func(i int) []appendJob {
				p := ps[i]
				if phase == 0 {
					payee := disbursement.Payee{CitizenID: p.cid, Name: p.name, Method: disbursement.MethodCash, District: p.district, Ward: p.ward}
					if p.bank {
						payee.Method, payee.BankCode, payee.AccountNumber = disbursement.MethodBank, "VCB", p.account
					}
					payees[i] = payee
					refs[i] = disbursement.AttemptRef{Obligation: disbursement.ObligationKey{CitizenID: p.cid, Program: entitlement.SocialMonthly, Period: period},
						Attempt: 1, RunID: runID, PaymentID: disbursement.PaymentID(runID, payee)}
				}
				ref := refs[i]
				var e domain.Event
				switch phase {
				case 0:
					e = disbursement.PaymentIssued{AttemptRef: ref, Payee: payees[i], Amounts: disbursement.Amounts{Gross: amount, Net: amount},
						Trace: disbursement.Trace{Entitlement: "E1", Rule: "base_times_coefficient: SOCIAL_ASSISTANCE_BASE 360000 VND (from 2021-07) x 1.5", Rate: &amount, Decree: "Decree 20/2021/ND-CP"}}
				case 1:
					e = disbursement.PaymentReleased{AttemptRef: ref, Method: payees[i].Method, Net: amount}
				default:
					if i%50 == 7 {
						e = disbursement.PaymentFailed{AttemptRef: ref, Method: payees[i].Method, Amounts: disbursement.Amounts{Gross: amount, Net: amount},
							Reason: disbursement.ReasonAccountClosed, FailedAt: time.Date(2024, 1, 20, 9, 0, 0, 0, time.UTC)}
					} else {
						e = disbursement.PaymentSettled{AttemptRef: ref, Method: payees[i].Method, Net: amount, Reference: fmt.Sprintf("FT%09d", i),
							SettledAt: time.Date(2024, 1, 20, 9, 0, 0, 0, time.UTC)}
					}
				}
				if fast {
					pending[i] = append(pending[i], e)
					if phase < 2 {
						return nil
					}
					return []appendJob{{stream: ref.Obligation.Stream(), events: encode(pending[i]...)}}
				}
				return []appendJob{{stream: ref.Obligation.Stream(), events: encode(e)}}
			}, store)
		}
		total := amount.Mul(int64(people))
		run(disbursement.PayoutRunCalculated{RunID: runID, CalculatedBy: "bench", Payments: people, Lines: people, Gross: total, Net: total},
			disbursement.PayoutRunApproved{RunID: runID, ApprovedBy: "approver", Payments: people, Net: total},
			disbursement.PayoutRunReleased{RunID: runID, ReleasedBy: "bench", Payments: people, Net: total},
			disbursement.PayoutRunClosed{RunID: runID, ClosedBy: "bench"})
	}
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return store, int(head.Commit), dir
}

type appendJob struct {
	stream string
	events []eventstore.EventData
}

// parallel appends the jobs of n items from 64 goroutines: single-event
// appends are bound by fsync latency, and the store groups concurrent ones.
func parallel(b testing.TB, n int, jobs func(i int) []appendJob, store eventstore.Store) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				for _, j := range jobs(i) {
					if _, err := store.Append(context.Background(), j.stream, eventstore.Any(), j.events...); err != nil {
						failed.Store(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReadModelsRebuild rebuilds every read model from the whole log
// into a fresh on-disk database: what a rebuild costs.
func BenchmarkReadModelsRebuild(b *testing.B) {
	people := benchInt(b, "ANSINH_BENCH_PEOPLE", 10_000)
	months := benchInt(b, "ANSINH_BENCH_MONTHS", 6)
	store, n := buildLedgerLog(b, people, months)
	defer store.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "projections")
		rebuildInto(b, store, dir, n)
	}
}

func rebuildInto(b *testing.B, store eventstore.Store, dir string, n int) {
	b.Helper()
	// ANSINH_BENCH_CACHE_MIB sizes the read models' block cache: 64 MiB
	// (OpenDB's default) unless set; serve gives them 768 MiB (three
	// quarters of its --cache-mib default).
	db, err := OpenDB(dir, DBOptions{CacheBytes: int64(benchInt(b, "ANSINH_BENCH_CACHE_MIB", 64)) << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	runtime.GC()
	start, cpu := time.Now(), cpuTime()
	// ANSINH_BENCH_BATCH_EVENTS, _BATCH_KEYS, _CACHE_KEYS, _KEPT_KEYS and _PAGE_EVENTS override the
	// runner's bounds (0: its defaults), to try other sizes.
	opts := Options{Decoder: NewDecoder(ledger.NewCodec()),
		BatchEvents: benchInt(b, "ANSINH_BENCH_BATCH_EVENTS", 0), BatchKeys: benchInt(b, "ANSINH_BENCH_BATCH_KEYS", 0),
		CacheKeys: benchInt(b, "ANSINH_BENCH_CACHE_KEYS", 0), KeptKeys: benchInt(b, "ANSINH_BENCH_KEPT_KEYS", 0),
		PageEvents: benchInt(b, "ANSINH_BENCH_PAGE_EVENTS", 0)}
	r, err := Replay(context.Background(), store, db, ReadModels(), opts, Until{})
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	if os.Getenv("ANSINH_BENCH_PEBBLE_METRICS") == "1" {
		// What Pebble wrote: the WAL's bytes are the commits' bytes,
		// "written" per level the flushes' and the compactions' tables.
		b.Log(db.pdb.Metrics().String())
	}
	if got := r.Position().Commit; got != uint64(n) {
		b.Fatalf("replayed to %d, want %d", got, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(n), "cpu-µs/event")
	b.ReportMetric(float64(n), "events")
}

// BenchmarkReadModelsRestart opens read models already built over the
// whole log (built first if ANSINH_BENCH_LOG holds none) and measures the
// restart, up to the first answer from the stored state (restart-ms), and
// then one query of each kind (µs each).
func BenchmarkReadModelsRestart(b *testing.B) {
	people := benchInt(b, "ANSINH_BENCH_PEOPLE", 10_000)
	months := benchInt(b, "ANSINH_BENCH_MONTHS", 6)
	store, n, storeDir := buildLedgerLogIn(b, people, months)
	dir := filepath.Join(b.TempDir(), "projections")
	if keep := os.Getenv("ANSINH_BENCH_LOG"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("projections-%d-%d", people, months))
	}
	if _, err := os.Stat(dir); err != nil {
		rebuildInto(b, store, dir, n)
	}
	codec := ledger.NewCodec()
	ctx := context.Background()
	cid := registry.MakeCitizenID("001", registry.Male, 1930+(people/2)%60, people/2-people/2%2)
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A restart of the service: open the event store and the read
		// models, and answer a first query.
		start := time.Now()
		store, err := espebble.Open(storeDir, espebble.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "store-open-ms")
		db, err := OpenDB(dir, DBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		set, err := NewSet(db, store, codec, SetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := set.Beneficiary(ctx, cid); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "restart-ms")
		if pos := set.Position(); pos.Commit != uint64(n) {
			b.Fatalf("restarted at %s, want %d: the read models were not at the head", pos, n)
		}
		timed := func(name string, f func() error) {
			t0 := time.Now()
			if err := f(); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			b.ReportMetric(float64(time.Since(t0).Microseconds()), name+"-µs")
		}
		timed("beneficiary", func() error { _, _, err := set.Beneficiary(ctx, cid); return err })
		timed("search", func() error {
			res, err := set.Search(ctx, SearchQuery{Text: "nguyen van an", Limit: 50})
			if err == nil && len(res.Items) == 0 {
				err = errors.New("nothing found")
			}
			return err
		})
		timed("search-filtered", func() error {
			_, err := set.Search(ctx, SearchQuery{Text: "nguyen", District: "004", Status: StatusActive, Limit: 50})
			return err
		})
		timed("balance", func() error { _, err := set.Balance(ctx, cid, domain.MustPeriod("2024-12")); return err })
		timed("history", func() error {
			h, err := set.History(ctx, cid, "", 50)
			if err == nil && len(h.Items) != months {
				err = fmt.Errorf("%d rows, want %d", len(h.Items), months)
			}
			return err
		})
		timed("run-payments", func() error {
			_, err := set.RunPayments(ctx, "BENCH-2024-01", "", 100)
			return err
		})
		timed("district-report", func() error { _, err := set.DistrictReport(ctx, ReportQuery{}); return err })
		timed("trial-balance", func() error {
			tb, err := set.TrialBalance(ctx)
			if err == nil && !tb.Balanced {
				err = errors.New("unbalanced")
			}
			return err
		})
		b.ReportMetric(float64(n), "events")
		_ = db.Close()
		_ = store.Close()
	}
}
