package storetest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// memLog is a reference implementation of the port's semantics, as plain as
// possible: one mutex, one slice. It exists to check the suite (a suite that
// fails a correct store is wrong) and reads as an executable specification.
// Several memStore handles may share one memLog, like clients of one server.
type memLog struct {
	mu      sync.Mutex
	events  []eventstore.RecordedEvent
	streams map[string][]int // stream -> indexes into events, by revision
	changed chan struct{}    // closed and replaced by every append: wakes waiting subscriptions
}

func newMemLog() *memLog {
	return &memLog{streams: map[string][]int{}, changed: make(chan struct{})}
}

// positionAt gives event i a position that is deliberately unlike the
// embedded store's (not 1, 2, 3, commit != prepare), so that the suite cannot
// come to rely on one adapter's numbering.
func positionAt(i int) eventstore.Position {
	return eventstore.Position{Commit: uint64(i+1) * 10, Prepare: uint64(i+1)*10 - 3}
}

// indexAfter returns the index of the first event after p. Call with mu held.
func (l *memLog) indexAfter(p eventstore.Position) int {
	return sort.Search(len(l.events), func(i int) bool { return l.events[i].Position.Compare(p) > 0 })
}

// memStore is one handle on a memLog; closing it leaves the log to others.
type memStore struct {
	log       *memLog
	closed    atomic.Bool
	done      chan struct{} // closed by Close: ends this handle's subscriptions
	closeOnce sync.Once
}

func newMemStore(l *memLog) *memStore { return &memStore{log: l, done: make(chan struct{})} }

var errSubscriptionClosed = errors.New("memstore: subscription closed")

func (s *memStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if s.closed.Load() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if res, retried, err := l.retried(stream, expected, events); retried || err != nil {
		return res, err
	}
	actual := int64(len(l.streams[stream])) - 1
	if !expected.Check(actual) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedRevisionError{Stream: stream, Expected: expected, Actual: actual}
	}
	now := time.Now().UTC()
	for _, ev := range events {
		l.events = append(l.events, eventstore.RecordedEvent{
			StreamID:   stream,
			Revision:   uint64(len(l.streams[stream])),
			Position:   positionAt(len(l.events)),
			ID:         ev.ID,
			Type:       ev.Type,
			Data:       bytes.Clone(ev.Data),
			Metadata:   bytes.Clone(ev.Metadata),
			RecordedAt: now,
		})
		l.streams[stream] = append(l.streams[stream], len(l.events)-1)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	last := l.events[len(l.events)-1]
	return eventstore.AppendResult{NextRevision: last.Revision, Position: last.Position}, nil
}

// retried decides whether events were already written by an earlier Append
// with the same expectation. It returns that Append's result if all of them
// are at the place that expectation put them, and ErrIdempotencyConflict if
// only some are, or in another order. Call with mu held.
func (l *memLog) retried(stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	revs := l.streams[stream]
	idAt := func(rev uint64) (uuid.UUID, bool) {
		if rev >= uint64(len(revs)) {
			return uuid.Nil, false
		}
		return l.events[revs[rev]].ID, true
	}
	var start uint64 // revision the first event got if this is a retry
	if r, ok := expected.Revision(); ok {
		start = r + 1
	} else if !expected.IsNoStream() {
		// Any and StreamExists say nothing about the place: find the first
		// event, as EventStoreDB does.
		found := false
		for rev := range revs {
			if id, _ := idAt(uint64(rev)); id == events[0].ID {
				start, found = uint64(rev), true
				break
			}
		}
		if !found {
			return eventstore.AppendResult{}, false, nil
		}
	}
	window := make([]uuid.UUID, 0, len(events)) // IDs written where the events would be
	for i := range events {
		if id, ok := idAt(start + uint64(i)); ok {
			window = append(window, id)
		}
	}
	matched, overlap := 0, 0
	for i, ev := range events {
		if i < len(window) && window[i] == ev.ID {
			matched++
		}
		if slices.Contains(window, ev.ID) {
			overlap++
		}
	}
	switch {
	case matched == len(events):
		last := l.events[revs[start+uint64(len(events))-1]]
		return eventstore.AppendResult{NextRevision: last.Revision, Position: last.Position}, true, nil
	case overlap > 0:
		return eventstore.AppendResult{}, false, fmt.Errorf("%w: stream %q from revision %d", eventstore.ErrIdempotencyConflict, stream, start)
	}
	return eventstore.AppendResult{}, false, nil
}

func (s *memStore) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if err := eventstore.ValidateStreamName(stream); err != nil {
		return nil, err
	}
	if err := eventstore.ValidateReadLimit(opts.Limit); err != nil {
		return nil, err
	}
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	revs := l.streams[stream]
	if len(revs) == 0 {
		return nil, fmt.Errorf("%w: %q", eventstore.ErrStreamNotFound, stream)
	}
	last := uint64(len(revs) - 1)
	from := opts.From
	if from == eventstore.End || (opts.Direction == eventstore.Backwards && from > last) {
		from = last
	}
	var out []eventstore.RecordedEvent
	if opts.Direction == eventstore.Backwards {
		for rev := int64(from); rev >= 0 && len(out) < opts.Limit; rev-- {
			out = append(out, clone(l.events[revs[rev]]))
		}
		return out, nil
	}
	for rev := from; rev <= last && len(out) < opts.Limit; rev++ {
		out = append(out, clone(l.events[revs[rev]]))
	}
	return out, nil
}

func (s *memStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if err := eventstore.ValidateReadLimit(limit); err != nil {
		return nil, err
	}
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []eventstore.RecordedEvent
	for i := l.indexAfter(after); i < len(l.events) && len(out) < limit; i++ {
		out = append(out, clone(l.events[i]))
	}
	return out, nil
}

func (s *memStore) Head(ctx context.Context) (eventstore.Position, error) {
	if s.closed.Load() {
		return eventstore.Position{}, eventstore.ErrClosed
	}
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == 0 {
		return eventstore.Start, nil
	}
	return l.events[len(l.events)-1].Position, nil
}

func (s *memStore) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	return &memSubscription{store: s, after: after, filter: filter, done: make(chan struct{})}, nil
}

func (s *memStore) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
	})
	return nil
}

// memSubscription reads the log directly, so it holds no buffer at all and
// cannot stall writers: the simplest way to meet the contract.
type memSubscription struct {
	store     *memStore
	after     eventstore.Position // position of the last event delivered or skipped
	filter    eventstore.Filter
	done      chan struct{}
	closeOnce sync.Once
}

func (sub *memSubscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		if err := ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		select {
		case <-sub.done:
			return eventstore.RecordedEvent{}, errSubscriptionClosed
		case <-sub.store.done:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		default:
		}
		l := sub.store.log
		l.mu.Lock()
		for i := l.indexAfter(sub.after); i < len(l.events); i++ {
			ev := l.events[i]
			sub.after = ev.Position
			if sub.filter.Match(ev.StreamID, ev.Type) {
				l.mu.Unlock()
				return clone(ev), nil
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		case <-sub.done:
			return eventstore.RecordedEvent{}, errSubscriptionClosed
		case <-sub.store.done:
			return eventstore.RecordedEvent{}, eventstore.ErrClosed
		case <-changed:
		}
	}
}

func (sub *memSubscription) Close() error {
	sub.closeOnce.Do(func() { close(sub.done) })
	return nil
}

// clone copies ev's byte slices so that callers cannot change the log.
func clone(ev eventstore.RecordedEvent) eventstore.RecordedEvent {
	ev.Data = bytes.Clone(ev.Data)
	ev.Metadata = bytes.Clone(ev.Metadata)
	return ev
}
