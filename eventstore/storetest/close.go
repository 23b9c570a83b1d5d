package storetest

import (
	"context"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
)

// testStoreClose closes the store: open subscriptions end with ErrClosed, and
// every later call returns ErrClosed.
func testStoreClose(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	stream := f.stream("c")
	f.append(t, stream, eventstore.NoStream(), f.events(2)...)
	pending := f.subscribe(t, f.since, eventstore.Filter{StreamPrefixes: []string{f.prefix}})
	blocked := f.subscribe(t, f.since, eventstore.Filter{StreamPrefixes: []string{f.stream("quiet")}})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	done := blockedNext(ctx, blocked)

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantErr(t, awaitErr(t, done, "store closed"), eventstore.ErrClosed, "Next blocked when the store closed")
	// A subscription may still hand out what it already held, but no more
	// than was written, and must then end with ErrClosed.
	for delivered := 0; ; delivered++ {
		ev, err := next(t.Context(), pending)
		if err != nil {
			wantErr(t, err, eventstore.ErrClosed, "Next of an open subscription after the store closed")
			break
		}
		if delivered == 2 {
			t.Fatalf("subscription delivered %s, a third event, but only two were written", describe(ev))
		}
	}

	_, err := s.Append(t.Context(), stream, eventstore.Any(), f.events(1)...)
	wantErr(t, err, eventstore.ErrClosed, "Append after Close")
	_, err = s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{Direction: eventstore.Forwards, Limit: 10})
	wantErr(t, err, eventstore.ErrClosed, "ReadStream after Close")
	_, err = s.ReadAll(t.Context(), f.since, 10)
	wantErr(t, err, eventstore.ErrClosed, "ReadAll after Close")
	_, err = s.Head(t.Context())
	wantErr(t, err, eventstore.ErrClosed, "Head after Close")
	// Subscribe may refuse at once or hand out a subscription that ends.
	sub, err := s.Subscribe(t.Context(), f.since, eventstore.Filter{})
	if err == nil {
		_, err = next(t.Context(), sub)
		_ = sub.Close()
	}
	wantErr(t, err, eventstore.ErrClosed, "Subscribe after Close")
}
