package api

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// counterRoute is a POST that counts its runs and answers with the count,
// so that a replay is told from a second run.
func counterRoute(env *testAPI, path string, status int) *atomic.Int32 {
	var runs atomic.Int32
	env.route(Route{Method: http.MethodPost, Path: path, Handler: func(c echo.Context) error {
		var body map[string]any
		if err := Decode(c, &body); err != nil {
			return err
		}
		n := runs.Add(1)
		if status >= 400 {
			return Problemf(status, "test_failure", "run %d failed", n)
		}
		c.Response().Header().Set(HeaderPosition, fmt.Sprintf("%d/%d", n, n))
		c.Response().Header().Set("X-Not-Replayed", "x")
		return c.JSON(status, map[string]any{"run": n})
	}})
	return &runs
}

func TestIdempotentReplay(t *testing.T) {
	env := newTestAPI(t)
	runs := counterRoute(env, "/test/cmd", http.StatusCreated)
	send := func(key, body string) *http.Request {
		return env.req(http.MethodPost, "/test/cmd", env.admin, body, HeaderIdempotencyKey, key)
	}

	first := env.do(send("k-1", `{"a":1}`))
	if first.Code != http.StatusCreated || first.Header().Get(HeaderIdempotentReplayed) != "" {
		t.Fatalf("first: %d, replayed %q", first.Code, first.Header().Get(HeaderIdempotentReplayed))
	}
	again := env.do(send("k-1", `{"a":1}`))
	if again.Code != http.StatusCreated || again.Body.String() != first.Body.String() {
		t.Fatalf("replay: %d %s, want %d %s", again.Code, again.Body, first.Code, first.Body)
	}
	if again.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Fatal("replay lacks Idempotent-Replayed: true")
	}
	if again.Header().Get(HeaderPosition) != "1/1" || again.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("replayed headers %v", again.Header())
	}
	if again.Header().Get("X-Not-Replayed") != "" {
		t.Fatal("a header outside the replayed set was replayed")
	}
	if again.Header().Get(HeaderRequestID) == first.Header().Get(HeaderRequestID) {
		t.Fatal("the replay carries the first request's ID")
	}
	if runs.Load() != 1 {
		t.Fatalf("the handler ran %d times, want 1", runs.Load())
	}

	// The same key with another body, path or If-Match is refused.
	for name, r := range map[string]*http.Request{
		"body":     send("k-1", `{"a":2}`),
		"path":     env.req(http.MethodPost, "/test/cmd?x=1", env.admin, `{"a":1}`, HeaderIdempotencyKey, "k-1"),
		"if-match": env.req(http.MethodPost, "/test/cmd", env.admin, `{"a":1}`, HeaderIdempotencyKey, "k-1", "If-Match", `"3"`),
	} {
		p := wantProblem(t, env.do(r), http.StatusUnprocessableEntity, "idempotency_key_reused")
		if len(p.Errors) != 1 || p.Errors[0].Field != HeaderIdempotencyKey {
			t.Fatalf("%s: errors %+v", name, p.Errors)
		}
	}
	// Keys are per user: another user's identical key is a new command.
	other := env.createUserDirect("lan", "registrar")
	if w := env.do(env.req(http.MethodPost, "/test/cmd", other, `{"a":1}`, HeaderIdempotencyKey, "k-1")); w.Code != 201 || w.Header().Get(HeaderIdempotentReplayed) != "" {
		t.Fatalf("another user's key: %d replayed=%q", w.Code, w.Header().Get(HeaderIdempotentReplayed))
	}
	if runs.Load() != 2 {
		t.Fatalf("the handler ran %d times, want 2", runs.Load())
	}
}

func TestIdempotencyKeyRules(t *testing.T) {
	env := newTestAPI(t)
	runs := counterRoute(env, "/test/cmd", http.StatusOK)
	tests := []struct {
		name string
		keys []string
		code string
	}{
		{"missing", nil, "idempotency_key_required"},
		{"empty", []string{""}, "idempotency_key_invalid"},
		{"too long", []string{strings.Repeat("k", 256)}, "idempotency_key_invalid"},
		{"control character", []string{"a\tb"}, "idempotency_key_invalid"},
		{"non-ASCII", []string{"khóa"}, "idempotency_key_invalid"},
		{"twice", []string{"a", "b"}, "idempotency_key_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.req(http.MethodPost, "/test/cmd", env.admin, `{}`)
			if tt.keys != nil {
				r.Header[HeaderIdempotencyKey] = tt.keys
			}
			wantProblem(t, env.do(r), http.StatusBadRequest, tt.code)
		})
	}
	if runs.Load() != 0 {
		t.Fatalf("the handler ran %d times", runs.Load())
	}
	for _, ok := range []string{"k", strings.Repeat("k", 255), `"quoted sf-string"`, "with space ~!"} {
		if w := env.do(env.req(http.MethodPost, "/test/cmd", env.admin, `{}`, HeaderIdempotencyKey, ok)); w.Code != 200 {
			t.Errorf("key %q: %d %s", ok, w.Code, w.Body)
		}
	}
}

func TestIdempotencyKeepsRejectionsButNotServerErrors(t *testing.T) {
	env := newTestAPI(t)
	rejected := counterRoute(env, "/test/rejected", http.StatusConflict)
	failed := counterRoute(env, "/test/failed", http.StatusServiceUnavailable)
	for range 2 {
		env.do(env.req(http.MethodPost, "/test/rejected", env.admin, `{}`, HeaderIdempotencyKey, "r"))
		env.do(env.req(http.MethodPost, "/test/failed", env.admin, `{}`, HeaderIdempotencyKey, "f"))
	}
	if rejected.Load() != 1 {
		t.Errorf("a 409 ran %d times; a rejection is an answer and is replayed", rejected.Load())
	}
	if failed.Load() != 2 {
		t.Errorf("a 503 ran %d times; a server failure must let the retry run", failed.Load())
	}
	// A malformed body is answered (and kept) like any rejection.
	w := env.do(env.req(http.MethodPost, "/test/rejected", env.admin, `{"a":`, HeaderIdempotencyKey, "bad-json"))
	wantProblem(t, w, http.StatusBadRequest, "invalid_json")
	w = env.do(env.req(http.MethodPost, "/test/rejected", env.admin, `{"a":`, HeaderIdempotencyKey, "bad-json"))
	wantProblem(t, w, http.StatusBadRequest, "invalid_json")
	if w.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Error("the replayed 400 lacks Idempotent-Replayed")
	}
}

func TestIdempotencyKeyInUse(t *testing.T) {
	env := newTestAPI(t)
	entered, release := make(chan struct{}), make(chan struct{})
	env.route(Route{Method: http.MethodPost, Path: "/test/slow", Handler: func(c echo.Context) error {
		close(entered)
		<-release
		return c.JSON(http.StatusOK, map[string]string{"done": "yes"})
	}})
	var wg sync.WaitGroup
	var firstCode int
	wg.Go(func() {
		firstCode = env.do(env.req(http.MethodPost, "/test/slow", env.admin, `{}`, HeaderIdempotencyKey, "same")).Code
	})
	<-entered
	w := env.do(env.req(http.MethodPost, "/test/slow", env.admin, `{}`, HeaderIdempotencyKey, "same"))
	wantProblem(t, w, http.StatusConflict, "idempotency_key_in_use")
	if w.Header().Get("Retry-After") == "" {
		t.Error("409 in use lacks Retry-After")
	}
	close(release)
	wg.Wait()
	if firstCode != 200 {
		t.Fatalf("first request: %d", firstCode)
	}
	if w := env.do(env.req(http.MethodPost, "/test/slow", env.admin, `{}`, HeaderIdempotencyKey, "same")); w.Code != 200 || w.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Fatalf("after the first finished: %d, replayed %q", w.Code, w.Header().Get(HeaderIdempotentReplayed))
	}
}

func TestIdempotencyExpiryAndBounds(t *testing.T) {
	env := newTestAPI(t, func(c *Config, _ *Deps) {
		c.Idempotency = IdempotencyConfig{TTL: time.Hour, MaxEntries: 2, ResponseMaxBytes: 64, MaxBytes: 1 << 10}
	})
	runs := counterRoute(env, "/test/cmd", http.StatusOK)
	post := func(key string) *http.Request {
		return env.req(http.MethodPost, "/test/cmd", env.admin, `{}`, HeaderIdempotencyKey, key)
	}
	env.do(post("a"))
	env.clock.Advance(time.Hour + time.Second)
	if w := env.do(post("a")); w.Header().Get(HeaderIdempotentReplayed) != "" || runs.Load() != 2 {
		t.Fatalf("after the TTL the key was replayed (runs %d)", runs.Load())
	}
	// Three keys in a store of two: the least recently used is forgotten.
	env.do(post("b"))
	env.do(post("a")) // a replay: a is now the most recently used
	env.do(post("c"))
	if runs.Load() != 4 {
		t.Fatalf("runs %d, want 4", runs.Load())
	}
	env.do(post("a"))
	if runs.Load() != 4 {
		t.Fatal("a, recently used, was evicted")
	}
	env.do(post("b"))
	if runs.Load() != 5 {
		t.Fatal("b, least recently used, was not evicted")
	}
}

func TestIdempotencyResponseTooLargeToKeep(t *testing.T) {
	env := newTestAPI(t, func(c *Config, _ *Deps) {
		c.Idempotency = IdempotencyConfig{ResponseMaxBytes: 16, MaxBytes: 1 << 10}
	})
	var runs atomic.Int32
	env.route(Route{Method: http.MethodPost, Path: "/test/big", Handler: func(c echo.Context) error {
		runs.Add(1)
		c.Response().Header().Set(echo.HeaderLocation, "/test/big/1")
		return c.JSON(http.StatusCreated, map[string]string{"payload": strings.Repeat("x", 100)})
	}})
	first := env.do(env.req(http.MethodPost, "/test/big", env.admin, `{}`, HeaderIdempotencyKey, "big"))
	if first.Code != 201 || first.Body.Len() < 100 {
		t.Fatalf("first: %d, %d bytes (the client must get the whole body)", first.Code, first.Body.Len())
	}
	w := env.do(env.req(http.MethodPost, "/test/big", env.admin, `{}`, HeaderIdempotencyKey, "big"))
	wantProblem(t, w, http.StatusConflict, "idempotency_response_lost")
	if w.Header().Get(echo.HeaderLocation) != "/test/big/1" || runs.Load() != 1 {
		t.Fatalf("Location %q, runs %d", w.Header().Get(echo.HeaderLocation), runs.Load())
	}
}

func TestIdempotencyStoreByteBound(t *testing.T) {
	s := newIdempotencyStore(IdempotencyConfig{TTL: time.Hour, MaxEntries: 100, MaxBytes: 10, ResponseMaxBytes: 10})
	now := clockStart
	for i := range 5 {
		e, outcome := s.begin(idemKey{"u", fmt.Sprint(i)}, fingerprint{}, now)
		if outcome != idemStarted {
			t.Fatalf("key %d: outcome %d", i, outcome)
		}
		s.complete(e, recordedResponse{status: 200, body: []byte("0123")})
		if s.bytes > 10 {
			t.Fatalf("after %d responses %d bytes are kept, bound 10", i+1, s.bytes)
		}
	}
	if s.lru.Len() != 2 {
		t.Fatalf("%d responses kept, want the 2 newest", s.lru.Len())
	}
	if _, outcome := s.begin(idemKey{"u", "4"}, fingerprint{}, now); outcome != idemReplay {
		t.Fatal("the newest response was evicted")
	}
}
