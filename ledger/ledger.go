package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/eventstore"
)

// Defaults of Config; see DefaultConfig.
const (
	// DefaultMaxAttempts bounds load-decide-append rounds on a concurrency
	// conflict. Conflicts on one beneficiary are rare (two clerks at once);
	// five rounds absorb bursts without letting a hot stream spin forever.
	DefaultMaxAttempts = 5
	// MaxStreamEvents bounds what one load reads. A beneficiary's stream
	// grows by a few events a year; a stream past this is a bug or abuse,
	// and loading it would make every command on it slow.
	MaxStreamEvents = 20_000
	// readPage is the page size of a stream load.
	readPage = 1000
)

// Bounds on the request fields a client controls.
const (
	MaxCommandIDLen  = 100
	MaxTraceIDLen    = 100 // correlation and causation IDs
	MaxUserIDLen     = 100
	MaxRequestReason = 500
)

// Clock returns the current time; tests inject a fixed one.
type Clock func() time.Time

// Config configures a Ledger. Build it from DefaultConfig and change what
// differs: every field is explicit rather than a hidden default.
type Config struct {
	Clock       Clock
	MaxAttempts int                // load-decide-append rounds on a conflict, >= 1
	Limits      entitlement.Limits // the amount cap of entitlement rules
	// NewEventID gives IDs to the events of commands sent without a command
	// ID. Commands with one get IDs derived from it (see Request.CommandID).
	NewEventID func() uuid.UUID
	// StateCacheEntries bounds the streams whose state is kept between
	// commands (statecache.go); 0 turns the cache off.
	StateCacheEntries int
}

// DefaultConfig is the production configuration.
func DefaultConfig() Config {
	return Config{
		Clock:       time.Now,
		MaxAttempts: DefaultMaxAttempts,
		Limits:      entitlement.DefaultLimits(),
		NewEventID:  uuid.New,
		// About 2 KB a beneficiary: 100 MB at most.
		StateCacheEntries: 50_000,
	}
}

// Ledger turns commands into events in the store. It is safe for concurrent
// use.
type Ledger struct {
	store eventstore.Store
	codec *domain.Codec
	cfg   Config

	catMu  sync.Mutex
	catRev int64 // revision the cached catalogue is at; -1 when empty
	cat    entitlement.Catalogue

	// settlements maps released runs' payments to their lines, so that one
	// bank answer does not load its whole run (settlement_index.go).
	settlements settlementIndex

	states *stateCache // nil when Config.StateCacheEntries is 0
}

// New returns a ledger over store. It panics on an invalid configuration (a
// programming error at start-up).
func New(store eventstore.Store, cfg Config) *Ledger {
	if cfg.Clock == nil || cfg.NewEventID == nil || cfg.MaxAttempts < 1 || !cfg.Limits.AmountCap.IsPositive() {
		panic("ledger: incomplete Config; start from DefaultConfig()")
	}
	if cfg.StateCacheEntries < 0 {
		panic("ledger: negative Config.StateCacheEntries")
	}
	return &Ledger{store: store, codec: NewCodec(), cfg: cfg, catRev: -1, states: newStateCache(cfg.StateCacheEntries)}
}

// Codec returns the codec of every event the ledger writes; projections
// decode the global log with it.
func (l *Ledger) Codec() *domain.Codec { return l.codec }

// Limits returns the configured entitlement limits.
func (l *Ledger) Limits() entitlement.Limits { return l.cfg.Limits }

// Today is the current date in Vietnam by the ledger's clock.
func (l *Ledger) Today() domain.Date { return domain.DateOf(l.cfg.Clock()) }

// Request is what travels with a command besides its content: who sends it,
// why, and how it relates to other work.
type Request struct {
	Actor domain.Actor
	// CommandID is the client's idempotency key (e.g. the HTTP
	// Idempotency-Key), scoped to the stream the command writes. The
	// events' IDs are derived from it, so a command re-sent with the same ID
	// and content returns the first result and writes nothing; the same ID
	// with other content is refused (RuleError code "command_id_reused").
	// Empty: no idempotency.
	CommandID string
	// Reason is why the person acts; recorded in every event's metadata.
	Reason        string
	CorrelationID string // defaults to CommandID, or a new UUID
	CausationID   string // defaults to CommandID
	// EffectiveAt is the business time, when it differs from now.
	EffectiveAt time.Time
	// ExpectedRevision, when set, is the stream revision the client last
	// saw (an HTTP If-Match). The command is decided only if the stream is
	// still there, and it is not retried on a conflict: a mismatch returns a
	// *RevisionMismatchError.
	ExpectedRevision *uint64
}

// Result is what a command did.
type Result struct {
	Stream string
	// Events are the events the command appended, in order. Empty when the
	// command changed nothing (a no-op, such as choosing the payment method
	// already chosen).
	Events []Appended
	// Revision is the stream's revision after the command: the revision of
	// the last event appended (or, for a no-op, the stream's current last
	// revision; -1 if the stream does not exist). It is the ETag.
	Revision int64
	// Position is the global position of the last event appended (for a
	// no-op, of the stream's last event): a reader that has caught up to it
	// sees the command's effect.
	Position eventstore.Position
	// Replayed is true when the command ID had already been applied: the
	// events are those of the first time, and nothing new was written.
	Replayed bool
	// State is the aggregate's state (the S of Handle) after the command,
	// at StateRevision: the events it loaded with the new ones folded in.
	// For a replayed command it is the state as loaded, which may be later
	// than the first run's events. Handlers answer with it instead of
	// reading the stream again.
	State any
	// StateRevision is the stream revision State is at (-1: no stream).
	StateRevision int64
}

// Appended is one event a command appended.
type Appended struct {
	ID       uuid.UUID
	Type     string
	Revision uint64
	Event    domain.Event
}

// Errors besides *domain.RuleError (the command breaks a rule: nothing was
// written) and wrapped store errors.
var (
	// ErrRevisionMismatch: the stream is not at Request.ExpectedRevision.
	ErrRevisionMismatch = errors.New("the record changed since it was read")
	// ErrTooManyConflicts: MaxAttempts rounds all met a concurrent writer.
	ErrTooManyConflicts = errors.New("too many concurrent changes to the same record; try again")
	// ErrStreamTooLong: a stream has more than MaxStreamEvents events.
	ErrStreamTooLong = errors.New("stream too long to load")
)

// RevisionMismatchError says which revision the client expected and which
// the stream has; errors.Is(err, ErrRevisionMismatch) holds.
type RevisionMismatchError struct {
	Stream   string
	Expected uint64
	Actual   int64 // -1: no stream
}

func (e *RevisionMismatchError) Error() string {
	return fmt.Sprintf("%s: %s: expected revision %d, found %d", ErrRevisionMismatch, e.Stream, e.Expected, e.Actual)
}

func (e *RevisionMismatchError) Is(target error) bool { return target == ErrRevisionMismatch }

// State is an aggregate's state: it folds events into a new state.
type State[S any] interface {
	Evolve(domain.Event) S
}

// Loaded is an aggregate's state as read from its stream.
type Loaded[S any] struct {
	State    S
	Revision int64               // last revision of the stream; -1 when it has no events
	Position eventstore.Position // global position of the stream's last event
	ids      []uuid.UUID         // of the stream's events, for the state cache; nil past maxCachedEvents
}

// Load reads stream from the start and folds its events into S's zero value.
func Load[S State[S]](ctx context.Context, l *Ledger, stream string) (Loaded[S], error) {
	ld, _, err := load[S](ctx, l, stream, "")
	return ld, err
}

// prior is what an earlier run of the same command ID wrote.
type prior struct {
	events   []eventstore.RecordedEvent
	appended []Appended
}

// load reads and folds stream. When commandID is set it also collects the
// events an earlier run of that command wrote, recognized by their derived
// IDs.
func load[S State[S]](ctx context.Context, l *Ledger, stream, commandID string) (Loaded[S], *prior, error) {
	var st S
	ld := Loaded[S]{State: st, Revision: -1}
	var pr *prior
	var firstID uuid.UUID
	if commandID != "" {
		firstID = eventID(stream, commandID, 0)
	}
	for from := uint64(0); ; {
		page, err := l.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: eventstore.Forwards, From: from, Limit: readPage})
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return ld, pr, nil
		}
		if err != nil {
			return ld, nil, fmt.Errorf("ledger: load %s: %w", stream, err)
		}
		if len(page) == 0 {
			return ld, pr, nil
		}
		for _, rec := range page {
			ev, err := l.codec.Decode(rec.Type, rec.Data)
			if err != nil {
				return ld, nil, fmt.Errorf("ledger: load %s at revision %d: %w", stream, rec.Revision, err)
			}
			ld.State = ld.State.Evolve(ev)
			ld.Revision, ld.Position = int64(rec.Revision), rec.Position
			if rec.Revision < maxCachedEvents {
				ld.ids = append(ld.ids, rec.ID)
			}
			if commandID != "" {
				if rec.ID == firstID {
					pr = &prior{}
				}
				if pr != nil && rec.ID == eventID(stream, commandID, len(pr.events)) {
					pr.events = append(pr.events, rec)
					pr.appended = append(pr.appended, Appended{ID: rec.ID, Type: rec.Type, Revision: rec.Revision, Event: ev})
				}
			}
		}
		from = page[len(page)-1].Revision + 1
		if from > MaxStreamEvents {
			return ld, nil, fmt.Errorf("ledger: load %s: %w (more than %d events)", stream, ErrStreamTooLong, MaxStreamEvents)
		}
	}
}

// Decider decides a command against a loaded state.
type Decider[S any] func(state S) ([]domain.Event, error)

// Handle runs one command against one stream: load, decide, append with the
// expected revision it loaded; on a concurrency conflict it loads and
// decides again, up to Config.MaxAttempts times. cmd is the command's
// content, hashed for the idempotency check. A rejected command (decide
// returns an error) appends nothing and returns the decider's error as is.
func Handle[S State[S]](ctx context.Context, l *Ledger, stream string, req Request, cmd any, decide Decider[S]) (Result, error) {
	meta, err := l.metadata(req)
	if err != nil {
		return Result{}, err
	}
	if req.CommandID != "" {
		meta.CommandHash, err = commandHash(cmd)
		if err != nil {
			return Result{}, fmt.Errorf("ledger: hash command: %w", err)
		}
	}
	var firstID uuid.UUID
	if req.CommandID != "" {
		firstID = eventID(stream, req.CommandID, 0)
	}
	// The first round may decide on a cached state (statecache.go); every
	// answer that is not a successful append is then checked by a round
	// from a fresh load, which does not count as an attempt.
	var zero S
	useCache := cacheable(zero)
	tryCache := useCache
	for attempt := 1; ; {
		var ld Loaded[S]
		var pr *prior
		cached := false
		if tryCache {
			tryCache = false
			if cs, ok := l.states.get(stream, firstID); ok {
				if st, ok := cs.state.(S); ok {
					ld, cached = Loaded[S]{State: st, Revision: cs.revision, Position: cs.position, ids: cs.ids}, true
				}
			}
		}
		if !cached {
			var err error
			if ld, pr, err = load[S](ctx, l, stream, req.CommandID); err != nil {
				return Result{}, err
			}
			if useCache {
				l.states.put(&cachedState{stream: stream, state: ld.State, revision: ld.Revision, position: ld.Position, ids: ld.ids})
			}
		}
		if pr != nil {
			res, err := l.replay(stream, meta.CommandHash, req.CommandID, pr)
			res.State, res.StateRevision = ld.State, ld.Revision
			return res, err
		}
		if req.ExpectedRevision != nil && ld.Revision != int64(*req.ExpectedRevision) {
			if cached {
				continue
			}
			return Result{}, &RevisionMismatchError{Stream: stream, Expected: *req.ExpectedRevision, Actual: ld.Revision}
		}
		events, err := decide(ld.State)
		if cached && (err != nil || len(events) == 0) {
			continue // refused or nothing to do: make sure of it on the stream itself
		}
		if err != nil {
			return Result{}, err
		}
		if len(events) == 0 {
			return Result{Stream: stream, Revision: ld.Revision, Position: ld.Position, State: ld.State, StateRevision: ld.Revision}, nil
		}
		data, appended, err := l.encode(stream, req.CommandID, meta, events)
		if err != nil {
			return Result{}, err
		}
		expected := eventstore.NoStream()
		if ld.Revision >= 0 {
			expected = eventstore.Exact(uint64(ld.Revision))
		}
		res, err := l.store.Append(ctx, stream, expected, data...)
		if err != nil {
			l.states.drop(stream)
		}
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			if req.ExpectedRevision != nil {
				actual := int64(-2)
				var wrong *eventstore.WrongExpectedRevisionError
				if errors.As(err, &wrong) {
					actual = wrong.Actual
				}
				return Result{}, &RevisionMismatchError{Stream: stream, Expected: *req.ExpectedRevision, Actual: actual}
			}
			if cached {
				continue // the cached state was behind the stream
			}
			if attempt >= l.cfg.MaxAttempts {
				return Result{}, fmt.Errorf("ledger: %s after %d attempts: %w (last: %w)", stream, attempt, ErrTooManyConflicts, err)
			}
			attempt++
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("ledger: append to %s: %w", stream, err)
		}
		first := res.NextRevision + 1 - uint64(len(appended))
		state := ld.State
		ids := make([]uuid.UUID, len(ld.ids), len(ld.ids)+len(appended))
		copy(ids, ld.ids)
		for i := range appended {
			appended[i].Revision = first + uint64(i)
			state = state.Evolve(events[i])
			ids = append(ids, appended[i].ID)
		}
		if useCache {
			l.states.put(&cachedState{stream: stream, state: state, revision: int64(res.NextRevision), position: res.Position, ids: ids})
		}
		return Result{Stream: stream, Events: appended, Revision: int64(res.NextRevision), Position: res.Position,
			State: state, StateRevision: int64(res.NextRevision)}, nil
	}
}

// replay answers a command whose ID was already applied.
func (l *Ledger) replay(stream, hash, commandID string, pr *prior) (Result, error) {
	var m domain.Metadata
	if err := json.Unmarshal(pr.events[0].Metadata, &m); err != nil {
		return Result{}, fmt.Errorf("ledger: metadata of %s: %w", pr.events[0].ID, err)
	}
	if m.CommandHash != hash {
		return Result{}, domain.Rejectf(domain.Conflict, "command_id_reused", "command_id",
			"command ID %q was already used for a different command on this record; use a new ID for a new command", clip(commandID))
	}
	last := pr.events[len(pr.events)-1]
	return Result{Stream: stream, Events: pr.appended, Revision: int64(last.Revision), Position: last.Position, Replayed: true}, nil
}

// encode turns decided events into store records with their metadata.
func (l *Ledger) encode(stream, commandID string, meta domain.Metadata, events []domain.Event) ([]eventstore.EventData, []Appended, error) {
	data := make([]eventstore.EventData, len(events))
	appended := make([]Appended, len(events))
	for i, ev := range events {
		t, body, err := l.codec.Encode(ev)
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: %w", err)
		}
		m := meta
		m.SchemaVersion = domain.SchemaVersion(t)
		mb, err := json.Marshal(m)
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: metadata: %w", err)
		}
		id := l.cfg.NewEventID()
		if commandID != "" {
			id = eventID(stream, commandID, i)
		}
		data[i] = eventstore.EventData{ID: id, Type: t, Data: body, Metadata: mb}
		appended[i] = Appended{ID: id, Type: t, Event: ev}
	}
	return data, appended, nil
}

// metadata checks the request and builds the metadata every event of the
// command carries.
func (l *Ledger) metadata(req Request) (domain.Metadata, error) {
	a := req.Actor
	if err := checkActor(a); err != nil {
		return domain.Metadata{}, err
	}
	for _, f := range []struct{ name, v string }{{"command_id", req.CommandID}, {"correlation_id", req.CorrelationID}, {"causation_id", req.CausationID}} {
		if !validTraceID(f.v) {
			return domain.Metadata{}, domain.Reject("invalid_id", f.name, "must be at most %d letters, digits or - _ . :", MaxCommandIDLen)
		}
	}
	reason, err := domain.CleanText("reason", req.Reason, 0, MaxRequestReason)
	if err != nil {
		return domain.Metadata{}, err
	}
	m := domain.Metadata{
		Actor: a, RecordedAt: l.cfg.Clock().UTC(), Reason: reason,
		CorrelationID: req.CorrelationID, CausationID: req.CausationID, CommandID: req.CommandID,
	}
	if !req.EffectiveAt.IsZero() {
		m.EffectiveAt = req.EffectiveAt.UTC()
	}
	if m.CorrelationID == "" {
		m.CorrelationID = req.CommandID
		if m.CorrelationID == "" {
			m.CorrelationID = uuid.NewString()
		}
	}
	if m.CausationID == "" {
		m.CausationID = req.CommandID
	}
	return m, nil
}

// idNamespace scopes derived event IDs to ansinh.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://ansinh/ledger/event-id"))

// eventID is the ID of the i-th event a command writes to stream: the same
// command ID always yields the same IDs, so the store recognizes a resend.
func eventID(stream, commandID string, i int) uuid.UUID {
	return uuid.NewSHA1(idNamespace, fmt.Appendf(nil, "%s\x00%s\x00%d", stream, commandID, i))
}

// commandHash is a digest of a command's type and content.
func commandHash(cmd any) (string, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%T\x00", cmd)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func checkActor(a domain.Actor) error {
	if a.UserID == "" || len(a.UserID) > MaxUserIDLen || !validRole(a.Role) {
		return domain.Rejectf(domain.Forbidden, "unauthenticated", "", "the command has no valid user and role")
	}
	return nil
}

func validRole(r domain.Role) bool {
	switch r {
	case domain.RoleRegistrar, domain.RoleFinanceOfficer, domain.RoleApprover, domain.RoleAuditor, domain.RoleAdmin, domain.RoleSystem:
		return true
	}
	return false
}

func validTraceID(s string) bool {
	if len(s) > MaxTraceIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// authorize checks the actor's role against the roles a command allows.
func authorize(req Request, what string, roles ...domain.Role) error {
	if err := checkActor(req.Actor); err != nil {
		return err
	}
	for _, r := range roles {
		if req.Actor.Role == r {
			return nil
		}
	}
	return domain.Rejectf(domain.Forbidden, "role_not_allowed", "", "a %s may not %s", req.Actor.Role, what)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
