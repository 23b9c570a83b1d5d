package api

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Idempotency keys (draft-ietf-httpapi-idempotency-key-header).
//
// Every POST must carry an Idempotency-Key: 1 to 255 printable ASCII
// characters the client chooses per operation (a UUID is ideal). The server
// keeps, per user and key, the request's fingerprint (method, path and
// query, If-Match, SHA-256 of the body) and the response it gave (status,
// body, and the headers in replayedHeaders). Then:
//
//   - the same key with the same request returns the first response again,
//     with "Idempotent-Replayed: true", and does nothing else;
//   - the same key with a different request is refused: 422
//     idempotency_key_reused;
//   - the same key while the first request is still running is refused at
//     once, not queued: 409 idempotency_key_in_use with Retry-After, so a
//     client's retry storm never piles up goroutines on the server;
//   - responses of 5xx are not kept: the failure may have been transient,
//     and the retry runs the command again (the ledger's own idempotency on
//     event IDs and command IDs keeps that safe).
//
// Records live in memory, for IdempotencyConfig.TTL (24h) at most, bounded
// in count and bytes with least-recently-used eviction: a restart or an
// eviction forgets them. Commands stay safe across a restart because the
// ledger records the key and the body's hash with the events it writes
// (domain.Metadata.CommandID/CommandHash; see CommandMetadata); what is lost
// is only the byte-for-byte replay of the first response.
//
// Responses are kept in memory as sent, including an API token returned by
// POST /v1/users: a replay must return it, since the first reply may have
// been lost. They are never written to disk.
const (
	HeaderIdempotencyKey      = "Idempotency-Key"
	HeaderIdempotentReplayed  = "Idempotent-Replayed"
	maxIdempotencyKeyBytes    = 255
	ctxCommand                = "ansinh.command"
	idempotencyInUseRetrySecs = "1"
)

// replayedHeaders are the response headers a replay repeats. Request-scoped
// ones (X-Request-ID, Date) belong to the new request.
var replayedHeaders = []string{
	echo.HeaderContentType, echo.HeaderLocation, "ETag", HeaderPosition, "Content-Location",
}

// IdempotencyConfig bounds the replay records.
type IdempotencyConfig struct {
	TTL              time.Duration // default 24h
	MaxEntries       int           // default 10,000
	MaxBytes         int64         // bodies of kept responses, in total; default 64 MiB
	ResponseMaxBytes int           // one kept response body; default 256 KiB
}

func (c IdempotencyConfig) withDefaults() (IdempotencyConfig, error) {
	if c.TTL == 0 {
		c.TTL = 24 * time.Hour
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = 10_000
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 64 << 20
	}
	if c.ResponseMaxBytes == 0 {
		c.ResponseMaxBytes = 256 << 10
	}
	switch {
	case c.TTL < time.Minute || c.TTL > 7*24*time.Hour:
		return c, fmt.Errorf("api: Idempotency.TTL %s, want 1m to 168h", c.TTL)
	case c.MaxEntries < 1 || c.MaxEntries > 10_000_000:
		return c, fmt.Errorf("api: Idempotency.MaxEntries %d, want 1 to 10,000,000", c.MaxEntries)
	case c.ResponseMaxBytes < 1 || int64(c.ResponseMaxBytes) > c.MaxBytes:
		return c, fmt.Errorf("api: Idempotency.ResponseMaxBytes %d, want 1 to MaxBytes (%d)", c.ResponseMaxBytes, c.MaxBytes)
	}
	return c, nil
}

// CommandKey identifies a POST by its Idempotency-Key and the SHA-256 of its
// body; the ledger stores both with the events the command writes.
type CommandKey struct {
	Key      string
	BodyHash string // hex SHA-256 of the request body
}

// CommandKeyOf is the command identity of a POST (zero for other methods).
func CommandKeyOf(c echo.Context) CommandKey {
	cmd, _ := c.Get(ctxCommand).(CommandKey)
	return cmd
}

type idemKey struct{ user, key string }

type fingerprint struct {
	method, target, ifMatch string
	body                    [sha256.Size]byte
}

type recordedResponse struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool // the body was over ResponseMaxBytes and was not kept
}

type idemEntry struct {
	key     idemKey
	fp      fingerprint
	expires time.Time
	done    bool
	resp    recordedResponse // set once, when done; read-only after
}

type idempotencyStore struct {
	cfg     IdempotencyConfig
	mu      sync.Mutex
	entries map[idemKey]*list.Element // of *idemEntry
	lru     list.List                 // front: most recently used
	bytes   int64
}

func newIdempotencyStore(cfg IdempotencyConfig) *idempotencyStore {
	return &idempotencyStore{cfg: cfg, entries: make(map[idemKey]*list.Element)}
}

type idemOutcome int

const (
	idemStarted  idemOutcome = iota // first request: run it
	idemReplay                      // done before: replay
	idemMismatch                    // the key was used for another request
	idemInFlight                    // the first request is still running
)

// begin looks the key up and, when it is new, claims it for this request.
func (s *idempotencyStore) begin(k idemKey, fp fingerprint, now time.Time) (*idemEntry, idemOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpired(now)
	if el, ok := s.entries[k]; ok && now.After(el.Value.(*idemEntry).expires) {
		s.remove(el)
	}
	if el, ok := s.entries[k]; ok {
		e := el.Value.(*idemEntry)
		switch {
		case e.fp != fp:
			return e, idemMismatch
		case !e.done:
			return e, idemInFlight
		}
		s.lru.MoveToFront(el)
		return e, idemReplay
	}
	for s.lru.Len() >= s.cfg.MaxEntries {
		s.remove(s.lru.Back())
	}
	e := &idemEntry{key: k, fp: fp, expires: now.Add(s.cfg.TTL)}
	s.entries[k] = s.lru.PushFront(e)
	return e, idemStarted
}

// complete records the response of a claimed key.
func (s *idempotencyStore) complete(e *idemEntry, resp recordedResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[e.key]
	if !ok || el.Value != e {
		return // evicted while it ran; nothing to replay, the ledger still dedups
	}
	e.resp = resp
	e.done = true
	s.bytes += int64(len(resp.body))
	// Evict the least recently used finished records until the bodies fit.
	for el := s.lru.Back(); s.bytes > s.cfg.MaxBytes && el != nil; {
		prev := el.Prev()
		if el.Value.(*idemEntry).done {
			s.remove(el)
		}
		el = prev
	}
}

// abandon forgets a claimed key whose request failed (5xx or panic), so that
// a retry runs it again.
func (s *idempotencyStore) abandon(e *idemEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.entries[e.key]; ok && el.Value == e {
		s.remove(el)
	}
}

func (s *idempotencyStore) dropExpired(now time.Time) {
	// Entries are not in expiry order (a replay moves one to the front), so
	// this drops what has expired at the back and leaves the rest to begin,
	// which checks the expiry of the key it finds; the count bound holds
	// regardless.
	for el := s.lru.Back(); el != nil && now.After(el.Value.(*idemEntry).expires); el = s.lru.Back() {
		s.remove(el)
	}
}

func (s *idempotencyStore) remove(el *list.Element) {
	e := el.Value.(*idemEntry)
	s.lru.Remove(el)
	delete(s.entries, e.key)
	s.bytes -= int64(len(e.resp.body))
}

// idempotent is the middleware of every POST route; see the package-level
// comment above for the rules.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		key, err := parseIdempotencyKey(req.Header.Values(HeaderIdempotencyKey))
		if err != nil {
			return err
		}
		body, err := io.ReadAll(req.Body) // bounded by bodyLimit
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return err
			}
			return NewProblem(http.StatusBadRequest, "bad_request", "the request body could not be read").WithCause(err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		fp := fingerprint{
			method: req.Method, target: req.URL.RequestURI(), ifMatch: req.Header.Get("If-Match"),
			body: sha256.Sum256(body),
		}
		c.Set(ctxCommand, CommandKey{Key: key, BodyHash: hex.EncodeToString(fp.body[:])})

		k := idemKey{user: ActorOf(c).UserID, key: key}
		e, outcome := s.idempotency.begin(k, fp, s.now())
		switch outcome {
		case idemMismatch:
			return NewProblem(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was used for a different request (method, address, If-Match or body differ); use a new key for a new operation").
				WithField("Idempotency-Key", "already used for another request")
		case idemInFlight:
			return NewProblem(http.StatusConflict, "idempotency_key_in_use",
				"a request with this Idempotency-Key is still running; retry after it finishes").
				WithHeader("Retry-After", idempotencyInUseRetrySecs)
		case idemReplay:
			return replay(c, e.resp)
		}

		finished := false
		defer func() {
			if !finished { // a panic: let the retry run again
				s.idempotency.abandon(e)
			}
		}()
		rec := &recordingWriter{ResponseWriter: c.Response().Writer, max: s.cfg.Idempotency.ResponseMaxBytes}
		c.Response().Writer = rec
		err = next(c)
		if err != nil {
			c.Error(err) // render now, so that the problem is what gets kept
		}
		c.Response().Writer = rec.ResponseWriter
		finished = true
		status := c.Response().Status
		if status >= 500 {
			s.idempotency.abandon(e)
			return nil
		}
		resp := recordedResponse{status: status, header: http.Header{}, body: rec.body, tooLarge: rec.overflow}
		for _, h := range replayedHeaders {
			if v := c.Response().Header().Values(h); len(v) > 0 {
				// Canonical key, so the replay is found by Header.Get.
				resp.header[http.CanonicalHeaderKey(h)] = v
			}
		}
		if resp.tooLarge {
			resp.body = nil
		}
		s.idempotency.complete(e, resp)
		return nil
	}
}

func replay(c echo.Context, resp recordedResponse) error {
	if resp.tooLarge {
		p := Problemf(http.StatusConflict, "idempotency_response_lost",
			"a request with this Idempotency-Key already succeeded with status %d, but its response was too large to keep; read the resource instead of retrying",
			resp.status)
		if loc := resp.header.Get(echo.HeaderLocation); loc != "" {
			p.WithHeader(echo.HeaderLocation, loc)
		}
		return p
	}
	h := c.Response().Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set(HeaderIdempotentReplayed, "true")
	c.Response().WriteHeader(resp.status)
	_, err := c.Response().Write(resp.body)
	return err
}

// parseIdempotencyKey checks the header: exactly one, 1 to 255 printable
// ASCII characters. The key is taken as sent: a structured-field quoted
// string ("abc") is a different key from abc.
func parseIdempotencyKey(values []string) (string, error) {
	if len(values) == 0 {
		return "", NewProblem(http.StatusBadRequest, "idempotency_key_required",
			"every POST needs an Idempotency-Key header: a value you choose per operation (a new UUID) and re-send unchanged when you retry").
			WithField("Idempotency-Key", "missing")
	}
	if len(values) > 1 {
		return "", NewProblem(http.StatusBadRequest, "idempotency_key_invalid", "send one Idempotency-Key header, not several").
			WithField("Idempotency-Key", "sent more than once")
	}
	key := values[0]
	if len(key) == 0 || len(key) > maxIdempotencyKeyBytes {
		return "", Problemf(http.StatusBadRequest, "idempotency_key_invalid", "the Idempotency-Key must be 1 to %d characters", maxIdempotencyKeyBytes).
			WithField("Idempotency-Key", "wrong length")
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", NewProblem(http.StatusBadRequest, "idempotency_key_invalid", "the Idempotency-Key may hold only printable ASCII characters").
				WithField("Idempotency-Key", "character "+strconv.Itoa(i)+" is not printable ASCII")
		}
	}
	return key, nil
}

// recordingWriter passes a response through and keeps a copy of its body,
// up to max bytes.
type recordingWriter struct {
	http.ResponseWriter
	max      int
	body     []byte
	overflow bool
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if !w.overflow {
		if len(w.body)+len(b) > w.max {
			w.overflow = true
			w.body = nil
		} else {
			w.body = append(w.body, b...)
		}
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (Flush).
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
