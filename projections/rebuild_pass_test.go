package projections

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
)

// passCounter counts the reads of the log that begin at its first event:
// one per pass over the whole log.
type passCounter struct {
	eventstore.Store
	passes atomic.Int32
}

func (s *passCounter) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if after.IsStart() {
		s.passes.Add(1)
	}
	return s.Store.ReadAll(ctx, after, limit)
}

// versionChanged returns a database in dir whose projections a, b and c
// were built up to head by version 1, and the store counting passes.
func versionChanged(t *testing.T) (dir string, store *passCounter, head eventstore.Position) {
	t.Helper()
	inner := openStore(t)
	dir = t.TempDir()
	head = appendEvents(t, inner, threeStreams, 0, 1000, 10)
	db, r := openRunner(t, dir, inner, testOptions(), newCounter("a"), newCounter("b"), newCounter("c"))
	stop := runRunner(t, r)
	waitFor(t, r, head)
	stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, &passCounter{Store: inner}, head
}

// openRunner opens the database in dir and a runner of projs on it.
func openRunner(t *testing.T, dir string, store eventstore.Store, opts Options, projs ...Projection) (*DB, *Runner) {
	t.Helper()
	db, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(db, store, projs, opts)
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	return db, r
}

func statuses(t *testing.T, r *Runner) map[string]Status {
	t.Helper()
	lag, err := r.Lag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Status{}
	for _, st := range lag.Projections {
		out[st.Name] = st
	}
	return out
}

// TestRebuildJoinsTheCatchUpFromNothing: after an upgrade that changed
// a's version (a holds nothing, and the Run loop replays it from the first
// event), a rebuild of a and b started before Run reads the log once: a's
// rebuild is that replay, in the generation the version change started,
// and b's new generation is built in the same pass. c is left alone.
func TestRebuildJoinsTheCatchUpFromNothing(t *testing.T) {
	dir, store, head := versionChanged(t)
	a := newCounter("a")
	a.version = 2
	db, r := openRunner(t, dir, store, testOptions(), a, newCounter("b"), newCounter("c"))
	defer db.Close()
	wait := r.StartRebuild(context.Background(), []string{"a", "b", "nope", "b"})
	runRunner(t, r)
	errs := wait()
	if errs[0] != nil || errs[1] != nil || errs[2] == nil || errs[3] != ErrRebuildInProgress {
		t.Fatalf("rebuild: %v", errs)
	}
	if n := store.passes.Load(); n != 1 {
		t.Errorf("%d passes over the log, want 1", n)
	}
	waitFor(t, r, head)
	sts := statuses(t, r)
	for name, gen := range map[string]uint64{"a": 2, "b": 2, "c": 1} {
		if st := sts[name]; st.Generation != gen || st.Position != head || st.Rebuild != nil {
			t.Errorf("%s: %+v, want generation %d at %s", name, st, gen, head)
		}
	}
	v := r.View()
	defer v.Close()
	for _, name := range []string{"a", "b", "c"} {
		if got := readTally(t, v, name); got != wantTally(1000) {
			t.Errorf("%s = %+v, want %+v", name, got, wantTally(1000))
		}
	}
	if n := countKeys(t, db, statePrefix("b", 1)); n != 0 {
		t.Errorf("b's old generation still has %d keys", n)
	}
}

// TestUpgradeJoinsTheCatchUpFromNothing: after an upgrade that emptied a
// (a new version that cannot read the old state) and changed b into a
// version that reads its earlier state (Upgrader), the service's Run loop
// (RebuildUpgraded) rebuilds b in the same pass that catches a up, instead
// of a second pass beside it; b serves its earlier state until it switches.
func TestUpgradeJoinsTheCatchUpFromNothing(t *testing.T) {
	dir, store, head := versionChanged(t)
	a, b := newCounter("a"), upgrader{newCounter("b")}
	a.version, b.version = 2, 2
	opts := testOptions()
	opts.RebuildUpgraded = true
	db, r := openRunner(t, dir, store, opts, a, b, newCounter("c"))
	defer db.Close()
	v := r.View()
	if got := readTally(t, v, "b"); got != wantTally(1000) {
		t.Errorf("b served at once: %+v, want %+v", got, wantTally(1000))
	}
	_ = v.Close()
	runRunner(t, r)
	st := waitForVersion(t, r, "b", 2, head)
	if st.Generation != 2 {
		t.Errorf("b: %+v, want generation 2", st)
	}
	if n := store.passes.Load(); n != 1 {
		t.Errorf("%d passes over the log, want 1", n)
	}
	sts := statuses(t, r)
	if st := sts["a"]; st.Generation != 2 || st.Version != 2 || st.Position != head {
		t.Errorf("a: %+v", st)
	}
	v = r.View()
	defer v.Close()
	for _, name := range []string{"a", "b", "c"} {
		if got := readTally(t, v, name); got != wantTally(1000) {
			t.Errorf("%s = %+v, want %+v", name, got, wantTally(1000))
		}
	}
}

// TestRebuildBesideAFollowingRunLoop: once the Run loop follows the log
// (its pass has begun), a rebuild is built in a pass of its own beside the
// serving generations, as before: the Run loop's pass is not joined.
func TestRebuildBesideAFollowingRunLoop(t *testing.T) {
	dir, store, head := versionChanged(t)
	db, r := openRunner(t, dir, store, testOptions(), newCounter("a"), newCounter("b"))
	defer db.Close()
	runRunner(t, r)
	waitFor(t, r, head)
	if errs := r.RebuildAll(context.Background(), []string{"a"}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := store.passes.Load(); n != 1 {
		t.Errorf("%d passes over the log, want 1 (the rebuild's)", n)
	}
	if st := statuses(t, r)["a"]; st.Generation != 2 {
		t.Errorf("a: %+v, want generation 2", st)
	}
}

// gated blocks in its first Apply until released.
type gated struct {
	*counter
	once             sync.Once
	entered, release chan struct{}
}

func (g *gated) Apply(tx *Tx, ev *Event) error {
	g.once.Do(func() { close(g.entered); <-g.release })
	return g.counter.Apply(tx, ev)
}

// TestRebuildDoesNotJoinAPassUnderWay: a pass of the Run loop that has
// begun takes no new generation, even when it reads from the first event.
// Here the loop follows an empty log live; events arrive; f fails on the
// first and a is still applying it, so a has committed nothing. A rebuild
// of f handed straight to that pass would join it after the events it has
// already read, and be switched to with nothing applied; it must be built
// beside instead, and hold every event.
func TestRebuildDoesNotJoinAPassUnderWay(t *testing.T) {
	store := openStore(t)
	f := &flaky{counter: newCounter("f")}
	f.failAt.Store(0) // the first event
	a := &gated{counter: newCounter("a"), entered: make(chan struct{}), release: make(chan struct{})}
	r, err := NewRunner(openMemDB(t), store, []Projection{f, a}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	release := sync.OnceFunc(func() { close(a.release) })
	t.Cleanup(release) // before the Run loop is stopped, whatever fails
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for lag, _ := r.Lag(ctx); !lag.Live; lag, _ = r.Lag(ctx) {
		if ctx.Err() != nil {
			t.Fatal("the Run loop never went live on the empty log")
		}
		time.Sleep(time.Millisecond)
	}
	head := appendEvents(t, store, threeStreams, 0, 100, 10)
	<-a.entered
	for statuses(t, r)["f"].Failure == nil {
		if ctx.Err() != nil {
			t.Fatalf("f did not fail: %+v", statuses(t, r))
		}
		time.Sleep(time.Millisecond)
	}
	f.failAt.Store(-1)
	wait := r.StartRebuild(ctx, []string{"f"})
	release()
	if errs := wait(); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, r, head)
	v := r.View()
	defer v.Close()
	for _, name := range []string{"f", "a"} {
		if got := readTally(t, v, name); got != wantTally(100) {
			t.Errorf("%s = %+v, want %+v", name, got, wantTally(100))
		}
	}
}

// failOnce fails the first ReadAll that does not start at the first event.
type failOnce struct {
	eventstore.Store
	done atomic.Bool
}

func (s *failOnce) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if !after.IsStart() && s.done.CompareAndSwap(false, true) {
		return nil, errors.New("store hiccup")
	}
	return s.Store.ReadAll(ctx, after, limit)
}

// holdRetry holds the Run loop inside its "retrying" log call, between two
// passes, until released.
type holdRetry struct {
	slog.Handler
	entered, release chan struct{}
	once             sync.Once
}

func (h *holdRetry) Enabled(context.Context, slog.Level) bool { return true }
func (h *holdRetry) Handle(_ context.Context, rec slog.Record) error {
	if strings.Contains(rec.Message, "reading the log failed") {
		h.once.Do(func() { close(h.entered); <-h.release })
	}
	return nil
}
func (h *holdRetry) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *holdRetry) WithGroup(string) slog.Handler      { return h }

// TestRebuildOfAFailedProjectionIsNotJoined: f failed on the first event
// and committed nothing; the Run loop's first pass failed on a read before
// its first commit, so a has committed nothing either, and the next pass
// will read from the first event. A rebuild of f started between the two
// passes must not join that pass: its new generation would be level with
// the failed one (both at the start) and be switched to before applying
// anything, and the rebuild reported done. Built beside, it fails on the
// same event, says so, and f keeps its generation.
func TestRebuildOfAFailedProjectionIsNotJoined(t *testing.T) {
	inner := openStore(t)
	head := appendEvents(t, inner, threeStreams, 0, 1000, 10)
	f := &flaky{counter: newCounter("f")}
	f.failAt.Store(0)
	h := &holdRetry{entered: make(chan struct{}), release: make(chan struct{})}
	opts := testOptions()
	opts.Logger = slog.New(h)
	r, err := NewRunner(openMemDB(t), &failOnce{Store: inner}, []Projection{newCounter("a"), f}, opts)
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	release := sync.OnceFunc(func() { close(h.release) })
	t.Cleanup(release)
	<-h.entered
	if sts := statuses(t, r); sts["f"].Failure == nil || sts["f"].Applied != 0 || sts["a"].Applied != 0 {
		t.Fatalf("setup: %+v", sts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wait := r.StartRebuild(ctx, []string{"f"})
	release()
	var failure *Failure
	if errs := wait(); !errors.As(errs[0], &failure) || failure.Position.Commit != 1 {
		t.Errorf("rebuild of f: %v, want its failure on the first event", errs[0])
	}
	for statuses(t, r)["a"].Position != head && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if st := statuses(t, r)["f"]; st.Generation != 1 || st.Failure == nil {
		t.Errorf("f: %+v, want its failed generation 1 kept", st)
	}
}

// TestRebuildOfAnEmptyUpgraderGetsItsVersion: an Upgrader whose generation
// of the earlier version holds nothing (opened once on an empty log, then
// events imported) is not just caught up in that generation, which would
// leave it labelled with the earlier version (rebuilt again at the next
// start, and refused by verify): it gets a generation of its version.
func TestRebuildOfAnEmptyUpgraderGetsItsVersion(t *testing.T) {
	store := openStore(t)
	dir := t.TempDir()
	db, _ := openRunner(t, dir, store, testOptions(), upgrader{newCounter("b")})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	head := appendEvents(t, store, threeStreams, 0, 1000, 10)
	b := upgrader{newCounter("b")}
	b.version = 2
	db, r := openRunner(t, dir, store, testOptions(), b)
	defer db.Close()
	wait := r.StartRebuild(context.Background(), []string{"b"})
	runRunner(t, r)
	if errs := wait(); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, r, head)
	if st := statuses(t, r)["b"]; st.Version != 2 || st.Generation != 2 || st.Applied != 1000 {
		t.Errorf("b: %+v, want version 2's generation 2 with every event", st)
	}
}

// TestCatchUpFailureAfterTheHeadIsNotTheRebuilds: a projection rebuilt by
// the Run loop's catch-up that reached the head of the log as it was when
// the rebuild started is rebuilt, even if it fails on a later event before
// the caller asks.
func TestCatchUpFailureAfterTheHeadIsNotTheRebuilds(t *testing.T) {
	store := openStore(t)
	head := appendEvents(t, store, threeStreams, 0, 1000, 10)
	f := &flaky{counter: newCounter("f")}
	f.failAt.Store(1000) // the first event appended after the catch-up
	r, err := NewRunner(openMemDB(t), store, []Projection{f}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	wait := r.StartRebuild(context.Background(), []string{"f"})
	runRunner(t, r)
	waitFor(t, r, head)
	appendEvents(t, store, threeStreams, 1000, 1, 1)
	for statuses(t, r)["f"].Failure == nil {
		time.Sleep(time.Millisecond)
	}
	if errs := wait(); errs[0] != nil {
		t.Errorf("f reached %s, the head when the rebuild started, yet: %v", head, errs[0])
	}
}

// holdFirstPass holds the first read of the log from its first event made
// after arm, until released.
type holdFirstPass struct {
	eventstore.Store
	armed            atomic.Bool
	entered, release chan struct{}
}

func (s *holdFirstPass) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if after.IsStart() && s.armed.CompareAndSwap(true, false) {
		close(s.entered)
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ReadAll(ctx, after, limit)
}

// TestTryRebuildIsAllOrNothing: while a is being rebuilt, TryRebuild of b
// and a starts nothing (b gets no rebuild) and says a is in progress;
// unknown and repeated names are refused the same way. Statuses reports
// the rebuild without reading the log.
func TestTryRebuildIsAllOrNothing(t *testing.T) {
	inner := openStore(t)
	head := appendEvents(t, inner, threeStreams, 0, 500, 10)
	store := &holdFirstPass{Store: inner, entered: make(chan struct{}), release: make(chan struct{})}
	r, err := NewRunner(openMemDB(t), store, []Projection{newCounter("a"), newCounter("b")}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	runRunner(t, r)
	waitFor(t, r, head)
	store.armed.Store(true)
	release := sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release)
	waitA := r.StartRebuild(context.Background(), []string{"a"})
	<-store.entered // a's rebuild is under way

	for _, names := range [][]string{{"b", "a"}, {"b", "nope"}, {"b", "b"}} {
		wait, err := r.TryRebuild(context.Background(), names)
		if wait != nil || err == nil {
			t.Fatalf("TryRebuild%v: started, err %v", names, err)
		}
		if names[1] == "a" && !errors.Is(err, ErrRebuildInProgress) {
			t.Errorf("TryRebuild%v: %v, want ErrRebuildInProgress", names, err)
		}
	}
	sts := map[string]Status{}
	for _, st := range r.Statuses() {
		sts[st.Name] = st
	}
	if sts["a"].Rebuild == nil || sts["b"].Rebuild != nil || sts["b"].EventsBehind != -1 || sts["b"].Applied != 500 {
		t.Errorf("statuses during a's rebuild: %+v", sts)
	}
	release()
	if errs := waitA(); errs[0] != nil {
		t.Fatal(errs[0])
	}
	wait, err := r.TryRebuild(context.Background(), []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := wait(); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if sts := statuses(t, r); sts["a"].Generation != 2 || sts["b"].Generation != 2 {
		t.Errorf("after both rebuilds: %+v", sts)
	}
}
