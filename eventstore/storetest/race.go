package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
)

// testOneWriterWins starts many Appends with the same expectation at once:
// optimistic concurrency must let exactly one through.
func testOneWriterWins(t *testing.T, s eventstore.Store) {
	const racers = 32
	f := newFixture(t, s)
	cases := []struct {
		name     string
		existing int
		expected eventstore.ExpectedRevision
	}{
		{"NoStream", 0, eventstore.NoStream()},
		{"Exact 0", 1, eventstore.Exact(0)},
		{"Exact 2", 3, eventstore.Exact(2)},
	}
	for i, c := range cases {
		stream := f.stream(fmt.Sprintf("race%02d", i))
		t.Run(c.name, func(t *testing.T) {
			var setup []eventstore.EventData
			if c.existing > 0 {
				setup = f.events(c.existing)
				f.append(t, stream, eventstore.NoStream(), setup...)
			}
			type outcome struct {
				evs []eventstore.EventData // distinct IDs: these are not retries
				res eventstore.AppendResult
				err error
			}
			outcomes := make([]outcome, racers)
			start, done := make(chan struct{}), make(chan struct{})
			var wg sync.WaitGroup
			for r := range outcomes {
				outcomes[r].evs = f.events(2)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					o := &outcomes[r]
					o.res, o.err = s.Append(t.Context(), stream, c.expected, o.evs...)
				}()
			}
			close(start)
			go func() { wg.Wait(); close(done) }()
			await(t, done, waitTimeout, fmt.Sprintf("%d concurrent Appends", racers))

			var winners []outcome
			for _, o := range outcomes {
				if o.err == nil {
					winners = append(winners, o)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d of %d Appends expecting %s succeeded, want exactly 1", len(winners), racers, c.expected)
			}
			winner := winners[0]
			last := int64(c.existing + 1) // the winner's last revision
			if winner.res.NextRevision != uint64(last) {
				t.Errorf("winner's NextRevision %d, want %d", winner.res.NextRevision, last)
			}
			for _, o := range outcomes {
				if o.err != nil {
					wantWrongRevision(t, o.err, stream, c.expected, last)
				}
			}
			got := f.readStream(t, stream)
			wantIDs(t, got, append(setup, winner.evs...), "stream after the race")
			wantSameEvents(t, f.log(t, stream), got, "global log of the stream after the race")
			if got[last].Position.Compare(winner.res.Position) != 0 {
				t.Errorf("winner's Position %s; its last event is %s", winner.res.Position, describe(got[last]))
			}
		})
	}
}

// testWritersAndSubscribers has many goroutines append to many streams while
// three subscriptions open and follow: each must see every event exactly
// once, in the global order, whether it caught up or followed live.
func testWritersAndSubscribers(t *testing.T, s eventstore.Store) {
	const writers, streamsPerWriter, appendsPerStream = 16, 2, 10
	f := newFixture(t, s)
	perStream := 0
	for j := range appendsPerStream {
		perStream += j%3 + 1
	}
	total := writers * streamsPerWriter * perStream

	subscribers := []struct {
		after  eventstore.Position
		filter eventstore.Filter
	}{
		{f.since, eventstore.Filter{StreamPrefixes: []string{f.prefix}}},
		{eventstore.Start, eventstore.Filter{StreamPrefixes: []string{f.prefix}}},
		{f.since, eventstore.Filter{StreamPrefixes: []string{f.prefix}, EventTypePrefixes: []string{f.kind}}},
	}
	received := make([][]eventstore.RecordedEvent, len(subscribers))
	proposed := make(map[string][]eventstore.EventData) // by stream, in append order
	var mu sync.Mutex                                   // guards proposed

	start, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			next := make([]eventstore.ExpectedRevision, streamsPerWriter)
			for k := range next {
				next[k] = eventstore.NoStream()
			}
			for j := range appendsPerStream {
				for k := range streamsPerWriter {
					stream := f.stream(fmt.Sprintf("w%02d-%d", w, k))
					evs := f.events(j%3 + 1)
					res, err := s.Append(t.Context(), stream, next[k], evs...)
					if err != nil {
						t.Errorf("writer %d: Append to %s expecting %s: %v", w, stream, next[k], err)
						return
					}
					next[k] = eventstore.Exact(res.NextRevision)
					mu.Lock()
					proposed[stream] = append(proposed[stream], evs...)
					mu.Unlock()
				}
			}
		}()
	}
	for i, sc := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start // open while the writers write: catch-up meets live
			sub, err := s.Subscribe(t.Context(), sc.after, sc.filter)
			if err != nil {
				t.Errorf("subscriber %d: Subscribe: %v", i, err)
				return
			}
			defer sub.Close()
			for len(received[i]) < total {
				ev, err := next(t.Context(), sub)
				if err != nil {
					t.Errorf("subscriber %d: Next after %d of %d events: %v", i, len(received[i]), total, err)
					return
				}
				received[i] = append(received[i], ev)
			}
		}()
	}
	close(start)
	go func() { wg.Wait(); close(done) }()
	await(t, done, 6*waitTimeout, "writers and subscribers")
	if t.Failed() {
		return
	}

	log := f.log(t, f.prefix) // checked to be in strictly increasing order
	if len(log) != total {
		t.Fatalf("global log holds %d of this subtest's events, want %d", len(log), total)
	}
	byStream := make(map[string][]eventstore.RecordedEvent)
	for _, ev := range log {
		byStream[ev.StreamID] = append(byStream[ev.StreamID], ev)
	}
	if len(byStream) != len(proposed) {
		t.Fatalf("global log holds %d streams, want %d", len(byStream), len(proposed))
	}
	for stream, evs := range byStream {
		checkStreamOrder(t, stream, evs)
		if evs[0].Revision != 0 {
			t.Fatalf("%s starts at revision %d", stream, evs[0].Revision)
		}
		wantIDs(t, evs, proposed[stream], stream+" in the global log")
	}
	for i, got := range received {
		wantSameEvents(t, got, log, fmt.Sprintf("subscriber %d (after %s, %+v)", i, subscribers[i].after, subscribers[i].filter))
	}
}
