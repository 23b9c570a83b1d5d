package api

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ansinh/ansinh/ledger"
)

// gateRoster is a roster that holds every calculation at its first page
// until opened (or until the calculation's context ends), so that a test
// sees calculations running.
type gateRoster struct {
	reached chan struct{} // one value per call that is held
	open    chan struct{}
	ids     ledger.StaticRoster
}

func newGateRoster(ids ...string) *gateRoster {
	return &gateRoster{reached: make(chan struct{}, 64), open: make(chan struct{}), ids: ledger.NewStaticRoster(ids...)}
}

func (g *gateRoster) CitizenIDs(ctx context.Context, districts []string, after string, limit int) ([]string, error) {
	select {
	case <-g.open:
		return g.ids.CitizenIDs(ctx, districts, after, limit)
	default:
	}
	g.reached <- struct{}{}
	select {
	case <-g.open:
		return g.ids.CitizenIDs(ctx, districts, after, limit)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// failingRoster answers its first call and fails every later one: the
// registry projection went down after the first page.
type failingRoster struct {
	ids   ledger.StaticRoster
	calls atomic.Int32
}

func (f *failingRoster) CitizenIDs(ctx context.Context, districts []string, after string, limit int) ([]string, error) {
	if f.calls.Add(1) > 1 {
		return nil, errors.New("registry projection unreachable")
	}
	return f.ids.CitizenIDs(ctx, districts, after, limit)
}

// The calculation runs in the background: 202 at once, the job visible on
// the run while it runs, a second calculate joins it, the number running
// at once is bounded, and Close stops them all, reported and logged.
func TestCalculationRunsInTheBackground(t *testing.T) {
	env := newPayoutAPI(t)
	env.month()
	gate := newGateRoster(hdAn, hdBinh, hdChi)
	env.srv.deps.Roster = gate
	periods := []string{"2024-01", "2024-02", "2024-03", "2024-04", "2024-05"}
	for i, p := range periods {
		id := "BG-" + p
		wantStatus(t, env.post("/v1/payout-runs", env.thu, `{"run_id": "`+id+`", "periods": ["`+p+`"], "programs": ["SOCIAL_MONTHLY"]}`), http.StatusCreated)
		w := env.post("/v1/payout-runs/"+id+"/calculate", env.thu, "")
		if i == maxCalculations {
			wantProblem(t, w, http.StatusServiceUnavailable, "calculations_busy")
			if w.Header().Get("Retry-After") == "" {
				t.Error("calculations_busy without Retry-After")
			}
			continue
		}
		wantStatus(t, w, http.StatusAccepted)
		<-gate.reached
	}
	first := env.run("BG-2024-01")
	if c := first.Calculation; first.Status != "opened" || c == nil || c.State != "running" || c.FinishedAt != nil || c.StartedBy != "thu" || c.RequestID == "" {
		t.Fatalf("running run = %+v, calculation %+v", first, first.Calculation)
	}
	// Calculate again while it runs: the same job.
	w := env.post("/v1/payout-runs/BG-2024-01/calculate", env.vy, "")
	wantStatus(t, w, http.StatusAccepted)
	if c := decodeJSON[runWritten](t, w).Run.Calculation; c == nil || c.RequestID != first.Calculation.RequestID || c.StartedBy != "thu" {
		t.Fatalf("a second calculate started another job: %+v", c)
	}

	env.srv.Close()
	for _, p := range periods[:maxCalculations] {
		r := env.run("BG-" + p)
		if c := r.Calculation; r.Status != "opened" || c == nil || c.State != "failed" || c.Error == nil || c.Error.Code != "calculation_interrupted" || c.FinishedAt == nil {
			t.Errorf("run %s after Close: %+v, calculation %+v", r.RunID, r, r.Calculation)
		}
	}
	if n := len(env.logs.logLines(t, "calculation stopped")); n != maxCalculations {
		t.Errorf("%d 'calculation stopped' lines, want %d", n, maxCalculations)
	}
	wantProblem(t, env.post("/v1/payout-runs/BG-2024-01/calculate", env.thu, ""), http.StatusServiceUnavailable, "unavailable")
}

// A calculation that fails or runs out of time says so on the run and in
// the log, and calculating again resumes it to the end.
func TestCalculationFailsLoudlyAndResumes(t *testing.T) {
	env := newPayoutAPI(t)
	env.month()
	env.openRun("HD-2024-01", "")

	// The roster goes down after the first page: failed, the page kept,
	// logged at error level with the request.
	env.srv.deps.Roster = &failingRoster{ids: ledger.NewStaticRoster(hdAn, hdBinh, hdChi)}
	w := env.post("/v1/payout-runs/HD-2024-01/calculate", env.thu, `{"page_size": 1}`)
	wantStatus(t, w, http.StatusAccepted)
	requestID := w.Header().Get(HeaderRequestID)
	env.srv.calcs.wg.Wait()
	r := env.run("HD-2024-01")
	if c := r.Calculation; r.Status != "opened" || r.Pages != 1 || r.Beneficiaries != 1 || c == nil || c.State != "failed" ||
		c.Error == nil || c.Error.Code != "calculation_failed" || c.Pages != 1 {
		t.Fatalf("after a failure: %+v, calculation %+v", r, r.Calculation)
	}
	lines := env.logs.logLines(t, "calculation failed")
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || lines[0]["request_id"] != requestID || lines[0]["run_id"] != "HD-2024-01" {
		t.Fatalf("failure log lines: %v", lines)
	}

	// Past its deadline (the roster holds the page): a timeout.
	gate := newGateRoster(hdAn, hdBinh, hdChi)
	env.srv.deps.Roster = gate
	env.srv.calcs.timeout = 50 * time.Millisecond
	wantStatus(t, env.post("/v1/payout-runs/HD-2024-01/calculate", env.thu, `{"page_size": 1}`), http.StatusAccepted)
	env.srv.calcs.wg.Wait()
	if c := env.run("HD-2024-01").Calculation; c == nil || c.State != "failed" || c.Error == nil || c.Error.Code != "calculation_timeout" {
		t.Fatalf("after a timeout: %+v", c)
	}

	// With the roster answering, calculating again resumes after the
	// recorded page and finishes: three pages, each beneficiary once.
	env.srv.calcs.timeout = 0
	close(gate.open)
	r = env.calculate("HD-2024-01", `{"page_size": 1}`)
	if c := r.Calculation; r.Status != "calculated" || r.Pages != 3 || r.Beneficiaries != 3 || r.Payments != 3 || r.Lines != 4 ||
		c == nil || c.State != "succeeded" || c.Error != nil {
		t.Fatalf("resumed: %+v, calculation %+v", r, r.Calculation)
	}
}
