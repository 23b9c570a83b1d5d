package projections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	espebble "github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

func openStore(t testing.TB) *espebble.Store {
	t.Helper()
	s, err := espebble.Open("", espebble.Options{InMemory: true})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openMemDB(t testing.TB) *DB {
	t.Helper()
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatalf("open projections db: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// eventID is deterministic so that two processes (the crash test) build the
// same log.
func eventID(stream string, i int) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", stream, i))
}

// appendEvents appends n events spread round-robin over streams, each
// append carrying up to per events of one stream, and returns the last
// position. Event data is {"n": <global index>}.
func appendEvents(t testing.TB, s eventstore.Store, streams []string, first, n, per int) eventstore.Position {
	t.Helper()
	last, err := tryAppendEvents(s, streams, first, n, per)
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// tryAppendEvents is appendEvents for goroutines other than the test's.
func tryAppendEvents(s eventstore.Store, streams []string, first, n, per int) (eventstore.Position, error) {
	ctx := context.Background()
	var last eventstore.Position
	for i := first; i < first+n; {
		stream := streams[(i/per)%len(streams)]
		k := min(per, first+n-i)
		evs := make([]eventstore.EventData, k)
		for j := range evs {
			evs[j] = eventstore.EventData{
				ID:       eventID(stream, i+j),
				Type:     "Counted.v1",
				Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+j)),
				Metadata: json.RawMessage(`{"actor":{"user_id":"tester","role":"system"}}`),
			}
		}
		res, err := s.Append(ctx, stream, eventstore.Any(), evs...)
		if err != nil {
			return last, fmt.Errorf("append: %w", err)
		}
		last = res.Position
		i += k
	}
	return last, nil
}

// counter is a projection that proves exactly-once application: it counts
// events, sums their positions, marks each position it has seen (and fails
// if it sees one twice), and checks that every stream's revisions arrive
// without a gap.
type counter struct {
	name    string
	version int
	// failAt makes Apply fail on the event with this data "n" (-1: never).
	failAt int
}

func newCounter(name string) *counter { return &counter{name: name, version: 1, failAt: -1} }

func (c *counter) Name() string { return c.name }
func (c *counter) Version() int { return c.version }

// tally is a Value, so the counter exercises Load and Put as well as the
// raw Get and Set.
type tally struct {
	Count uint64 `json:"count"`
	Sum   uint64 `json:"sum"`
}

func (t *tally) AppendBinary(b []byte) ([]byte, error) {
	j, err := json.Marshal(t)
	return append(b, j...), err
}
func (t *tally) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, t) }

func (c *counter) Apply(tx *Tx, ev *Event) error {
	data, err := ev.Decoded()
	if err != nil {
		return err
	}
	if n, ok := data.(counted); ok && int(n.N) == c.failAt {
		return errors.New("deliberate failure")
	}
	t, found, err := Load[tally](tx, []byte("tally"))
	if err != nil {
		return err
	}
	if !found {
		t = &tally{}
	}
	t.Count++
	t.Sum += ev.Position.Commit
	tx.Put([]byte("tally"), t)

	seen := binary.BigEndian.AppendUint64([]byte("seen/"), ev.Position.Commit)
	if _, dup, err := tx.Get(seen); err != nil {
		return err
	} else if dup {
		return fmt.Errorf("event %s applied twice", ev.Position)
	}
	tx.Set(seen, nil)

	head := []byte("stream/" + ev.StreamID)
	v, found, err := tx.Get(head)
	if err != nil {
		return err
	}
	want := uint64(0)
	if found {
		want = binary.BigEndian.Uint64(v) + 1
	}
	if ev.Revision != want {
		return fmt.Errorf("stream %s: revision %d after %d: an event was skipped or repeated", ev.StreamID, ev.Revision, want)
	}
	tx.Set(head, binary.BigEndian.AppendUint64(nil, ev.Revision))
	return nil
}

type counted struct {
	N int64 `json:"n"`
}

func decodeCounted(typ string, data []byte) (any, error) {
	if typ != "Counted.v1" {
		return nil, nil
	}
	var c counted
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return c, nil
}

// readTally reads the counter's tally from a view.
func readTally(t testing.TB, v *View, name string) tally {
	t.Helper()
	got, found, err := Read[tally](v.Reader(name), []byte("tally"))
	if err != nil {
		t.Fatalf("read tally: %v", err)
	}
	if !found {
		return tally{}
	}
	return *got
}

// wantTally is the tally of a log of n events at positions 1..n.
func wantTally(n uint64) tally { return tally{Count: n, Sum: n * (n + 1) / 2} }

// dump returns a projection's whole state as of a view.
func dump(t testing.TB, v *View, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := v.Reader(name).Scan(nil, nil, func(k, val []byte) (bool, error) {
		out[string(k)] = string(val)
		return true, nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", name, err)
	}
	return out
}

// runRunner starts Run in the background and stops it at cleanup.
func runRunner(t testing.TB, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, w Waiter, pos eventstore.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WaitFor(ctx, pos); err != nil {
		t.Fatalf("WaitFor %s: %v", pos, err)
	}
}

// commitTx writes tx's changes to db as the runner's commit does, then
// tells tx they are committed with the cache bounds given (0, 0: the cache
// is dropped).
func commitTx(t testing.TB, db *DB, tx *Tx, cacheMax, keptMax int) {
	t.Helper()
	b := db.pdb.NewBatch()
	defer b.Close()
	if _, err := tx.writeTo(b, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	tx.committed(cacheMax, keptMax)
}

// waitForVersion waits, up to 30 s, until r has applied the log up to head
// and the serving generation of name was written by version (a rebuild
// after an upgrade has switched), and returns its status. A failure of the
// projection ends the test.
func waitForVersion(t testing.TB, r *Runner, name string, version int, head eventstore.Position) Status {
	t.Helper()
	for tries := 0; ; tries++ {
		waitFor(t, r, head)
		lag, err := r.Lag(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(lag.Projections, func(st Status) bool { return st.Name == name })
		st := lag.Projections[i]
		switch {
		case st.Version == version:
			return st
		case st.Failure != nil:
			t.Fatal(st.Failure)
		case tries == 3000:
			t.Fatalf("%s not rebuilt into version %d in 30 s: %+v", name, version, st)
		}
		time.Sleep(10 * time.Millisecond) // the rebuild is on its way: the next pass switches it
	}
}
