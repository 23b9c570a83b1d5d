// Package eventstore is the port through which ansinh records and reads its
// events. It is the system of record: every registration, authorization and
// payment is an immutable event in a stream, and the store gives every event a
// place in one global order that projections and auditors replay.
//
// The semantics follow EventStoreDB/KurrentDB so that its adapter
// (eventstore/esdb) is a drop-in replacement for the embedded default
// (eventstore/pebble):
//
//   - A stream is a sequence of events with 0-based revisions. One Append of
//     one or more events to one stream is atomic: all or nothing.
//   - Append checks an ExpectedRevision (Any, NoStream, StreamExists, Exact).
//     A mismatch writes nothing and returns a *WrongExpectedRevisionError that
//     carries the actual revision; errors.Is(err, ErrWrongExpectedRevision)
//     holds.
//   - Append is idempotent on event IDs: re-sending the same events (same IDs,
//     same stream, same expected revision) after a lost reply returns the first
//     result and writes nothing new. This is what makes client retries safe.
//   - The store assigns each event a Position in the global log, strictly
//     increasing across all streams. ReadAll and Subscribe start *after* a
//     position (Start means "from the very beginning"), so a projection's
//     checkpoint is simply the position of the last event it applied.
//   - Data and metadata come back byte for byte as they were appended.
//   - Under Any and StreamExists, a retry is recognised where its first event
//     ID already stands in the stream (as EventStoreDB does); a retry that
//     matches only part of what is there returns ErrIdempotencyConflict.
//   - Subscribe catches up from a position and then follows live writes, in
//     order, with no gap and no duplicate. Subscriptions are pull-based
//     (Next), so a slow subscriber holds a bounded buffer and never stalls
//     writers: when it falls behind it simply reads the log again.
//
// Every rule of this contract is checked by eventstore/storetest, which every
// adapter runs.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Limits every adapter enforces before it writes anything. They protect the
// store from a client that sends too much, and they are part of the contract:
// an event accepted by one adapter is accepted by the others.
const (
	MaxStreamNameBytes = 200       // stream names are IDs, not documents
	MaxEventTypeBytes  = 100       // event types are names like "PaymentSettled.v1"
	MaxEventBytes      = 256 << 10 // data + metadata of one event
	MaxAppendEvents    = 1000      // events in one Append (a payout-run page is 500)
	MaxAppendBytes     = 8 << 20   // data + metadata of one Append
	MaxReadLimit       = 10_000    // events returned by one ReadStream or ReadAll
	SubscriptionBuffer = 1024      // events one subscription may hold in memory
)

// Store is the event store port. Implementations are safe for concurrent use.
type Store interface {
	// Append writes events to the end of stream, atomically, if the stream's
	// current revision matches expected. It returns once the events are
	// durable. A mismatch returns a *WrongExpectedRevisionError and writes
	// nothing; invalid input returns an error wrapping one of the Err*
	// sentinels below and writes nothing.
	Append(ctx context.Context, stream string, expected ExpectedRevision, events ...EventData) (AppendResult, error)

	// ReadStream reads up to opts.Limit events of one stream, starting at
	// opts.From (inclusive) in opts.Direction. A stream that has no events
	// returns ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, opts ReadStreamOptions) ([]RecordedEvent, error)

	// ReadAll reads up to limit events of the global log whose position is
	// strictly after the given one, in global order. Start reads from the
	// beginning. An empty result means the reader is at the head.
	ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error)

	// Head returns the position of the last event in the global log, or Start
	// when the log is empty.
	Head(ctx context.Context) (Position, error)

	// Subscribe returns a subscription to the global log that delivers every
	// event after the given position that matches filter: first those already
	// written (catch-up), then new ones as they are appended (live).
	Subscribe(ctx context.Context, after Position, filter Filter) (Subscription, error)

	// Close releases the store. Appends and reads after Close return ErrClosed;
	// open subscriptions end with ErrClosed. Calling Close again is harmless.
	Close() error
}

// Subscription delivers events in global order. Next is not safe for
// concurrent use by several goroutines (each consumer opens its own
// subscription), but Close may be called from any goroutine, and makes a
// blocked Next return.
type Subscription interface {
	// Next blocks until the next matching event is available, ctx is done,
	// or the subscription ends (Close, store closed, or a failure).
	Next(ctx context.Context) (RecordedEvent, error)
	// Close ends the subscription and releases its resources. It is safe to
	// call more than once.
	Close() error
}

// EventData is an event as the application proposes it.
type EventData struct {
	ID       uuid.UUID       // chosen by the client; makes retries idempotent
	Type     string          // e.g. "BeneficiaryRegistered.v1"
	Data     json.RawMessage // a JSON document
	Metadata json.RawMessage // a JSON object, or empty
}

// RecordedEvent is an event as the store recorded it.
type RecordedEvent struct {
	StreamID   string
	Revision   uint64 // 0-based place in its stream
	Position   Position
	ID         uuid.UUID
	Type       string
	Data       json.RawMessage
	Metadata   json.RawMessage
	RecordedAt time.Time // assigned by the store, UTC
}

// AppendResult says where the last event of an Append landed.
type AppendResult struct {
	NextRevision uint64   // revision of the last event written: the next expected revision
	Position     Position // global position of the last event written
}

// Position is a place in the global log. EventStoreDB positions have a commit
// and a prepare part; the embedded store sets both to its sequence number.
// The zero value, Start, is before the first event.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Start is the position before the first event of the log.
var Start = Position{}

// Compare returns -1, 0 or +1 as p is before, at, or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Prepare < q.Prepare:
		return -1
	case p.Prepare > q.Prepare:
		return 1
	}
	return 0
}

// IsStart reports whether p is the start of the log.
func (p Position) IsStart() bool { return p == Start }

// String renders p as "commit/prepare"; ParsePosition reads it back, so a
// position round-trips through checkpoints, URLs and JSON without loss.
func (p Position) String() string {
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// ParsePosition reads a position written by Position.String. A bare number n
// is read as n/n, the embedded store's form.
func ParsePosition(s string) (Position, error) {
	c, pr, found := strings.Cut(s, "/")
	commit, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: want commit/prepare, two whole numbers", s)
	}
	if !found {
		return Position{Commit: commit, Prepare: commit}, nil
	}
	prepare, err := strconv.ParseUint(pr, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: want commit/prepare, two whole numbers", s)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}

// MarshalText and UnmarshalText let a Position travel as a JSON string.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Direction of a stream read.
type Direction int

const (
	Forwards Direction = iota
	Backwards
)

// End, as ReadStreamOptions.From, means the last event of the stream; it is
// how one reads a stream backwards from its end.
const End = ^uint64(0)

// ReadStreamOptions select a window of one stream.
type ReadStreamOptions struct {
	Direction Direction
	From      uint64 // first revision to return (inclusive); End for the last
	Limit     int    // 1..MaxReadLimit
}

// Filter restricts a subscription. Empty slices match everything; when both
// are set an event must match both. Matching is by prefix, as in
// EventStoreDB's server-side filters.
type Filter struct {
	StreamPrefixes    []string
	EventTypePrefixes []string
}

// Match reports whether an event of the given stream and type passes f.
func (f Filter) Match(stream, eventType string) bool {
	return matchPrefix(f.StreamPrefixes, stream) && matchPrefix(f.EventTypePrefixes, eventType)
}

func matchPrefix(prefixes []string, s string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// ExpectedRevision is the condition an Append checks against the stream's
// current state. Build one with Any, NoStream, StreamExists or Exact.
type ExpectedRevision struct {
	kind     expectKind
	revision uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

// Any appends whatever the stream's state.
func Any() ExpectedRevision { return ExpectedRevision{kind: expectAny} }

// NoStream appends only if the stream has no events: it creates the stream.
func NoStream() ExpectedRevision { return ExpectedRevision{kind: expectNoStream} }

// StreamExists appends only if the stream has at least one event.
func StreamExists() ExpectedRevision { return ExpectedRevision{kind: expectStreamExists} }

// Exact appends only if the stream's last event has revision r.
func Exact(r uint64) ExpectedRevision { return ExpectedRevision{kind: expectExact, revision: r} }

// IsAny, IsNoStream, IsStreamExists report the kind; Revision reports the
// revision of an Exact expectation (ok is false for the other kinds).
func (e ExpectedRevision) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedRevision) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedRevision) IsStreamExists() bool { return e.kind == expectStreamExists }
func (e ExpectedRevision) Revision() (r uint64, ok bool) {
	return e.revision, e.kind == expectExact
}

// Check reports whether a stream whose last revision is actual (-1 when the
// stream has no events) satisfies e.
func (e ExpectedRevision) Check(actual int64) bool {
	switch e.kind {
	case expectAny:
		return true
	case expectNoStream:
		return actual < 0
	case expectStreamExists:
		return actual >= 0
	default:
		return actual >= 0 && uint64(actual) == e.revision
	}
}

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectAny:
		return "any"
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	default:
		return "revision " + strconv.FormatUint(e.revision, 10)
	}
}

// Errors. Adapters wrap the sentinels with detail; callers test with
// errors.Is.
var (
	ErrWrongExpectedRevision = errors.New("wrong expected revision")
	ErrStreamNotFound        = errors.New("stream not found")
	ErrClosed                = errors.New("event store closed")

	ErrInvalidStreamName = errors.New("invalid stream name")
	ErrInvalidEventType  = errors.New("invalid event type")
	ErrInvalidEventID    = errors.New("invalid event ID")
	ErrDuplicateEventID  = errors.New("duplicate event ID in one append")
	ErrInvalidJSON       = errors.New("event data or metadata is not valid JSON")
	ErrEventTooLarge     = errors.New("event too large")
	ErrTooManyEvents     = errors.New("too many events in one append")
	ErrEmptyAppend       = errors.New("append has no events")
	ErrInvalidLimit      = errors.New("invalid read limit")

	// ErrIdempotencyConflict: some of the appended event IDs are already in
	// the stream at the expected place, but not all of them, or not in the
	// same order. It is a client bug (a retry that is not the same request).
	ErrIdempotencyConflict = errors.New("event IDs partly match events already written")
)

// WrongExpectedRevisionError is returned by Append when the stream is not in
// the expected state. Nothing was written.
type WrongExpectedRevisionError struct {
	Stream   string
	Expected ExpectedRevision
	Actual   int64 // last revision of the stream, -1 when it has no events
}

func (e *WrongExpectedRevisionError) Error() string {
	actual := "no stream"
	if e.Actual >= 0 {
		actual = "revision " + strconv.FormatInt(e.Actual, 10)
	}
	return fmt.Sprintf("stream %q: expected %s, found %s", e.Stream, e.Expected, actual)
}

// Is makes errors.Is(err, ErrWrongExpectedRevision) true.
func (e *WrongExpectedRevisionError) Is(target error) bool { return target == ErrWrongExpectedRevision }

// ValidateAppend checks an Append's arguments against the limits every
// adapter enforces. Adapters call it before touching storage so that a bad
// request writes nothing.
func ValidateAppend(stream string, events []EventData) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return ErrEmptyAppend
	}
	if len(events) > MaxAppendEvents {
		return fmt.Errorf("%w: %d events, at most %d", ErrTooManyEvents, len(events), MaxAppendEvents)
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	total := 0
	for i, ev := range events {
		if ev.ID == uuid.Nil {
			return fmt.Errorf("%w: event %d has no ID", ErrInvalidEventID, i)
		}
		if _, dup := seen[ev.ID]; dup {
			return fmt.Errorf("%w: %s", ErrDuplicateEventID, ev.ID)
		}
		seen[ev.ID] = struct{}{}
		if err := validateEventType(ev.Type); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		size := len(ev.Data) + len(ev.Metadata)
		if size > MaxEventBytes {
			return fmt.Errorf("%w: event %d has %d bytes, at most %d", ErrEventTooLarge, i, size, MaxEventBytes)
		}
		total += size
		if !validJSON(ev.Data) {
			return fmt.Errorf("%w: data of event %d", ErrInvalidJSON, i)
		}
		if len(ev.Metadata) > 0 && !isJSONObject(ev.Metadata) {
			return fmt.Errorf("%w: metadata of event %d must be a JSON object", ErrInvalidJSON, i)
		}
	}
	if total > MaxAppendBytes {
		return fmt.Errorf("%w: append has %d bytes, at most %d", ErrEventTooLarge, total, MaxAppendBytes)
	}
	return nil
}

// ValidateStreamName checks a stream name: 1..MaxStreamNameBytes of ASCII
// letters, digits and "-_.:@", not starting with '$' (reserved for system
// streams in EventStoreDB).
func ValidateStreamName(s string) error {
	if len(s) == 0 || len(s) > MaxStreamNameBytes {
		return fmt.Errorf("%w: %q must be 1 to %d bytes", ErrInvalidStreamName, clip(s), MaxStreamNameBytes)
	}
	if !validChars(s) {
		return fmt.Errorf("%w: %q may hold only letters, digits and - _ . : @", ErrInvalidStreamName, clip(s))
	}
	return nil
}

// ValidateReadLimit checks a read limit.
func ValidateReadLimit(limit int) error {
	if limit < 1 || limit > MaxReadLimit {
		return fmt.Errorf("%w: %d, want 1 to %d", ErrInvalidLimit, limit, MaxReadLimit)
	}
	return nil
}

func validateEventType(t string) error {
	if len(t) == 0 || len(t) > MaxEventTypeBytes || !validChars(t) {
		return fmt.Errorf("%w: %q must be 1 to %d letters, digits or - _ . : @", ErrInvalidEventType, clip(t), MaxEventTypeBytes)
	}
	return nil
}

func validChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '@':
		default:
			return false
		}
	}
	return true
}

func isJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return validJSON(b)
		default:
			return false
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
