package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// fakeProjections is at a position; WaitFor either catches up at once
// (catchUp) or waits for ctx, as projections that are stuck would.
type fakeProjections struct {
	mu      sync.Mutex
	pos     eventstore.Position
	catchUp bool
	failure error // returned at once by WaitFor: a read model that stopped
}

func (f *fakeProjections) Position() eventstore.Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pos
}

func (f *fakeProjections) WaitFor(ctx context.Context, pos eventstore.Position) error {
	if f.failure != nil {
		return f.failure
	}
	if f.catchUp {
		f.mu.Lock()
		f.pos = pos
		f.mu.Unlock()
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func withProjections(p Projections) testOption {
	return func(c *Config, d *Deps) {
		d.Projections = p
		c.WaitMax = 20 * time.Millisecond // how long a stuck wait lasts, not an assertion
	}
}

func queryRoute(env *testAPI) {
	env.route(Route{Method: http.MethodGet, Path: "/test/query", Handler: func(c echo.Context) error {
		if err := env.srv.AwaitProjections(c); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"ok": "yes"})
	}})
}

func TestMinPosition(t *testing.T) {
	tests := []struct {
		query, header string
		ok            bool
		want          eventstore.Position
		bad           bool
	}{
		{"", "", false, eventstore.Position{}, false},
		{"12/12", "", true, eventstore.Position{Commit: 12, Prepare: 12}, false},
		{"12", "", true, eventstore.Position{Commit: 12, Prepare: 12}, false},
		{"", "7/5", true, eventstore.Position{Commit: 7, Prepare: 5}, false},
		{"3/3", "9/9", true, eventstore.Position{Commit: 3, Prepare: 3}, false},
		{"x", "", false, eventstore.Position{}, true},
		{"-1", "", false, eventstore.Position{}, true},
		{"1/", "", false, eventstore.Position{}, true},
		{strings.Repeat("9", 50), "", false, eventstore.Position{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.query+"|"+tt.header, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/q?min_position="+tt.query, nil)
			if tt.query == "" {
				r = httptest.NewRequest(http.MethodGet, "/q", nil)
			}
			if tt.header != "" {
				r.Header.Set(HeaderMinPosition, tt.header)
			}
			pos, ok, err := MinPosition(echo.New().NewContext(r, nil))
			if tt.bad {
				if p, isP := err.(*Problem); !isP || p.Code != "invalid_position" {
					t.Fatalf("err = %v, want invalid_position", err)
				}
				return
			}
			if err != nil || ok != tt.ok || pos != tt.want {
				t.Fatalf("MinPosition = %v, %v, %v", pos, ok, err)
			}
		})
	}
}

func TestReadYourWrites(t *testing.T) {
	// A write, to have a position to wait for.
	setup := func(t *testing.T, p *fakeProjections) (*testAPI, eventstore.Position) {
		env := newTestAPI(t, withProjections(p))
		queryRoute(env)
		return env, env.createUser("lan", "registrar").Position
	}
	query := func(env *testAPI, pos string) *http.Request {
		return env.req(http.MethodGet, "/test/query?min_position="+pos, env.admin, "")
	}

	t.Run("no position asked", func(t *testing.T) {
		env, _ := setup(t, &fakeProjections{})
		if w := env.do(env.req(http.MethodGet, "/test/query", env.admin, "")); w.Code != 200 {
			t.Fatalf("%d", w.Code)
		}
	})
	t.Run("already there", func(t *testing.T) {
		p := &fakeProjections{}
		env, pos := setup(t, p)
		p.pos = pos
		if w := env.do(query(env, pos.String())); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("catches up while waiting", func(t *testing.T) {
		p := &fakeProjections{catchUp: true}
		env, pos := setup(t, p)
		if w := env.do(query(env, pos.String())); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if p.Position() != pos {
			t.Fatal("the handler did not wait for the position")
		}
	})
	t.Run("stuck", func(t *testing.T) {
		env, pos := setup(t, &fakeProjections{})
		w := env.do(query(env, pos.String()))
		wantProblem(t, w, http.StatusServiceUnavailable, "projection_behind")
		if w.Header().Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
	t.Run("a read model stopped", func(t *testing.T) {
		stopped := &projections.Failure{Projection: "balances", StreamID: "payment-x", EventType: "PaymentSettled.v1", Err: errors.New("bad event")}
		env, pos := setup(t, &fakeProjections{failure: fmt.Errorf("%w: %w", projections.ErrNotCaughtUp, stopped)})
		w := env.do(query(env, pos.String()))
		wantProblem(t, w, http.StatusServiceUnavailable, "projection_stopped")
	})
	t.Run("past the end of the log", func(t *testing.T) {
		env, pos := setup(t, &fakeProjections{})
		beyond := eventstore.Position{Commit: pos.Commit + 1000, Prepare: pos.Prepare + 1000}
		wantProblem(t, env.do(query(env, beyond.String())), http.StatusBadRequest, "invalid_position")
	})
	t.Run("by header", func(t *testing.T) {
		env, pos := setup(t, &fakeProjections{})
		r := env.req(http.MethodGet, "/test/query", env.admin, "", HeaderMinPosition, pos.String())
		wantProblem(t, env.do(r), http.StatusServiceUnavailable, "projection_behind")
	})
	t.Run("no projections", func(t *testing.T) {
		env := newTestAPI(t)
		queryRoute(env)
		wantProblem(t, env.do(query(env, "1/1")), http.StatusServiceUnavailable, "projections_unavailable")
	})
}

func TestReadyz(t *testing.T) {
	t.Run("store only", func(t *testing.T) {
		env := newTestAPI(t)
		w := env.do(env.req(http.MethodGet, "/readyz", "", ""))
		if body := decodeJSON[readyBody](t, w); w.Code != 200 || len(body.Checks) != 1 || !body.Checks[0].OK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		_ = env.store.Close()
		wantProblem(t, env.do(env.req(http.MethodGet, "/readyz", "", "")), http.StatusServiceUnavailable, "not_ready")
		// Liveness does not depend on the store.
		if w := env.do(env.req(http.MethodGet, "/healthz", "", "")); w.Code != 200 {
			t.Fatalf("healthz with the store closed: %d", w.Code)
		}
	})
	t.Run("projections at the head", func(t *testing.T) {
		p := &fakeProjections{}
		env := newTestAPI(t, withProjections(p))
		head, _ := env.store.Head(t.Context())
		p.pos = head
		w := env.do(env.req(http.MethodGet, "/readyz", "", ""))
		body := decodeJSON[readyBody](t, w)
		if w.Code != 200 || len(body.Checks) != 2 || body.Checks[1].LagSeconds == nil || *body.Checks[1].LagSeconds != 0 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("projections far behind", func(t *testing.T) {
		env := newTestAPI(t, withProjections(&fakeProjections{}), func(c *Config, _ *Deps) { c.ReadyLagMax = time.Minute })
		// The admin's events were recorded now (by the store's clock); the
		// API's clock says an hour has passed.
		env.clock.mu.Lock()
		env.clock.now = time.Now().Add(time.Hour)
		env.clock.mu.Unlock()
		p := wantProblem(t, env.do(env.req(http.MethodGet, "/readyz", "", "")), http.StatusServiceUnavailable, "not_ready")
		if !strings.Contains(p.Detail, "projections are") {
			t.Fatalf("detail %q", p.Detail)
		}
		metrics := env.do(env.req(http.MethodGet, "/metrics", "", "")).Body.String()
		line := grepLines(metrics, "ansinh_projection_lag_seconds ")
		lag, err := strconv.ParseFloat(strings.TrimPrefix(line, "ansinh_projection_lag_seconds "), 64)
		if err != nil || lag < 3500 || lag > 3700 {
			t.Fatalf("lag gauge %q, want about 3600", line)
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestPaginate(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	tests := []struct {
		page      Page
		want      string
		hasCursor bool
	}{
		{Page{Limit: 2}, "a,b", true},
		{Page{Limit: 5}, "a,b,c,d,e", false},
		{Page{Limit: 10}, "a,b,c,d,e", false},
		{Page{Limit: 2, After: "b"}, "c,d", true},
		{Page{Limit: 2, After: "d"}, "e", false},
		{Page{Limit: 2, After: "e"}, "", false},
		{Page{Limit: 2, After: "bb"}, "c,d", true}, // an item removed between pages
	}
	for _, tt := range tests {
		got := Paginate(items, id, tt.page)
		if strings.Join(got.Items, ",") != tt.want || (got.NextCursor != "") != tt.hasCursor {
			t.Errorf("Paginate(%+v) = %v, cursor %q", tt.page, got.Items, got.NextCursor)
		}
		if got.Items == nil {
			t.Errorf("Paginate(%+v): nil items would be JSON null", tt.page)
		}
	}
	if after, ok := decodeCursor(NextCursor("lan")); !ok || after != "lan" {
		t.Fatalf("cursor round trip: %q, %v", after, ok)
	}
}
