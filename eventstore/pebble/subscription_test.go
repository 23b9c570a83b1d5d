package pebble

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
)

// TestSubscriptionCatchUpAndLive writes more than one buffer before the
// subscription starts and more while it runs, from several writers, and
// checks every event arrives once, in order.
func TestSubscriptionCatchUpAndLive(t *testing.T) {
	s := openMemory(t)
	ctx := context.Background()
	const before = 3*eventstore.SubscriptionBuffer + 7
	for i := 0; i < before; i += 100 {
		mustAppend(t, s, "pre", eventstore.Any(), newEvents(min(100, before-i), "T")...)
	}
	sub, err := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const writers, perWriter = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range perWriter {
				if _, err := s.Append(ctx, fmt.Sprintf("live-%d", w), eventstore.Any(), newEvents(1, "T")...); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	total := before + writers*perWriter
	next := uint64(1)
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second) // turns a hang into a failure
	defer cancel()
	for next <= uint64(total) {
		ev, err := sub.Next(deadline)
		if err != nil {
			t.Fatalf("Next after %d: %v", next-1, err)
		}
		if ev.Position.Commit != next {
			t.Fatalf("got position %v, want %d: gap or duplicate", ev.Position, next)
		}
		next++
	}
	wg.Wait()
}

// TestSubscriptionFilterSkipsWithoutStalling puts one matching event behind
// many non-matching ones (more than one refill's scan), and checks it is
// delivered and the subscription then follows live writes.
func TestSubscriptionFilterSkipsWithoutStalling(t *testing.T) {
	s := openMemory(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < scanPerRefill+500; i += eventstore.MaxAppendEvents {
		mustAppend(t, s, "noise", eventstore.Any(), newEvents(eventstore.MaxAppendEvents, "Noise")...)
	}
	want := mustAppend(t, s, "pay-1", eventstore.Any(), newEvents(1, "Paid")...)
	tests := []struct {
		name   string
		filter eventstore.Filter
	}{
		{"by stream", eventstore.Filter{StreamPrefixes: []string{"pay-"}}},
		{"by type", eventstore.Filter{EventTypePrefixes: []string{"Pa"}}},
		{"both", eventstore.Filter{StreamPrefixes: []string{"x", "pay"}, EventTypePrefixes: []string{"Paid"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := s.Subscribe(ctx, eventstore.Start, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			ev, err := sub.Next(ctx)
			if err != nil || ev.Position != want.Position {
				t.Fatalf("Next = %v at %v, want the event at %v", err, ev.Position, want.Position)
			}
		})
	}
}

func TestSubscriptionNextHonoursContextAndClose(t *testing.T) {
	s := openMemory(t)
	sub, err := s.Subscribe(context.Background(), eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with cancelled ctx: %v, want context.Canceled", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(context.Background())
		done <- err
	}()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Next during Close: %v, want ErrClosed", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
