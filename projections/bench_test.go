package projections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	espebble "github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/google/uuid"
)

// Benchmarks of the runner alone, with synthetic projections shaped like
// the read models: a value per stream read and rewritten on every event (a
// balance), a few hot aggregates (a district report), and a row per event
// (a payment history). See docs/BENCHMARKS.md for figures.
//
//	go test -run '^$' -bench 'Synthetic' -benchtime 1x ./projections/
//
// ANSINH_BENCH_EVENTS sets the log size (default 300,000).

func benchEvents(b *testing.B) int {
	if s := os.Getenv("ANSINH_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 300_000
}

type synthEvent struct {
	Beneficiary string `json:"beneficiary_id"`
	District    string `json:"district"`
	Period      string `json:"period"`
	Amount      string `json:"amount"`
}

func decodeSynth(typ string, data []byte) (any, error) {
	var e synthEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// buildSynthLog writes n events of about 200 bytes over n/30 streams into
// an on-disk event store. With ANSINH_BENCH_LOG set, the log is kept in
// that directory and reused by later runs of the same size, so that the
// store's own compactions after a bulk load do not count against the
// projections.
func buildSynthLog(b *testing.B, dir string, n int) *espebble.Store {
	b.Helper()
	if keep := os.Getenv("ANSINH_BENCH_LOG"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("synth-%d", n))
	}
	store, err := espebble.Open(dir, espebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if head, err := store.Head(ctx); err == nil && head.Commit == uint64(n) {
		return store
	} else if err == nil && !head.IsStart() {
		b.Fatalf("%s holds %d events, want %d", dir, head.Commit, n)
	}
	const per = 500
	evs := make([]eventstore.EventData, 0, per)
	streams := max(n/30, 1)
	for i := 0; i < n; {
		evs = evs[:0]
		stream := fmt.Sprintf("beneficiary-%012d", i%streams)
		for j := 0; j < per && i < n; j++ {
			data, _ := json.Marshal(synthEvent{
				Beneficiary: fmt.Sprintf("%012d", i%streams),
				District:    fmt.Sprintf("%03d", i%30),
				Period:      fmt.Sprintf("2024-%02d", i%12+1),
				Amount:      strconv.Itoa(500_000 + i%7*250_000),
			})
			evs = append(evs, eventstore.EventData{ID: uuid.New(), Type: "PaymentIssued.v1", Data: data,
				Metadata: []byte(`{"actor":{"user_id":"officer-7","role":"finance_officer"},"recorded_at":"2024-01-18T09:00:00Z","schema_version":1}`)})
			i++
		}
		if _, err := store.Append(ctx, stream, eventstore.Any(), evs...); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

type synthBalance struct{ name string }

func (p synthBalance) Name() string { return p.name }
func (synthBalance) Version() int   { return 1 }
func (synthBalance) Apply(tx *Tx, ev *Event) error {
	d, err := ev.Decoded()
	if err != nil {
		return err
	}
	e := d.(*synthEvent)
	key := []byte("b/" + e.Beneficiary)
	t, found, err := Load[tally](tx, key)
	if err != nil {
		return err
	}
	if !found {
		t = &tally{}
	}
	t.Count++
	amt, _ := strconv.ParseUint(e.Amount, 10, 64)
	t.Sum += amt
	tx.Put(key, t)
	return nil
}

type synthDistricts struct{}

func (synthDistricts) Name() string { return "districts" }
func (synthDistricts) Version() int { return 1 }
func (synthDistricts) Apply(tx *Tx, ev *Event) error {
	d, err := ev.Decoded()
	if err != nil {
		return err
	}
	e := d.(*synthEvent)
	key := []byte("d/" + e.District + "/" + e.Period)
	t, found, err := Load[tally](tx, key)
	if err != nil {
		return err
	}
	if !found {
		t = &tally{}
	}
	t.Count++
	tx.Put(key, t)
	return nil
}

type synthHistory struct{}

func (synthHistory) Name() string { return "history" }
func (synthHistory) Version() int { return 1 }
func (synthHistory) Apply(tx *Tx, ev *Event) error {
	d, err := ev.Decoded()
	if err != nil {
		return err
	}
	e := d.(*synthEvent)
	key := binary.BigEndian.AppendUint64([]byte("h/"+e.Beneficiary+"/"), ev.Position.Commit)
	tx.Set(key, []byte(e.Period+" "+e.Amount))
	return nil
}

func synthProjections() []Projection {
	return []Projection{synthBalance{"balances"}, synthDistricts{}, synthHistory{}}
}

// BenchmarkSyntheticRebuild replays the whole log into fresh projections
// on disk: what a rebuild of every projection costs.
func BenchmarkSyntheticRebuild(b *testing.B) {
	n := benchEvents(b)
	dir := b.TempDir()
	store := buildSynthLog(b, filepath.Join(dir, "events"), n)
	defer store.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db, err := OpenDB(filepath.Join(dir, fmt.Sprintf("projections-%d", i)), DBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		start, cpu := time.Now(), cpuTime()
		r, err := Replay(context.Background(), store, db, synthProjections(), benchOptions(), Until{})
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(n), "cpu-µs/event")
		if got := r.Position().Commit; got != uint64(n) {
			b.Fatalf("replayed to %d, want %d", got, n)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		_ = db.Close()
	}
}

// BenchmarkSyntheticReadLog is the floor under a rebuild: reading and
// decoding the log with no projection.
func BenchmarkSyntheticReadLog(b *testing.B) {
	n := benchEvents(b)
	store := buildSynthLog(b, filepath.Join(b.TempDir(), "events"), n)
	defer store.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start, cpu := time.Now(), cpuTime()
		pos, count := eventstore.Start, 0
		for {
			page, err := store.ReadAll(context.Background(), pos, 4096)
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for j := range page {
				if _, err := decodeSynth(page[j].Type, page[j].Data); err != nil {
					b.Fatal(err)
				}
			}
			count += len(page)
			pos = page[len(page)-1].Position
		}
		b.ReportMetric(float64(count)/time.Since(start).Seconds(), "events/s")
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(n), "cpu-µs/event")
	}
}

// cpuTime is the CPU time the process has used, user and system: on a
// shared machine it measures the work better than the wall clock does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchOptions() Options {
	o := Options{Decoder: decodeSynth}
	if s := os.Getenv("ANSINH_BENCH_BATCH"); s != "" {
		o.BatchEvents, _ = strconv.Atoi(s)
	}
	return o
}
