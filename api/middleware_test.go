package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/labstack/echo/v4"
)

// route registers a test-only route (not in the spec) on env's server.
func (e *testAPI) route(r Route) {
	e.t.Helper()
	if r.Roles == nil && !r.Public {
		r.Roles = AllRoles
	}
	e.srv.handle(r)
	e.offSpec[strings.Split(r.Path, ":")[0]] = true
}

func TestProblemMapping(t *testing.T) {
	wrong := &eventstore.WrongExpectedRevisionError{Stream: "s", Expected: eventstore.Exact(1), Actual: 4}
	tests := []struct {
		name    string
		err     error
		ifMatch bool
		status  int
		code    string
		header  string // a header the problem must set, "name: value"
	}{
		{"invalid", domain.Reject("amount_fraction", "amount", "whole dong only"), false, 422, "amount_fraction", ""},
		{"conflict", domain.Rejectf(domain.Conflict, "already_approved", "", "approved"), false, 409, "already_approved", ""},
		{"not found", domain.Rejectf(domain.NotFound, "no_run", "", "no run"), false, 404, "no_run", ""},
		{"forbidden", domain.Rejectf(domain.Forbidden, "self_approval", "", "not yours"), false, 403, "self_approval", ""},
		{"wrapped rule", fmt.Errorf("ledger: %w", domain.Reject("x", "", "y")), false, 422, "x", ""},
		{"unknown kind", &domain.RuleError{Kind: 99, Code: "odd", Message: "?"}, false, 500, "internal", ""},
		{"revision with If-Match", fmt.Errorf("append: %w", wrong), true, 412, "precondition_failed", `ETag: "4"`},
		{"revision without If-Match", wrong, false, 409, "concurrent_write", `ETag: "4"`},
		{"body too large", &http.MaxBytesError{Limit: 10}, false, 413, "body_too_large", ""},
		{"echo 404", echo.ErrNotFound, false, 404, "not_found", ""},
		{"echo 405", echo.ErrMethodNotAllowed, false, 405, "method_not_allowed", ""},
		{"echo 413", echo.ErrStatusRequestEntityTooLarge, false, 413, "body_too_large", ""},
		{"echo 400", echo.NewHTTPError(400, "bad thing"), false, 400, "bad_request", ""},
		{"echo 500", echo.NewHTTPError(500, "secret detail"), false, 500, "internal", ""},
		{"stream not found", fmt.Errorf("load: %w", eventstore.ErrStreamNotFound), false, 404, "not_found", ""},
		{"store closed", eventstore.ErrClosed, false, 503, "unavailable", "Retry-After: 5"},
		{"deadline", context.DeadlineExceeded, false, 503, "timeout", "Retry-After: 1"},
		{"unknown", errors.New("disk on fire at /var/lib/x"), false, 500, "internal", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := echo.New()
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tt.ifMatch {
				r.Header.Set("If-Match", `"1"`)
			}
			c := e.NewContext(r, httptest.NewRecorder())
			p := problemOf(tt.err, c)
			if p.Status != tt.status || p.Code != tt.code {
				t.Fatalf("problem %d %s, want %d %s", p.Status, p.Code, tt.status, tt.code)
			}
			if p.Status == 500 && p.Detail != genericDetail {
				t.Fatalf("500 detail %q leaks the cause", p.Detail)
			}
			if tt.header != "" {
				k, v, _ := strings.Cut(tt.header, ": ")
				if got := p.header.Get(k); got != v {
					t.Fatalf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestRuleErrorFieldBecomesFieldError(t *testing.T) {
	env := newTestAPI(t)
	env.route(Route{Method: http.MethodGet, Path: "/test/rule", Handler: func(c echo.Context) error {
		return domain.Reject("citizen_id_invalid", "citizen_id", "a citizen ID has 12 digits")
	}})
	p := wantProblem(t, env.do(env.req(http.MethodGet, "/test/rule", env.admin, "")), 422, "citizen_id_invalid")
	if len(p.Errors) != 1 || p.Errors[0] != (FieldError{Field: "citizen_id", Message: "a citizen ID has 12 digits"}) {
		t.Fatalf("errors %+v", p.Errors)
	}
	if p.Type != "https://ansinh.dev/problems/citizen_id_invalid" || p.Instance != "/test/rule" {
		t.Fatalf("type %q instance %q", p.Type, p.Instance)
	}
}

func TestUnknownRouteAndMethodAreProblems(t *testing.T) {
	env := newTestAPI(t)
	wantProblem(t, env.do(env.req(http.MethodGet, "/v1/nothing-here", env.admin, "")), 404, "not_found")
	// Unknown routes are 404 without credentials too: the router answers
	// before authentication.
	wantProblem(t, env.do(env.req(http.MethodGet, "/v2/whatever", "", "")), 404, "not_found")
	w := env.do(env.req(http.MethodDelete, "/v1/me", env.admin, ""))
	wantProblem(t, w, 405, "method_not_allowed")
	if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") {
		t.Fatalf("Allow %q", allow)
	}
}

func TestInternalErrorIsGenericAndLoggedWithRequestID(t *testing.T) {
	env := newTestAPI(t)
	env.route(Route{Method: http.MethodGet, Path: "/test/boom", Handler: func(c echo.Context) error {
		return fmt.Errorf("projection: %w", errors.New("secret table xyz is corrupt"))
	}})
	env.route(Route{Method: http.MethodGet, Path: "/test/panic", Handler: func(c echo.Context) error {
		panic("nil map somewhere")
	}})
	for _, path := range []string{"/test/boom", "/test/panic"} {
		w := env.do(env.req(http.MethodGet, path, env.admin, "", HeaderRequestID, "trace-"+path[6:]))
		p := wantProblem(t, w, 500, "internal")
		if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "nil map") {
			t.Fatalf("%s: the response leaks the cause: %s", path, w.Body)
		}
		if p.RequestID != "trace-"+path[6:] {
			t.Fatalf("%s: request_id %q", path, p.RequestID)
		}
	}
	lines := env.logs.logLines(t, "internal error")
	if len(lines) != 2 {
		t.Fatalf("%d internal error log lines, want 2: %s", len(lines), env.logs)
	}
	if lines[0]["request_id"] != "trace-boom" || !strings.Contains(fmt.Sprint(lines[0]["err"]), "secret table xyz") {
		t.Fatalf("log line %v lacks the request ID or the cause", lines[0])
	}
	if !strings.Contains(fmt.Sprint(lines[1]["err"]), "nil map somewhere") {
		t.Fatalf("panic log line %v", lines[1])
	}
}

func TestRequestID(t *testing.T) {
	env := newTestAPI(t)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"client's kept", "abc-123.X:y_z", true},
		{"absent", "", false},
		{"with a space", "abc 123", false},
		{"newline injection", "abc\r\nSet-Cookie: x", false},
		{"too long", strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.req(http.MethodGet, "/healthz", "", "")
			if tt.sent != "" {
				r.Header[http.CanonicalHeaderKey(HeaderRequestID)] = []string{tt.sent}
			}
			got := env.do(r).Header().Get(HeaderRequestID)
			if tt.kept && got != tt.sent {
				t.Fatalf("request ID %q, want the client's %q", got, tt.sent)
			}
			if !tt.kept && (got == "" || got == tt.sent || !validRequestID(got)) {
				t.Fatalf("request ID %q, want a generated one", got)
			}
		})
	}
	// Every log line of a request carries its ID.
	env.do(env.req(http.MethodGet, "/v1/me", env.admin, "", HeaderRequestID, "rid-log"))
	var found bool
	for _, l := range env.logs.logLines(t, "request") {
		if l["request_id"] == "rid-log" {
			found = true
			if l["user"] != "admin" || l["route"] != "/v1/me" || l["status"] != float64(200) {
				t.Fatalf("access log line %v", l)
			}
		}
	}
	if !found {
		t.Fatal("no access log line with the request ID")
	}
}

type decodeTarget struct {
	Name   string       `json:"name"`
	Count  int          `json:"count"`
	Amount domain.Money `json:"amount"`
}

func TestDecodeIsStrict(t *testing.T) {
	env := newTestAPI(t)
	env.route(Route{Method: http.MethodPut, Path: "/test/decode", Handler: func(c echo.Context) error {
		var v decodeTarget
		if err := Decode(c, &v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	}})
	tests := []struct {
		name, body, contentType string
		status                  int
		code, field             string
	}{
		{"ok", `{"name":"a","count":2,"amount":{"amount":"1250000","currency":"VND"}}`, "", 200, "", ""},
		{"ok with charset", `{"name":"a"}`, "application/json; charset=utf-8", 200, "", ""},
		{"unknown field", `{"name":"a","cuont":2}`, "", 400, "invalid_json", "cuont"},
		{"two values", `{"name":"a"}{"name":"b"}`, "", 400, "invalid_json", ""},
		{"trailing garbage", `{"name":"a"} x`, "", 400, "invalid_json", ""},
		{"syntax", `{"name":}`, "", 400, "invalid_json", ""},
		{"truncated", `{"name":"a"`, "", 400, "invalid_json", ""},
		{"empty", ``, "", 400, "invalid_json", ""},
		{"wrong type", `{"count":"two"}`, "", 400, "invalid_json", "count"},
		{"float amount", `{"amount":{"amount":"1.5","currency":"VND"}}`, "", 400, "invalid_json", ""},
		{"not json", `name=a`, "application/x-www-form-urlencoded", 415, "unsupported_media_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.req(http.MethodPut, "/test/decode", env.admin, tt.body)
			if tt.body == "" {
				r = env.req(http.MethodPut, "/test/decode", env.admin, "")
				r.Header.Set("Content-Type", "application/json")
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			w := env.do(r)
			if tt.status == 200 {
				if w.Code != 200 {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return
			}
			p := wantProblem(t, w, tt.status, tt.code)
			if tt.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tt.field) {
				t.Fatalf("errors %+v, want field %q", p.Errors, tt.field)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	env := newTestAPI(t, func(c *Config, _ *Deps) { c.BodyMaxBytes = 64 })
	echoBody := func(c echo.Context) error {
		var v map[string]string
		if err := Decode(c, &v); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	}
	env.route(Route{Method: http.MethodPut, Path: "/test/small", Handler: echoBody})
	env.route(Route{Method: http.MethodPut, Path: "/test/upload", Handler: echoBody, BodyMaxBytes: 1024})
	big := `{"a":"` + strings.Repeat("x", 200) + `"}`

	// Declared too large: refused before reading.
	wantProblem(t, env.do(env.req(http.MethodPut, "/test/small", env.admin, big)), 413, "body_too_large")
	// Chunked (no Content-Length): refused while reading.
	r := env.req(http.MethodPut, "/test/small", env.admin, big)
	r.ContentLength = -1
	r.Body = io.NopCloser(strings.NewReader(big))
	wantProblem(t, env.do(r), 413, "body_too_large")
	// The route's own limit.
	if w := env.do(env.req(http.MethodPut, "/test/upload", env.admin, big)); w.Code != 200 {
		t.Fatalf("upload route: %d %s", w.Code, w.Body)
	}
	// A POST is limited before its body is hashed for idempotency.
	wantProblem(t, env.do(env.req(http.MethodPost, "/v1/users", env.admin, big, HeaderIdempotencyKey, "big")), 413, "body_too_large")
}

func TestIfMatch(t *testing.T) {
	tests := []struct {
		header string
		ok     bool
		want   eventstore.ExpectedRevision
		code   string
	}{
		{"", false, eventstore.ExpectedRevision{}, ""},
		{`"0"`, true, eventstore.Exact(0), ""},
		{`"42"`, true, eventstore.Exact(42), ""},
		{` "42" `, true, eventstore.Exact(42), ""},
		{`*`, true, eventstore.StreamExists(), ""},
		{`42`, false, eventstore.ExpectedRevision{}, "precondition_invalid"},
		{`"-1"`, false, eventstore.ExpectedRevision{}, "precondition_invalid"},
		{`"abc"`, false, eventstore.ExpectedRevision{}, "precondition_invalid"},
		{`""`, false, eventstore.ExpectedRevision{}, "precondition_invalid"},
		{`"99999999999999999999999"`, false, eventstore.ExpectedRevision{}, "precondition_invalid"},
		{`W/"42"`, false, eventstore.ExpectedRevision{}, "weak_etag_in_if_match"},
		{`"1", "2"`, false, eventstore.ExpectedRevision{}, "too_many_entity_tags"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tt.header != "" {
				r.Header.Set("If-Match", tt.header)
			}
			got, ok, err := IfMatch(echo.New().NewContext(r, httptest.NewRecorder()))
			if tt.code != "" {
				var p *Problem
				if !errors.As(err, &p) || p.Code != tt.code || p.Status != 400 {
					t.Fatalf("err = %v, want a 400 %s", err, tt.code)
				}
				return
			}
			if err != nil || ok != tt.ok || got != tt.want {
				t.Fatalf("IfMatch = %v, %v, %v; want %v, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
	if got := ETag(7); got != `"7"` {
		t.Fatalf("ETag(7) = %s", got)
	}
	if rev, err := ParseETag(ETag(123)); err != nil || rev != 123 {
		t.Fatalf("round trip: %d, %v", rev, err)
	}
}

func TestRequiresCredentials(t *testing.T) {
	env := newTestAPI(t)
	tests := []struct {
		name, header string
	}{
		{"none", ""},
		{"basic", "Basic YWRtaW46YWRtaW4="},
		{"bearer without token", "Bearer "},
		{"unknown token", "Bearer ans_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"a JWT, none configured", "Bearer eyJhbGciOiJFZERTQSJ9.e30.sig"},
		{"oversize", "Bearer ans_" + strings.Repeat("a", 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.req(http.MethodGet, "/v1/me", "", "")
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := env.do(r)
			wantProblem(t, w, 401, "unauthorized")
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="ansinh"`) {
				t.Fatalf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// The open endpoints need nothing.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs"} {
		if w := env.do(env.req(http.MethodGet, path, "", "")); w.Code != 200 {
			t.Errorf("%s without credentials: %d", path, w.Code)
		}
	}
}

func TestRouteDeclarationsAreChecked(t *testing.T) {
	env := newTestAPI(t)
	for name, r := range map[string]Route{
		"no roles":     {Method: http.MethodGet, Path: "/test/open-by-mistake", Handler: func(echo.Context) error { return nil }},
		"system role":  {Method: http.MethodGet, Path: "/test/sys", Handler: func(echo.Context) error { return nil }, Roles: []domain.Role{domain.RoleSystem}},
		"unknown role": {Method: http.MethodGet, Path: "/test/boss", Handler: func(echo.Context) error { return nil }, Roles: []domain.Role{"boss"}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("handle accepted the route")
				}
			}()
			env.srv.handle(r)
		})
	}
}

func TestRateLimitPerUser(t *testing.T) {
	env := newTestAPI(t, func(c *Config, _ *Deps) { c.RateLimit = RateLimitConfig{PerSecond: 2, Burst: 3} })
	other := env.createUserDirect("lan", domain.RoleRegistrar)
	me := func(token string) *httptest.ResponseRecorder {
		return env.do(env.req(http.MethodGet, "/v1/me", token, ""))
	}
	for i := range 3 {
		if w := me(env.admin); w.Code != 200 {
			t.Fatalf("request %d within the burst: %d", i, w.Code)
		}
	}
	w := me(env.admin)
	wantProblem(t, w, 429, "rate_limited")
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q, want 1 (a token every 0.5 s)", got)
	}
	// Another user has a bucket of their own.
	if w := me(other); w.Code != 200 {
		t.Fatalf("another user: %d", w.Code)
	}
	// Half a second gives one token back, and only one.
	env.clock.Advance(500_000_000)
	if w := me(env.admin); w.Code != 200 {
		t.Fatalf("after refill: %d", w.Code)
	}
	wantProblem(t, me(env.admin), 429, "rate_limited")
	// Open endpoints are not limited.
	for range 5 {
		if w := env.do(env.req(http.MethodGet, "/healthz", "", "")); w.Code != 200 {
			t.Fatalf("healthz: %d", w.Code)
		}
	}
}

func TestRateLimiterBoundsItsUsers(t *testing.T) {
	l := newRateLimiter(RateLimitConfig{PerSecond: 1, Burst: 1, MaxUsers: 2})
	now := clockStart
	if ok, _ := l.take("a", now); !ok {
		t.Fatal("a's first request refused")
	}
	if ok, _ := l.take("a", now); ok {
		t.Fatal("a's second request passed")
	}
	l.take("b", now)
	l.take("c", now) // evicts a, the least recently seen
	if len(l.buckets) != 2 || l.lru.Len() != 2 {
		t.Fatalf("%d buckets, want 2", len(l.buckets))
	}
	if ok, _ := l.take("a", now); !ok {
		t.Fatal("a was not evicted (its bucket is still empty)")
	}
}

// createUserDirect adds a user without going through the API.
func (e *testAPI) createUserDirect(name string, role domain.Role) string {
	e.t.Helper()
	w, err := e.users.Create(context.Background(), domain.Metadata{Actor: domain.Actor{UserID: "test", Role: domain.RoleAdmin}}, nil, name, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return w.Token
}

func TestMetricsExposition(t *testing.T) {
	env := newTestAPI(t)
	env.do(env.req(http.MethodGet, "/v1/me", env.admin, ""))
	env.do(env.req(http.MethodGet, "/v1/no/such/thing/42", env.admin, ""))
	env.createUser("lan", "registrar") // an append through the instrumented store, after the admin's
	w := env.do(env.req(http.MethodGet, "/metrics", "", ""))
	if w.Code != 200 {
		t.Fatalf("metrics: %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`ansinh_http_request_duration_seconds_count{method="GET",route="/v1/me",status="200"} 1`,
		`ansinh_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1`,
		`ansinh_http_request_duration_seconds_count{method="POST",route="/v1/users",status="201"} 1`,
		`ansinh_eventstore_append_duration_seconds_count{outcome="ok"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "/v1/no/such") {
		t.Error("a raw path became a label value")
	}
}

func TestDocsAndSpec(t *testing.T) {
	env := newTestAPI(t)
	w := env.do(env.req(http.MethodGet, "/openapi.yaml", "", ""))
	if w.Body.String() != string(Spec) || w.Header().Get("Content-Type") != "application/yaml" {
		t.Fatalf("openapi.yaml: %q, %d bytes", w.Header().Get("Content-Type"), w.Body.Len())
	}
	w = env.do(env.req(http.MethodGet, "/docs", "", ""))
	page := w.Body.String()
	for _, want := range []string{"<h1>ansinh API", `id="createUser"`, "/v1/users/{name}/tokens", "Idempotency-Key", `id="schema-Problem"`} {
		if !strings.Contains(page, want) {
			t.Errorf("docs page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://", "https://cdn"} {
		if strings.Contains(page, banned) {
			t.Errorf("docs page holds %q; it must be self-contained", banned)
		}
	}
}

func TestConfigIsValidated(t *testing.T) {
	for name, cfg := range map[string]Config{
		"body limit":      {BodyMaxBytes: -1},
		"huge body limit": {BodyMaxBytes: 1 << 40},
		"wait":            {WaitMax: 10 * 60 * 1e9},
		"rate":            {RateLimit: RateLimitConfig{PerSecond: -1}},
		"burst":           {RateLimit: RateLimitConfig{Burst: -1}},
		"idempotency ttl": {Idempotency: IdempotencyConfig{TTL: 1}},
		"jwt key":         {JWT: &JWTConfig{Key: []byte("short")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := cfg.withDefaults(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Fatal("New without a store accepted")
	}
}

func TestRequestTimeout(t *testing.T) {
	env := newTestAPI(t)
	env.route(Route{Method: http.MethodGet, Path: "/test/stuck", Timeout: time.Millisecond, Handler: func(c echo.Context) error {
		<-c.Request().Context().Done() // a store call that never answers
		return fmt.Errorf("read model: %w", c.Request().Context().Err())
	}})
	w := env.do(env.req(http.MethodGet, "/test/stuck", env.admin, ""))
	wantProblem(t, w, http.StatusServiceUnavailable, "timeout")
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}
