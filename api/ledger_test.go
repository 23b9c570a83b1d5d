package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/ledger"
	"github.com/labstack/echo/v4"
)

func TestLedgerErrorMapping(t *testing.T) {
	plain := errors.New("disk on fire")
	rule := domain.Reject("x", "f", "y")
	tests := []struct {
		name       string
		err        error
		status     int
		code, etag string
		retryAfter bool
	}{
		{"mismatch", fmt.Errorf("ctx: %w", &ledger.RevisionMismatchError{Stream: "s", Expected: 1, Actual: 3}), 412, "precondition_failed", `"3"`, false},
		{"mismatch, no stream", &ledger.RevisionMismatchError{Stream: "s", Expected: 1, Actual: -1}, 412, "precondition_failed", "", false},
		{"mismatch sentinel", fmt.Errorf("x: %w", ledger.ErrRevisionMismatch), 412, "precondition_failed", "", false},
		{"too many conflicts", fmt.Errorf("ledger: s after 5 attempts: %w (last: %w)", ledger.ErrTooManyConflicts, plain), 503, "too_many_conflicts", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *Problem
			if !errors.As(ledgerError(tt.err), &p) {
				t.Fatalf("ledgerError(%v) is not a problem", tt.err)
			}
			if p.Status != tt.status || p.Code != tt.code || p.header.Get("ETag") != tt.etag || (p.header.Get("Retry-After") != "") != tt.retryAfter {
				t.Fatalf("problem %d %s, ETag %q, Retry-After %q", p.Status, p.Code, p.header.Get("ETag"), p.header.Get("Retry-After"))
			}
			if !errors.Is(p, tt.err) {
				t.Error("the cause is lost for the log")
			}
		})
	}
	// Other errors are left to the error handler, which knows them.
	for _, err := range []error{nil, plain, rule} {
		if got := ledgerError(err); got != err {
			t.Errorf("ledgerError(%v) = %v, want it unchanged", err, got)
		}
	}
}

// contextWith is an echo.Context as the middleware leaves it for a handler.
func contextWith(user, key, requestID string) echo.Context {
	c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/", nil), httptest.NewRecorder())
	c.Set(ctxPrincipal, Principal{Actor: domain.Actor{UserID: user, Role: domain.RoleRegistrar}})
	if key != "" {
		c.Set(ctxCommand, CommandKey{Key: key})
	}
	c.Set(ctxRequestID, requestID)
	return c
}

// The ledger takes command and correlation IDs of 1 to 100 of letters,
// digits and "-_.:"; whatever key and request ID the API accepted must map
// into that, and distinct ones must stay distinct.
func TestCommandAndCorrelationIDsFitTheLedger(t *testing.T) {
	longKey := strings.Repeat("k ", 127) + "!"
	ids := map[string]string{}
	for _, tc := range []struct{ user, key string }{
		{"lan", "a"}, {"hoa", "a"}, {"lan", "b"}, {"lan", longKey}, {"sub@idp.example", "550e8400-e29b-41d4-a716-446655440000"},
	} {
		id := commandID(contextWith(tc.user, tc.key, "r"))
		if !strings.HasPrefix(id, commandIDPrefix) || len(id) > ledger.MaxCommandIDLen || strings.ContainsAny(id, " !@\"") {
			t.Errorf("commandID(%q, %q) = %q does not fit the ledger", tc.user, tc.key, id)
		}
		if prev, dup := ids[id]; dup {
			t.Errorf("commandID %q for %q and %q", id, prev, tc.user+"/"+tc.key)
		}
		ids[id] = tc.user + "/" + tc.key
		if again := commandID(contextWith(tc.user, tc.key, "other request")); again != id {
			t.Errorf("commandID is not stable: %q then %q", id, again)
		}
	}
	if id := commandID(contextWith("lan", "", "r")); id != "" {
		t.Errorf("no key gave command ID %q", id)
	}

	short := strings.Repeat("r", ledger.MaxTraceIDLen)
	if got := correlationID(contextWith("lan", "", short)); got != short {
		t.Errorf("a request ID of %d characters became %q", len(short), got)
	}
	long := strings.Repeat("r", maxRequestIDBytes)
	got := correlationID(contextWith("lan", "", long))
	if len(got) > ledger.MaxTraceIDLen || got != correlationID(contextWith("lan", "", long)) || got == correlationID(contextWith("lan", "", long[1:])) {
		t.Errorf("a request ID of %d characters became %q", len(long), got)
	}
}

// A request ID too long for the ledger still lets the command through, and
// the ledger accepts the derived IDs end to end.
func TestLongIdentifiersReachTheLedger(t *testing.T) {
	env := newRegistryAPI(t)
	w := env.do(env.req(http.MethodPost, "/v1/beneficiaries", env.registrar, registerBody(anID, "Nguyễn Thị An"),
		HeaderIdempotencyKey, strings.Repeat("~", 255), HeaderRequestID, strings.Repeat("q", maxRequestIDBytes)))
	wantStatus(t, w, http.StatusCreated)
}
