package projections

import (
	"sync"
	"testing"
)

// TestViewPositionNeverAheadOfItsState: a view's position comes from the
// runner's memory, not from the checkpoint stored in the view's snapshot.
// While writers append and the runner commits, it must never claim more
// than the view holds (a client waiting for its write would read a state
// without it), and once the runner is idle it must be exactly the stored
// checkpoint.
func TestViewPositionNeverAheadOfItsState(t *testing.T) {
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
	checks := 0
	check := func(exact bool) {
		t.Helper()
		v := r.View()
		defer v.Close()
		for _, name := range []string{"a", "b"} {
			pos, err := v.Position(name)
			if err != nil {
				t.Fatal(err)
			}
			stored := *v.Reader(name)
			stored.posKnown = false
			ck, err := stored.Position()
			if err != nil {
				t.Fatal(err)
			}
			applied := readTally(t, v, name).Count // events 1..n: the state holds n
			if ck.Commit != applied {
				t.Fatalf("%s: stored checkpoint %s, state of %d events", name, ck, applied)
			}
			if pos.Commit > applied || exact && pos != ck {
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
			check(false)
		}
	}
	head, err := store.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, head)
	check(true)
	if checks < 4 {
		t.Fatalf("only %d checks", checks)
	}
}
