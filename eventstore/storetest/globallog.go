package storetest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
)

// written is what a sequence of appends proposed and got back, in the order
// the appends returned.
type written struct {
	events  []eventstore.EventData
	results []eventstore.AppendResult
	lastOf  []int // index in events of each append's last event
}

// interleave appends batches of 1 to 3 events to three streams in turn. Each
// Append returns before the next starts, so the global log must hold the
// events in exactly this order.
func (f *fixture) interleave(t *testing.T, appends int) written {
	t.Helper()
	var w written
	next := map[string]eventstore.ExpectedRevision{}
	for i := range appends {
		stream := f.stream(fmt.Sprintf("s%d", i%3))
		expected, ok := next[stream]
		if !ok {
			expected = eventstore.NoStream()
		}
		evs := f.events(i%3 + 1)
		res := f.append(t, stream, expected, evs...)
		next[stream] = eventstore.Exact(res.NextRevision)
		w.events = append(w.events, evs...)
		w.results = append(w.results, res)
		w.lastOf = append(w.lastOf, len(w.events)-1)
	}
	return w
}

func testPositionsIncreaseAcrossStreams(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	w := f.interleave(t, 12)
	log := f.log(t, f.prefix) // log checks that positions strictly increase
	wantIDs(t, log, w.events, "global log of three streams written in turn")
	revs := map[string]uint64{}
	for i, ev := range log {
		if want := revs[ev.StreamID]; ev.Revision != want {
			t.Fatalf("event %d, %s: want revision %d of its stream", i, describe(ev), want)
		}
		revs[ev.StreamID]++
		if ev.Position.Compare(eventstore.Start) <= 0 {
			t.Fatalf("%s: position not after Start", describe(ev))
		}
	}
	for i, res := range w.results {
		last := log[w.lastOf[i]]
		if res.Position.Compare(last.Position) != 0 || res.NextRevision != last.Revision {
			t.Errorf("append %d: result %+v; its last event is %s", i, res, describe(last))
		}
	}
}

func testReadAllStartsAfterPosition(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.interleave(t, 6)
	log := f.log(t, f.prefix)
	for i := range log {
		// logPaged fails if any event returned is not after the position
		// asked for; here we also check none of ours is skipped.
		rest := f.logPaged(t, f.prefix, log[i].Position, 5)
		wantSameEvents(t, rest, log[i+1:], fmt.Sprintf("ReadAll after event %d, %s", i, describe(log[i])))
	}
}

func testReadAllPagination(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.interleave(t, 9)
	want := f.log(t, f.prefix)
	for _, limit := range []int{1, 2, 7, eventstore.MaxReadLimit} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			// logPaged checks every page: at most limit events, each after
			// the previous; collecting them must visit each event once.
			got := f.logPaged(t, f.prefix, f.since, limit)
			wantSameEvents(t, got, want, "events collected page by page")
		})
	}
}

func testReadAllLimit(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.append(t, f.stream("x"), eventstore.NoStream(), f.events(1)...)
	for _, limit := range []int{0, -1, eventstore.MaxReadLimit + 1} {
		evs, err := s.ReadAll(t.Context(), f.since, limit)
		wantErr(t, err, eventstore.ErrInvalidLimit, fmt.Sprintf("ReadAll limit %d", limit))
		if len(evs) != 0 {
			t.Fatalf("ReadAll limit %d returned %d events with its error", limit, len(evs))
		}
	}
}

func testHead(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	stream := f.stream("h")
	expected := eventstore.NoStream()
	before := f.since
	for i := range 3 {
		res := f.append(t, stream, expected, f.events(i+1)...)
		expected = eventstore.Exact(res.NextRevision)
		head, err := s.Head(t.Context())
		if err != nil {
			t.Fatalf("Head: %v", err)
		}
		if head.Compare(res.Position) < 0 {
			t.Fatalf("Head %s is before the Append that just returned, at %s", head, res.Position)
		}
		if before.Compare(res.Position) >= 0 {
			t.Fatalf("Append %d landed at %s, not after the Head %s read before it", i, res.Position, before)
		}
		before = head
	}
}

// testPositionText round-trips positions the adapter hands out through the
// text forms projections use for checkpoints, and resumes reading from the
// parsed form.
func testPositionText(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	w := f.interleave(t, 4)
	log := f.log(t, f.prefix)
	positions := []eventstore.Position{f.since}
	for _, ev := range log {
		positions = append(positions, ev.Position)
	}
	for _, res := range w.results {
		positions = append(positions, res.Position)
	}
	for _, p := range positions {
		q, err := eventstore.ParsePosition(p.String())
		if err != nil || q != p {
			t.Fatalf("ParsePosition(%q) = %v, %v; want %v", p.String(), q, err, p)
		}
		text, err := p.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText %v: %v", p, err)
		}
		var r eventstore.Position
		if err := r.UnmarshalText(text); err != nil || r != p {
			t.Fatalf("UnmarshalText(%q) = %v, %v; want %v", text, r, err, p)
		}
		type checkpoint struct{ After eventstore.Position }
		js, err := json.Marshal(checkpoint{p})
		if err != nil {
			t.Fatalf("json.Marshal %v: %v", p, err)
		}
		var c checkpoint
		if err := json.Unmarshal(js, &c); err != nil || c.After != p {
			t.Fatalf("json round trip of %s: %v, %v; want %v", js, c.After, err, p)
		}
	}
	// A checkpoint read back from text resumes right after its event.
	resumed, err := eventstore.ParsePosition(log[1].Position.String())
	if err != nil {
		t.Fatalf("ParsePosition: %v", err)
	}
	wantSameEvents(t, f.logPaged(t, f.prefix, resumed, 100), log[2:], "ReadAll after a parsed checkpoint")
}
