package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
)

// TestRebuildWhileServing: an admin rebuilds read models on a running
// server. The named ones switch to new generations with the same answers,
// the others are left alone, and the server answers throughout; a body
// without names rebuilds all of them. Bad requests are refused with a
// problem and start nothing.
func TestRebuildWhileServing(t *testing.T) {
	env := newReadAPI(t)
	env.month()
	env.caughtUp()
	env.settledJanuary()
	env.caughtUp()
	generations := func() map[string]uint64 {
		t.Helper()
		status := decodeJSON[projectionsJSON](t, env.getJSON("/v1/projections", env.admin, http.StatusOK))
		out := map[string]uint64{}
		for _, p := range status.Projections {
			out[p.Name] = p.Generation
		}
		return out
	}
	answers := func() string {
		t.Helper()
		var b strings.Builder
		for _, path := range []string{"/v1/beneficiaries?q=an", "/v1/beneficiaries/" + hdAn + "/balance", "/v1/beneficiaries/" + hdBinh + "/payouts",
			"/v1/reports/districts?period=2024-01", "/v1/payout-runs/HD-2024-01"} {
			w := env.getJSON(path, env.admin, http.StatusOK)
			b.WriteString(path + " " + w.Body.String() + "\n")
		}
		return b.String()
	}
	before, gens := answers(), generations()

	rebuild := func(body string) rebuildJobJSON {
		t.Helper()
		w := env.post("/v1/rebuilds", env.admin, body)
		wantStatus(t, w, http.StatusAccepted)
		started := decodeJSON[rebuildJobJSON](t, w)
		if started.State != "running" || started.StartedBy != "admin" || w.Header().Get("Location") != "/v1/rebuilds/"+started.RebuildID {
			t.Fatalf("started = %+v, Location %q", started, w.Header().Get("Location"))
		}
		// The server answers while the rebuild runs.
		wantStatus(t, env.get("/v1/beneficiaries/"+hdAn+"/balance", env.admin), http.StatusOK)
		env.srv.reads.rebuilds.wg.Wait()
		return decodeJSON[rebuildJobJSON](t, env.getJSON("/v1/rebuilds/"+started.RebuildID, env.admin, http.StatusOK))
	}
	done := rebuild(`{"projections": ["registry", "payouts"]}`)
	if done.State != "succeeded" || done.FinishedAt == nil || len(done.Outcomes) != 2 {
		t.Fatalf("rebuild = %+v", done)
	}
	after := generations()
	for _, o := range done.Outcomes {
		if !o.Rebuilt || o.Error != nil || o.Generation != gens[o.Projection]+1 || after[o.Projection] != o.Generation {
			t.Errorf("outcome %+v; generations before %v, after %v", o, gens, after)
		}
	}
	for _, name := range []string{"balances", "districts", "books"} {
		if after[name] != gens[name] {
			t.Errorf("%s: generation %d, was %d: rebuilt without being named", name, after[name], gens[name])
		}
	}
	if got := answers(); got != before {
		t.Errorf("answers after the rebuild:\n%s\nwant\n%s", got, before)
	}

	done = rebuild("")
	if done.State != "succeeded" || len(done.Outcomes) != len(gens) || len(done.Projections) != len(gens) {
		t.Fatalf("rebuild of all = %+v", done)
	}
	final := generations()
	for name, g := range after {
		if final[name] != g+1 {
			t.Errorf("%s: generation %d after rebuilding all, want %d", name, final[name], g+1)
		}
	}
	if got := answers(); got != before {
		t.Errorf("answers after rebuilding all:\n%s\nwant\n%s", got, before)
	}
	// /metrics says the same, per read model.
	metrics := env.do(env.req(http.MethodGet, "/metrics", "", "")).Body.String()
	for name, g := range final {
		for _, line := range []string{
			fmt.Sprintf(`ansinh_projection_generation{projection=%q} %d`, name, g),
			fmt.Sprintf(`ansinh_projection_failed{projection=%q} 0`, name),
			fmt.Sprintf(`ansinh_projection_events_behind{projection=%q} 0`, name),
		} {
			if !strings.Contains(metrics, line+"\n") {
				t.Errorf("/metrics has no line %s:\n%s", line, grepLines(metrics, "ansinh_projection"))
			}
		}
	}

	// Refused: nothing starts, nothing changes.
	many := strings.Repeat(`"registry", `, maxRebuildNames) + `"books"`
	for _, c := range []struct {
		token, body string
		status      int
		code        string
	}{
		{env.auditor, "", http.StatusForbidden, "forbidden"},
		{env.thu, "", http.StatusForbidden, "forbidden"},
		{env.admin, `{"projections": ["registry", "ledger"]}`, http.StatusUnprocessableEntity, "invalid_projection"},
		{env.admin, `{"projections": ["books", "books"]}`, http.StatusUnprocessableEntity, "invalid_projection"},
		{env.admin, `{"projections": [` + many + `]}`, http.StatusUnprocessableEntity, "too_many_projections"},
		{env.admin, `{"projection": "books"}`, http.StatusBadRequest, "invalid_json"},
		{env.admin, `{"projections": "books"}`, http.StatusBadRequest, "invalid_json"},
	} {
		t.Run(fmt.Sprintf("%s %d", c.code, len(c.body)), func(t *testing.T) {
			wantProblem(t, env.post("/v1/rebuilds", c.token, c.body), c.status, c.code)
		})
	}
	release := holdBusy(&env.srv.reads.rebuilds)
	wantProblem(t, env.post("/v1/rebuilds", env.admin, ""), http.StatusServiceUnavailable, "rebuild_busy")
	release()
	wantProblem(t, env.get("/v1/rebuilds/reb-0000000000000000", env.admin), http.StatusNotFound, "rebuild_not_found")
	wantProblem(t, env.get("/v1/rebuilds/"+done.RebuildID, env.auditor), http.StatusForbidden, "forbidden")
	wantProblem(t, env.get("/v1/rebuilds/ver-0000000000000000", env.admin), http.StatusNotFound, "rebuild_not_found")
	wantProblem(t, env.get("/v1/rebuilds/reb-"+strings.Repeat("0", 40), env.admin), http.StatusNotFound, "rebuild_not_found")
	env.srv.reads.rebuilds.mu.Lock()
	jobs := len(env.srv.reads.rebuilds.jobs)
	env.srv.reads.rebuilds.mu.Unlock()
	if jobs != 2 {
		t.Errorf("%d rebuilds recorded, want the 2 accepted: a refused request started one", jobs)
	}
	if g := generations(); fmt.Sprint(g) != fmt.Sprint(final) {
		t.Errorf("generations after the refusals %v, want %v", g, final)
	}

	// An empty list is all of them, as no body is.
	if done := rebuild(`{"projections": []}`); done.State != "succeeded" || len(done.Outcomes) != len(gens) {
		t.Errorf("rebuild of an empty list = %+v", done)
	}
}

// gatedStore holds, or fails, the next read of the log from its first
// event once armed: the read that starts a rebuild, not the live feed's.
type gatedStore struct {
	eventstore.Store
	mu      sync.Mutex
	armed   bool
	fail    error
	entered chan struct{}
	release chan struct{}
}

func (s *gatedStore) arm(fail error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.fail = true, fail
	s.entered, s.release = make(chan struct{}), make(chan struct{})
}

func (s *gatedStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	armed, fail, entered, release := s.armed && after.IsStart(), s.fail, s.entered, s.release
	if armed {
		s.armed = false
	}
	s.mu.Unlock()
	if armed {
		if fail != nil {
			return nil, fail
		}
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ReadAll(ctx, after, limit)
}

func newGatedReadAPI(t *testing.T) (*readAPI, *gatedStore) {
	t.Helper()
	gate := &gatedStore{}
	env := newReadAPI(t, withStoreWrapper(func(s eventstore.Store) eventstore.Store { gate.Store = s; return gate }))
	env.month()
	env.caughtUp()
	return env, gate
}

// A read model the server is rebuilding already (its own upgrade at
// start-up, say) refuses the whole request, and nothing starts.
func TestRebuildOfAReadModelAlreadyRebuilding(t *testing.T) {
	env, gate := newGatedReadAPI(t)
	gate.arm(nil)
	wait := env.set.Runner().StartRebuild(context.Background(), []string{"registry"})
	<-gate.entered
	p := wantProblem(t, env.post("/v1/rebuilds", env.admin, `{"projections": ["books", "registry"]}`), http.StatusConflict, "rebuild_in_progress")
	if !strings.Contains(p.Detail, "registry") {
		t.Errorf("detail %q does not name the read model", p.Detail)
	}
	status := decodeJSON[projectionsJSON](t, env.getJSON("/v1/projections", env.admin, http.StatusOK))
	for _, pj := range status.Projections {
		if pj.Name == "books" && pj.Rebuild != nil {
			t.Errorf("books: a rebuild started for a refused request: %+v", pj.Rebuild)
		}
	}
	env.srv.reads.rebuilds.mu.Lock()
	jobs, running := len(env.srv.reads.rebuilds.jobs), env.srv.reads.rebuilds.running
	env.srv.reads.rebuilds.mu.Unlock()
	if jobs != 0 || running {
		t.Errorf("%d rebuilds recorded (running %v) after a refusal", jobs, running)
	}
	close(gate.release)
	if errs := wait(); errs[0] != nil {
		t.Fatal(errs[0])
	}
	w := env.post("/v1/rebuilds", env.admin, `{"projections": ["books", "registry"]}`)
	wantStatus(t, w, http.StatusAccepted)
	env.srv.reads.rebuilds.wg.Wait()
	if job := decodeJSON[rebuildJobJSON](t, env.getJSON("/v1/rebuilds/"+decodeJSON[rebuildJobJSON](t, w).RebuildID, env.admin, http.StatusOK)); job.State != "succeeded" {
		t.Errorf("once the other rebuild ended: %+v", job)
	}
}

// A rebuild that stops on an internal error reports a code and a generic
// detail, not the error's text (logged with the request_id); one that the
// server's shutdown interrupts says so.
func TestRebuildErrorsSayWhatTheClientCanDo(t *testing.T) {
	env, gate := newGatedReadAPI(t)
	gate.arm(errors.New("pebble: read /var/lib/ansinh/events/000042.sst: input/output error"))
	w := env.post("/v1/rebuilds", env.admin, `{"projections": ["registry"]}`)
	wantStatus(t, w, http.StatusAccepted)
	env.srv.reads.rebuilds.wg.Wait()
	job := decodeJSON[rebuildJobJSON](t, env.getJSON("/v1/rebuilds/"+decodeJSON[rebuildJobJSON](t, w).RebuildID, env.admin, http.StatusOK))
	if job.State != "failed" || job.Outcomes[0].Rebuilt || job.Outcomes[0].Error == nil || job.Outcomes[0].Error.Code != "rebuild_failed" {
		t.Fatalf("job %+v", job)
	}
	if e := job.Outcomes[0].Error; strings.Contains(e.Detail, "/var/lib") || strings.Contains(e.Detail, "pebble") || e.Failure != nil {
		t.Errorf("the outcome shows the internal error: %+v", e)
	}

	gate.arm(nil)
	w = env.post("/v1/rebuilds", env.admin, `{"projections": ["registry"]}`)
	wantStatus(t, w, http.StatusAccepted)
	id := decodeJSON[rebuildJobJSON](t, w).RebuildID
	<-gate.entered
	env.srv.Close()
	got := env.srv.reads.rebuilds.view(id)
	if got.State != "failed" || got.Outcomes[0].Rebuilt || got.Outcomes[0].Error == nil || got.Outcomes[0].Error.Code != "rebuild_interrupted" {
		t.Fatalf("after Close: %+v", got)
	}
}

// A new generation that stops on an event is reported with that event, as
// GET /v1/projections shows a stopped read model.
func TestRebuildErrorOfAFailedGeneration(t *testing.T) {
	f := &projections.Failure{Projection: "registry", Position: eventstore.Position{Commit: 7, Prepare: 7}, StreamID: "beneficiary-001",
		Revision: 2, EventType: "BeneficiaryRegistered.v1", Err: errors.New("no such ward")}
	got := rebuildError(context.Background(), fmt.Errorf("wrapped: %w", f))
	if got.Code != "projection_failed" || got.Failure == nil || got.Failure.Position != f.Position || got.Failure.Stream != f.StreamID ||
		got.Failure.Error != "no such ward" {
		t.Errorf("rebuildError of a failure = %+v", got)
	}
	if got := rebuildError(context.Background(), fmt.Errorf("x: %w", projections.ErrRebuildInProgress)); got.Code != "rebuild_in_progress" {
		t.Errorf("in progress: %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	if got := rebuildError(ctx, ctx.Err()); got.Code != "rebuild_timeout" {
		t.Errorf("timeout: %+v", got)
	}
}

// holdBusy makes js say a job runs until release.
func holdBusy[J any](js *backgroundJobs[J]) (release func()) {
	set := func(running bool) {
		js.mu.Lock()
		js.running = running
		js.mu.Unlock()
	}
	set(true)
	return func() { set(false) }
}
