package projections

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestTxCompleteSkipsOnlyWhatCannotExist: a Tx that started on an empty
// keyspace answers misses from memory, but one whose keyspace holds keys,
// or whose cache was dropped, still reads Pebble.
func TestTxCompleteSkipsOnlyWhatCannotExist(t *testing.T) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := []byte("test/1/")
	commit := func(tx *Tx, cacheMax int) { t.Helper(); commitTx(t, db, tx, cacheMax, 0) }
	get := func(tx *Tx, key string) bool {
		t.Helper()
		_, found, err := tx.Get([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return found
	}

	tx := newTx(db.pdb, prefix)
	if err := tx.startEmpty(); err != nil {
		t.Fatal(err)
	}
	if !tx.complete {
		t.Fatal("empty keyspace: want complete")
	}
	if get(tx, "a") {
		t.Fatal("a found in an empty keyspace")
	}
	tx.Set([]byte("a"), []byte("1"))
	commit(tx, 100)
	if !tx.complete || !get(tx, "a") {
		t.Fatalf("after a commit that kept the cache: complete %v, a found %v", tx.complete, get(tx, "a"))
	}
	// Dropping the cache (more keys than cacheMax) forgets what exists.
	tx.Set([]byte("b"), []byte("2"))
	commit(tx, 0)
	if tx.complete {
		t.Fatal("after the cache was dropped: still complete")
	}
	if !get(tx, "a") || !get(tx, "b") {
		t.Fatal("after the cache was dropped: committed keys not read back from Pebble")
	}

	// A keyspace that already holds keys is never complete.
	tx2 := newTx(db.pdb, prefix)
	if err := tx2.startEmpty(); err != nil {
		t.Fatal(err)
	}
	if tx2.complete || !get(tx2, "a") {
		t.Fatalf("non-empty keyspace: complete %v, a found %v", tx2.complete, get(tx2, "a"))
	}
	// Another prefix is empty even though a neighbour holds keys.
	tx3 := newTx(db.pdb, []byte("test/10/"))
	if err := tx3.startEmpty(); err != nil {
		t.Fatal(err)
	}
	if !tx3.complete {
		t.Fatal("empty neighbouring keyspace: want complete")
	}
}

// TestTxRegrowKeepsEveryEntry: when a Tx remakes its map at its expected
// size (insert, at growAt keys), every key written before and after, new
// or read from Pebble, keeps its value and its dirty mark, and a commit
// writes each exactly once.
func TestTxRegrowKeepsEveryEntry(t *testing.T) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := []byte("test/1/")
	// Some keys already on disk, so that lookup's Pebble path inserts too.
	b := db.pdb.NewBatch()
	for i := 0; i < 100; i++ {
		if err := b.Set([]byte(fmt.Sprintf("test/1/old%05d", i)), []byte(fmt.Sprint(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	b.Close()

	tx := newTx(db.pdb, prefix)
	tx.sizeHint = 5 * growAt
	n := 2*growAt + 17
	for i := 0; i < n; i++ {
		if i%100 == 0 {
			key := fmt.Sprintf("old%05d", i/100)
			if _, found, err := tx.Get([]byte(key)); err != nil || !found {
				t.Fatalf("Get(%s) = %v, %v before any write", key, found, err)
			}
		}
		tx.Set([]byte(fmt.Sprintf("k%06d", i)), []byte(fmt.Sprint(i)))
	}
	if len(tx.entries) != n+(n+99)/100 {
		t.Fatalf("%d entries, want %d", len(tx.entries), n+(n+99)/100)
	}
	for i := 0; i < n; i++ {
		v, found, err := tx.Get([]byte(fmt.Sprintf("k%06d", i)))
		if err != nil || !found || string(v) != fmt.Sprint(i) {
			t.Fatalf("k%06d = %q, %v, %v; want %d", i, v, found, err, i)
		}
	}
	if tx.Dirty() != n {
		t.Fatalf("%d dirty, want %d", tx.Dirty(), n)
	}
	batch := db.pdb.NewBatch()
	defer batch.Close()
	if _, err := tx.writeTo(batch, nil); err != nil {
		t.Fatal(err)
	}
	if int(batch.Count()) != n {
		t.Fatalf("commit holds %d keys, want %d", batch.Count(), n)
	}

	// Once made at its size, the map is kept through the cache's resets
	// (clear keeps its room) rather than made again each time it refills.
	m := tx.entries
	tx.markClean()
	tx.reset()
	for i := 0; i < 2*growAt; i++ {
		tx.Set([]byte(fmt.Sprintf("again%06d", i)), nil)
	}
	if reflect.ValueOf(tx.entries).UnsafePointer() != reflect.ValueOf(m).UnsafePointer() {
		t.Error("the map was made again after a reset")
	}
}
