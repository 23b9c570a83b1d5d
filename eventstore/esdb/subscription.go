package esdb

import (
	"context"
	"fmt"
	"sync"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ansinh/ansinh/eventstore"
)

// Subscribe implements eventstore.Store with a catch-up subscription to
// $all. EventStoreDB starts such a subscription strictly after the given
// position, as the port does, and filters on the server by one kind of
// prefix: stream prefixes when the filter has them, else event-type
// prefixes, else it only drops system events. The full filter, and the
// system-event rule, are applied again here.
//
// ctx bounds only the setup; the subscription lives until Close, the store's
// Close, or a failure.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts := esdbclient.SubscribeToAllOptions{From: esdbclient.Start{}, Filter: serverFilter(filter)}
	if !after.IsStart() {
		opts.From = esdbclient.Position{Commit: after.Commit, Prepare: after.Prepare}
	}

	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	var inner *esdbclient.Subscription
	err := s.retry(ctx, "subscribe", func(c *esdbclient.Client) error {
		var err error
		inner, err = c.SubscribeToAll(life, opts)
		return err
	})
	setupCancelled := !stop()
	if err != nil {
		cancel()
		return nil, err
	}
	if setupCancelled {
		_ = inner.Close()
		cancel()
		return nil, fmt.Errorf("esdb: subscribe: %w", ctx.Err())
	}

	sub := &subscription{
		store:  s,
		filter: filter,
		inner:  inner,
		cancel: cancel,
		events: make(chan eventstore.RecordedEvent, subscriptionBuffer),
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.end(eventstore.ErrClosed)
		return nil, fmt.Errorf("esdb: subscribe: %w", eventstore.ErrClosed)
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	go sub.pump()
	return sub, nil
}

// serverFilter picks the one filter EventStoreDB can apply itself.
func serverFilter(f eventstore.Filter) *esdbclient.SubscriptionFilter {
	switch {
	case len(f.StreamPrefixes) > 0:
		return &esdbclient.SubscriptionFilter{Type: esdbclient.StreamFilterType, Prefixes: f.StreamPrefixes}
	case len(f.EventTypePrefixes) > 0:
		return &esdbclient.SubscriptionFilter{Type: esdbclient.EventFilterType, Prefixes: f.EventTypePrefixes}
	default:
		return esdbclient.ExcludeSystemEventsFilter()
	}
}

type subscription struct {
	store  *Store
	filter eventstore.Filter
	inner  *esdbclient.Subscription
	cancel context.CancelFunc

	// events is filled by pump and drained by Next; its capacity bounds the
	// memory one slow consumer holds.
	events chan eventstore.RecordedEvent

	once sync.Once
	done chan struct{} // closed by end
	err  error         // why it ended; written once, before done is closed
}

// pump moves matching events from the gRPC stream into the buffer until the
// subscription ends.
func (sub *subscription) pump() {
	for {
		msg := sub.inner.Recv()
		switch {
		case msg.SubscriptionDropped != nil:
			sub.end(fmt.Errorf("esdb: subscription dropped: %w", msg.SubscriptionDropped.Error))
			return
		case msg.EventAppeared != nil:
			rec := msg.EventAppeared.OriginalEvent()
			if rec == nil || isSystem(rec.StreamID, rec.EventType) || !sub.filter.Match(rec.StreamID, rec.EventType) {
				continue
			}
			select {
			case sub.events <- fromRecorded(rec):
			case <-sub.done:
				return
			}
		}
		// Checkpoints, caught-up and fell-behind notices carry nothing the
		// port exposes.
	}
}

// Next implements eventstore.Subscription.
func (sub *subscription) Next(ctx context.Context) (eventstore.RecordedEvent, error) {
	// An ended subscription says so at once, even with events buffered:
	// the consumer resumes from its own checkpoint anyway.
	select {
	case <-sub.done:
		return eventstore.RecordedEvent{}, sub.err
	default:
	}
	select {
	case ev := <-sub.events:
		return ev, nil
	case <-sub.done:
		return eventstore.RecordedEvent{}, sub.err
	case <-ctx.Done():
		return eventstore.RecordedEvent{}, ctx.Err()
	}
}

// Close implements eventstore.Subscription.
func (sub *subscription) Close() error {
	sub.end(eventstore.ErrClosed)
	return nil
}

// end stops the subscription once, recording why.
func (sub *subscription) end(err error) {
	sub.once.Do(func() {
		sub.err = err
		close(sub.done)
		_ = sub.inner.Close()
		sub.cancel()
		sub.store.mu.Lock()
		if sub.store.subs != nil {
			delete(sub.store.subs, sub)
		}
		sub.store.mu.Unlock()
	})
}
