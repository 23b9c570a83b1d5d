package projections

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
)

var threeStreams = []string{"acct-1", "acct-2", "acct-3"}

func testOptions() Options {
	return Options{
		Decoder:            decodeCounted,
		CountablePositions: true,
		PageEvents:         500,
		BatchEvents:        1200,
		MaxWait:            time.Minute,
		RetryDelay:         10 * time.Millisecond,
	}
}

func TestRunnerCatchesUpThenFollowsLive(t *testing.T) {
	store := openStore(t)
	db := openMemDB(t)
	head := appendEvents(t, store, threeStreams, 0, 5000, 7)
	r, err := NewRunner(db, store, []Projection{newCounter("a"), newCounter("b")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	waitFor(t, r, head)

	v := r.View()
	for _, name := range []string{"a", "b"} {
		if got, want := readTally(t, v, name), wantTally(5000); got != want {
			t.Errorf("%s after catch-up: tally %+v, want %+v", name, got, want)
		}
		if pos, _ := v.Position(name); pos != head {
			t.Errorf("%s: view position %s, want %s", name, pos, head)
		}
	}
	_ = v.Close()

	// Live: appended after the runner reached the head.
	head = appendEvents(t, store, threeStreams, 5000, 300, 1)
	waitFor(t, r, head)
	v = r.View()
	defer v.Close()
	if got, want := readTally(t, v, "a"), wantTally(5300); got != want {
		t.Errorf("after live appends: tally %+v, want %+v", got, want)
	}
	lag, err := r.Lag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if lag.Behind || lag.EventsBehind != 0 || lag.Position != head || !lag.Live || len(lag.Projections) != 2 {
		t.Errorf("lag at the head: %+v", lag)
	}
}

// The state must not depend on where batches end: a value loaded and not
// Put, or a cache that outlives a commit, would show up as a difference.
func TestRunnerStateIsIndependentOfBatchBoundaries(t *testing.T) {
	store := openStore(t)
	head := appendEvents(t, store, threeStreams, 0, 900, 5)
	cases := []struct {
		name        string
		page, batch int
	}{
		{"one event per commit", 1, 1},
		{"odd sizes", 10, 37},
		{"one big batch", 1000, 100_000},
	}
	var first map[string]string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.PageEvents, opts.BatchEvents = tc.page, tc.batch
			r, err := Replay(context.Background(), store, openMemDB(t), []Projection{newCounter("c")}, opts, Until{})
			if err != nil {
				t.Fatal(err)
			}
			v := r.View()
			defer v.Close()
			if pos, _ := v.Position("c"); pos != head {
				t.Fatalf("replayed to %s, want %s", pos, head)
			}
			got := dump(t, v, "c")
			if first == nil {
				first = got
			} else if !maps.Equal(got, first) {
				t.Errorf("state differs from %q's", cases[0].name)
			}
		})
	}
}

func TestRunnerResumesFromItsCheckpointAfterRestart(t *testing.T) {
	store := openStore(t)
	dir := t.TempDir()
	ctx := context.Background()
	rounds := []struct{ add, total int }{{3000, 3000}, {1500, 4500}, {100, 4600}}
	for round, rd := range rounds {
		appendEvents(t, store, threeStreams, rd.total-rd.add, rd.add, 3)
		total := rd.total
		db, err := OpenDB(dir, DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRunner(db, store, []Projection{newCounter("c")}, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		stop := runRunner(t, r)
		head, _ := store.Head(ctx)
		waitFor(t, r, head)
		stop()
		v := r.View()
		// The counter fails on an event applied twice or skipped, and the
		// tally proves the count and the sum of positions.
		if got, want := readTally(t, v, "c"), wantTally(uint64(total)); got != want {
			t.Errorf("round %d: tally %+v, want %+v", round, got, want)
		}
		lag, _ := r.Lag(ctx)
		if len(lag.Failed) > 0 {
			t.Errorf("round %d: failed: %+v", round, lag.Projections[0].Failure)
		}
		_ = v.Close()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunnerStopsAtAFailingEventAndDoesNotSkipIt(t *testing.T) {
	store := openStore(t)
	db := openMemDB(t)
	ctx := context.Background()
	head := appendEvents(t, store, threeStreams, 0, 3000, 6)
	failing := allEvents(t, store)[1234] // data {"n":1234}
	bad := newCounter("bad")
	bad.failAt = 1234
	r, err := NewRunner(db, store, []Projection{bad, newCounter("good")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stop := runRunner(t, r)

	err = r.WaitFor(ctx, head)
	var f *Failure
	if !errors.As(err, &f) || !errors.Is(err, ErrNotCaughtUp) {
		t.Fatalf("WaitFor past a failed projection: %v, want a *Failure wrapped in ErrNotCaughtUp", err)
	}
	if f.Projection != "bad" || f.Position != failing.Position || f.StreamID != failing.StreamID ||
		f.Revision != failing.Revision || f.EventID != failing.ID || f.EventType != "Counted.v1" {
		t.Errorf("failure names %+v, want the event at %s (%s rev %d)", f, failing.Position, failing.StreamID, failing.Revision)
	}
	// The healthy projection is not held back.
	waitForProjection(t, r, "good", head)
	stop()

	lag, err := r.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := lag.Projections[0]
	if st.Failure == nil || st.Position.Compare(failing.Position) >= 0 || len(lag.Failed) != 1 {
		t.Fatalf("status of the failed projection: %+v", st)
	}
	v := r.View()
	// What is stored is exactly the events before the checkpoint.
	if got, want := readTally(t, v, "bad"), wantTally(st.Position.Commit); got != want {
		t.Errorf("failed projection's stored tally %+v, want %+v (up to its checkpoint %s)", got, want, st.Position)
	}
	_ = v.Close()

	// A fixed projection (here: the same one, no longer failing) resumes
	// from the checkpoint: the failing event is applied, not skipped.
	bad.failAt = -1
	r2, err := NewRunner(db, store, []Projection{bad, newCounter("good")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r2)
	waitFor(t, r2, head)
	v = r2.View()
	defer v.Close()
	if got, want := readTally(t, v, "bad"), wantTally(3000); got != want {
		t.Errorf("after the fix: tally %+v, want %+v", got, want)
	}
}

func waitForProjection(t *testing.T, r *Runner, name string, pos eventstore.Position) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard, not an assertion
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := r.byName[name].active.committed.Position
		ch := r.changed
		r.mu.Unlock()
		if got.Compare(pos) >= 0 {
			return
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		}
	}
	t.Fatalf("%s did not reach %s", name, pos)
}

func TestRunnerRecoversAPanicAsAFailure(t *testing.T) {
	store := openStore(t)
	head := appendEvents(t, store, threeStreams, 0, 10, 1)
	r, err := NewRunner(openMemDB(t), store, []Projection{panicky{}}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	var f *Failure
	if err := r.WaitFor(context.Background(), head); !errors.As(err, &f) || f.Position.Commit != 4 {
		t.Fatalf("WaitFor: %v, want the failure at event 4", err)
	}
}

type panicky struct{}

func (panicky) Name() string { return "panicky" }
func (panicky) Version() int { return 1 }
func (panicky) Apply(tx *Tx, ev *Event) error {
	if ev.Position.Commit == 4 {
		var m map[string]int
		m["boom"]++ // a nil map write: a real bug, not a staged error
	}
	return nil
}

func TestWaitFor(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	head := appendEvents(t, store, threeStreams, 0, 100, 10)
	r, err := NewRunner(openMemDB(t), store, []Projection{newCounter("c")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("beyond the end of the log", func(t *testing.T) {
		ahead := eventstore.Position{Commit: head.Commit + 1, Prepare: head.Prepare + 1}
		if err := r.WaitFor(ctx, ahead); !errors.Is(err, ErrPositionAhead) {
			t.Errorf("WaitFor(%s): %v, want ErrPositionAhead", ahead, err)
		}
	})
	t.Run("gives up when the context ends", func(t *testing.T) {
		// The runner is not running, so the position is never reached.
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		err := r.WaitFor(short, head)
		if !errors.Is(err, ErrNotCaughtUp) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor: %v, want ErrNotCaughtUp and DeadlineExceeded", err)
		}
	})
	t.Run("the start is always reached", func(t *testing.T) {
		if err := r.WaitFor(ctx, eventstore.Start); err != nil {
			t.Errorf("WaitFor(Start): %v", err)
		}
	})
	t.Run("reads its own writes", func(t *testing.T) {
		runRunner(t, r)
		for i := range 20 {
			res, err := store.Append(ctx, "acct-9", eventstore.Any(), counterEvent("acct-9", 100+i))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.WaitFor(ctx, res.Position); err != nil {
				t.Fatal(err)
			}
			v := r.View()
			got := readTally(t, v, "c")
			_ = v.Close()
			if got.Count < uint64(101+i) {
				t.Fatalf("after WaitFor(%s) the view counts %d events, want at least %d", res.Position, got.Count, 101+i)
			}
		}
	})
}

func TestRebuildUnderLoadSwitchesWithoutAGap(t *testing.T) {
	store := openStore(t)
	db := openMemDB(t)
	ctx := context.Background()
	const before, loadAppends, perAppend = 5000, 100, 20
	head := appendEvents(t, store, threeStreams, 0, before, 50)
	opts := testOptions()
	opts.BatchEvents = 1000
	r, err := NewRunner(db, store, []Projection{newCounter("c"), newCounter("other")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	waitFor(t, r, head)

	// Load: appends and queries go on during the rebuild. The appends are
	// bounded: a writer faster than the rebuild would never let it catch up.
	// Every query must see a whole state: with positions 1..n, a tally of
	// Count events has Sum = Count(Count+1)/2, and the count never goes
	// backwards, not even across the switch.
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	var appended atomic.Int64
	appended.Store(before)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range loadAppends {
			n := int(appended.Load())
			if _, err := tryAppendEvents(store, threeStreams, n, perAppend, perAppend); err != nil {
				t.Error(err)
				return
			}
			appended.Add(perAppend)
		}
	}()
	var queries atomic.Int64
	queryErr := make(chan string, 1)
	go func() {
		defer wg.Done()
		var last uint64
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			v := r.View()
			got := readTally(t, v, "c")
			pos, _ := v.Position("c")
			_ = v.Close()
			if got != wantTally(got.Count) || got.Count < last || got.Count != pos.Commit {
				select {
				case queryErr <- "inconsistent read during rebuild":
				default:
				}
				return
			}
			last = got.Count
			queries.Add(1)
		}
	}()

	if err := r.Rebuild(ctx, "c"); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	close(stopLoad)
	wg.Wait()
	select {
	case msg := <-queryErr:
		t.Fatal(msg)
	default:
	}
	if queries.Load() == 0 {
		t.Fatal("no query ran during the rebuild")
	}

	head, _ = store.Head(ctx)
	waitFor(t, r, head)
	lag, _ := r.Lag(ctx)
	if st := lag.Projections[0]; st.Generation != 2 || st.Rebuild != nil || st.Position != head {
		t.Errorf("after the rebuild: %+v", st)
	}
	v := r.View()
	defer v.Close()
	if got, want := readTally(t, v, "c"), wantTally(uint64(appended.Load())); got != want {
		t.Errorf("rebuilt tally %+v, want %+v", got, want)
	}
	fresh, err := Replay(ctx, store, openMemDB(t), []Projection{newCounter("c")}, opts, UntilPosition(head))
	if err != nil {
		t.Fatal(err)
	}
	fv := fresh.View()
	defer fv.Close()
	if !maps.Equal(dump(t, v, "c"), dump(t, fv, "c")) {
		t.Error("rebuilt state differs from a fresh replay")
	}
	// The old generation is gone: state, checkpoint and meta.
	if n := countKeys(t, db, statePrefix("c", 1)); n != 0 {
		t.Errorf("generation 1 still has %d keys", n)
	}
	if n := countKeys(t, db, checkpointKey("c", 1)); n != 0 {
		t.Error("generation 1's checkpoint is still there")
	}
	m, _, _ := db.readMeta("c")
	if m.Active.Gen != 2 || m.Building != nil {
		t.Errorf("meta %+v", m)
	}
}

func TestRebuildThatFailsKeepsTheServingGeneration(t *testing.T) {
	store := openStore(t)
	db := openMemDB(t)
	ctx := context.Background()
	head := appendEvents(t, store, threeStreams, 0, 2000, 10)
	c := &flaky{counter: newCounter("c")}
	c.failAt.Store(-1)
	r, err := NewRunner(db, store, []Projection{c}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	waitFor(t, r, head)

	c.failAt.Store(700) // only a new generation will meet event 700 again
	err = r.Rebuild(ctx, "c")
	var f *Failure
	if !errors.As(err, &f) || f.Position.Commit != 701 {
		t.Fatalf("Rebuild: %v, want the failure at 701", err)
	}
	lag, _ := r.Lag(ctx)
	if st := lag.Projections[0]; st.Generation != 1 || st.Rebuild != nil || st.Failure != nil || st.Position != head {
		t.Errorf("serving generation after a failed rebuild: %+v", st)
	}
	if n := countKeys(t, db, statePrefix("c", 2)); n != 0 {
		t.Errorf("the failed generation left %d keys", n)
	}
	// A second rebuild may start.
	c.failAt.Store(-1)
	if err := r.Rebuild(ctx, "c"); err != nil {
		t.Fatalf("second Rebuild: %v", err)
	}
}

// flaky fails on demand, safely for the race detector.
type flaky struct {
	*counter
	failAt atomic.Int64
}

func (f *flaky) Apply(tx *Tx, ev *Event) error {
	if d, _ := ev.Decoded(); d != nil && d.(counted).N == f.failAt.Load() {
		return errors.New("deliberate failure")
	}
	return f.counter.Apply(tx, ev)
}

func TestNewVersionStartsFromTheBeginning(t *testing.T) {
	store := openStore(t)
	dir := t.TempDir()
	ctx := context.Background()
	head := appendEvents(t, store, threeStreams, 0, 1000, 10)
	for _, version := range []int{1, 2} {
		db, err := OpenDB(dir, DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := newCounter("c")
		c.version = version
		r, err := NewRunner(db, store, []Projection{c}, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if version == 2 {
			if pos := r.Position(); !pos.IsStart() {
				t.Errorf("version 2 starts at %s, want the start", pos)
			}
			if n := countKeys(t, db, statePrefix("c", 1)); n != 0 {
				t.Errorf("version 1's state still has %d keys", n)
			}
		}
		stop := runRunner(t, r)
		waitFor(t, r, head)
		stop()
		v := r.View()
		if got := readTally(t, v, "c"); got != wantTally(1000) {
			t.Errorf("version %d: tally %+v", version, got)
		}
		lag, _ := r.Lag(ctx)
		if lag.Projections[0].Version != version || lag.Projections[0].Generation != uint64(version) {
			t.Errorf("version %d: status %+v", version, lag.Projections[0])
		}
		_ = v.Close()
		_ = db.Close()
	}
}

func TestReplayStopsAtAPositionOrATime(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	appendEvents(t, store, threeStreams, 0, 700, 9)
	all := allEvents(t, store)

	at := all[411].RecordedAt
	byTime := uint64(0)
	for _, ev := range all {
		if ev.RecordedAt.After(at) {
			break
		}
		byTime++
	}
	cases := []struct {
		name  string
		until Until
		want  uint64
	}{
		{"whole log", Until{}, 700},
		{"position", UntilPosition(all[99].Position), 100},
		{"first event", UntilPosition(all[0].Position), 1},
		{"time", UntilTime(at), byTime},
		{"before the first event", UntilTime(all[0].RecordedAt.Add(-time.Nanosecond)), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Replay(ctx, store, openMemDB(t), []Projection{newCounter("c")}, testOptions(), tc.until)
			if err != nil {
				t.Fatal(err)
			}
			v := r.View()
			defer v.Close()
			if got := readTally(t, v, "c"); got != wantTally(tc.want) {
				t.Errorf("tally %+v, want %+v", got, wantTally(tc.want))
			}
		})
	}
}

func TestStreamHistory(t *testing.T) {
	store := openStore(t)
	ctx := context.Background()
	appendEvents(t, store, []string{"only"}, 0, 25, 25)
	var got []StreamEvent
	from := uint64(0)
	for {
		page, next, more, err := StreamHistory(ctx, store, "only", from, 10)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if !more {
			break
		}
		from = next
	}
	if len(got) != 25 {
		t.Fatalf("%d events, want 25", len(got))
	}
	for i, e := range got {
		if e.Revision != uint64(i) || e.Metadata.Actor.UserID != "tester" || e.Type != "Counted.v1" {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	if _, _, _, err := StreamHistory(ctx, store, "none", 0, 10); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("missing stream: %v", err)
	}
	if _, _, _, err := StreamHistory(ctx, store, "only", 0, MaxHistoryLimit+1); err == nil {
		t.Error("a limit above the maximum was accepted")
	}
}

func counterEvent(stream string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:   eventID(stream, n),
		Type: "Counted.v1",
		Data: []byte(`{"n":` + strconv.Itoa(n) + `}`),
	}
}

func allEvents(t testing.TB, s eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	pos := eventstore.Start
	for {
		page, err := s.ReadAll(context.Background(), pos, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		pos = page[len(page)-1].Position
	}
}

func countKeys(t testing.TB, db *DB, prefix []byte) int {
	t.Helper()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// TestRebuildAllInOnePass: RebuildAll rebuilds several projections in one
// pass over the log while events keep arriving. The ones that succeed are
// switched to a new generation holding exactly the state of the serving
// one (the counters agree with the log); the one that fails keeps its
// serving generation and leaves no keys behind; an unknown name and a name
// given twice are refused without stopping the others.
func TestRebuildAllInOnePass(t *testing.T) {
	store := openStore(t)
	db := openMemDB(t)
	ctx := context.Background()
	head := appendEvents(t, store, threeStreams, 0, 2000, 10)
	a, b := newCounter("a"), newCounter("b")
	c := &flaky{counter: newCounter("c")}
	c.failAt.Store(-1)
	r, err := NewRunner(db, store, []Projection{a, b, c}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	waitFor(t, r, head)

	done := make(chan eventstore.Position)
	go func() { done <- appendEvents(t, store, threeStreams, 2000, 1000, 10) }()
	c.failAt.Store(700) // only a new generation meets event 700 again
	errs := r.RebuildAll(ctx, []string{"a", "b", "c", "nope", "a"})
	head = <-done
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("RebuildAll: a %v, b %v; want both switched", errs[0], errs[1])
	}
	var f *Failure
	if !errors.As(errs[2], &f) || f.Position.Commit != 701 {
		t.Errorf("c: %v, want its failure at 701", errs[2])
	}
	if errs[3] == nil || !errors.Is(errs[4], ErrRebuildInProgress) {
		t.Errorf("unknown name: %v; name given twice: %v", errs[3], errs[4])
	}
	waitFor(t, r, head)
	lag, err := r.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gens := map[string]uint64{}
	for _, st := range lag.Projections {
		gens[st.Name] = st.Generation
		if st.Rebuild != nil || st.Failure != nil || st.Position != head {
			t.Errorf("%s after RebuildAll: %+v", st.Name, st)
		}
	}
	if gens["a"] != 2 || gens["b"] != 2 || gens["c"] != 1 {
		t.Errorf("generations %v, want a and b at 2, c at 1", gens)
	}
	if n := countKeys(t, db, statePrefix("c", 2)); n != 0 {
		t.Errorf("the failed generation left %d keys", n)
	}
	v := r.View()
	defer v.Close()
	for _, name := range []string{"a", "b", "c"} {
		if got, want := readTally(t, v, name), wantTally(3000); got != want {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
}

// TestRunCatchesUpFromNothingThenFollows: read models that start from
// nothing catch up as a rebuild does (RebuildAll's pass) and then follow
// live writes; on an empty log the Run loop goes live at once instead of
// starting that catch-up again and again.
func TestRunCatchesUpFromNothingThenFollows(t *testing.T) {
	ctx := context.Background()
	live := func(r *Runner) bool {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if lag, err := r.Lag(ctx); err == nil && lag.Live {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}

	empty := openStore(t)
	r, err := NewRunner(openMemDB(t), empty, []Projection{newCounter("c")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	if !live(r) {
		t.Fatal("the Run loop never went live on an empty log")
	}
	head := appendEvents(t, empty, threeStreams, 0, 300, 10)
	waitFor(t, r, head)
	v := r.View()
	if got := readTally(t, v, "c"); got != wantTally(300) {
		t.Errorf("after following from an empty log: %+v, want %+v", got, wantTally(300))
	}
	v.Close()

	store := openStore(t)
	head = appendEvents(t, store, threeStreams, 0, 3000, 10)
	r, err = NewRunner(openMemDB(t), store, []Projection{newCounter("a"), newCounter("b")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	waitFor(t, r, head)
	if !live(r) {
		t.Fatal("the Run loop never went live after catching up")
	}
	for _, m := range r.liveMembers() {
		if m.tx.written == nil { // only a catch-up from nothing starts one
			t.Errorf("%s did not catch up as a rebuild does", m.name)
		}
	}
	head = appendEvents(t, store, threeStreams, 3000, 500, 10)
	waitFor(t, r, head)
	v = r.View()
	defer v.Close()
	for _, name := range []string{"a", "b"} {
		if got := readTally(t, v, name); got != wantTally(3500) {
			t.Errorf("%s = %+v, want %+v", name, got, wantTally(3500))
		}
	}
}

// upgrader is a counter whose code reads the state of its version 1.
type upgrader struct{ *counter }

func (upgrader) ReadsVersion(stored int) bool { return stored == 1 }

// TestUpgraderKeepsServingWhileItRebuilds: a projection whose new version
// reads the state its earlier version stored keeps that generation serving
// at once after the upgrade, with the earlier version's answers, instead of
// starting from nothing; with RebuildUpgraded, Run rebuilds it beside that
// generation, under live appends, and switches to version 2 with the same
// answers. Without the option it keeps serving the earlier state.
func TestUpgraderKeepsServingWhileItRebuilds(t *testing.T) {
	store := openStore(t)
	dir := t.TempDir()
	ctx := context.Background()
	head := appendEvents(t, store, threeStreams, 0, 1000, 10)
	open := func(p Projection, opts Options) (*DB, *Runner) {
		t.Helper()
		db, err := OpenDB(dir, DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRunner(db, store, []Projection{p}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return db, r
	}
	db, r := open(newCounter("c"), testOptions())
	stop := runRunner(t, r)
	waitFor(t, r, head)
	stop()
	_ = db.Close()

	v2 := upgrader{newCounter("c")}
	v2.version = 2
	// Without RebuildUpgraded: version 1's state serves, and stays.
	db, r = open(v2, testOptions())
	if pos := r.Position(); pos != head {
		t.Fatalf("after the upgrade the projection is at %s, want %s: it started again", pos, head)
	}
	stop = runRunner(t, r)
	waitFor(t, r, head)
	stop()
	lag, _ := r.Lag(ctx)
	if st := lag.Projections[0]; st.Version != 1 || st.Generation != 1 || st.Rebuild != nil {
		t.Errorf("without RebuildUpgraded: status %+v, want version 1's generation 1 and no rebuild", st)
	}
	_ = db.Close()

	opts := testOptions()
	opts.RebuildUpgraded = true
	db, r = open(v2, opts)
	defer db.Close()
	view := r.View()
	if got := readTally(t, view, "c"); got != wantTally(1000) {
		t.Errorf("served at once after the upgrade: tally %+v, want %+v", got, wantTally(1000))
	}
	_ = view.Close()
	stop = runRunner(t, r)
	defer stop()
	head = appendEvents(t, store, threeStreams, 1000, 200, 10) // live, during the rebuild
	if st := waitForVersion(t, r, "c", 2, head); st.Generation != 2 || st.Rebuild != nil {
		t.Errorf("after the switch: status %+v", st)
	}
	view = r.View()
	defer view.Close()
	if got := readTally(t, view, "c"); got != wantTally(1200) {
		t.Errorf("after the rebuild: tally %+v, want %+v", got, wantTally(1200))
	}
	if n := countKeys(t, db, statePrefix("c", 1)); n != 0 {
		t.Errorf("version 1's generation still has %d keys", n)
	}
}
