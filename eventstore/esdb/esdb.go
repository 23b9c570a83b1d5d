// Package esdb is the EventStoreDB/KurrentDB adapter of the event store port
// (eventstore.Store), for deployments that run several ansinh replicas against
// one replicated cluster instead of the embedded Pebble store.
//
// It speaks gRPC through the official Go client (EventStore-Client-Go v4) and
// maps the port's contract onto the server's:
//
//   - Expected revisions map one to one (Any, NoStream, StreamExists, Exact).
//     The server's wrong-expected-version answer becomes a
//     *eventstore.WrongExpectedRevisionError carrying the server's actual
//     revision.
//   - Idempotency on event IDs is the server's. When the server refuses a
//     retry that only partly matches what is stored (it answers "wrong
//     expected version" for that), the adapter looks at the events at the
//     expected place and reports eventstore.ErrIdempotencyConflict instead.
//   - Only application events are visible: the server's system events
//     (streams or types starting with '$') are skipped by ReadAll, Head and
//     Subscribe, so checkpoints and Head compare like-for-like.
//   - Positions keep both the commit and the prepare part.
//   - Transient failures (no leader, node unavailable, server timeout) are
//     retried with bounded exponential backoff; everything else is returned
//     at once, wrapped.
//
// See docs/deploy.md for the places where EventStoreDB cannot express the
// port exactly.
package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// Options tune the adapter. The zero value means "use the defaults" field by
// field, so callers can set just what they need.
type Options struct {
	// MaxAttempts bounds how often one operation is tried when it fails with
	// a transient error (1 means no retry). Default 6.
	MaxAttempts int
	// BackoffBase is the wait before the first retry; it doubles per retry
	// up to BackoffMax. Defaults 50ms and 1s: six attempts wait at most about
	// 1.6s in total, long enough for a leader election on a healthy cluster.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Logger receives the client library's own log lines. Default
	// slog.Default().
	Logger *slog.Logger
}

const (
	defaultMaxAttempts = 6
	defaultBackoffBase = 50 * time.Millisecond
	defaultBackoffMax  = time.Second

	// headPageSize is how many events Head looks at per backwards page of
	// $all while it skips the server's system events.
	headPageSize = 64

	// subscriptionBuffer is how many matching events a subscription holds
	// in memory ahead of the consumer. It is well under
	// eventstore.SubscriptionBuffer because gRPC flow control holds more in
	// its own window, and a consumer that stops reading makes the server
	// fall back to reading the log (EventStoreDB's own "fell behind" mode).
	subscriptionBuffer = 128
)

// readBytesMax bounds the event bytes one ReadStream or ReadAll holds, as in
// the embedded store: 10,000 events of 256 KiB would be 2.5 GiB. A read stops
// after the event that crosses it, so a page always holds at least one
// event; callers read on from the last event they got. (A variable only so
// that tests can make pages short without writing 64 MiB.)
var readBytesMax = 64 << 20

func (o Options) withDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = defaultBackoffBase
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = defaultBackoffMax
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store is an eventstore.Store backed by EventStoreDB.
type Store struct {
	opts Options

	ownsClient bool // built by Open, so closed by Close

	mu     sync.Mutex
	client *esdbclient.Client
	closed bool
	subs   map[*subscription]struct{}
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to EventStoreDB with a connection string such as
// "esdb://localhost:2113?tls=false" or
// "esdb://node1:2113,node2:2113,node3:2113?tlsCAFile=/certs/ca/ca.crt".
// The client connects lazily, so Open succeeds while the cluster is still
// starting; an operation waits for it as long as its context allows. The
// Store owns the client and closes it on Close.
func Open(ctx context.Context, connString string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	config, err := esdbclient.ParseConnectionString(connString)
	if err != nil {
		// The parser's message may quote the string, password and all.
		return nil, fmt.Errorf("esdb: connection string: %s", redactPassword(err.Error(), connString))
	}
	config.Logger = slogLogging(opts.Logger)
	// Client v4.2.0 closes itself for good when one round of node discovery
	// fails (by default ten tries, about a second while the cluster is
	// down), and calls that were waiting on it then wait forever. So keep
	// discovering until the cluster answers: callers are not held by it,
	// since every call returns when its context ends (see call).
	config.MaxDiscoverAttempts = math.MaxInt32
	client, err := esdbclient.NewClient(config)
	if err != nil {
		return nil, fmt.Errorf("esdb: new client: %w", err)
	}
	s := newStore(client, opts)
	s.ownsClient = true
	return s, nil
}

// redactPassword replaces the password of connString wherever it appears in
// msg.
func redactPassword(msg, connString string) string {
	_, rest, ok := strings.Cut(connString, "://")
	if !ok {
		return msg
	}
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok {
		return msg
	}
	_, password, ok := strings.Cut(userinfo, ":")
	if !ok || password == "" {
		return msg
	}
	return strings.ReplaceAll(msg, password, "REDACTED")
}

// New wraps a client the caller built and owns: Close does not close it.
// The client's discovery settings are the caller's: with the library's
// default (MaxDiscoverAttempts 10) a client stops working for good after
// about a second without a reachable node, so prefer Open in servers.
func New(client *esdbclient.Client, opts Options) *Store {
	return newStore(client, opts.withDefaults())
}

func newStore(client *esdbclient.Client, opts Options) *Store {
	return &Store{opts: opts, client: client, subs: make(map[*subscription]struct{})}
}

// Close ends open subscriptions with eventstore.ErrClosed and, for a Store
// from Open, closes the client. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := s.subs
	s.subs = nil
	client := s.client
	s.mu.Unlock()

	for sub := range subs {
		sub.end(eventstore.ErrClosed)
	}
	if s.ownsClient {
		return client.Close()
	}
	return nil
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	// Validate before sending so that every limit of the port behaves as it
	// does in the embedded store, whatever the server would accept.
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	proposed := make([]esdbclient.EventData, len(events))
	for i, ev := range events {
		proposed[i] = esdbclient.EventData{
			EventID:     ev.ID,
			EventType:   ev.Type,
			ContentType: esdbclient.ContentTypeJson,
			Data:        ev.Data,
			Metadata:    ev.Metadata,
		}
	}
	opts := esdbclient.AppendToStreamOptions{ExpectedRevision: toExpected(expected)}

	var res *esdbclient.WriteResult
	err := s.retry(ctx, "append", func(c *esdbclient.Client) error {
		var err error
		res, err = c.AppendToStream(ctx, stream, opts, proposed...)
		return err
	})
	if err != nil {
		if code, ok := esdbCode(err); ok && code == esdbclient.ErrorCodeWrongExpectedVersion {
			return eventstore.AppendResult{}, s.conflict(ctx, stream, expected, events, err)
		}
		return eventstore.AppendResult{}, err
	}

	out := eventstore.AppendResult{
		NextRevision: res.NextExpectedVersion,
		Position:     eventstore.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition},
	}
	if out.Position.IsStart() {
		// Some server versions answer an idempotent retry without a
		// position. The port promises the first result, so look the last
		// event up: it is where the first append put it.
		recs, err := s.readStream(ctx, stream, esdbclient.Forwards, esdbclient.Revision(out.NextRevision), 1)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("esdb: append: position of idempotent write: %w", err)
		}
		if len(recs) != 1 || recs[0].Revision != out.NextRevision {
			return eventstore.AppendResult{}, fmt.Errorf("esdb: append: idempotent write: revision %d of %q not found", out.NextRevision, stream)
		}
		out.Position = recs[0].Position
	}
	return out, nil
}

// conflict turns the server's wrong-expected-version answer into the port's
// error. EventStoreDB uses that one answer for two different things: the
// stream is not in the expected state, or the request is a retry whose event
// IDs only partly match the events at the expected place ("corrupted
// idempotency"). The port tells them apart, so look at what is there.
func (s *Store) conflict(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData, cause error) error {
	actual, ok := actualRevision(cause)
	if !ok {
		// The client library renders the actual revision only in its
		// message; if that ever changes, ask the stream (not atomic with the
		// failed append, but the best remaining source).
		last, err := s.lastRevision(ctx, stream)
		if err != nil {
			return fmt.Errorf("esdb: append: %w (and reading the actual revision failed: %v)", cause, err)
		}
		actual = last
	}
	wrong := &eventstore.WrongExpectedRevisionError{Stream: stream, Expected: expected, Actual: actual}

	var first uint64 // revision where the appended events were expected to go
	switch {
	case expected.IsAny():
		// Any never conflicts on state: the server refused because the IDs
		// partly match events of the stream.
		return fmt.Errorf("%w: stream %q (expected any)", eventstore.ErrIdempotencyConflict, stream)
	case expected.IsStreamExists():
		if actual < 0 {
			return wrong
		}
		return fmt.Errorf("%w: stream %q (expected stream exists)", eventstore.ErrIdempotencyConflict, stream)
	case expected.IsNoStream():
		first = 0
	default:
		r, _ := expected.Revision()
		first = r + 1
	}
	if actual < 0 || uint64(actual) < first {
		return wrong // nothing stored at the expected place, so no overlap
	}
	count := min(uint64(actual)-first+1, uint64(len(events)))
	stored, err := s.readStream(ctx, stream, esdbclient.Forwards, esdbclient.Revision(first), count)
	if err != nil {
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return wrong
		}
		return fmt.Errorf("esdb: append: %w (and reading the stream to check idempotency failed: %v)", wrong, err)
	}
	ids := make(map[uuid.UUID]struct{}, len(events))
	for _, ev := range events {
		ids[ev.ID] = struct{}{}
	}
	for _, rec := range stored {
		if _, dup := ids[rec.ID]; dup {
			return fmt.Errorf("%w: stream %q: event %s is already at revision %d", eventstore.ErrIdempotencyConflict, stream, rec.ID, rec.Revision)
		}
	}
	return wrong
}

// lastRevision returns the stream's last revision, -1 when it has no events.
func (s *Store) lastRevision(ctx context.Context, stream string) (int64, error) {
	recs, err := s.readStream(ctx, stream, esdbclient.Backwards, esdbclient.End{}, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return -1, nil
	}
	return int64(recs[0].Revision), nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateStreamName(stream); err != nil {
		return nil, err
	}
	if err := eventstore.ValidateReadLimit(opts.Limit); err != nil {
		return nil, err
	}
	dir := esdbclient.Forwards
	if opts.Direction == eventstore.Backwards {
		dir = esdbclient.Backwards
	}
	var from esdbclient.StreamPosition = esdbclient.Revision(opts.From)
	count := uint64(opts.Limit)
	if opts.From == eventstore.End {
		from = esdbclient.End{}
		if dir == esdbclient.Forwards {
			// The port reads End as "the last event"; EventStoreDB reads
			// forwards from End as "after the last event" and returns
			// nothing. Forwards from the last event there is only the last
			// event, so read it backwards.
			dir, count = esdbclient.Backwards, 1
		}
	}
	return s.readStream(ctx, stream, dir, from, count)
}

func (s *Store) readStream(ctx context.Context, stream string, dir esdbclient.Direction, from esdbclient.StreamPosition, count uint64) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	err := s.retry(ctx, "read stream", func(c *esdbclient.Client) error {
		rs, err := c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{Direction: dir, From: from}, count)
		if err != nil {
			return err
		}
		defer rs.Close()
		var raw []esdbclient.RecordedEvent
		raw, _, err = drainRaw(rs, int(count))
		if err != nil {
			return err
		}
		out = make([]eventstore.RecordedEvent, len(raw))
		for i := range raw {
			out[i] = fromRecorded(&raw[i])
		}
		return nil
	})
	if err != nil {
		if code, ok := esdbCode(err); ok && (code == esdbclient.ErrorCodeResourceNotFound || code == esdbclient.ErrorCodeStreamDeleted) {
			return nil, fmt.Errorf("%w: %q", eventstore.ErrStreamNotFound, stream)
		}
		return nil, err
	}
	return out, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateReadLimit(limit); err != nil {
		return nil, err
	}
	out := make([]eventstore.RecordedEvent, 0, min(limit, 256))
	cursor := after
	for {
		// EventStoreDB reads $all from a position inclusively, so one more
		// than wanted: the event at the cursor itself comes back and is
		// skipped.
		want := limit - len(out) + 1
		var from esdbclient.AllPosition = esdbclient.Start{}
		if !cursor.IsStart() {
			from = esdbclient.Position{Commit: cursor.Commit, Prepare: cursor.Prepare}
		}
		var page []esdbclient.RecordedEvent
		var full bool // stopped at readBytesMax, not at the end of the log
		err := s.retry(ctx, "read all", func(c *esdbclient.Client) error {
			rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Forwards, From: from}, uint64(want))
			if err != nil {
				return err
			}
			defer rs.Close()
			page, full, err = drainRaw(rs, want)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i := range page {
			rec := &page[i]
			pos := eventstore.Position{Commit: rec.Position.Commit, Prepare: rec.Position.Prepare}
			if !cursor.IsStart() && pos.Compare(cursor) <= 0 {
				continue
			}
			if isSystem(rec.StreamID, rec.EventType) {
				continue
			}
			out = append(out, fromRecorded(rec))
			if len(out) == limit {
				return out, nil
			}
		}
		if full && len(out) > 0 {
			return out, nil // a short page; the caller reads on
		}
		if !full && len(page) < want {
			return out, nil // reached the head of the log
		}
		// The page was full of skipped events (the server's own system
		// events); go on after its last one.
		last := page[len(page)-1].Position
		cursor = eventstore.Position{Commit: last.Commit, Prepare: last.Prepare}
	}
}

// drainRaw collects the records of a read without converting them, so that
// callers can page by the server's positions of events they skip. It stops
// early, with full set, once the records hold readBytesMax bytes.
func drainRaw(rs *esdbclient.ReadStream, max int) (out []esdbclient.RecordedEvent, full bool, err error) {
	out = make([]esdbclient.RecordedEvent, 0, min(max, 256))
	size := 0
	for size < readBytesMax {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if rec := ev.OriginalEvent(); rec != nil {
			out = append(out, *rec)
			size += len(rec.Data) + len(rec.UserMetadata)
		}
	}
	return out, true, nil
}

// Head implements eventstore.Store: the position of the last application
// event, skipping the server's system events written after it.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var from esdbclient.AllPosition = esdbclient.End{}
	var cursor *esdbclient.Position
	for {
		var page []esdbclient.RecordedEvent
		var full bool
		err := s.retry(ctx, "head", func(c *esdbclient.Client) error {
			rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: from}, headPageSize)
			if err != nil {
				return err
			}
			defer rs.Close()
			page, full, err = drainRaw(rs, headPageSize)
			return err
		})
		if err != nil {
			return eventstore.Start, err
		}
		for i := range page {
			rec := &page[i]
			// Whether a backwards read from a position includes it differs
			// between server versions; never look at the same event twice.
			if cursor != nil && !positionBefore(rec.Position, *cursor) {
				continue
			}
			if !isSystem(rec.StreamID, rec.EventType) {
				return eventstore.Position{Commit: rec.Position.Commit, Prepare: rec.Position.Prepare}, nil
			}
		}
		if !full && len(page) < headPageSize {
			return eventstore.Start, nil // only system events, or none
		}
		last := page[len(page)-1].Position
		cursor = &last
		from = last
	}
}

func positionBefore(p, q esdbclient.Position) bool {
	return p.Commit < q.Commit || (p.Commit == q.Commit && p.Prepare < q.Prepare)
}

// isSystem reports whether an event belongs to the server rather than to
// ansinh: EventStoreDB reserves '$' for its own streams ($settings,
// $scavenges, $$metadata streams, projection output) and event types
// ($metadata, $>, $statsCollected). The port's stream-name and type rules
// forbid '$', so no application event is ever mistaken for one.
func isSystem(stream, eventType string) bool {
	return (len(stream) > 0 && stream[0] == '$') || (len(eventType) > 0 && eventType[0] == '$')
}

func toExpected(e eventstore.ExpectedRevision) esdbclient.ExpectedRevision {
	switch {
	case e.IsAny():
		return esdbclient.Any{}
	case e.IsNoStream():
		return esdbclient.NoStream{}
	case e.IsStreamExists():
		return esdbclient.StreamExists{}
	}
	r, _ := e.Revision()
	return esdbclient.Revision(r)
}

func fromRecorded(rec *esdbclient.RecordedEvent) eventstore.RecordedEvent {
	out := eventstore.RecordedEvent{
		StreamID:   rec.StreamID,
		Revision:   rec.EventNumber,
		Position:   eventstore.Position{Commit: rec.Position.Commit, Prepare: rec.Position.Prepare},
		ID:         rec.EventID,
		Type:       rec.EventType,
		Data:       json.RawMessage(rec.Data),
		RecordedAt: rec.CreatedDate.UTC(),
	}
	// Empty metadata reads back as nil, as from the embedded store.
	if len(rec.UserMetadata) > 0 {
		out.Metadata = json.RawMessage(rec.UserMetadata)
	}
	return out
}

// currentClient returns the client to use, or ErrClosed.
func (s *Store) currentClient() (*esdbclient.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	return s.client, nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// slogLogging routes the client library's log lines to slog. While the
// cluster is unreachable the library logs every discovery attempt (ten a
// second) at info and warning level, so those go to debug; its error lines
// (one per failed call, which the adapter retries or returns) to warning.
func slogLogging(l *slog.Logger) esdbclient.LoggingFunc {
	return func(level esdbclient.LogLevel, format string, args ...interface{}) {
		lvl := slog.LevelDebug
		if level == esdbclient.LogError {
			lvl = slog.LevelWarn
		}
		if !l.Enabled(context.Background(), lvl) {
			return
		}
		l.Log(context.Background(), lvl, fmt.Sprintf(format, args...), "component", "esdb-client")
	}
}
