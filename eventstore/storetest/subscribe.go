package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
)

// phase is one step of following a subscription: write some events (none for
// the catch-up phase, whose events were written before Subscribe), then
// expect the subscription to deliver exactly the new matching ones.
type phase struct {
	name  string
	write func(t *testing.T)
}

// follow runs the phases against sub, a subscription after `after` with
// filter, and checks that each phase delivers exactly this subtest's events
// that match, in global order, with no gap and no duplicate. A duplicate or
// stray event delivered late is caught by the phase after it, so the last
// phase should be a small tail write.
func (f *fixture) follow(t *testing.T, sub eventstore.Subscription, after eventstore.Position, filter eventstore.Filter, phases []phase) {
	t.Helper()
	if after.Compare(f.since) < 0 {
		after = f.since // none of this subtest's events is before f.since
	}
	seen := 0
	for _, p := range phases {
		var first <-chan delivery
		if p.write != nil {
			first = startNext(t.Context(), sub)
			letBlock()
			p.write(t)
		}
		var want []eventstore.RecordedEvent
		for _, ev := range f.logPaged(t, f.prefix, after, 1000) {
			if filter.Match(ev.StreamID, ev.Type) {
				want = append(want, ev)
			}
		}
		if first != nil {
			receiveLive(t, first, sub, want[seen:], p.name)
		} else {
			receive(t, sub, want[seen:], p.name)
		}
		seen = len(want)
	}
}

// put appends one event of each given type to stream, whatever its state.
func (f *fixture) put(t *testing.T, stream string, types ...string) {
	t.Helper()
	evs := make([]eventstore.EventData, len(types))
	for i, typ := range types {
		evs[i] = f.event(typ, i)
	}
	f.append(t, stream, eventstore.Any(), evs...)
}

func testSubscribeCatchUpThenLive(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	a, b := f.stream("a"), f.stream("b")
	f.append(t, a, eventstore.NoStream(), f.events(3)...)
	f.append(t, b, eventstore.NoStream(), f.events(2)...)
	filter := eventstore.Filter{StreamPrefixes: []string{f.prefix}}
	sub := f.subscribe(t, eventstore.Start, filter)
	f.follow(t, sub, eventstore.Start, filter, []phase{
		{"catch-up from Start", nil},
		{"live", func(t *testing.T) {
			f.append(t, b, eventstore.Exact(1), f.events(2)...)
			f.append(t, a, eventstore.Exact(2), f.events(1)...)
		}},
		{"tail", func(t *testing.T) { f.append(t, a, eventstore.Exact(3), f.events(1)...) }},
	})
}

func testSubscribeFromPosition(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.interleave(t, 4) // 1+2+3+1 events
	log := f.log(t, f.prefix)
	after := log[2].Position
	filter := eventstore.Filter{StreamPrefixes: []string{f.prefix}}
	sub := f.subscribe(t, after, filter)
	f.follow(t, sub, after, filter, []phase{
		{"catch-up after the third event", nil},
		{"live", func(t *testing.T) { f.put(t, f.stream("s0"), "Live.v1", "Live.v1") }},
		{"tail", func(t *testing.T) { f.put(t, f.stream("s1"), "Tail.v1") }},
	})
}

func testSubscribeFromHead(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.interleave(t, 3)
	head, err := s.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	filter := eventstore.Filter{StreamPrefixes: []string{f.prefix}}
	sub := f.subscribe(t, head, filter)
	f.follow(t, sub, head, filter, []phase{
		{"nothing to catch up", nil},
		{"live", func(t *testing.T) { f.put(t, f.stream("s0"), "Live.v1", "Live.v1") }},
		{"tail", func(t *testing.T) { f.put(t, f.stream("s2"), "Tail.v1") }},
	})
}

// testSubscribeEmptyFilter subscribes to everything. On a shared store other
// writers' events arrive too; they are skipped but must keep the global order.
func testSubscribeEmptyFilter(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.interleave(t, 3)
	sub := f.subscribe(t, f.since, eventstore.Filter{})
	last := f.since
	seen := 0
	expect := func(phase string) {
		t.Helper()
		want := f.log(t, f.prefix)
		for seen < len(want) {
			ev, err := next(t.Context(), sub)
			if err != nil {
				t.Fatalf("%s: Next, waiting for %s: %v", phase, describe(want[seen]), err)
			}
			if ev.Position.Compare(last) <= 0 {
				t.Fatalf("%s: %s delivered after position %s", phase, describe(ev), last)
			}
			last = ev.Position
			if !strings.HasPrefix(ev.StreamID, f.prefix) {
				continue // another writer's event
			}
			if d := diffRecord(ev, want[seen]); d != "" {
				t.Fatalf("%s: got %s, want %s: %s", phase, describe(ev), describe(want[seen]), d)
			}
			seen++
		}
	}
	expect("catch-up")
	f.put(t, f.stream("s1"), "Live.v1", "Live.v1")
	expect("live")
	f.put(t, f.stream("s0"), "Tail.v1")
	expect("tail")
}

func testSubscribeFilters(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	pay1, pay2, reg1 := f.stream("pay-1"), f.stream("pay-2"), f.stream("reg-1")
	const (
		settled    = "Payment.Settled.v1"
		failed     = "Payment.Failed.v1"
		registered = "Beneficiary.Registered.v1"
	)
	k := f.kind
	cases := []struct {
		name   string
		filter eventstore.Filter
	}{
		{"all of this subtest's streams", eventstore.Filter{StreamPrefixes: []string{f.prefix}}},
		{"one stream prefix", eventstore.Filter{StreamPrefixes: []string{f.stream("pay-")}}},
		{"two stream prefixes", eventstore.Filter{StreamPrefixes: []string{pay1, f.stream("reg-")}}},
		{"one type prefix", eventstore.Filter{EventTypePrefixes: []string{k + "Payment."}}},
		{"two type prefixes", eventstore.Filter{EventTypePrefixes: []string{k + "Payment.Failed", k + "Beneficiary."}}},
		{"stream and type", eventstore.Filter{StreamPrefixes: []string{f.stream("reg-")}, EventTypePrefixes: []string{k + "Payment."}}},
		{"streams and types", eventstore.Filter{
			StreamPrefixes:    []string{f.stream("pay-")},
			EventTypePrefixes: []string{k + "Payment.Failed", k + "Beneficiary."},
		}},
	}
	// Written before the subscriptions open: they must arrive by catch-up.
	f.put(t, pay1, settled, failed)
	f.put(t, reg1, registered)
	f.put(t, pay2, settled)

	subs := make([]eventstore.Subscription, len(cases))
	for i, c := range cases {
		subs[i] = f.subscribe(t, f.since, c.filter)
	}
	// Every case's subscription follows the same writes; the live and tail
	// writes hold an event for every filter, so each phase proves something.
	phases := []phase{
		{"catch-up", nil},
		{"live", func(t *testing.T) {
			f.put(t, reg1, registered, settled)
			f.put(t, pay2, failed)
			f.put(t, pay1, settled)
		}},
		{"tail", func(t *testing.T) {
			f.put(t, pay1, settled)
			f.put(t, reg1, failed, registered)
			f.put(t, pay2, failed)
		}},
	}
	written := 0
	for _, p := range phases {
		firsts := make([]<-chan delivery, len(cases))
		if p.write != nil {
			for i := range cases {
				firsts[i] = startNext(t.Context(), subs[i])
			}
			letBlock()
			p.write(t)
		}
		log := f.log(t, f.prefix)
		for i, c := range cases {
			var want []eventstore.RecordedEvent
			for _, ev := range log[written:] {
				if c.filter.Match(ev.StreamID, ev.Type) {
					want = append(want, ev)
				}
			}
			if firsts[i] != nil {
				receiveLive(t, firsts[i], subs[i], want, c.name+": "+p.name)
			} else {
				receive(t, subs[i], want, c.name+": "+p.name)
			}
		}
		written = len(log)
	}
}

// blockDelay is how long the suite lets a Next it started in the background
// run before acting (writing, cancelling, closing). It is not a
// synchronisation: a correct store passes however the goroutines are
// scheduled. It only makes it likely that Next is already blocked, so that
// the suite exercises waking a blocked Next, the live path of a
// subscription, rather than only calls that find their answer at once.
const blockDelay = 20 * time.Millisecond

type delivery struct {
	ev  eventstore.RecordedEvent
	err error
}

// startNext calls Next (bounded by waitTimeout) in a goroutine; the result
// arrives on the channel. Call letBlock before acting on the subscription.
func startNext(ctx context.Context, sub eventstore.Subscription) <-chan delivery {
	started, done := make(chan struct{}), make(chan delivery, 1)
	go func() {
		close(started)
		ev, err := next(ctx, sub)
		done <- delivery{ev, err}
	}()
	<-started
	return done
}

func letBlock() { time.Sleep(blockDelay) }

// blockedNext is startNext and letBlock for a single subscription, when only
// the error matters.
func blockedNext(ctx context.Context, sub eventstore.Subscription) <-chan error {
	d := startNext(ctx, sub)
	letBlock()
	errc := make(chan error, 1)
	go func() { errc <- (<-d).err }()
	return errc
}

// receiveLive checks a phase whose first event was awaited by a Next started
// before the write (first), then reads the rest of want.
func receiveLive(t *testing.T, first <-chan delivery, sub eventstore.Subscription, want []eventstore.RecordedEvent, phase string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: suite bug: a live phase must write an event the subscription matches", phase)
	}
	d := <-first // next bounds the wait
	if d.err != nil {
		t.Fatalf("%s: Next, blocked until the write, waiting for %s: %v", phase, describe(want[0]), d.err)
	}
	if diff := diffRecord(d.ev, want[0]); diff != "" {
		t.Fatalf("%s: first event after waiting is %s, want %s: %s", phase, describe(d.ev), describe(want[0]), diff)
	}
	receive(t, sub, want[1:], phase)
}

// awaitErr waits for the result of blockedNext, failing if Next hangs.
func awaitErr(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		t.Fatalf("%s: Next still blocked after %s", what, waitTimeout)
		return nil
	}
}

func testNextHonoursContext(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.interleave(t, 2)
	// A filter nothing matches: Next has nothing to return and must block.
	quiet := eventstore.Filter{StreamPrefixes: []string{f.stream("quiet")}}

	t.Run("already cancelled", func(t *testing.T) {
		sub := f.subscribe(t, f.since, quiet)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := sub.Next(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next with a cancelled context: %v, want context.Canceled", err)
		}
	})
	t.Run("deadline passes while blocked", func(t *testing.T) {
		sub := f.subscribe(t, f.since, quiet)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		err := awaitErr(t, blockedNext(ctx, sub), "deadline passed")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next past its deadline: %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("cancelled while blocked", func(t *testing.T) {
		sub := f.subscribe(t, f.since, quiet)
		ctx, cancel := context.WithCancel(t.Context())
		done := blockedNext(ctx, sub)
		cancel()
		err := awaitErr(t, done, "context cancelled")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel: %v, want context.Canceled", err)
		}
	})
}

func testSubscriptionCloseEndsNext(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	f.interleave(t, 3)

	t.Run("closed before Next with events pending", func(t *testing.T) {
		sub := f.subscribe(t, f.since, eventstore.Filter{StreamPrefixes: []string{f.prefix}})
		if err := sub.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ev, err := next(t.Context(), sub)
		if err == nil {
			t.Fatalf("Next after Close returned %s, want an error", describe(ev))
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next after Close blocked: %v", err)
		}
		_ = sub.Close() // a second Close must be safe; its error is not specified
	})
	t.Run("closed while Next blocks", func(t *testing.T) {
		// Next's doc says it returns when the subscription is closed, so
		// Close may be called while another goroutine is inside Next.
		sub := f.subscribe(t, f.since, eventstore.Filter{StreamPrefixes: []string{f.stream("quiet")}})
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		done := blockedNext(ctx, sub)
		if err := sub.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		err := awaitErr(t, done, "subscription closed")
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next after Close: %v, want the subscription's end", err)
		}
		_ = sub.Close()
	})
}

// testSlowSubscriber has subscribers that do not read while writers append
// far more than a subscription may buffer. The writers must finish, and the
// subscribers must then still receive every event exactly once, in order.
func testSlowSubscriber(t *testing.T, s eventstore.Store) {
	const writers, appends, perAppend = 4, 25, 30
	if writers*appends*perAppend < 2*eventstore.SubscriptionBuffer {
		t.Fatal("suite bug: the writers must overflow a subscription's buffer")
	}
	f := newFixture(t, s)
	filter := eventstore.Filter{StreamPrefixes: []string{f.prefix}}
	f.append(t, f.stream("marker"), eventstore.NoStream(), f.events(1)...)
	// live has caught up and is following live writes when it stops reading;
	// idle was opened but never read from.
	live := f.subscribe(t, f.since, filter)
	receive(t, live, f.log(t, f.prefix), "marker")
	idle := f.subscribe(t, f.since, filter)

	done := make(chan struct{})
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := f.stream(fmt.Sprintf("w%d", w))
			expected := eventstore.NoStream()
			for range appends {
				res, err := s.Append(t.Context(), stream, expected, f.events(perAppend)...)
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				expected = eventstore.Exact(res.NextRevision)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	await(t, done, 6*waitTimeout, "writers, while two subscribers do not read")
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	log := f.log(t, f.prefix)
	if len(log) != 1+writers*appends*perAppend {
		t.Fatalf("global log holds %d of this subtest's events, want %d", len(log), 1+writers*appends*perAppend)
	}
	receive(t, live, log[1:], "subscriber that stopped reading while live")
	receive(t, idle, log, "subscriber that never read")
	f.put(t, f.stream("marker"), "Tail.v1")
	log = f.log(t, f.prefix)
	receive(t, live, log[len(log)-1:], "tail after the slow reads")
	receive(t, idle, log[len(log)-1:], "tail after the slow reads")
}
