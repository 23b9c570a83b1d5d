package projections

import (
	"sync"
	"testing"
)

// TestViewPositionIsThatOfItsState: a view's position comes from the
// runner's published checkpoints when no commit is being written, and
// from the checkpoint in the view's snapshot otherwise. While writers
// append and the runner commits, it must always be exactly the position of
// the state the view holds: ahead, a client waiting for its write would
// read a state without it; behind, the answer would claim less than it
// shows.
func TestViewPositionIsThatOfItsState(t *testing.T) {
	store := openStore(t)
	db := openMemDB(t)
	appendEvents(t, store, threeStreams, 0, 200, 7)
	r, err := NewRunner(db, store, []Projection{newCounter("a"), newCounter("b")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	var wg sync.WaitGroup
	const writers, perWriter = 4, 150
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := tryAppendEvents(store, threeStreams, 200+(w*perWriter+i), 1, 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	checks, fromMemory := 0, 0
	check := func() {
		t.Helper()
		v := r.View()
		defer v.Close()
		for _, name := range []string{"a", "b"} {
			pos, err := v.Position(name)
			if err != nil {
				t.Fatal(err)
			}
			stored := *v.Reader(name)
			if stored.posKnown {
				fromMemory++
			}
			stored.posKnown = false
			ck, err := stored.Position()
			if err != nil {
				t.Fatal(err)
			}
			applied := readTally(t, v, name).Count // events 1..n: the state holds n
			if ck.Commit != applied {
				t.Fatalf("%s: stored checkpoint %s, state of %d events", name, ck, applied)
			}
			if pos != ck {
				t.Fatalf("%s: view position %s, stored checkpoint %s, state of %d events", name, pos, ck, applied)
			}
			checks++
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			check()
		}
	}
	head, err := store.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, head)
	check()
	if checks < 4 || fromMemory == 0 {
		t.Fatalf("%d checks, %d of them with the position from the runner", checks, fromMemory)
	}
}
