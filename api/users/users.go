// Package users keeps the people who may call the API and their API tokens.
//
// Users are events in one stream of the event store ("users"), so that they
// live wherever the ledger lives (embedded Pebble or EventStoreDB) and every
// change to who may do what is as auditable as a payment. A Directory is the
// in-memory index of that stream: built at Open, brought up to date after
// each of its own writes, and — while Follow runs — after writes by other
// processes (a second API instance, the `ansinh users` command on a shared
// EventStoreDB).
//
// An API token is shown once, when it is issued; the stream holds only its
// SHA-256. A user has one token at a time: issuing a new one revokes the old.
package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// Stream is the event store stream that holds every user event.
const Stream = "users"

// Event types of the users stream. Once stored they are never renamed or
// reshaped (see STYLE.md); a new shape gets a new version.
const (
	TypeUserCreated  = "UserCreated.v1"
	TypeTokenIssued  = "TokenIssued.v1"
	TypeUserDisabled = "UserDisabled.v1"
)

// Limits on what a client controls.
const (
	MaxUsers     = 10_000 // a city's staff, with room; bounds the in-memory index
	MaxNameBytes = 64
	// TokenPrefix marks ansinh API tokens so that the API can tell them from
	// JWTs without trying to parse, and so that secret scanners can find them.
	TokenPrefix = "ans_"
	// tokenBytes of randomness: 256 bits, beyond any brute force.
	tokenBytes = 32
	// readPage is the page size when reading the users stream.
	readPage = 1000
	// writeAttempts bounds the retries of a write that lost a race with
	// another process writing the users stream.
	writeAttempts = 10
)

// Roles a user may have. RoleSystem is the service itself and is never given
// to a person.
var Roles = []domain.Role{
	domain.RoleRegistrar, domain.RoleFinanceOfficer, domain.RoleApprover, domain.RoleAuditor, domain.RoleAdmin,
}

// ValidRole reports whether r may be given to a user.
func ValidRole(r domain.Role) bool { return slices.Contains(Roles, r) }

// User is one person who may call the API.
type User struct {
	Name          string      `json:"name"`
	Role          domain.Role `json:"role"`
	Disabled      bool        `json:"disabled"`
	CreatedAt     time.Time   `json:"created_at"`
	TokenIssuedAt time.Time   `json:"token_issued_at"`
}

// Actor is the user as the author of a command.
func (u User) Actor() domain.Actor { return domain.Actor{UserID: u.Name, Role: u.Role} }

// Event data. Names are the user's ID: they are unique, never reused and
// never renamed, so that an audit trail that names a user stays readable.
type userCreated struct {
	Name string      `json:"name"`
	Role domain.Role `json:"role"`
}

type tokenIssued struct {
	Name string `json:"name"`
	// TokenSHA256 is the hex SHA-256 of the token. A fast hash is enough —
	// and bcrypt/argon2 would be wrong here — because the token is 256 random
	// bits, not a password a person chose: no dictionary applies and a brute
	// force of the hash is hopeless, so key stretching buys nothing. A fast,
	// unsalted hash also lets the API find the user by hash in O(1) on every
	// request, where bcrypt would cost tens of milliseconds of CPU per call.
	TokenSHA256 string `json:"token_sha256"`
}

type userDisabled struct {
	Name string `json:"name"`
}

// Directory is the index of the users stream. It is safe for concurrent use.
type Directory struct {
	store eventstore.Store
	log   *slog.Logger
	now   func() time.Time

	// writeMu serializes this process's writes, so that they never race each
	// other on the stream revision (only writes of other processes do);
	// catchUpMu serializes reads of the stream so that two catch-ups never
	// apply the same events; mu guards the index itself.
	writeMu   sync.Mutex
	catchUpMu sync.Mutex
	mu        sync.RWMutex
	users     map[string]*User
	byHash    map[[sha256.Size]byte]string // token hash -> user name
	tokenOf   map[string][sha256.Size]byte // user name -> hash of the current token
	revision  int64                        // last applied revision, -1 before the first
	position  eventstore.Position          // of the last applied event
}

// Open reads the users stream and returns its index.
func Open(ctx context.Context, store eventstore.Store, log *slog.Logger) (*Directory, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Directory{
		store:    store,
		log:      log,
		now:      func() time.Time { return time.Now().UTC() },
		users:    make(map[string]*User),
		byHash:   make(map[[sha256.Size]byte]string),
		tokenOf:  make(map[string][sha256.Size]byte),
		revision: -1,
	}
	if err := d.CatchUp(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// CatchUp applies the events of the users stream written since the last
// one applied.
func (d *Directory) CatchUp(ctx context.Context) error {
	d.catchUpMu.Lock()
	defer d.catchUpMu.Unlock()
	for {
		d.mu.RLock()
		from := uint64(d.revision + 1)
		d.mu.RUnlock()
		events, err := d.store.ReadStream(ctx, Stream, eventstore.ReadStreamOptions{
			Direction: eventstore.Forwards, From: from, Limit: readPage,
		})
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("users: read stream: %w", err)
		}
		d.mu.Lock()
		for _, ev := range events {
			if err := d.apply(ev); err != nil {
				d.mu.Unlock()
				return err
			}
		}
		d.mu.Unlock()
		if len(events) < readPage {
			return nil
		}
	}
}

// apply folds one event into the index; d.mu is held for writing. Events
// the index already holds are skipped, so overlapping catch-ups are harmless.
func (d *Directory) apply(ev eventstore.RecordedEvent) error {
	if int64(ev.Revision) <= d.revision {
		return nil
	}
	if int64(ev.Revision) != d.revision+1 {
		return fmt.Errorf("users: event at revision %d follows revision %d: the stream has a gap", ev.Revision, d.revision)
	}
	switch ev.Type {
	case TypeUserCreated:
		var e userCreated
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return fmt.Errorf("users: revision %d (%s): %w", ev.Revision, ev.Type, err)
		}
		d.users[e.Name] = &User{Name: e.Name, Role: e.Role, CreatedAt: ev.RecordedAt}
	case TypeTokenIssued:
		var e tokenIssued
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return fmt.Errorf("users: revision %d (%s): %w", ev.Revision, ev.Type, err)
		}
		var h [sha256.Size]byte
		if n, err := hex.Decode(h[:], []byte(e.TokenSHA256)); err != nil || n != sha256.Size {
			return fmt.Errorf("users: revision %d (%s): token hash is not 32 bytes of hex", ev.Revision, ev.Type)
		}
		u, ok := d.users[e.Name]
		if !ok {
			return fmt.Errorf("users: revision %d (%s): unknown user %q", ev.Revision, ev.Type, e.Name)
		}
		// One token per user: the new one revokes the old.
		if old, ok := d.tokenOf[e.Name]; ok {
			delete(d.byHash, old)
		}
		d.byHash[h] = e.Name
		d.tokenOf[e.Name] = h
		u.TokenIssuedAt = ev.RecordedAt
	case TypeUserDisabled:
		var e userDisabled
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return fmt.Errorf("users: revision %d (%s): %w", ev.Revision, ev.Type, err)
		}
		u, ok := d.users[e.Name]
		if !ok {
			return fmt.Errorf("users: revision %d (%s): unknown user %q", ev.Revision, ev.Type, e.Name)
		}
		u.Disabled = true
	default:
		// A newer version of the service wrote a type this one does not
		// know. Skipping could grant access that was revoked, so refuse.
		return fmt.Errorf("users: revision %d: unknown event type %q; upgrade ansinh", ev.Revision, ev.Type)
	}
	d.revision = int64(ev.Revision)
	d.position = ev.Position
	return nil
}

// Follow keeps the index up to date with writes by other processes until ctx
// ends. It returns nil when ctx ends or the store closes, and retries (with
// a pause) after other subscription failures.
func (d *Directory) Follow(ctx context.Context) error {
	const pause = time.Second
	for {
		err := d.follow(ctx)
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) {
			return nil
		}
		d.log.Warn("users: following the users stream failed; retrying", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

func (d *Directory) follow(ctx context.Context) error {
	// Subscribe from the head, then catch up by reading the stream: an event
	// written between the two is seen by both, and apply skips it the
	// second time, so nothing is missed.
	head, err := d.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("users: head: %w", err)
	}
	sub, err := d.store.Subscribe(ctx, head, eventstore.Filter{StreamPrefixes: []string{Stream}})
	if err != nil {
		return fmt.Errorf("users: subscribe: %w", err)
	}
	defer sub.Close()
	if err := d.CatchUp(ctx); err != nil {
		return err
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if ev.StreamID != Stream { // the filter matches by prefix
			continue
		}
		if err := d.CatchUp(ctx); err != nil {
			return err
		}
	}
}

// Authenticate returns the enabled user whose token this is.
func (d *Directory) Authenticate(token string) (User, bool) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return User{}, false
	}
	h := sha256.Sum256([]byte(token))
	d.mu.RLock()
	defer d.mu.RUnlock()
	name, ok := d.byHash[h]
	if !ok {
		return User{}, false
	}
	u := d.users[name]
	if u.Disabled {
		return User{}, false
	}
	return *u, true
}

// Get returns the user with this name.
func (d *Directory) Get(name string) (User, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.users[name]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// IsDisabled reports whether a user of this name exists and is disabled. The
// API asks it for identities from an external provider too, so that
// disabling a name locks it out whatever its credential.
func (d *Directory) IsDisabled(name string) bool {
	u, ok := d.Get(name)
	return ok && u.Disabled
}

// List returns every user, by name.
func (d *Directory) List() []User {
	d.mu.RLock()
	out := make([]User, 0, len(d.users))
	for _, u := range d.users {
		out = append(out, *u)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Len is the number of users, disabled ones included.
func (d *Directory) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.users)
}

// Revision is the revision of the users stream the index reflects (-1 when
// the stream is empty). It is the ETag of the user list.
func (d *Directory) Revision() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.revision
}

// Write is the outcome of a change.
type Write struct {
	User   User
	Token  string // the new token, when one was issued; shown once
	Result eventstore.AppendResult
}

// Create adds a user with a first token.
func (d *Directory) Create(ctx context.Context, meta domain.Metadata, expected *eventstore.ExpectedRevision, name string, role domain.Role) (Write, error) {
	if err := ValidateName(name); err != nil {
		return Write{}, err
	}
	if !ValidRole(role) {
		return Write{}, domain.Reject("invalid_role", "role", "role %q is not one of %s", clip(string(role)), roleList())
	}
	token, hash, err := newToken()
	if err != nil {
		return Write{}, err
	}
	return d.write(ctx, meta, expected, name, func() ([]any, error) {
		if _, ok := d.users[name]; ok {
			return nil, domain.Rejectf(domain.Conflict, "user_exists", "name", "a user named %q exists; names are never reused, pick another", name)
		}
		if len(d.users) >= MaxUsers {
			return nil, domain.Rejectf(domain.Conflict, "too_many_users", "", "the directory holds its maximum of %d users", MaxUsers)
		}
		return []any{userCreated{Name: name, Role: role}, tokenIssued{Name: name, TokenSHA256: hash}}, nil
	}, token)
}

// IssueToken gives a user a new token and revokes the old one.
func (d *Directory) IssueToken(ctx context.Context, meta domain.Metadata, expected *eventstore.ExpectedRevision, name string) (Write, error) {
	token, hash, err := newToken()
	if err != nil {
		return Write{}, err
	}
	return d.write(ctx, meta, expected, name, func() ([]any, error) {
		u, ok := d.users[name]
		if !ok {
			return nil, notFound(name)
		}
		if u.Disabled {
			return nil, domain.Rejectf(domain.Conflict, "user_disabled", "name", "user %q is disabled; a disabled user gets no token", name)
		}
		return []any{tokenIssued{Name: name, TokenSHA256: hash}}, nil
	}, token)
}

// Disable locks a user out for good: the token stops working at once.
func (d *Directory) Disable(ctx context.Context, meta domain.Metadata, expected *eventstore.ExpectedRevision, name string) (Write, error) {
	return d.write(ctx, meta, expected, name, func() ([]any, error) {
		u, ok := d.users[name]
		if !ok {
			return nil, notFound(name)
		}
		if u.Disabled {
			return nil, domain.Rejectf(domain.Conflict, "user_disabled", "name", "user %q is already disabled", name)
		}
		return []any{userDisabled{Name: name}}, nil
	}, "")
}

// Bootstrap creates the user "admin" with the admin role when the directory
// has no user at all, so that a fresh installation can be administered. It
// returns the new token, or "" when users exist. Two instances starting at
// once on a shared store race on NoStream; the loser sees the winner's admin.
func (d *Directory) Bootstrap(ctx context.Context, meta domain.Metadata) (string, error) {
	if d.Len() > 0 {
		return "", nil
	}
	noStream := eventstore.NoStream()
	w, err := d.Create(ctx, meta, &noStream, "admin", domain.RoleAdmin)
	if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		return "", d.CatchUp(ctx)
	}
	if err != nil {
		return "", err
	}
	return w.Token, nil
}

// write decides events against the current index and appends them with the
// index's revision as the expected one, so that two writers cannot both
// create the same name. A lost race is retried against the new state —
// unless the caller named the revision it expects (an HTTP If-Match): then
// the mismatch is the caller's to resolve.
func (d *Directory) write(ctx context.Context, meta domain.Metadata, expected *eventstore.ExpectedRevision, name string, decide func() ([]any, error), token string) (Write, error) {
	if meta.RecordedAt.IsZero() {
		meta.RecordedAt = d.now()
	}
	meta.SchemaVersion = 1
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return Write{}, fmt.Errorf("users: metadata: %w", err)
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	for attempt := 1; ; attempt++ {
		d.mu.RLock()
		payloads, err := decide()
		rev := d.revision
		d.mu.RUnlock()
		if err != nil {
			return Write{}, err
		}
		want := eventstore.NoStream()
		if rev >= 0 {
			want = eventstore.Exact(uint64(rev))
		}
		if expected != nil {
			want = *expected
		}
		events, err := encode(payloads, metaJSON)
		if err != nil {
			return Write{}, err
		}
		res, err := d.store.Append(ctx, Stream, want, events...)
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) && expected == nil && attempt < writeAttempts {
			if err := d.CatchUp(ctx); err != nil {
				return Write{}, err
			}
			continue
		}
		if err != nil {
			return Write{}, fmt.Errorf("users: append: %w", err)
		}
		if err := d.CatchUp(ctx); err != nil {
			return Write{}, err
		}
		u, _ := d.Get(name)
		return Write{User: u, Token: token, Result: res}, nil
	}
}

func encode(payloads []any, meta json.RawMessage) ([]eventstore.EventData, error) {
	events := make([]eventstore.EventData, len(payloads))
	for i, p := range payloads {
		data, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("users: encode %T: %w", p, err)
		}
		var typ string
		switch p.(type) {
		case userCreated:
			typ = TypeUserCreated
		case tokenIssued:
			typ = TypeTokenIssued
		case userDisabled:
			typ = TypeUserDisabled
		default:
			return nil, fmt.Errorf("users: no event type for %T", p)
		}
		events[i] = eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: meta}
	}
	return events, nil
}

// newToken returns a fresh token and the hex SHA-256 the stream keeps.
func newToken() (token, hash string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("users: random token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:]), nil
}

// ValidateName checks a user name: 1..MaxNameBytes of lower-case letters,
// digits and "._-", starting with a letter. Names appear in audit trails and
// as JWT subjects, so they are kept plain.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameBytes {
		return domain.Reject("invalid_name", "name", "name must be 1 to %d characters", MaxNameBytes)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'):
		default:
			return domain.Reject("invalid_name", "name", "name %q: use lower-case letters, digits and . _ - , starting with a letter", clip(name))
		}
	}
	return nil
}

func notFound(name string) error {
	return domain.Rejectf(domain.NotFound, "user_not_found", "name", "no user named %q", clip(name))
}

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
