package storetest

import (
	"fmt"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
)

// testRetryReturnsFirstResult re-sends an Append (same IDs, same stream, same
// expectation) as a client does after a lost reply: it must get the first
// result and write nothing, also when other events were appended meanwhile.
func testRetryReturnsFirstResult(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	cases := []struct {
		name     string
		existing int
		expected eventstore.ExpectedRevision
	}{
		{"NoStream", 0, eventstore.NoStream()},
		{"Exact", 2, eventstore.Exact(1)},
		{"Any/new stream", 0, eventstore.Any()},
		{"Any/existing stream", 2, eventstore.Any()},
		{"StreamExists", 2, eventstore.StreamExists()},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream := f.stream(fmt.Sprintf("retry%02d", i))
			if c.existing > 0 {
				f.append(t, stream, eventstore.NoStream(), f.events(c.existing)...)
			}
			evs := f.events(3)
			first := f.append(t, stream, c.expected, evs...)
			streamAfter := f.readStream(t, stream)
			mark := f.head(t)

			retry := func(when string) {
				t.Helper()
				res, err := s.Append(t.Context(), stream, c.expected, evs...)
				if err != nil {
					t.Fatalf("retry %s: %v; a retry of a written Append must succeed", when, err)
				}
				if res != first {
					t.Fatalf("retry %s: result %+v, want the first result %+v", when, res, first)
				}
			}
			retry("right after the Append")
			wantSameEvents(t, f.readStream(t, stream), streamAfter, "stream after the retry")
			f.wantNothingSince(t, mark, stream, "the retry")

			// Other writers move the stream on; the late retry still finds
			// its own events and still writes nothing.
			f.append(t, stream, eventstore.Any(), f.events(2)...)
			streamAfter = f.readStream(t, stream)
			mark = f.head(t)
			retry("after two more events")
			wantSameEvents(t, f.readStream(t, stream), streamAfter, "stream after the late retry")
			f.wantNothingSince(t, mark, stream, "the late retry")
		})
	}
}

// testPartialOverlapConflicts sends Appends that are not retries but reuse
// some IDs already written at the expected place: a client bug that must be
// refused with ErrIdempotencyConflict and write nothing.
func testPartialOverlapConflicts(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	setups := []struct {
		name     string
		existing int
		expected eventstore.ExpectedRevision
	}{
		{"NoStream", 0, eventstore.NoStream()},
		{"Exact", 1, eventstore.Exact(0)},
	}
	retries := []struct {
		name  string
		reuse func(a, b, c eventstore.EventData) []eventstore.EventData // a and b written, c new
	}{
		{"first same, second new", func(a, _, c eventstore.EventData) []eventstore.EventData { return []eventstore.EventData{a, c} }},
		{"same IDs, other order", func(a, b, _ eventstore.EventData) []eventstore.EventData { return []eventstore.EventData{b, a} }},
		{"written ones plus a new one", func(a, b, c eventstore.EventData) []eventstore.EventData { return []eventstore.EventData{a, b, c} }},
	}
	n := 0
	for _, setup := range setups {
		for _, r := range retries {
			n++
			stream := f.stream(fmt.Sprintf("conflict%02d", n))
			t.Run(setup.name+"/"+r.name, func(t *testing.T) {
				if setup.existing > 0 {
					f.append(t, stream, eventstore.NoStream(), f.events(setup.existing)...)
				}
				evs := f.events(3)
				f.append(t, stream, setup.expected, evs[0], evs[1])
				streamBefore := f.readStream(t, stream)
				mark := f.head(t)

				_, err := s.Append(t.Context(), stream, setup.expected, r.reuse(evs[0], evs[1], evs[2])...)
				wantErr(t, err, eventstore.ErrIdempotencyConflict, "Append reusing some written IDs")
				wantSameEvents(t, f.readStream(t, stream), streamBefore, "stream after the conflict")
				f.wantNothingSince(t, mark, stream, "the conflicting Append")
			})
		}
	}
}

// testSameIDInOtherStreamIsNewEvent: idempotency is per stream, so an event
// ID already used in one stream is a new, separate event in another.
func testSameIDInOtherStreamIsNewEvent(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	one, other := f.stream("one"), f.stream("two")
	evs := f.events(2)
	first := f.append(t, one, eventstore.NoStream(), evs...)
	second, err := s.Append(t.Context(), other, eventstore.NoStream(), evs...)
	if err != nil {
		t.Fatalf("Append of the same IDs to another stream: %v", err)
	}
	if second.NextRevision != 1 || second.Position.Compare(first.Position) <= 0 {
		t.Fatalf("second Append result %+v; want NextRevision 1 and a position after the first Append's %s", second, first.Position)
	}
	a, b := f.readStream(t, one), f.readStream(t, other)
	wantIDs(t, a, evs, one)
	wantIDs(t, b, evs, other)
	log := f.log(t, f.prefix)
	if len(log) != 4 {
		t.Fatalf("global log holds %d events of the two streams, want 4: %s", len(log), describeAll(log))
	}
	wantSameEvents(t, log, append(a, b...), "global log")
}
