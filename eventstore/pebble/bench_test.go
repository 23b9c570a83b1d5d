package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// Benchmarks run on disk, durable (every append synced), as in production.
// Reproduce with:
//
//	go test -run '^$' -bench . -benchtime=2s ./eventstore/pebble/
//
// The figures, and the machine they were taken on, are in docs/BENCHMARKS.md.

// benchData is a ~300-byte JSON document, the size of a payment event.
var benchData = []byte(`{"beneficiaryId":"001234567890","programId":"monthly-social-allowance",` +
	`"period":"2024-02","amount":"1500000","currency":"VND","district":"ha-dong","ward":"van-quan",` +
	`"account":{"bank":"VBSP","number":"1234567890123"},"authorization":"self","note":"` +
	strings.Repeat("x", 52) + `"}`)

var benchMeta = []byte(`{"correlationId":"c0ffee","causationId":"run-42"}`)

// idSeq makes event IDs cheaply: the benchmark measures the store, not
// crypto/rand. The high half is random per process so reruns do not collide.
var (
	idPrefix = uuid.New()
	idSeq    atomic.Uint64
)

func benchEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		id := idPrefix
		binary.BigEndian.PutUint64(id[8:], idSeq.Add(1))
		evs[i] = eventstore.EventData{ID: id, Type: "PaymentSettled.v1", Data: benchData, Metadata: benchMeta}
	}
	return evs
}

func reportEventsPerSecond(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendBatch500 is one caller appending pages of 500 events (a
// payout run's page), each append waiting for its own fsync.
func BenchmarkAppendBatch500(b *testing.B) {
	benchmarkAppendBatch(b, 1)
}

// BenchmarkAppendBatch500Writers4 is four such callers at once, whose pages
// the writer groups into shared fsyncs.
func BenchmarkAppendBatch500Writers4(b *testing.B) {
	benchmarkAppendBatch(b, 4)
}

func benchmarkAppendBatch(b *testing.B, writers int) {
	s := openDisk(b, b.TempDir())
	ctx := context.Background()
	const batch = 500
	b.SetBytes(int64(batch * (len(benchData) + len(benchMeta))))
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			// Fresh IDs per append (a retry would write nothing), made
			// cheaply outside the store: patch a reused page's IDs.
			evs := benchEvents(batch)
			for i := 0; left.Add(-1) >= 0; i++ {
				for k := range evs {
					binary.BigEndian.PutUint64(evs[k].ID[8:], idSeq.Add(1))
				}
				if _, err := s.Append(ctx, fmt.Sprintf("payout-run-%d-%d", w, i), eventstore.NoStream(), evs...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	reportEventsPerSecond(b, b.N*batch)
}

func BenchmarkAppendSingle(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openDisk(b, b.TempDir())
			ctx := context.Background()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				wg.Go(func() {
					stream := fmt.Sprintf("beneficiary-%d", w)
					for rev := 0; left.Add(-1) >= 0; rev++ {
						if _, err := s.Append(ctx, stream, expectAt(rev), benchEvents(1)...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			reportEventsPerSecond(b, b.N)
			st := s.Stats()
			b.ReportMetric(float64(st.Appends)/float64(max(st.Commits, 1)), "appends/commit")
		})
	}
}

// prefilled is a store on disk with n events, built once per process for the
// read benchmarks and removed when they are done.
type prefilled struct {
	once  sync.Once
	dir   string
	s     *Store
	n     int
	err   error
	build time.Duration
}

var readFixture = &prefilled{n: 200_000}
var catchUpFixture = &prefilled{n: 1_000_000}

func (p *prefilled) get(b *testing.B) *Store {
	p.once.Do(func() {
		start := time.Now()
		p.dir, p.err = os.MkdirTemp("", "ansinh-pebble-bench-")
		if p.err != nil {
			return
		}
		p.s, p.err = Open(p.dir, Options{})
		if p.err != nil {
			return
		}
		// Many appends at once so that the writer groups them.
		const perAppend = eventstore.MaxAppendEvents
		var wg sync.WaitGroup
		var next atomic.Int64
		var failed atomic.Pointer[error]
		for w := range 8 {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(p.n/perAppend); i = next.Add(1) - 1 {
					stream := fmt.Sprintf("fill-%d-%d", w, i)
					if _, err := p.s.Append(context.Background(), stream, eventstore.NoStream(), benchEvents(perAppend)...); err != nil {
						failed.Store(&err)
						return
					}
				}
			})
		}
		wg.Wait()
		if e := failed.Load(); e != nil {
			p.err = *e
		}
		p.build = time.Since(start)
	})
	if p.err != nil {
		b.Fatalf("prefill: %v", p.err)
	}
	b.Logf("prefilled %d events in %v", p.n, p.build.Round(time.Millisecond))
	return p.s
}

func (p *prefilled) remove() {
	if p.s != nil {
		_ = p.s.Close()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	readFixture.remove()
	catchUpFixture.remove()
	readAllLogFixture.remove()
	os.Exit(code)
}

func BenchmarkReadAll(b *testing.B) {
	s := readFixture.get(b)
	ctx := context.Background()
	const page = eventstore.MaxReadLimit
	after := eventstore.Start
	events := 0
	b.ResetTimer()
	for b.Loop() {
		evs, err := s.ReadAll(ctx, after, page)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 { // wrapped around: start over
			after = eventstore.Start
			continue
		}
		events += len(evs)
		after = evs[len(evs)-1].Position
	}
	reportEventsPerSecond(b, events)
}

func BenchmarkSubscribeCatchUp(b *testing.B) {
	s := catchUpFixture.get(b)
	ctx := context.Background()
	events := 0
	b.ResetTimer()
	for b.Loop() {
		sub, err := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		for range catchUpFixture.n {
			if _, err := sub.Next(ctx); err != nil {
				b.Fatal(err)
			}
		}
		events += catchUpFixture.n
		_ = sub.Close()
	}
	reportEventsPerSecond(b, events)
}
