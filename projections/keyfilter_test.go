package projections

import (
	"fmt"
	"io"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestKeyFilterHasNoFalseNegatives: every key added is reported, across
// the filter's growth; keys never added are almost all (99.8% here) not.
func TestKeyFilterHasNoFalseNegatives(t *testing.T) {
	f := newKeyFilter()
	const n = 300_000 // grows the filter to three parts (65,536 + 131,072 + 262,144 keys)
	for i := range n {
		f.add(fmt.Sprintf("o/payment-%012d-SOCIAL_MONTHLY-2024-01", i))
		if i%3 == 0 {
			f.add(fmt.Sprintf("o/payment-%012d-SOCIAL_MONTHLY-2024-01", i)) // again: counted twice, 400,000 adds
		}
	}
	if len(f.parts) != 3 {
		t.Errorf("%d parts for %d keys, want 3", len(f.parts), n)
	}
	for i := range n {
		if !f.mayHave(fmt.Appendf(nil, "o/payment-%012d-SOCIAL_MONTHLY-2024-01", i)) {
			t.Fatalf("key %d was added and is not reported", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayHave(fmt.Appendf(nil, "o/payment-%012d-SOCIAL_MONTHLY-2024-02", i)) {
			fp++
		}
	}
	if fp > n/500 { // 66 (0.02%) with 16 bits a key and 8 probes
		t.Errorf("%d false positives in %d keys never added, want at most 0.2%%", fp, n)
	}
}

// countingReader counts the Gets a Tx sends to Pebble.
type countingReader struct {
	pebble.Reader
	gets int
}

func (c *countingReader) Get(key []byte) ([]byte, io.Closer, error) {
	c.gets++
	return c.Reader.Get(key)
}

// TestTxAfterCacheDropAsksPebbleOnlyForWrittenKeys: a Tx that started on an
// empty keyspace still answers a key it never wrote without Pebble after
// its cache was dropped, and reads back from Pebble the keys it wrote.
func TestTxAfterCacheDropAsksPebbleOnlyForWrittenKeys(t *testing.T) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rd := &countingReader{Reader: db.pdb}
	tx := newTx(rd, []byte("test/1/"))
	if err := tx.startEmpty(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		tx.Set(fmt.Appendf(nil, "k%03d", i), []byte("v"))
	}
	tx.Delete([]byte("k000"))
	b := db.pdb.NewBatch()
	if _, err := tx.writeTo(b, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	tx.committed(0, 0) // drops the cache
	if tx.complete {
		t.Fatal("still complete after the cache was dropped")
	}
	for i := range 100 {
		_, found, err := tx.Get(fmt.Appendf(nil, "k%03d", i))
		if err != nil || found != (i > 0) {
			t.Fatalf("k%03d: found %v, %v", i, found, err)
		}
	}
	// k000 was deleted before it was ever stored: known not to exist.
	if rd.gets != 99 {
		t.Errorf("%d Gets for the 99 keys stored, want 99", rd.gets)
	}
	rd.gets = 0
	for i := range 1000 {
		if _, found, err := tx.Get(fmt.Appendf(nil, "never%04d", i)); err != nil || found {
			t.Fatalf("never%04d: found %v, %v", i, found, err)
		}
	}
	if rd.gets > 10 {
		t.Errorf("%d Gets for 1000 keys never written, want under 1%% (false positives)", rd.gets)
	}
}

// TestTxFilterKnowsEveryKeyItWrote: however a key came to be written (set
// blind, or read first as missing, or read back from Pebble after the cache
// was dropped), and however often, once written it is never answered as
// missing from the filter. A key read first is added once; a key written
// blind after the cache was dropped is added again without asking the
// filter (keyFilter.add), which costs a count, not an answer.
func TestTxFilterKnowsEveryKeyItWrote(t *testing.T) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx := newTx(db.pdb, []byte("test/1/"))
	if err := tx.startEmpty(); err != nil {
		t.Fatal(err)
	}
	commit := func() { t.Helper(); commitTx(t, db, tx, 0, 0) } // drops the cache: the filter must answer
	for round := range 3 {
		for i := range 300 {
			key := fmt.Appendf(nil, "k%03d", i)
			switch (i + round) % 3 {
			case 0:
				tx.Set(key, fmt.Appendf(nil, "%d", round))
			default:
				if _, _, err := tx.Get(key); err != nil {
					t.Fatal(err)
				}
				tx.Set(key, fmt.Appendf(nil, "%d", round))
			}
		}
		commit()
		for i := range 300 {
			if !tx.written.mayHave(fmt.Appendf(nil, "k%03d", i)) {
				t.Fatalf("round %d: k%03d written and not in the filter", round, i)
			}
		}
	}
	// 300 in the first round; then in each of the two others the 100 keys
	// written blind again, while the 200 read back from Pebble are known.
	if n := tx.written.parts[0].n; n != 500 {
		t.Errorf("the filter counted %d adds, want 500", n)
	}
}
