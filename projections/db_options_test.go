package projections

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// earlierPebbleOptions are the settings OpenDB used before pebbleOptions
// was tuned (64 MiB memtables, everything else Pebble's defaults but the
// bloom filters): what the projections databases in the field were written
// with.
func earlierPebbleOptions() *pebble.Options {
	po := &pebble.Options{MemTableSize: 64 << 20, Logger: pebbleLogger{}}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return po
}

// TestOpensDatabaseOfEarlierOptions: a database written with the earlier
// options, with state in tables and in the WAL, opens with OpenDB and
// reads every key back; so it does once this version has added tables of
// its own and compacted the old ones into them, and after a restart. The
// format major version stays where the earlier options left it, so that
// the previous release can still open the database.
func TestOpensDatabaseOfEarlierOptions(t *testing.T) {
	dir := t.TempDir()
	want := map[string][]byte{}
	write := func(db *pebble.DB, from, n int) {
		t.Helper()
		b := db.NewBatch()
		for i := from; i < from+n; i++ {
			// Keys in random-looking order and values that compress, as the
			// read models' state is, so that the tables really hold
			// compressed blocks and span the key space.
			k := fmt.Appendf(statePrefix("balances", 1), "%08d", (i*7919)%100_003)
			v := bytes.Repeat(fmt.Appendf(nil, "sum %d;", i), 8)
			if err := b.Set(k, v, nil); err != nil {
				t.Fatal(err)
			}
			want[string(k)] = v
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	check := func(db *pebble.DB, when string) {
		t.Helper()
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for it.First(); it.Valid(); it.Next() {
			v, ok := want[string(it.Key())]
			if !ok || !bytes.Equal(v, it.Value()) {
				t.Fatalf("%s: key %q holds %q, want %q (known: %v)", when, it.Key(), it.Value(), v, ok)
			}
			got++
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if got != len(want) {
			t.Fatalf("%s: read %d keys, want %d", when, got, len(want))
		}
	}

	old, err := pebble.Open(dir, earlierPebbleOptions())
	if err != nil {
		t.Fatal(err)
	}
	write(old, 0, 3000)
	if err := old.Flush(); err != nil {
		t.Fatal(err)
	}
	write(old, 3000, 1000) // left in the WAL and the memtable
	format := old.FormatMajorVersion()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatalf("open a database of the earlier options: %v", err)
	}
	check(db.pdb, "opened")
	write(db.pdb, 2000, 3000) // overwrites some old keys
	if err := db.pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.pdb.Compact(context.Background(), []byte("s/"), []byte("s0"), false); err != nil {
		t.Fatal(err)
	}
	check(db.pdb, "compacted")
	if got := db.pdb.FormatMajorVersion(); got != format {
		t.Errorf("format major version %s, want it left at %s", got, format)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	check(db.pdb, "reopened")
}

// TestCompactionsFollowTheCores: one compaction at a time on two cores (as
// Pebble's default), up to one for every two cores on larger machines.
func TestCompactionsFollowTheCores(t *testing.T) {
	for procs, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 8: 4, 64: 32} {
		if got := compactionsUpTo(procs); got != want {
			t.Errorf("%d cores: up to %d compactions, want %d", procs, got, want)
		}
	}
	lower, upper := pebbleOptions(DBOptions{MemTableBytes: 1 << 20}).CompactionConcurrencyRange()
	if lower != 1 || upper != compactionsUpTo(runtime.GOMAXPROCS(0)) {
		t.Errorf("range (%d, %d) with GOMAXPROCS %d", lower, upper, runtime.GOMAXPROCS(0))
	}
}
