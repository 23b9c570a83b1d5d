package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// testAPI is a server on an in-memory Pebble store, with an admin and a
// client that checks every exchange against openapi.yaml. Tests of a new
// resource use it the same way: env := newTestAPI(t); env.do(...).
type testAPI struct {
	t      *testing.T
	srv    *Server
	store  eventstore.Store
	users  *users.Directory
	clock  *fakeClock
	logs   *syncBuffer
	admin  string // the admin's API token
	router routers.Router
	// offSpec lists paths that tests register outside the spec (to test
	// middleware); exchanges on them are not checked against it.
	offSpec map[string]bool
}

// The spec's HTML page is text to the validator.
func init() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder) }

type testOption func(*Config, *Deps)

func newTestAPI(t *testing.T, opts ...testOption) *testAPI {
	t.Helper()
	store, err := pebble.Open("", pebble.Options{InMemory: true, MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	metrics := NewMetrics()
	instrumented := metrics.InstrumentStore(store)
	dir, err := users.Open(context.Background(), instrumented, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := dir.Bootstrap(context.Background(), domain.Metadata{Actor: domain.Actor{UserID: "test", Role: domain.RoleSystem}})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: clockStart}
	logs := &syncBuffer{}
	cfg := Config{Version: "test", RateLimit: RateLimitConfig{PerSecond: 1000, Burst: 1000}}
	deps := Deps{
		Store: instrumented, Users: dir, Metrics: metrics, Now: clock.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(srv.spec)
	if err != nil {
		t.Fatal(err)
	}
	return &testAPI{
		t: t, srv: srv, store: store, users: dir, clock: clock, logs: logs, admin: admin,
		router: router, offSpec: map[string]bool{},
	}
}

// req builds a request. headers are name, value pairs.
func (e *testAPI) req(method, path, token, body string, headers ...string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// do serves r and checks the exchange against the spec: a response must be
// one the spec allows for the operation (status, headers, body), and a
// request the spec forbids must not succeed.
func (e *testAPI) do(r *http.Request) *httptest.ResponseRecorder {
	e.t.Helper()
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	if e.offSpec[r.URL.Path] {
		return w
	}

	check := r.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := e.router.FindRoute(check)
	if err != nil {
		// Not an operation of the spec: the server must not serve it.
		if w.Code < 400 {
			e.t.Errorf("%s %s: not in openapi.yaml (%v) but answered %d", r.Method, r.URL.Path, err, w.Code)
		}
		checkProblemShape(e.t, w)
		return w
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
	if reqErr := openapi3filter.ValidateRequest(context.Background(), in); reqErr != nil && w.Code < 400 {
		e.t.Errorf("%s %s: the spec forbids this request (%v) but the server answered %d", r.Method, r.URL.Path, reqErr, w.Code)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: w.Code, Header: w.Header(), Options: opts,
	}
	out.SetBodyBytes(w.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		e.t.Errorf("%s %s: response %d does not match openapi.yaml: %v\nbody: %s", r.Method, r.URL.Path, w.Code, err, clipBody(w.Body.Bytes()))
	}
	if w.Code >= 400 {
		checkProblemShape(e.t, w)
	}
	return w
}

// checkProblemShape holds every error to RFC 9457 and our additions.
func checkProblemShape(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != MediaTypeProblem {
		t.Errorf("error %d has Content-Type %q, want %s", w.Code, ct, MediaTypeProblem)
		return
	}
	var p Problem
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Errorf("problem body: %v: %s", err, w.Body.Bytes())
		return
	}
	switch {
	case p.Status != w.Code:
		t.Errorf("problem status %d, response status %d", p.Status, w.Code)
	case p.Type != ProblemTypeBase+p.Code || p.Code == "":
		t.Errorf("problem type %q, code %q", p.Type, p.Code)
	case p.Title == "":
		t.Errorf("problem %s has no title", p.Code)
	case p.Detail == "":
		t.Errorf("problem %s has no detail", p.Code)
	case p.RequestID == "" || p.RequestID != w.Header().Get(HeaderRequestID):
		t.Errorf("problem request_id %q, header %q", p.RequestID, w.Header().Get(HeaderRequestID))
	case p.Instance == "":
		t.Errorf("problem %s has no instance", p.Code)
	}
}

func problemOfResponse(t *testing.T, w *httptest.ResponseRecorder) Problem {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, w.Body.Bytes())
	}
	return p
}

// wantProblem asserts the response is the problem with this status and code.
func wantProblem(t *testing.T, w *httptest.ResponseRecorder, status int, code string) Problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, clipBody(w.Body.Bytes()))
	}
	p := problemOfResponse(t, w)
	if p.Code != code {
		t.Fatalf("problem code %q, want %q (detail %q)", p.Code, code, p.Detail)
	}
	return p
}

func decodeJSON[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body: %v: %s", err, w.Body.Bytes())
	}
	return v
}

func clipBody(b []byte) string {
	if len(b) > 500 {
		return string(b[:500]) + "…"
	}
	return string(b)
}

// The routes and the spec describe the same operations: a route missing
// from the spec is undocumented, an operation missing from the routes is a
// promise not kept. Authentication and idempotency are declared alike.
func TestRoutesAndSpecAgree(t *testing.T) {
	env := newTestAPI(t)
	spec := env.srv.spec
	param := regexp.MustCompile(`:([a-z_]+)`)
	served := map[string]bool{}
	for _, r := range env.srv.Routes() {
		path := param.ReplaceAllString(r.Path, "{$1}")
		served[r.Method+" "+path] = true
		item := spec.Paths.Value(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("route %s %s is not in openapi.yaml", r.Method, path)
			continue
		}
		op := item.GetOperation(r.Method)
		public := op.Security != nil && len(*op.Security) == 0
		if public != r.Public {
			t.Errorf("%s %s: public in the spec %v, in the route %v", r.Method, path, public, r.Public)
		}
		if !r.Public && op.Responses.Value("401") == nil {
			t.Errorf("%s %s: authenticated but declares no 401", r.Method, path)
		}
		if r.Method == http.MethodPost && !hasParam(op, "header", HeaderIdempotencyKey, true) {
			t.Errorf("%s %s: a POST must declare the required Idempotency-Key header", r.Method, path)
		}
	}
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("openapi.yaml has %s %s but no route serves it", method, path)
			}
		}
	}
}

func hasParam(op *openapi3.Operation, in, name string, required bool) bool {
	for _, p := range op.Parameters {
		if p.Value.In == in && strings.EqualFold(p.Value.Name, name) && p.Value.Required == required {
			return true
		}
	}
	return false
}

var clockStart = time.Date(2024, 1, 18, 9, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines returns the JSON log lines that have msg.
func (b *syncBuffer) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}
