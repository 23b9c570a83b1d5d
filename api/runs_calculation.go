package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/ledger"
	"github.com/labstack/echo/v4"
)

// Calculating a run visits every beneficiary of its districts: a month of
// Hanoi (293,256 people) takes minutes. An HTTP request held open that long
// is cut by proxies and by the server's own write timeout, silently, so the
// calculation runs in the background:
//
//   - POST /v1/payout-runs/{id}/calculate checks the run and the caller at
//     once (404, 403, 409 not_open, 412) and answers 202 with Location: the
//     run, whose "calculation" shows this server's job (running, succeeded
//     or failed with a code) and whose pages and beneficiaries grow as
//     pages are recorded. A calculated run answers 200 (nothing to do).
//   - Progress is logged after every page ("calculation progress") and the
//     end is logged either way ("calculation finished" or, at error level,
//     "calculation failed"), with the request ID that started it.
//   - The job is bounded (calculationTimeout); past it, or if the server
//     stops, the job is reported failed (calculation_timeout,
//     calculation_interrupted). The ledger's calculation resumes where it
//     stopped, so POST calculate again, with a new Idempotency-Key, to go
//     on: nothing is done twice.
//   - At most maxCalculations run at once per server (503
//     calculations_busy beyond); a second POST for a run already being
//     calculated here answers 202 with the running job.
//
// Jobs live in the memory of the server that started them; another
// instance shows the run's recorded progress but no "calculation".

const (
	maxCalculations       = 4
	calculationTimeout    = 2 * time.Hour
	maxCalculationRecords = 100 // finished jobs remembered, newest kept
)

type (
	calculationErrorJSON struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	// calculationJSON is a background calculation as this server ran it.
	calculationJSON struct {
		State         string                `json:"state"` // running, succeeded, failed
		StartedAt     time.Time             `json:"started_at"`
		StartedBy     string                `json:"started_by"`
		RequestID     string                `json:"request_id"`
		FinishedAt    *time.Time            `json:"finished_at"`
		Pages         int                   `json:"pages"`
		Beneficiaries int                   `json:"beneficiaries"`
		Payments      int                   `json:"payments"`
		Lines         int                   `json:"lines"`
		Skipped       int                   `json:"skipped"`
		Problems      int                   `json:"problems"`
		Net           moneyJSON             `json:"net"`
		Error         *calculationErrorJSON `json:"error"`
	}
)

// calculations are the background calculations of one server. The zero
// value is ready; Close stops them.
type calculations struct {
	mu       sync.Mutex
	jobs     map[string]*calculationJSON // by run ID; guarded by mu
	finished []string                    // run IDs of finished jobs, oldest first
	running  int
	closed   bool
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	timeout  time.Duration // 0: calculationTimeout (tests shorten it)
}

var (
	errCalculationsBusy = NewProblem(http.StatusServiceUnavailable, "calculations_busy",
		"this server is calculating as many runs as it may at once; retry in a minute").WithHeader("Retry-After", "60")
	errCalculationsClosed = NewProblem(http.StatusServiceUnavailable, "unavailable",
		"the server is shutting down; send calculate again to another instance or shortly").WithHeader("Retry-After", "5")
)

// begin registers a job for runID, or returns the one already running.
// The job's context ends at its deadline or on Close; the job calls cancel
// when it is done.
func (cs *calculations) begin(runID string, job *calculationJSON) (ctx context.Context, cancel context.CancelFunc, running bool, err error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return nil, nil, false, errCalculationsClosed
	}
	if j, ok := cs.jobs[runID]; ok && j.State == "running" {
		return nil, nil, true, nil
	}
	if cs.running >= maxCalculations {
		return nil, nil, false, errCalculationsBusy
	}
	if cs.jobs == nil {
		cs.jobs = map[string]*calculationJSON{}
		cs.ctx, cs.stop = context.WithCancel(context.Background())
	}
	cs.forget(runID)
	cs.jobs[runID] = job
	cs.running++
	cs.wg.Add(1)
	timeout := cs.timeout
	if timeout == 0 {
		timeout = calculationTimeout
	}
	ctx, cancel = context.WithTimeout(cs.ctx, timeout)
	return ctx, cancel, false, nil
}

// forget drops a finished job of runID from the record order.
func (cs *calculations) forget(runID string) {
	for i, id := range cs.finished {
		if id == runID {
			cs.finished = append(cs.finished[:i], cs.finished[i+1:]...)
			return
		}
	}
}

func (cs *calculations) progress(job *calculationJSON, p ledger.CalculationProgress) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	job.Pages, job.Beneficiaries, job.Payments, job.Lines, job.Skipped, job.Problems = p.Pages, p.Beneficiaries, p.Payments, p.Lines, p.Skipped, p.Problems
	job.Net = toMoneyJSON(p.Net)
}

// end records how a job ended and keeps at most maxCalculationRecords
// finished jobs.
func (cs *calculations) end(runID string, job *calculationJSON, at time.Time, sum ledger.RunSummary, jobErr *calculationErrorJSON) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	defer cs.wg.Done()
	cs.running--
	job.FinishedAt = &at
	if jobErr != nil {
		job.State, job.Error = "failed", jobErr
	} else {
		job.State = "succeeded"
		job.Pages, job.Beneficiaries, job.Payments, job.Lines, job.Skipped, job.Problems = sum.Pages, sum.Beneficiaries, sum.Payments, sum.Lines, sum.Skipped, sum.ProblemCount
		job.Net = toMoneyJSON(sum.Net)
	}
	cs.finished = append(cs.finished, runID)
	for len(cs.finished) > maxCalculationRecords {
		delete(cs.jobs, cs.finished[0])
		cs.finished = cs.finished[1:]
	}
}

// view is a copy of the job of runID, nil if this server has none.
func (cs *calculations) view(runID string) *calculationJSON {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	j, ok := cs.jobs[runID]
	if !ok {
		return nil
	}
	out := *j
	return &out
}

// close cancels the running jobs and waits for them to stop.
func (cs *calculations) close() {
	cs.mu.Lock()
	cs.closed = true
	if cs.stop != nil {
		cs.stop()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
}

// Close stops the server's background work: running calculations are
// cancelled (each is reported failed, calculation_interrupted, and resumes
// where it stopped when calculate is sent again) and Close waits for them.
// Call it after the HTTP server has shut down, before closing the store.
func (s *Server) Close() {
	s.calcs.close()
	s.reads.verifications.close() // audit.go
	s.reads.rebuilds.close()      // rebuilds.go
}

type calculateRequest struct {
	Reason string `json:"reason"`
	// PageSize is how many beneficiaries are calculated and recorded
	// together (default ledger.DefaultPageSize).
	PageSize int `json:"page_size"`
}

func (s *Server) calculateRun(c echo.Context) error {
	var in calculateRequest
	if err := decodeOptional(c, &in); err != nil {
		return err
	}
	if in.PageSize < 0 || in.PageSize > ledger.MaxPageSize {
		return domain.Reject("invalid_page_size", "page_size", "must be 1 to %d (or left out for %d)", ledger.MaxPageSize, ledger.DefaultPageSize)
	}
	req, err := s.ledgerRequest(c, in.Reason)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	runID := c.Param("run_id")
	ld, err := s.deps.Ledger.LoadRun(ctx, runID)
	if err != nil {
		return ledgerError(err)
	}
	if req.ExpectedRevision != nil && int64(*req.ExpectedRevision) != ld.Revision {
		return ledgerError(&ledger.RevisionMismatchError{Stream: disbursement.RunStream(runID), Expected: *req.ExpectedRevision, Actual: ld.Revision})
	}
	switch ld.State.Status {
	case disbursement.RunCalculated, disbursement.RunApproved, disbursement.RunReleased, disbursement.RunClosed:
		sum, err := s.deps.Ledger.RunStatus(ctx, runID)
		if err != nil {
			return ledgerError(err)
		}
		return s.runResult(c, http.StatusOK, sum)
	}
	if err := ld.State.CanCalculate(req.Actor); err != nil {
		return err
	}
	// The pages the job records move the run on; the precondition was
	// checked above, against the run as it was asked for.
	req.ExpectedRevision = nil
	job := &calculationJSON{State: "running", StartedAt: s.now().UTC(), StartedBy: req.Actor.UserID, RequestID: RequestID(c), Net: toMoneyJSON(domain.ZeroVND())}
	jobCtx, cancel, running, err := s.calcs.begin(runID, job)
	if err != nil {
		return err
	}
	log := Logger(c).With("run_id", runID)
	if !running {
		log.Info("calculation started", "page_size", in.PageSize)
		go func() {
			defer cancel()
			s.calculate(jobCtx, log, runID, req, in.PageSize, job)
		}()
	}
	sum, err := s.deps.Ledger.RunStatus(ctx, runID)
	if err != nil {
		return ledgerError(err)
	}
	c.Response().Header().Set(echo.HeaderLocation, runPath(runID))
	return s.runResult(c, http.StatusAccepted, sum)
}

// calculate is the background job: it runs the ledger's calculation to the
// end, or until its deadline or Close, and records and logs the outcome.
func (s *Server) calculate(ctx context.Context, log *slog.Logger, runID string, req ledger.Request, pageSize int, job *calculationJSON) {
	var sum ledger.RunSummary
	roster, err := s.calculationRoster(ctx) // roster.go
	if err == nil {
		sum, err = s.deps.Ledger.CalculateRun(ctx, req, runID, roster, ledger.CalculateOptions{PageSize: pageSize,
			Progress: func(p ledger.CalculationProgress) {
				s.calcs.progress(job, p)
				log.Info("calculation progress", "pages", p.Pages, "beneficiaries", p.Beneficiaries, "payments", p.Payments,
					"lines", p.Lines, "problems", p.Problems, "net", p.Net.Amount.String(), "cursor", p.Cursor, "done", p.Done)
			}})
	}
	jobErr := calculationError(err, ctx)
	// Log before end: end releases Close, and a line written after Close
	// returned could be lost with the process.
	defer s.calcs.end(runID, job, s.now().UTC(), sum, jobErr)
	switch {
	case jobErr == nil:
		log.Info("calculation finished", "payments", sum.Payments, "lines", sum.Lines, "net", sum.Net.Amount.String(), "problems", sum.ProblemCount)
	case jobErr.Code == "calculation_failed":
		log.Error("calculation failed", "code", jobErr.Code, "err", err)
	default:
		log.Warn("calculation stopped", "code", jobErr.Code, "err", err)
	}
}

// calculationError says how a calculation ended, in words for the client:
// rules in their own code, a deadline or a shutdown as such, anything else
// as a generic failure whose cause is in the log.
func calculationError(err error, ctx context.Context) *calculationErrorJSON {
	const resume = "; send calculate again (with a new Idempotency-Key) to resume where it stopped"
	if err == nil {
		return nil
	}
	if re, ok := domain.AsRuleError(err); ok {
		return &calculationErrorJSON{Code: re.Code, Detail: re.Message}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &calculationErrorJSON{Code: "calculation_timeout", Detail: "the calculation did not finish within its time limit" + resume}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return &calculationErrorJSON{Code: "calculation_interrupted", Detail: "the server stopped during the calculation" + resume}
	}
	return &calculationErrorJSON{Code: "calculation_failed", Detail: "the calculation stopped on an internal error (logged with the request_id)" + resume}
}
