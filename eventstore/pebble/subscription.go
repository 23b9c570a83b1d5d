package pebble

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ansinh/ansinh/eventstore"
)

// scanPerRefill bounds how many log entries one refill of a filtered
// subscription looks at, so that a filter matching nothing still returns to
// check its context and the store's state regularly.
const scanPerRefill = 16 * eventstore.SubscriptionBuffer

// subscription is pull-based: it owns a cursor into the global log and a
// buffer of at most SubscriptionBuffer events. An empty buffer is refilled
// by reading the log after the cursor; at the head it waits for the writer's
// next commit signal. The writer never knows about subscriptions, so a slow
// one costs the writer nothing and holds no more than one buffer.
type subscription struct {
	s      *Store
	filter eventstore.Filter
	next   uint64 // first seq not yet read from the log
	buf    []eventstore.RecordedEvent
	pos    int // next event of buf to deliver

	closeOnce sync.Once
	done      chan struct{}
}

// Subscribe starts a subscription after the given position.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	release, err := s.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	release()
	start, ok := firstSeqAfter(after)
	if !ok {
		return nil, fmt.Errorf("eventstore/pebble: subscribe after %s: no position can follow it", after)
	}
	// The filter's slices are the caller's: copy them so later changes by
	// the caller cannot change what this subscription delivers.
	filter = eventstore.Filter{
		StreamPrefixes:    slices.Clone(filter.StreamPrefixes),
		EventTypePrefixes: slices.Clone(filter.EventTypePrefixes),
	}
	return &subscription{s: s, filter: filter, next: start, done: make(chan struct{})}, nil
}

func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		if sub.pos < len(sub.buf) {
			ev := sub.buf[sub.pos]
			sub.buf[sub.pos] = eventstore.RecordedEvent{} // let delivered events be collected
			sub.pos++
			return ev, nil
		}
		select {
		case <-sub.done:
			return eventstore.RecordedEvent{}, fmt.Errorf("subscription closed: %w", eventstore.ErrClosed)
		default:
		}
		if err := ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		// Take the signal before reading, so a commit that lands between
		// the read and the wait still wakes us.
		signal := sub.s.commitSignal()
		progressed, err := sub.refill(ctx)
		if err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if progressed {
			continue
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		case <-sub.done:
		case <-sub.s.stopping:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		}
	}
}

// refill reads the next page of the log into the buffer. progressed is true
// when the cursor moved (the buffer may still be empty if nothing matched).
func (sub *subscription) refill(ctx context.Context) (progressed bool, err error) {
	release, err := sub.s.beginRead(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	var filter *eventstore.Filter
	if len(sub.filter.StreamPrefixes) > 0 || len(sub.filter.EventTypePrefixes) > 0 {
		filter = &sub.filter
	}
	page, next, err := sub.s.scanLog(ctx, sub.next, scanPerRefill, eventstore.SubscriptionBuffer, filter)
	if err != nil {
		return false, err
	}
	progressed = next != sub.next
	sub.next = next
	// The old buffer is fully delivered (and its slots zeroed): drop it.
	sub.buf, sub.pos = page, 0
	return progressed, nil
}

func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() { close(sub.done) })
	return nil
}
