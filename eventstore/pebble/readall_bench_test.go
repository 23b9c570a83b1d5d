package pebble

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
)

// readAllLogStoreEnv names an existing store directory for
// BenchmarkReadAllLog, e.g. a kept ledger store of the projections
// benchmarks (real event sizes and stream mix). The benchmark copies it to a
// temporary directory first: opening a store writes to it.
const readAllLogStoreEnv = "ANSINH_BENCH_PEBBLE_STORE"

// readAllLogPage is the projections feed's default page (projections
// Options.PageEvents).
const readAllLogPage = 4096

// BenchmarkReadAllLog reads the whole log page by page as the projections
// feed does in a rebuild: a freshly opened store (cold block cache, so every
// block is loaded and decompressed once, as in one pass of a rebuild), pages
// of 4096 events, each page continuing after the last one's position.
// One op is one whole pass; CPU (user+sys) and allocations are counted over
// the reads only, not the Open.
//
//	ANSINH_BENCH_PEBBLE_STORE=/tmp/projbench/ledger-10000-6 \
//	    go test -run '^$' -bench ReadAllLog -benchtime=10x ./eventstore/pebble/
//
// Without the variable it reads the 200,000 generated events of
// events generated like BenchmarkReadAll's.
func BenchmarkReadAllLog(b *testing.B) {
	dir := readAllLogDir(b)
	ctx := context.Background()
	var events, mallocs, bytes uint64
	var cpu, wall time.Duration
	var ms runtime.MemStats
	for b.Loop() {
		b.StopTimer()
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		mallocs0, bytes0 := ms.Mallocs, ms.TotalAlloc
		cpu0, start := cpuTime(), time.Now()
		b.StartTimer()

		n := readWholeLog(b, ctx, s)

		b.StopTimer()
		cpu += cpuTime() - cpu0
		wall += time.Since(start)
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - mallocs0
		bytes += ms.TotalAlloc - bytes0
		events += n
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(events), "cpu-µs/event")
	b.ReportMetric(float64(mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(bytes)/float64(events), "B/event")
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
}

// readWholeLog reads from Start to the head in feed-sized pages and checks
// that the positions are dense, so that the benchmark cannot pass on a
// short read.
func readWholeLog(b *testing.B, ctx context.Context, s *Store) uint64 {
	head, err := s.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	after, n := eventstore.Start, uint64(0)
	for {
		page, err := s.ReadAll(ctx, after, readAllLogPage)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		n += uint64(len(page))
		after = page[len(page)-1].Position
		if after.Commit != n {
			b.Fatalf("page ends at %s after %d events", after, n)
		}
	}
	if n != head.Commit {
		b.Fatalf("read %d events, head is %s", n, head)
	}
	return n
}

// readAllLogFixture is BenchmarkReadAllLog's own generated store: it is
// closed and reopened, which BenchmarkReadAll's open fixture must not be.
var readAllLogFixture = &prefilled{n: 200_000}

// readAllLogDir is a private copy of the store named by the environment, or
// the generated fixture's directory (closed, so that each op can reopen it).
func readAllLogDir(b *testing.B) string {
	src := os.Getenv(readAllLogStoreEnv)
	if src == "" {
		readAllLogFixture.get(b)
		// Out of the memtable into tables, as in a kept store.
		if err := readAllLogFixture.s.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := readAllLogFixture.s.Close(); err != nil {
			b.Fatal(err)
		}
		return readAllLogFixture.dir
	}
	dst := b.TempDir()
	if err := copyStoreFiles(src, dst); err != nil {
		b.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

// copyStoreFiles copies a store's regular files, except the LOCK file that
// another process may hold on the original.
func copyStoreFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", dst, err)
	}
	return out.Close()
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
