package projections

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"testing"
)

// replayGated replays like Replay, with every commit held back from disk
// until the next commit (or the end) waits for it: each batch is applied
// entirely while the one before it is still in flight.
func replayGated(t *testing.T, r *Runner, stopOnFailure bool) []*member {
	t.Helper()
	r.writeGate = make(chan struct{})
	ms := r.liveMembers()
	for _, m := range ms {
		if err := m.tx.startEmpty(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.replay(context.Background(), ms, Until{}, stopOnFailure); err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestReplayAppliesWhileACommitIsInFlight: a replay applies a batch while
// the commit of the one before is not on disk yet. The counter fails on an
// event applied twice or a stream revision skipped, which is what a value
// read from Pebble instead of the in-flight batch would cause; and the
// stored state must equal the Run loop's, which commits one batch at a
// time. A cache of one key drops everything clean at each commit.
func TestReplayAppliesWhileACommitIsInFlight(t *testing.T) {
	store := openStore(t)
	head := appendEvents(t, store, threeStreams, 0, 900, 5)
	ref, err := NewRunner(openMemDB(t), store, []Projection{newCounter("c")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stop := runRunner(t, ref)
	waitFor(t, ref, head)
	stop()
	rv := ref.View()
	want := dump(t, rv, "c")
	_ = rv.Close()

	for _, tc := range []struct {
		name               string
		page, batch, cache int
	}{
		{"cache of one key", 10, 37, 1},
		{"cache kept", 10, 37, 100_000},
		{"one event per commit", 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.PageEvents, opts.BatchEvents, opts.CacheKeys = tc.page, tc.batch, tc.cache
			r, err := NewRunner(openMemDB(t), store, []Projection{newCounter("c")}, opts)
			if err != nil {
				t.Fatal(err)
			}
			ms := replayGated(t, r, true)
			v := r.View()
			defer v.Close()
			if pos, _ := v.Position("c"); pos != head || ms[0].committed.Position != head {
				t.Fatalf("replayed to %s (committed %s), want %s", pos, ms[0].committed.Position, head)
			}
			if got := dump(t, v, "c"); !maps.Equal(got, want) {
				t.Errorf("state differs from the Run loop's (%d keys, want %d)", len(got), len(want))
			}
		})
	}
}

// TestReplayFailureWhileACommitIsInFlight: a projection that fails while
// a commit is in flight keeps that commit (it lands), and its checkpoint
// and stored state agree; the other projection goes on to the head.
func TestReplayFailureWhileACommitIsInFlight(t *testing.T) {
	store := openStore(t)
	head := appendEvents(t, store, threeStreams, 0, 900, 5)
	bad := newCounter("bad")
	bad.failAt = 500 // positions 481 to 520 are one batch: 441 to 480 are in flight
	opts := testOptions()
	opts.PageEvents, opts.BatchEvents = 10, 37
	r, err := NewRunner(openMemDB(t), store, []Projection{bad, newCounter("good")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ms := replayGated(t, r, false)
	if ms[0].failure == nil || ms[1].failure != nil {
		t.Fatalf("failures: bad %v, good %v", ms[0].failure, ms[1].failure)
	}
	if ms[0].applied != ms[0].committed {
		t.Errorf("bad: applied %+v, committed %+v: they must agree once it stopped", ms[0].applied, ms[0].committed)
	}
	v := r.View()
	defer v.Close()
	pos, _ := v.Position("bad")
	if pos.Commit != 480 {
		t.Errorf("bad stored at %s, want the in-flight commit's 480", pos)
	}
	if got, want := readTally(t, v, "bad"), wantTally(pos.Commit); got != want {
		t.Errorf("bad: stored tally %+v, want %+v (up to its checkpoint %s)", got, want, pos)
	}
	if got, want := readTally(t, v, "good"), wantTally(head.Commit); got != want {
		t.Errorf("good: tally %+v, want %+v", got, want)
	}
}

// TestReplayStopsAtTheFirstFailure: with several read models applying on
// goroutines of their own, Replay still returns the failure of the one
// that stopped, naming its event, and nothing past that event is stored
// for it.
func TestReplayStopsAtTheFirstFailure(t *testing.T) {
	store := openStore(t)
	appendEvents(t, store, threeStreams, 0, 900, 5)
	failing := allEvents(t, store)[700] // data {"n":700}
	bad := newCounter("bad")
	bad.failAt = 700
	opts := testOptions()
	opts.PageEvents, opts.BatchEvents = 10, 37
	_, err := Replay(context.Background(), store, openMemDB(t), []Projection{newCounter("a"), bad, newCounter("b")}, opts, Until{})
	var f *Failure
	if !errors.As(err, &f) || f.Projection != "bad" || f.Position != failing.Position {
		t.Fatalf("Replay: %v, want the failure of bad at %s", err, failing.Position)
	}
}

// TestReplayOfSeveralReadModelsMatchesTheRunLoop: read models that apply
// each on its own goroutine, meeting at commits, store what the Run loop
// stores.
func TestReplayOfSeveralReadModelsMatchesTheRunLoop(t *testing.T) {
	store := openStore(t)
	head := appendEvents(t, store, threeStreams, 0, 900, 5)
	names := []string{"a", "b", "c"}
	projs := func() []Projection { return []Projection{newCounter("a"), newCounter("b"), newCounter("c")} }
	ref, err := NewRunner(openMemDB(t), store, projs(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stop := runRunner(t, ref)
	waitFor(t, ref, head)
	stop()
	opts := testOptions()
	opts.PageEvents, opts.BatchEvents, opts.CacheKeys = 7, 50, 3
	r, err := Replay(context.Background(), store, openMemDB(t), projs(), opts, Until{})
	if err != nil {
		t.Fatal(err)
	}
	rv, v := ref.View(), r.View()
	defer rv.Close()
	defer v.Close()
	for _, name := range names {
		if pos, _ := v.Position(name); pos != head {
			t.Errorf("%s replayed to %s, want %s", name, pos, head)
		}
		if got, want := dump(t, v, name), dump(t, rv, name); !maps.Equal(got, want) {
			t.Errorf("%s: state differs from the Run loop's (%d keys, want %d)", name, len(got), len(want))
		}
	}
}

// TestCommitBatchIsInKeyOrder: the one batch of a commit holds its keys in
// order (checkpoints, then each read model's state), whatever the order of
// the read models, so that Pebble need not sort it.
func TestCommitBatchIsInKeyOrder(t *testing.T) {
	store := openStore(t)
	appendEvents(t, store, threeStreams, 0, 300, 5)
	for _, names := range [][]string{{"c", "a", "b"}, {"a"}} {
		var projs []Projection
		for _, n := range names {
			projs = append(projs, newCounter(n))
		}
		r, err := NewRunner(openMemDB(t), store, projs, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		var evs []Event
		for _, rec := range allEvents(t, store) {
			evs = append(evs, *NewEvent(rec, decodeCounted))
		}
		ms := r.liveMembers()
		r.applyAll(ms, evs)
		p, err := r.prepareCommit(ms, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.write(r.db); err != nil {
			t.Fatal(err)
		}
		b := p.batches[0]
		if p.merged != nil {
			b = p.merged
		}
		rd := b.Reader()
		var prev []byte
		n := 0
		for {
			_, k, _, ok, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if n > 0 && bytes.Compare(prev, k) >= 0 {
				t.Fatalf("%v: key %q after %q", names, k, prev)
			}
			prev = append(prev[:0], k...)
			n++
		}
		if want := len(names) * (1 + 1 + 300 + len(threeStreams)); n != want { // checkpoint, tally, seen/..., stream/...
			t.Errorf("%v: %d keys in the batch, want %d", names, n, want)
		}
		p.close(nil)
	}
}
