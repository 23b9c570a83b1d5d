package esdb

// This file is a TEST DOUBLE, compiled only into this package's tests. It is
// an in-process gRPC server that speaks the subset of the EventStoreDB client
// protocol (event_store.client.*, as generated in EventStore-Client-Go v4) that
// the adapter uses, backed by the embedded Pebble store. It lets the adapter,
// the real client library and the real gRPC transport be tested here, where
// no EventStoreDB can run. It is NOT EventStoreDB and proves nothing about
// EventStoreDB itself; the contract suite runs against a real server when
// ESDB_URL is set (see contract_test.go and docs/deploy.md).
//
// What it reproduces, on the wire, as EventStoreDB 20.10+ does:
//   - Streams.Append: options then proposed messages; success with current
//     revision and position; wrong-expected-version as a result message
//     with current revision or current_no_stream; a retry that only partly
//     matches stored events answered as wrong expected version
//     ("corrupted idempotency"); the maximum append size (InvalidArgument with
//     the maximum-append-size-exceeded exception trailer).
//   - Streams.Read of a stream (forwards/backwards, from start, end or a
//     revision; stream-not-found message; forwards from end reads nothing),
//     of $all (forwards inclusive of the given position, backwards exclusive,
//     from start or end), and catch-up subscriptions to $all strictly after a
//     position, with a server-side stream or event-type filter by prefix or
//     regular expression, checkpoint and caught-up messages.
//   - Positions with distinct commit and prepare parts (prepare = 16*seq,
//     commit = prepare+8), so a client that swaps or drops one is caught;
//     positions it did not hand out are refused.
//   - System events: backing streams and types named "_sys_x" appear as
//     "$x", so tests can interleave server-owned events.
//   - The "created" system metadata in .NET ticks, content type, type.
//   - ServerFeatures.GetSupportedMethods and Gossip.Read (cluster members for
//     discovery), a follower mode that answers a write, once read, with the
//     not-leader exception and the leader's endpoint in trailers, injected
//     gRPC errors (per method, counted), appends cut before they are read
//     (the client then sees only the end of the stream), dropping live
//     subscriptions, and stopping and restarting on the same address.
//
// What it does not reproduce: TLS and authentication, clustering itself
// (replication, quorum writes, elections: "leader" and "follower" are just
// flags), persistent subscriptions, projections and the system events they
// and the server write by themselves, stream metadata, deletion and
// tombstones, BatchAppend, link events, fell-behind handling under load,
// and EventStoreDB's idempotency rules for Any/StreamExists (a bounded
// cache of recent event IDs on the server; here the embedded store's exact
// rules apply). Error details other than those listed are simplified.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	sysPrefix = "_sys_" // backing-store spelling of EventStoreDB's '$'

	// fakeMaxAppendSize mirrors the MaxAppendSize docker-compose.yml gives
	// the real server; EventStoreDB's default of 1 MiB is below the port's
	// eventstore.MaxAppendBytes.
	fakeMaxAppendSize = 16 << 20

	// fakeCheckpointEvery: a filtered subscription reports a checkpoint
	// after this many considered events, as the real server does per
	// search window.
	fakeCheckpointEvery = 4
)

type fakeFault struct {
	code codes.Code
	msg  string
	// early: fail an Append before reading the request, as a node that
	// dies or refuses at once; the client is then still sending and sees
	// only the stream's end. Otherwise Append fails after reading it all,
	// as a server that refuses a complete request.
	early bool
}

type fakeServer struct {
	api.UnimplementedStreamsServer
	serverfeatures.UnimplementedServerFeaturesServer

	backing eventstore.Store

	mu       sync.Mutex
	addr     string
	srv      *grpc.Server
	faults   map[string][]fakeFault // method -> errors to answer, in order
	calls    map[string]int         // method -> calls seen
	leader   *net.TCPAddr           // set: this node is a follower of leader
	members  []*gossip.MemberInfo   // answered by Gossip.Read
	subs     map[int]context.CancelCauseFunc
	nextSub  int
	noIdemPo bool // answer idempotent appends without a position, as some servers do
}

// startFakeServer serves on 127.0.0.1 (port 0: any free port) until the test
// ends. backing is not closed by the server.
func startFakeServer(t *testing.T, backing eventstore.Store) *fakeServer {
	t.Helper()
	s := &fakeServer{
		backing: backing,
		faults:  make(map[string][]fakeFault),
		calls:   make(map[string]int),
		subs:    make(map[int]context.CancelCauseFunc),
	}
	if err := s.listen("127.0.0.1:0"); err != nil {
		t.Fatalf("fake server: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *fakeServer) listen(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.enter(info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.enter(info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	)
	api.RegisterStreamsServer(srv, s)
	serverfeatures.RegisterServerFeaturesServer(srv, s)
	gossip.RegisterGossipServer(srv, fakeGossip{s: s})
	s.mu.Lock()
	s.addr = lis.Addr().String()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// stop ends the server at once, cutting open streams, as a crashed node.
func (s *fakeServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// restart serves again on the same address after stop.
func (s *fakeServer) restart(t *testing.T) {
	t.Helper()
	if err := s.listen(s.address()); err != nil {
		t.Fatalf("fake server restart: %v", err)
	}
}

func (s *fakeServer) address() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// url is the connection string of this single node, without TLS. Discovery
// tries again every 10ms so that tests of a restarted server stay short.
func (s *fakeServer) url() string {
	return "esdb://" + s.address() + "?tls=false&discoveryInterval=10"
}

// fail makes the next n calls of method (e.g. "Append", "Read") fail with code.
func (s *fakeServer) fail(method string, n int, code codes.Code) {
	s.inject(method, n, fakeFault{code: code, msg: "injected " + code.String()})
}

// cutAppends makes the next n appends end before the request is read.
func (s *fakeServer) cutAppends(n int) {
	s.inject("Append", n, fakeFault{code: codes.Unavailable, msg: "injected: connection cut", early: true})
}

func (s *fakeServer) inject(method string, n int, f fakeFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], f)
	}
}

// takeFault pops the next injected fault of method, if any matches when.
func (s *fakeServer) takeFault(method string, early bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.faults[method]; len(q) > 0 && q[0].early == early {
		s.faults[method] = q[1:]
		return status.Error(q[0].code, q[0].msg)
	}
	return nil
}

func (s *fakeServer) callCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// followLeader turns this node into a follower that sends writes to leader.
func (s *fakeServer) followLeader(leader string) error {
	addr, err := net.ResolveTCPAddr("tcp", leader)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leader = addr
	return nil
}

func (s *fakeServer) setMembers(m []*gossip.MemberInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = m
}

func (s *fakeServer) omitIdempotentPosition() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noIdemPo = true
}

// dropSubscriptions ends every live subscription with code, as a node that
// shuts down or loses leadership does.
func (s *fakeServer) dropSubscriptions(code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, cancel := range s.subs {
		cancel(status.Error(code, "subscription dropped by the server"))
		delete(s.subs, id)
	}
}

func (s *fakeServer) liveSubscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// enter counts a call and answers faults injected for it; Append answers
// its own (see fakeFault.early).
func (s *fakeServer) enter(fullMethod string) error {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	if method == "Append" {
		return s.takeFault(method, true)
	}
	return s.takeFault(method, false)
}

// appendSystemEvent writes an event the adapter must never show: to stream
// "$"+stream with type "$"+typ, or, when typ is not a system type, an
// ordinary type in a system stream.
func (s *fakeServer) appendSystemEvent(ctx context.Context, stream, typ string) error {
	_, err := s.backing.Append(ctx, sysPrefix+stream, eventstore.Any(), eventstore.EventData{
		ID: uuid.New(), Type: fromWire(typ), Data: []byte(`{"system":true}`),
	})
	return err
}

// ---- ServerFeatures and Gossip ----

func (s *fakeServer) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const streams = "event_store.client.streams.streams"
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: "24.10.0",
		Methods: []*serverfeatures.SupportedMethod{
			{ServiceName: streams, MethodName: "read"},
			{ServiceName: streams, MethodName: "append"},
		},
	}, nil
}

// fakeGossip is the Gossip service; it is its own type because its one
// method has the same name as Streams.Read.
type fakeGossip struct {
	gossip.UnimplementedGossipServer
	s *fakeServer
}

func (g fakeGossip) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members == nil {
		return nil, status.Error(codes.Unimplemented, "no gossip on a single node")
	}
	return &gossip.ClusterInfo{Members: s.members}, nil
}

// ---- Streams.Append ----

func (s *fakeServer) Append(ss api.Streams_AppendServer) error {
	ctx := ss.Context()
	s.mu.Lock()
	leader, noIdemPo := s.leader, s.noIdemPo
	s.mu.Unlock()

	first, err := ss.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil || opts.GetStreamIdentifier() == nil {
		return status.Error(codes.InvalidArgument, "first append message must carry options")
	}
	stream := fromWire(string(opts.GetStreamIdentifier().GetStreamName()))
	var expected eventstore.ExpectedRevision
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		expected = eventstore.Any()
	case *api.AppendReq_Options_NoStream:
		expected = eventstore.NoStream()
	case *api.AppendReq_Options_StreamExists:
		expected = eventstore.StreamExists()
	case *api.AppendReq_Options_Revision:
		expected = eventstore.Exact(e.Revision)
	default:
		return status.Error(codes.InvalidArgument, "append without an expected revision")
	}

	var events []eventstore.EventData
	size := 0
	for {
		msg, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		size += proto.Size(pm)
		if size > fakeMaxAppendSize {
			ss.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(fakeMaxAppendSize)))
			return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", fakeMaxAppendSize)
		}
		id, err := fromUUIDProto(pm.GetId())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if pm.GetMetadata()["content-type"] != "application/json" {
			return status.Error(codes.InvalidArgument, "the adapter always sends JSON")
		}
		events = append(events, eventstore.EventData{
			ID:       id,
			Type:     fromWire(pm.GetMetadata()["type"]),
			Data:     pm.GetData(),
			Metadata: pm.GetCustomMetadata(),
		})
	}

	// Like the server, answer "not leader" once the request is read.
	if leader != nil {
		ss.SetTrailer(metadata.Pairs(
			"exception", "not-leader",
			"leader-endpoint-host", leader.IP.String(),
			"leader-endpoint-port", strconv.Itoa(leader.Port),
		))
		return status.Error(codes.NotFound, "Leader info available")
	}
	if err := s.takeFault("Append", false); err != nil {
		return err
	}
	headBefore, err := s.backing.Head(ctx)
	if err != nil {
		return backingStatus(err)
	}
	res, err := s.backing.Append(ctx, stream, expected, events...)
	var wrong *eventstore.WrongExpectedRevisionError
	switch {
	case err == nil:
		ok := &api.AppendResp_Success{CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: res.NextRevision}}
		if noIdemPo && res.Position.Compare(headBefore) <= 0 {
			ok.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
		} else {
			prepare, commit := toWirePosition(res.Position)
			ok.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: commit, PreparePosition: prepare}}
		}
		return ss.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: ok}})
	case errors.As(err, &wrong):
		return ss.SendAndClose(wrongVersion(expected, wrong.Actual))
	case errors.Is(err, eventstore.ErrIdempotencyConflict):
		// EventStoreDB answers a partly matching retry ("corrupted
		// idempotency") as a wrong expected version with the stream's
		// current revision.
		actual, err := s.lastRevision(ctx, stream)
		if err != nil {
			return backingStatus(err)
		}
		return ss.SendAndClose(wrongVersion(expected, actual))
	default:
		return backingStatus(err)
	}
}

func wrongVersion(expected eventstore.ExpectedRevision, actual int64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if actual < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(actual)}
	}
	switch {
	case expected.IsAny():
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	case expected.IsNoStream():
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case expected.IsStreamExists():
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	default:
		r, _ := expected.Revision()
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: r}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

func (s *fakeServer) lastRevision(ctx context.Context, stream string) (int64, error) {
	evs, err := s.backing.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 1})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return int64(evs[0].Revision), nil
}

func backingStatus(err error) error {
	switch {
	case errors.Is(err, eventstore.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.InvalidArgument, err.Error())
}

// ---- Streams.Read ----

func (s *fakeServer) Read(req *api.ReadReq, ss api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read without options")
	}
	structured := o.GetUuidOption().GetString_() == nil
	if o.GetSubscription() != nil {
		if o.GetAll() == nil {
			return status.Error(codes.Unimplemented, "the fake server subscribes to $all only")
		}
		return s.subscribeAll(o, ss, structured)
	}
	if o.GetFilter() != nil {
		return status.Error(codes.Unimplemented, "the fake server filters subscriptions only")
	}
	switch {
	case o.GetStream() != nil:
		return s.readStream(o, ss, structured)
	case o.GetAll() != nil:
		return s.readAll(o, ss, structured)
	}
	return status.Error(codes.InvalidArgument, "read of neither a stream nor $all")
}

func (s *fakeServer) readStream(o *api.ReadReq_Options, ss api.Streams_ReadServer, structured bool) error {
	ctx := ss.Context()
	so := o.GetStream()
	wireName := so.GetStreamIdentifier().GetStreamName()
	stream := fromWire(string(wireName))
	forwards := o.GetReadDirection() == api.ReadReq_Options_Forwards
	remaining := o.GetCount()

	var from uint64
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		from = 0
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = r.Revision
	case *api.ReadReq_Options_StreamOptions_End:
		from = eventstore.End
		if forwards {
			remaining = 0 // nothing comes after the end
		}
	default:
		return status.Error(codes.InvalidArgument, "stream read without a revision option")
	}

	first := true
	for first || remaining > 0 {
		limit := int(min(max(remaining, 1), eventstore.MaxReadLimit))
		dir := eventstore.Forwards
		if !forwards {
			dir = eventstore.Backwards
		}
		page, err := s.backing.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: dir, From: from, Limit: limit})
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return ss.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: wireName},
			}}})
		}
		if err != nil {
			return backingStatus(err)
		}
		if first && remaining == 0 {
			return nil // the stream exists; the read asked for nothing
		}
		first = false
		for _, ev := range page {
			if err := ss.Send(toWireEvent(ev, structured)); err != nil {
				return err
			}
		}
		remaining -= uint64(len(page))
		if len(page) < limit {
			return nil
		}
		last := page[len(page)-1].Revision
		if forwards {
			from = last + 1
		} else if last == 0 {
			return nil
		} else {
			from = last - 1
		}
	}
	return nil
}

func (s *fakeServer) readAll(o *api.ReadReq_Options, ss api.Streams_ReadServer, structured bool) error {
	ctx := ss.Context()
	count := o.GetCount()
	head, err := s.backing.Head(ctx)
	if err != nil {
		return backingStatus(err)
	}
	headSeq := head.Commit // the backing store's positions are {seq, seq}

	if o.GetReadDirection() == api.ReadReq_Options_Backwards {
		// Events strictly before the position (or all, from the end). The
		// backing store's sequence numbers are dense, so the window of the
		// count events before hi starts at hi-count.
		hi := headSeq
		switch a := o.GetAll().GetAllOption().(type) {
		case *api.ReadReq_Options_AllOptions_Position:
			seq, err := seqOf(a.Position.GetCommitPosition(), a.Position.GetPreparePosition())
			if err != nil {
				return err
			}
			hi = min(seq-1, headSeq)
		case *api.ReadReq_Options_AllOptions_Start:
			return nil
		}
		for hi > 0 && count > 0 {
			n := min(count, eventstore.MaxReadLimit, hi)
			lo := hi - n
			page, err := s.backing.ReadAll(ctx, eventstore.Position{Commit: lo, Prepare: lo}, int(n))
			if err != nil {
				return backingStatus(err)
			}
			for i := len(page) - 1; i >= 0; i-- {
				if err := ss.Send(toWireEvent(page[i], structured)); err != nil {
					return err
				}
			}
			count -= n
			hi = lo
		}
		return nil
	}

	var after uint64
	switch a := o.GetAll().GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		seq, err := seqOf(a.Position.GetCommitPosition(), a.Position.GetPreparePosition())
		if err != nil {
			return err
		}
		after = seq - 1 // forwards reads of $all include the given position
	case *api.ReadReq_Options_AllOptions_End:
		return nil
	}
	for count > 0 {
		n := int(min(count, eventstore.MaxReadLimit))
		page, err := s.backing.ReadAll(ctx, eventstore.Position{Commit: after, Prepare: after}, n)
		if err != nil {
			return backingStatus(err)
		}
		for _, ev := range page {
			if err := ss.Send(toWireEvent(ev, structured)); err != nil {
				return err
			}
		}
		if len(page) < n {
			return nil
		}
		count -= uint64(len(page))
		after = page[len(page)-1].Position.Commit
	}
	return nil
}

func (s *fakeServer) subscribeAll(o *api.ReadReq_Options, ss api.Streams_ReadServer, structured bool) error {
	match, err := subscriptionMatcher(o.GetFilter())
	if err != nil {
		return err
	}
	parent := ss.Context()
	head, err := s.backing.Head(parent)
	if err != nil {
		return backingStatus(err)
	}
	var after eventstore.Position
	switch a := o.GetAll().GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		seq, err := seqOf(a.Position.GetCommitPosition(), a.Position.GetPreparePosition())
		if err != nil {
			return err
		}
		after = eventstore.Position{Commit: seq, Prepare: seq}
	case *api.ReadReq_Options_AllOptions_End:
		after = head
	}

	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}()

	sub, err := s.backing.Subscribe(ctx, after, eventstore.Filter{})
	if err != nil {
		return backingStatus(err)
	}
	defer sub.Close()
	if err := ss.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}}); err != nil {
		return err
	}
	caughtUp := after.Compare(head) >= 0
	if caughtUp {
		if err := ss.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
			return err
		}
	}
	considered := 0
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
				if _, isStatus := status.FromError(cause); isStatus && !errors.Is(cause, context.Canceled) {
					return cause // dropped by dropSubscriptions
				}
				return status.FromContextError(ctx.Err()).Err()
			}
			return backingStatus(err)
		}
		wire := toWireEvent(ev, structured)
		rec := wire.GetEvent().GetEvent()
		if match(string(rec.GetStreamIdentifier().GetStreamName()), rec.GetMetadata()["type"]) {
			if err := ss.Send(wire); err != nil {
				return err
			}
		}
		considered++
		if o.GetFilter() != nil && considered%fakeCheckpointEvery == 0 {
			if err := ss.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
				CommitPosition: rec.GetCommitPosition(), PreparePosition: rec.GetPreparePosition(),
			}}}); err != nil {
				return err
			}
		}
		if !caughtUp && ev.Position.Compare(head) >= 0 {
			caughtUp = true
			if err := ss.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
	}
}

// subscriptionMatcher builds the server-side filter: one expression on the
// stream name or on the event type, by prefixes or by a regular expression.
func subscriptionMatcher(f *api.ReadReq_Options_FilterOptions) (func(stream, typ string) bool, error) {
	if f == nil {
		return func(string, string) bool { return true }, nil
	}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	onType := false
	switch x := f.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = x.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, onType = x.EventType, true
	default:
		return nil, status.Error(codes.InvalidArgument, "filter on neither stream nor event type")
	}
	pick := func(stream, typ string) string {
		if onType {
			return typ
		}
		return stream
	}
	if re := expr.GetRegex(); re != "" {
		rx, err := regexp.Compile(re)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
		}
		return func(stream, typ string) bool { return rx.MatchString(pick(stream, typ)) }, nil
	}
	prefixes := expr.GetPrefix()
	return func(stream, typ string) bool {
		v := pick(stream, typ)
		for _, p := range prefixes {
			if strings.HasPrefix(v, p) {
				return true
			}
		}
		return false
	}, nil
}

// ---- wire encoding ----

func toWireEvent(ev eventstore.RecordedEvent, structured bool) *api.ReadResp {
	prepare, commit := toWirePosition(ev.Position)
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               toUUIDProto(ev.ID, structured),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(toWire(ev.StreamID))},
			StreamRevision:   ev.Revision,
			PreparePosition:  prepare,
			CommitPosition:   commit,
			Metadata: map[string]string{
				"type":         toWire(ev.Type),
				"content-type": "application/json",
				// .NET ticks (100ns) since the Unix epoch, as the server
				// sends; the client refuses an event without it.
				"created": strconv.FormatInt(ev.RecordedAt.UnixNano()/100, 10),
			},
			CustomMetadata: ev.Metadata,
			Data:           ev.Data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: commit},
	}}}
}

func toWirePosition(p eventstore.Position) (prepare, commit uint64) {
	return p.Commit * 16, p.Commit*16 + 8
}

func seqOf(commit, prepare uint64) (uint64, error) {
	if prepare%16 != 0 || commit != prepare+8 || prepare == 0 {
		return 0, status.Errorf(codes.InvalidArgument, "position %d/%d was not handed out by this server", commit, prepare)
	}
	return prepare / 16, nil
}

func toWire(name string) string {
	if rest, ok := strings.CutPrefix(name, sysPrefix); ok {
		return "$" + rest
	}
	return name
}

func fromWire(name string) string {
	if rest, ok := strings.CutPrefix(name, "$"); ok {
		return sysPrefix + rest
	}
	return name
}

func toUUIDProto(id uuid.UUID, structured bool) *shared.UUID {
	if !structured {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	var most, least int64
	for i := range 8 {
		most = most<<8 | int64(id[i])
		least = least<<8 | int64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: most, LeastSignificantBits: least,
	}}}
}

func fromUUIDProto(u *shared.UUID) (uuid.UUID, error) {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		most, least := uint64(st.GetMostSignificantBits()), uint64(st.GetLeastSignificantBits())
		for i := range 8 {
			id[7-i] = byte(most >> (8 * i))
			id[15-i] = byte(least >> (8 * i))
		}
		return id, nil
	}
	id, err := uuid.Parse(u.GetString_())
	if err != nil {
		return uuid.Nil, fmt.Errorf("event ID: %w", err)
	}
	return id, nil
}
