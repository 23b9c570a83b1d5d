package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/eventstore"
)

// waitTimeout bounds every wait for an event or for a goroutine. It is not a
// performance expectation: it only turns a hang into a failure that says what
// was awaited. It is generous because the suite also runs over gRPC under -race.
const waitTimeout = 10 * time.Second

// Run runs the contract suite against the stores newStore returns. Every
// subtest calls newStore once and may Close the store it gets; see the package
// documentation for what the factory must provide.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					// Every subtest writes only streams named with its own
					// prefix, so subtests can share a store and run at once.
					t.Parallel()
					c.run(t, newStore(t))
				})
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s eventstore.Store)
}

var groups = []struct {
	name  string
	cases []testCase
}{
	{"Append", []testCase{
		{"RoundTrip", testRoundTrip},
		{"MultiEventAppendIsAtomic", testMultiEventAppendIsAtomic},
		{"ReadersNeverSeeHalfAnAppend", testReadersNeverSeeHalfAnAppend},
		{"ExpectedRevision", testExpectedRevision},
		{"InvalidInputIsRejected", testInvalidInputIsRejected},
		{"LimitsAreInclusive", testLimitsAreInclusive},
	}},
	{"Idempotency", []testCase{
		{"RetryReturnsFirstResult", testRetryReturnsFirstResult},
		{"PartialOverlapConflicts", testPartialOverlapConflicts},
		{"SameIDInOtherStreamIsNewEvent", testSameIDInOtherStreamIsNewEvent},
	}},
	{"GlobalLog", []testCase{
		{"PositionsIncreaseAcrossStreams", testPositionsIncreaseAcrossStreams},
		{"ReadAllStartsAfterPosition", testReadAllStartsAfterPosition},
		{"ReadAllPagination", testReadAllPagination},
		{"ReadAllLimit", testReadAllLimit},
		{"Head", testHead},
		{"PositionText", testPositionText},
	}},
	{"ReadStream", []testCase{
		{"Windows", testReadStreamWindows},
		{"Errors", testReadStreamErrors},
	}},
	{"Subscribe", []testCase{
		{"CatchUpThenLive", testSubscribeCatchUpThenLive},
		{"FromPosition", testSubscribeFromPosition},
		{"FromHead", testSubscribeFromHead},
		{"EmptyFilterMatchesAll", testSubscribeEmptyFilter},
		{"Filters", testSubscribeFilters},
		{"NextHonoursContext", testNextHonoursContext},
		{"CloseEndsNext", testSubscriptionCloseEndsNext},
		{"SlowSubscriberDoesNotBlockWriters", testSlowSubscriber},
	}},
	{"Concurrency", []testCase{
		{"OneWriterWinsSameExpectation", testOneWriterWins},
		{"WritersAndSubscribers", testWritersAndSubscribers},
	}},
	{"Close", []testCase{
		{"StoreClose", testStoreClose},
	}},
}

// fixture is what one subtest knows about its slice of a possibly shared
// store. Methods take the *testing.T of the (sub)test they run in, because
// Fatal must be called from that test's goroutine.
type fixture struct {
	store  eventstore.Store
	prefix string              // every stream this subtest writes starts with it
	kind   string              // every event type this subtest writes starts with it
	since  eventstore.Position // Head before this subtest wrote; all its events are after it
}

func newFixture(t *testing.T, s eventstore.Store) *fixture {
	t.Helper()
	id := strings.ReplaceAll(uuid.NewString(), "-", "")
	since, err := s.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return &fixture{
		store:  s,
		prefix: "storetest-" + id + "-",
		kind:   "T" + id + ".",
		since:  since,
	}
}

// stream names one of this subtest's streams. Callers pick names of which
// none is a prefix of another, so that prefix filters select exactly.
func (f *fixture) stream(name string) string { return f.prefix + name }

// event proposes a new event of this subtest's type typ; n goes into the data
// so that failures are readable.
func (f *fixture) event(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     f.kind + typ,
		Data:     json.RawMessage(fmt.Sprintf(`{"n":%d,"amount":"1500000","currency":"VND"}`, n)),
		Metadata: json.RawMessage(fmt.Sprintf(`{"correlationId":%q}`, uuid.NewString())),
	}
}

// events proposes n new events of one type.
func (f *fixture) events(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = f.event("Happened.v1", i)
	}
	return evs
}

func (f *fixture) append(t *testing.T, stream string, expected eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := f.store.Append(t.Context(), stream, expected, evs...)
	if err != nil {
		t.Fatalf("Append %d events to %s expecting %s: %v", len(evs), stream, expected, err)
	}
	return res
}

// readStream returns every event of stream in revision order, or nil when
// the stream has none. Streams in this suite are shorter than one read.
func (f *fixture) readStream(t *testing.T, stream string) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := f.store.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{
		Direction: eventstore.Forwards, From: 0, Limit: eventstore.MaxReadLimit,
	})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("ReadStream %s: %v", stream, err)
	}
	if len(evs) == 0 {
		t.Fatalf("ReadStream %s: no events and no error; a stream without events must return ErrStreamNotFound", stream)
	}
	if len(evs) == eventstore.MaxReadLimit {
		t.Fatalf("ReadStream %s: stream longer than the suite's streams can be", stream)
	}
	checkStreamOrder(t, stream, evs)
	return evs
}

// log returns the events of the global log after f.since whose stream starts
// with prefix, reading in pages up to the head as it is when log is called.
// Events of other writers sharing the store are skipped. Every page is checked
// to be in strictly increasing order after the position it was asked for.
func (f *fixture) log(t *testing.T, prefix string) []eventstore.RecordedEvent {
	t.Helper()
	return f.logPaged(t, prefix, f.since, 1000)
}

func (f *fixture) logPaged(t *testing.T, prefix string, after eventstore.Position, limit int) []eventstore.RecordedEvent {
	t.Helper()
	head, err := f.store.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	var mine []eventstore.RecordedEvent
	for after.Compare(head) < 0 {
		page, err := f.store.ReadAll(t.Context(), after, limit)
		if err != nil {
			t.Fatalf("ReadAll after %s, limit %d: %v", after, limit, err)
		}
		if len(page) == 0 {
			// The head may be an event the adapter does not show (a system
			// event of a shared server); an empty page means we are there.
			break
		}
		if len(page) > limit {
			t.Fatalf("ReadAll after %s, limit %d: returned %d events", after, limit, len(page))
		}
		for _, ev := range page {
			if ev.Position.Compare(after) <= 0 {
				t.Fatalf("ReadAll: %s is not strictly after %s (the previous event or the position asked for)", describe(ev), after)
			}
			after = ev.Position
			if strings.HasPrefix(ev.StreamID, prefix) {
				mine = append(mine, ev)
			}
		}
	}
	return mine
}

// head returns the store's Head, to mark a point in the log.
func (f *fixture) head(t *testing.T) eventstore.Position {
	t.Helper()
	h, err := f.store.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// wantNothingSince asserts that the global log holds no event of a stream
// starting with prefix after mark, a Head taken before a call that must not
// write. The log is append-only, so this is "the log is unchanged"; reading
// only what came after mark keeps it cheap on a busy shared server.
func (f *fixture) wantNothingSince(t *testing.T, mark eventstore.Position, prefix, what string) {
	t.Helper()
	if evs := f.logPaged(t, prefix, mark, 1000); len(evs) != 0 {
		t.Fatalf("%s wrote to the global log: %s", what, describeAll(evs))
	}
}

// subscribe opens a subscription that is closed when the test ends.
func (f *fixture) subscribe(t *testing.T, after eventstore.Position, filter eventstore.Filter) eventstore.Subscription {
	t.Helper()
	sub, err := f.store.Subscribe(t.Context(), after, filter)
	if err != nil {
		t.Fatalf("Subscribe after %s: %v", after, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// receive reads len(want) events from sub and checks they are want, in order:
// no gap, no duplicate, nothing else.
func receive(t *testing.T, sub eventstore.Subscription, want []eventstore.RecordedEvent, phase string) {
	t.Helper()
	for i, w := range want {
		got, err := next(t.Context(), sub)
		if err != nil {
			t.Fatalf("%s: Next for event %d of %d (%s): %v", phase, i+1, len(want), describe(w), err)
		}
		if d := diffRecord(got, w); d != "" {
			t.Fatalf("%s: event %d of %d: got %s, want %s: %s", phase, i+1, len(want), describe(got), describe(w), d)
		}
	}
}

// next is sub.Next bounded by waitTimeout.
func next(ctx context.Context, sub eventstore.Subscription) (eventstore.RecordedEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	ev, err := sub.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return ev, fmt.Errorf("no event within %s: %w", waitTimeout, err)
	}
	return ev, err
}

// checkRecorded asserts that got is the proposed event want, recorded as
// revision rev of stream.
func checkRecorded(t *testing.T, got eventstore.RecordedEvent, stream string, rev uint64, want eventstore.EventData) {
	t.Helper()
	if got.StreamID != stream || got.Revision != rev || got.ID != want.ID || got.Type != want.Type {
		t.Errorf("recorded %s type %q; want %s@%d id %s type %q", describe(got), got.Type, stream, rev, want.ID, want.Type)
	}
	// Byte for byte: EventStoreDB returns the bytes it was given, and an
	// adapter that re-encodes JSON would change what auditors hash.
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("%s: data %q, want %q byte for byte", describe(got), got.Data, want.Data)
	}
	if !bytes.Equal(got.Metadata, want.Metadata) && (len(got.Metadata) != 0 || len(want.Metadata) != 0) {
		t.Errorf("%s: metadata %q, want %q byte for byte", describe(got), got.Metadata, want.Metadata)
	}
	if got.Position.IsStart() {
		t.Errorf("%s: position is Start, which is before every event", describe(got))
	}
	checkRecordedAt(t, got)
}

// checkRecordedAt checks what can be checked of a store's clock: it is set, in
// UTC, and roughly now (an hour allows for a remote server's clock skew).
func checkRecordedAt(t *testing.T, ev eventstore.RecordedEvent) {
	t.Helper()
	at := ev.RecordedAt
	if at.IsZero() {
		t.Errorf("%s: RecordedAt is zero", describe(ev))
		return
	}
	if _, offset := at.Zone(); offset != 0 {
		t.Errorf("%s: RecordedAt %s is not UTC", describe(ev), at)
	}
	if now := time.Now(); at.Before(now.Add(-time.Hour)) || at.After(now.Add(time.Hour)) {
		t.Errorf("%s: RecordedAt %s is more than an hour from now (%s)", describe(ev), at, now.UTC())
	}
}

// checkStreamOrder asserts that evs are consecutive revisions of stream from
// evs[0].Revision, in increasing global order.
func checkStreamOrder(t *testing.T, stream string, evs []eventstore.RecordedEvent) {
	t.Helper()
	for i, ev := range evs {
		if ev.StreamID != stream {
			t.Fatalf("read of %s returned %s", stream, describe(ev))
		}
		if i == 0 {
			continue
		}
		if ev.Revision != evs[i-1].Revision+1 {
			t.Fatalf("%s: revision %d follows %d; revisions must be contiguous", stream, ev.Revision, evs[i-1].Revision)
		}
		if ev.Position.Compare(evs[i-1].Position) <= 0 {
			t.Fatalf("%s: %s is not after %s in the global log", stream, describe(ev), describe(evs[i-1]))
		}
	}
}

// wantWrongRevision asserts err is the wrong-expected-revision error of an
// Append to stream expecting expected when the stream's last revision is actual.
func wantWrongRevision(t *testing.T, err error, stream string, expected eventstore.ExpectedRevision, actual int64) {
	t.Helper()
	if err == nil {
		t.Fatalf("Append to %s expecting %s succeeded; want a wrong expected revision error (actual %d)", stream, expected, actual)
	}
	if !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Fatalf("Append to %s expecting %s: error %v does not match ErrWrongExpectedRevision", stream, expected, err)
	}
	var wre *eventstore.WrongExpectedRevisionError
	if !errors.As(err, &wre) {
		t.Fatalf("Append to %s expecting %s: error %v is not a *WrongExpectedRevisionError", stream, expected, err)
	}
	if wre.Stream != stream || wre.Expected != expected || wre.Actual != actual {
		t.Fatalf("Append to %s expecting %s: error carries stream %q, expected %s, actual %d; want %q, %s, %d",
			stream, expected, wre.Stream, wre.Expected, wre.Actual, stream, expected, actual)
	}
}

// wantErr asserts err wraps sentinel.
func wantErr(t *testing.T, err, sentinel error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error; want %v", what, sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: error %v does not match %v", what, err, sentinel)
	}
}

// wantSameEvents asserts two reads saw the same events in the same order.
func wantSameEvents(t *testing.T, got, want []eventstore.RecordedEvent, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d\n got: %s\nwant: %s", what, len(got), len(want), describeAll(got), describeAll(want))
	}
	for i := range got {
		if d := diffRecord(got[i], want[i]); d != "" {
			t.Fatalf("%s: event %d is %s, want %s: %s", what, i, describe(got[i]), describe(want[i]), d)
		}
	}
}

// wantIDs asserts evs are the proposed events want, in order.
func wantIDs(t *testing.T, evs []eventstore.RecordedEvent, want []eventstore.EventData, what string) {
	t.Helper()
	ok := len(evs) == len(want)
	for i := 0; ok && i < len(evs); i++ {
		ok = evs[i].ID == want[i].ID
	}
	if !ok {
		ids := make([]string, len(want))
		for i, w := range want {
			ids[i] = w.ID.String()
		}
		t.Fatalf("%s: got %s\nwant IDs %s", what, describeAll(evs), strings.Join(ids, " "))
	}
}

// diffRecord says how got differs from want, or "" when they are the same
// record. Empty and absent metadata are the same.
func diffRecord(got, want eventstore.RecordedEvent) string {
	var d []string
	if got.StreamID != want.StreamID {
		d = append(d, fmt.Sprintf("stream %q != %q", got.StreamID, want.StreamID))
	}
	if got.Revision != want.Revision {
		d = append(d, fmt.Sprintf("revision %d != %d", got.Revision, want.Revision))
	}
	if got.Position.Compare(want.Position) != 0 {
		d = append(d, fmt.Sprintf("position %s != %s", got.Position, want.Position))
	}
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("id %s != %s", got.ID, want.ID))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("type %q != %q", got.Type, want.Type))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("data %q != %q", got.Data, want.Data))
	}
	if !bytes.Equal(got.Metadata, want.Metadata) && (len(got.Metadata) != 0 || len(want.Metadata) != 0) {
		d = append(d, fmt.Sprintf("metadata %q != %q", got.Metadata, want.Metadata))
	}
	if !got.RecordedAt.Equal(want.RecordedAt) {
		d = append(d, fmt.Sprintf("recorded at %s != %s", got.RecordedAt, want.RecordedAt))
	}
	return strings.Join(d, "; ")
}

func describe(ev eventstore.RecordedEvent) string {
	return fmt.Sprintf("%s@%d (position %s, id %s)", ev.StreamID, ev.Revision, ev.Position, ev.ID)
}

func describeAll(evs []eventstore.RecordedEvent) string {
	const most = 20 // keep failure messages readable
	parts := make([]string, 0, most+1)
	for i, ev := range evs {
		if i == most {
			parts = append(parts, fmt.Sprintf("… %d more", len(evs)-most))
			break
		}
		parts = append(parts, describe(ev))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// await waits for done to close, failing with what when it takes longer than
// limit. It turns a hang (a deadlock, a stalled writer) into a readable failure.
func await(t *testing.T, done <-chan struct{}, limit time.Duration, what string) {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s: not done within %s", what, limit)
	}
}
