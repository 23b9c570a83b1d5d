package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func newEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{
			ID:   uuid.New(),
			Type: "PaymentSettled.v1",
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
	}
	return evs
}

// appendOK appends through the adapter and fails the test on error.
func appendOK(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append to %s: %v", stream, err)
	}
	return res
}

func TestTransientErrorsAreRetried(t *testing.T) {
	cases := []struct {
		name      string
		method    string // fake server method that fails
		code      codes.Code
		early     bool // the server ends the append before reading it
		failures  int
		wantErr   bool
		wantCalls int
	}{
		{"append/cut before the request is read", "Append", codes.Unavailable, true, 2, false, 3},
		{"append/cut past the attempt budget", "Append", codes.Unavailable, true, defaultMaxAttempts, true, defaultMaxAttempts},
		{"append/unavailable twice", "Append", codes.Unavailable, false, 2, false, 3},
		{"append/server timeout once", "Append", codes.DeadlineExceeded, false, 1, false, 2},
		{"append/unavailable past the attempt budget", "Append", codes.Unavailable, false, defaultMaxAttempts, true, defaultMaxAttempts},
		{"append/permission denied is not retried", "Append", codes.PermissionDenied, false, 1, true, 1},
		{"append/internal error is not retried", "Append", codes.Internal, false, 1, true, 1},
		{"read/unavailable twice", "Read", codes.Unavailable, false, 2, false, 3},
		{"read/invalid argument is not retried", "Read", codes.InvalidArgument, false, 1, true, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startFakeServer(t, openBacking(t))
			s := openAdapter(t, srv.url())
			stream := "payment-" + strings.ReplaceAll(c.name, "/", "-")
			stream = strings.ReplaceAll(stream, " ", "_")
			evs := newEvents(2)
			if c.method == "Read" {
				appendOK(t, s, stream, eventstore.NoStream(), evs...)
			}

			if c.early {
				srv.cutAppends(c.failures)
			} else {
				srv.fail(c.method, c.failures, c.code)
			}
			before := srv.callCount(c.method)
			var err error
			if c.method == "Append" {
				_, err = s.Append(t.Context(), stream, eventstore.NoStream(), evs...)
			} else {
				_, err = s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{From: 0, Limit: 10})
			}
			calls := srv.callCount(c.method) - before

			if calls != c.wantCalls {
				t.Errorf("server saw %d %s calls, want %d", calls, c.method, c.wantCalls)
			}
			if !c.wantErr {
				if err != nil {
					t.Fatalf("%s after %d %s failures: %v; want success after retries", c.method, c.failures, c.code, err)
				}
				got, err := s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{From: 0, Limit: 10})
				if err != nil || len(got) != len(evs) {
					t.Fatalf("stream holds %d events (err %v), want exactly %d: a retried append must not write twice", len(got), err, len(evs))
				}
				return
			}
			if err == nil {
				t.Fatalf("%s with %d %s failures succeeded; want the error surfaced", c.method, c.failures, c.code)
			}
			if !c.early && status.Code(err) != c.code {
				t.Errorf("error %v carries gRPC code %s, want %s wrapped", err, status.Code(err), c.code)
			}
			if !strings.Contains(err.Error(), "esdb: ") {
				t.Errorf("error %q does not say which adapter failed", err)
			}
		})
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	opts := testOptions()
	opts.BackoffBase, opts.BackoffMax = time.Hour, time.Hour // only ctx can end the wait
	s, err := Open(t.Context(), srv.url(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	srv.fail("Append", 1, codes.Unavailable)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = s.Append(ctx, "payment-ctx", eventstore.NoStream(), newEvents(1)...)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append during backoff with an expiring context: %v; want context.DeadlineExceeded", err)
	}
	if n := srv.callCount("Append"); n != 1 {
		t.Fatalf("server saw %d appends, want 1 (no retry after the context ended)", n)
	}
}

// TestNotLeaderIsFollowedToTheLeader: a write that reaches a follower is
// answered with the leader's address; the client reconnects there and the
// adapter retries, so the caller sees one successful append.
func TestNotLeaderIsFollowedToTheLeader(t *testing.T) {
	backing := openBacking(t) // one log, as replication would give
	leader := startFakeServer(t, backing)
	follower := startFakeServer(t, backing)
	if err := follower.followLeader(leader.address()); err != nil {
		t.Fatal(err)
	}
	s := openAdapter(t, follower.url())

	evs := newEvents(3)
	res := appendOK(t, s, "payment-leader", eventstore.NoStream(), evs...)
	if res.NextRevision != 2 {
		t.Fatalf("NextRevision %d, want 2", res.NextRevision)
	}
	if f, l := follower.callCount("Append"), leader.callCount("Append"); f != 1 || l != 1 {
		t.Fatalf("appends seen: follower %d, leader %d; want 1 and 1", f, l)
	}
	got, err := backing.ReadStream(t.Context(), "payment-leader", eventstore.ReadStreamOptions{From: 0, Limit: 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("backing stream: %d events, err %v; want 3", len(got), err)
	}
}

// TestGossipDiscoveryPicksTheLeader: with several seeds the client asks a
// node for the cluster's members and connects to the leader.
func TestGossipDiscoveryPicksTheLeader(t *testing.T) {
	backing := openBacking(t)
	a := startFakeServer(t, backing)
	b := startFakeServer(t, backing)
	members := []*gossip.MemberInfo{
		member(t, a.address(), gossip.MemberInfo_Follower),
		member(t, b.address(), gossip.MemberInfo_Leader),
	}
	a.setMembers(members)
	b.setMembers(members)
	if err := a.followLeader(b.address()); err != nil {
		t.Fatal(err)
	}
	s := openAdapter(t, "esdb://"+a.address()+","+b.address()+"?tls=false&maxDiscoverAttempts=3&discoveryInterval=10")

	appendOK(t, s, "payment-gossip", eventstore.NoStream(), newEvents(1)...)
	if a.callCount("Read") == 0 && b.callCount("Read") == 0 {
		t.Fatal("no node was asked for gossip")
	}
	if n := a.callCount("Append"); n != 0 {
		t.Fatalf("the follower saw %d appends; discovery should have led straight to the leader", n)
	}
	if n := b.callCount("Append"); n != 1 {
		t.Fatalf("the leader saw %d appends, want 1", n)
	}
}

func member(t *testing.T, addr string, state gossip.MemberInfo_VNodeState) *gossip.MemberInfo {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q", addr)
	}
	var p uint32
	if _, err := fmt.Sscan(port, &p); err != nil {
		t.Fatal(err)
	}
	return &gossip.MemberInfo{State: state, IsAlive: true, HttpEndPoint: &gossip.EndPoint{Address: host, Port: p}}
}

// TestReconnectsAfterTheServerComesBack: while the node is down an
// operation waits as long as its context allows; once the node is back the
// same Store works again.
func TestReconnectsAfterTheServerComesBack(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	appendOK(t, s, "payment-restart", eventstore.NoStream(), newEvents(1)...)

	srv.stop()
	// The client waits for the node to come back; the caller's context
	// bounds that wait.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Append(ctx, "payment-restart", eventstore.Exact(0), newEvents(1)...); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append while the server is down: %v; want the context's deadline", err)
	}
	srv.restart(t)
	res := appendOK(t, s, "payment-restart", eventstore.Exact(0), newEvents(1)...)
	if res.NextRevision != 1 {
		t.Fatalf("NextRevision %d after the restart, want 1 (the append while down must not have been written)", res.NextRevision)
	}
}

// TestConcurrentCallsDuringAnOutage: many calls at once while the node is
// down. Every call must come back when its context ends, although the
// client library holds them while it rediscovers the node, and the Store
// must work once the node is back. (With the library's own discovery limit
// some of these calls never came back, and closing the client crashed the
// process.)
func TestConcurrentCallsDuringAnOutage(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	appendOK(t, s, "payment-outage", eventstore.NoStream(), newEvents(1)...)
	srv.stop()

	const callers = 16
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			_, err := s.Append(ctx, fmt.Sprintf("payment-outage-%d", i), eventstore.NoStream(), newEvents(1)...)
			errs <- err
		}()
	}
	guard := time.NewTimer(time.Minute) // turns a hang into a failure
	defer guard.Stop()
	for range callers {
		select {
		case err := <-errs:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Append while the server was down: %v; want the context's deadline", err)
			}
		case <-guard.C:
			t.Fatal("Appends still blocked a minute into the outage")
		}
	}

	srv.restart(t)
	appendOK(t, s, "payment-outage", eventstore.Exact(0), newEvents(1)...)
	for i := range callers {
		_, err := s.ReadStream(t.Context(), fmt.Sprintf("payment-outage-%d", i), eventstore.ReadStreamOptions{From: 0, Limit: 1})
		if !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Fatalf("stream %d after the outage: %v; want ErrStreamNotFound (nothing written while down)", i, err)
		}
	}
}

func TestNewDoesNotOwnTheClient(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	cfg, err := esdbclient.ParseConnectionString(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	client, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	s := New(client, testOptions())
	appendOK(t, s, "payment-new", eventstore.NoStream(), newEvents(1)...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Head after Close: %v, want ErrClosed", err)
	}
	// The caller's client is still open.
	rs, err := client.ReadStream(t.Context(), "payment-new", esdbclient.ReadStreamOptions{}, 1)
	if err != nil {
		t.Fatalf("client after the Store's Close: %v", err)
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil {
		t.Fatalf("client read after the Store's Close: %v", err)
	}
}

// TestPositionsKeepCommitAndPrepare: the fake server hands out positions
// whose commit and prepare parts differ and refuses any other, so a swap or
// a dropped part fails here.
func TestPositionsKeepCommitAndPrepare(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	first := appendOK(t, s, "payment-pos", eventstore.NoStream(), newEvents(2)...)
	second := appendOK(t, s, "payment-pos", eventstore.Exact(1), newEvents(1)...)

	if first.Position.Commit != first.Position.Prepare+8 {
		t.Fatalf("append position %s: commit and prepare parts not as the server sent them", first.Position)
	}
	evs, err := s.ReadStream(t.Context(), "payment-pos", eventstore.ReadStreamOptions{From: 0, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if evs[1].Position != first.Position || evs[2].Position != second.Position {
		t.Fatalf("read positions %s, %s; append results %s, %s", evs[1].Position, evs[2].Position, first.Position, second.Position)
	}
	// Through text, as a checkpoint travels, and back into the server.
	p, err := eventstore.ParsePosition(first.Position.String())
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.ReadAll(t.Context(), p, 10)
	if err != nil {
		t.Fatalf("ReadAll after %s: %v", p, err)
	}
	if len(after) != 1 || after[0].ID != evs[2].ID {
		t.Fatalf("ReadAll after %s: %d events, want only the third", p, len(after))
	}
	head, err := s.Head(t.Context())
	if err != nil || head != second.Position {
		t.Fatalf("Head %s (err %v), want %s", head, err, second.Position)
	}
}

// TestIdempotentRetryWithoutPosition: some server versions acknowledge an
// idempotent retry without a position; the adapter still returns the first
// result.
func TestIdempotentRetryWithoutPosition(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	srv.omitIdempotentPosition()
	s := openAdapter(t, srv.url())
	evs := newEvents(2)
	first := appendOK(t, s, "payment-idem", eventstore.NoStream(), evs...)
	appendOK(t, s, "payment-idem", eventstore.Exact(1), newEvents(1)...)
	retry := appendOK(t, s, "payment-idem", eventstore.NoStream(), evs...)
	if retry != first {
		t.Fatalf("retry result %+v, want the first result %+v", retry, first)
	}
}

// TestSystemEventsStayHidden interleaves server-owned events ('$' streams
// or types) with application events, in runs longer than one page, and at
// the head of the log.
func TestSystemEventsStayHidden(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	ctx := t.Context()
	system := func(n int) {
		t.Helper()
		for i := range n {
			stream, typ := "stats-node1", "$statsCollected"
			if i%2 == 1 {
				stream, typ = "settings", "settingsChanged" // ordinary type in a system stream
			}
			if err := srv.appendSystemEvent(ctx, stream, typ); err != nil {
				t.Fatal(err)
			}
		}
	}

	var want []eventstore.RecordedEvent
	system(3)
	for i := range 4 {
		appendOK(t, s, fmt.Sprintf("payment-%d", i), eventstore.NoStream(), newEvents(1)...)
		system(2 + i*3)
	}
	system(headPageSize + 5) // more than one backwards page after the last event
	for i := range 4 {
		evs, err := s.ReadStream(ctx, fmt.Sprintf("payment-%d", i), eventstore.ReadStreamOptions{From: 0, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, evs[0])
	}

	t.Run("ReadAll", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3, 10} {
			var got []eventstore.RecordedEvent
			after := eventstore.Start
			for {
				page, err := s.ReadAll(ctx, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				if len(page) > limit {
					t.Fatalf("limit %d: page of %d", limit, len(page))
				}
				got = append(got, page...)
				after = page[len(page)-1].Position
			}
			checkIDs(t, fmt.Sprintf("ReadAll with limit %d", limit), got, want)
		}
	})
	t.Run("Head", func(t *testing.T) {
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if head != want[len(want)-1].Position {
			t.Fatalf("Head %s, want the last application event's %s", head, want[len(want)-1].Position)
		}
	})
	t.Run("Subscribe", func(t *testing.T) {
		filters := []eventstore.Filter{
			{},
			{StreamPrefixes: []string{""}},    // matches '$' streams on the server
			{EventTypePrefixes: []string{""}}, // matches '$' types on the server
			{StreamPrefixes: []string{"payment-"}, EventTypePrefixes: []string{"Payment"}},
		}
		for _, f := range filters {
			sub, err := s.Subscribe(ctx, eventstore.Start, f)
			if err != nil {
				t.Fatal(err)
			}
			var got []eventstore.RecordedEvent
			for range want {
				ev, err := nextWithin(ctx, sub)
				if err != nil {
					t.Fatalf("filter %+v: %v", f, err)
				}
				got = append(got, ev)
			}
			checkIDs(t, fmt.Sprintf("Subscribe with filter %+v", f), got, want)
			// Nothing more: the next one is a new application event.
			last := appendOK(t, s, "payment-after", eventstore.Any(), newEvents(1)...)
			ev, err := nextWithin(ctx, sub)
			if err != nil || ev.Position != last.Position {
				t.Fatalf("filter %+v: after catch-up got %s (err %v), want the new event at %s", f, ev.Position, err, last.Position)
			}
			want = append(want, ev)
			_ = sub.Close()
		}
	})
}

// TestPagesAreBoundedInBytes: a read stops once it holds readBytesMax bytes
// (lowered here), and a short page is not taken for the head of the log.
func TestPagesAreBoundedInBytes(t *testing.T) {
	saved := readBytesMax
	readBytesMax = 1000
	t.Cleanup(func() { readBytesMax = saved })

	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	evs := make([]eventstore.EventData, 12)
	for i := range evs {
		evs[i] = eventstore.EventData{ID: uuid.New(), Type: "Big.v1", Data: json.RawMessage(`"` + strings.Repeat("x", 300) + `"`)}
	}
	appendOK(t, s, "payment-big", eventstore.NoStream(), evs[:6]...)
	if err := srv.appendSystemEvent(t.Context(), "stats", "$statsCollected"); err != nil {
		t.Fatal(err)
	}
	appendOK(t, s, "payment-big", eventstore.Exact(5), evs[6:]...)

	var all []eventstore.RecordedEvent
	after := eventstore.Start
	for pages := 0; ; pages++ {
		page, err := s.ReadAll(t.Context(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if n := len(page); n > 4 {
			t.Fatalf("page of %d events of 300 bytes; want it to stop past 1000 bytes", n)
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
	if len(all) != len(evs) {
		t.Fatalf("ReadAll in short pages found %d events, want %d", len(all), len(evs))
	}
	for i := range all {
		if all[i].ID != evs[i].ID {
			t.Fatalf("event %d is %s, want %s", i, all[i].ID, evs[i].ID)
		}
	}

	page, err := s.ReadStream(t.Context(), "payment-big", eventstore.ReadStreamOptions{From: 0, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) == 0 || len(page) > 4 {
		t.Fatalf("ReadStream page of %d events; want 1 to 4 of 300 bytes", len(page))
	}
	head, err := s.Head(t.Context())
	if err != nil || head != all[len(all)-1].Position {
		t.Fatalf("Head %s (err %v), want %s", head, err, all[len(all)-1].Position)
	}
}

func checkIDs(t *testing.T, what string, got, want []eventstore.RecordedEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Position != want[i].Position {
			t.Fatalf("%s: event %d is %s@%d %s, want %s@%d %s", what, i,
				got[i].StreamID, got[i].Revision, got[i].Position, want[i].StreamID, want[i].Revision, want[i].Position)
		}
	}
}

// nextWithin bounds a wait so that a missing event fails instead of hanging.
func nextWithin(ctx context.Context, sub eventstore.Subscription) (eventstore.RecordedEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return sub.Next(ctx)
}

func TestDroppedSubscriptionEndsWithError(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	appendOK(t, s, "payment-drop", eventstore.NoStream(), newEvents(1)...)
	sub, err := s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := nextWithin(t.Context(), sub); err != nil {
		t.Fatal(err)
	}
	if n := srv.liveSubscriptions(); n != 1 {
		t.Fatalf("server has %d live subscriptions, want 1", n)
	}
	srv.dropSubscriptions(codes.Unavailable)

	_, err = nextWithin(t.Context(), sub)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after the server dropped the subscription: %v; want the drop", err)
	}
	if errors.Is(err, eventstore.ErrClosed) || status.Code(err) != codes.Unavailable {
		t.Fatalf("Next after a drop: %v; want the server's Unavailable, not ErrClosed", err)
	}
	// It stays ended, and Close after a drop is fine.
	if _, err2 := sub.Next(t.Context()); err2 == nil {
		t.Fatal("Next after the drop succeeded")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriptionOutlivesSetupContext: ctx bounds the setup only; a
// subscription opened in a request-scoped context keeps running.
func TestSubscriptionOutlivesSetupContext(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	setup, cancel := context.WithCancel(t.Context())
	sub, err := s.Subscribe(setup, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cancel()
	res := appendOK(t, s, "payment-outlive", eventstore.NoStream(), newEvents(1)...)
	ev, err := nextWithin(t.Context(), sub)
	if err != nil || ev.Position != res.Position {
		t.Fatalf("Next after the setup context ended: %v (err %v), want the event at %s", ev.Position, err, res.Position)
	}

	done, cancelDone := context.WithCancel(t.Context())
	cancelDone()
	if _, err := s.Subscribe(done, eventstore.Start, eventstore.Filter{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestConflictMapping covers the expectations the contract suite does not
// send partial overlaps with, and the fallback when the client's error does
// not carry the actual revision.
func TestConflictMapping(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	s := openAdapter(t, srv.url())
	ctx := t.Context()

	t.Run("partial overlap", func(t *testing.T) {
		for _, exp := range []eventstore.ExpectedRevision{eventstore.Any(), eventstore.StreamExists()} {
			stream := "payment-overlap-" + strings.ReplaceAll(exp.String(), " ", "-")
			evs := newEvents(3)
			appendOK(t, s, stream, eventstore.NoStream(), evs[0], evs[1])
			_, err := s.Append(ctx, stream, exp, evs[0], evs[2])
			if !errors.Is(err, eventstore.ErrIdempotencyConflict) {
				t.Fatalf("expecting %s, reusing one written ID: %v; want ErrIdempotencyConflict", exp, err)
			}
		}
	})

	t.Run("actual revision read from the stream", func(t *testing.T) {
		appendOK(t, s, "payment-fallback", eventstore.NoStream(), newEvents(3)...)
		cases := []struct {
			stream   string
			expected eventstore.ExpectedRevision
			actual   int64
		}{
			{"payment-fallback", eventstore.Exact(7), 2},
			{"payment-fallback", eventstore.NoStream(), 2},
			{"payment-missing", eventstore.Exact(0), -1},
			{"payment-missing", eventstore.StreamExists(), -1},
		}
		for _, c := range cases {
			err := s.conflict(ctx, c.stream, c.expected, newEvents(1), errors.New("a message without the revision"))
			var wrong *eventstore.WrongExpectedRevisionError
			if !errors.As(err, &wrong) || wrong.Actual != c.actual || wrong.Stream != c.stream || wrong.Expected != c.expected {
				t.Errorf("%s expecting %s: %v; want a wrong expected revision with actual %d", c.stream, c.expected, err, c.actual)
			}
		}
	})
}

func TestActualRevision(t *testing.T) {
	cases := []struct {
		msg    string
		want   int64
		wantOK bool
	}{
		{"wrong expected version: expecting 'no_stream' but got '4'", 4, true},
		{"wrong expected version: expecting '3' but got 'no_stream'", -1, true},
		{"[ErrorCodeWrongExpectedVersion] x: wrong expected version: expecting 'any' but got '18446744073'", 18446744073, true},
		{"wrong expected version: expecting '3' but got ''", 0, false},
		{"wrong expected version: expecting '3' but got '-2'", 0, false},
		{"wrong expected version: expecting '3' but got '7", 0, false},
		{"something else", 0, false},
	}
	for _, c := range cases {
		got, ok := actualRevision(errors.New(c.msg))
		if got != c.want || ok != c.wantOK {
			t.Errorf("actualRevision(%q) = %d, %v; want %d, %v", c.msg, got, ok, c.want, c.wantOK)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want errorKind
	}{
		{status.Error(codes.Unavailable, "x"), transient},
		{fmt.Errorf("open read: %w", status.Error(codes.DeadlineExceeded, "x")), transient},
		{status.Error(codes.PermissionDenied, "x"), permanent},
		{status.Error(codes.NotFound, "x"), permanent},
		{errors.New("plain"), permanent},
		{context.Canceled, permanent},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestOpenRejectsBadConnectionStrings(t *testing.T) {
	for _, url := range []string{
		"", "http://localhost:2113", "esdb://host:notaport", "esdb://",
		"esdb://admin:s3cret-pw@node1:21x3?tls=false",
		"esdb://admin:s3cret-pw@node1:2113,node2:port?tls=false",
	} {
		s, err := Open(t.Context(), url, testOptions())
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open(%q): error %q shows the password", url, err)
		}
	}
}
