package projections

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ansinh/ansinh/domain"
	espebble "github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/ansinh/ansinh/ledger"
)

// BenchmarkBalanceQuery answers balances of random beneficiaries from the
// read models of a real data directory, the one docs/bench/api-load.sh
// keeps with KEEP=1 (300,000 imported people): the query the API's
// balance endpoint runs, without HTTP. The block cache is warmed first (serve does too).
//
//	ANSINH_BENCH_DATA=/tmp/ansinh-load.XXXX/data go test -run '^$' -bench BalanceQuery -benchmem ./projections/
func BenchmarkBalanceQuery(b *testing.B) {
	data := os.Getenv("ANSINH_BENCH_DATA")
	if data == "" {
		b.Skip("set ANSINH_BENCH_DATA to a stopped server's data directory (docs/bench/api-load.sh with KEEP=1 keeps one)")
	}
	store, err := espebble.Open(filepath.Join(data, "events"), espebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	db, err := OpenDB(filepath.Join(data, "projections"), DBOptions{CacheBytes: 768 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	set, err := NewSet(db, store, ledger.NewCodec(), SetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for after := ""; ; {
		page, err := set.CitizenIDs(ctx, nil, after, 10_000)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		ids = append(ids, page...)
		after = page[len(page)-1]
	}
	if len(ids) == 0 {
		b.Fatal("no beneficiaries in", data)
	}
	through := domain.MustPeriod("2026-11")
	if _, err := db.WarmCache(ctx, 768<<20); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	defer func() {
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if _, err := set.Balance(ctx, ids[r.IntN(len(ids))], through); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
