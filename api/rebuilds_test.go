package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
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
	if g := generations(); fmt.Sprint(g) != fmt.Sprint(final) {
		t.Errorf("generations after the refusals %v, want %v", g, final)
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
