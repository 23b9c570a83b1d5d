package api

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/ledger"
	"github.com/labstack/echo/v4"
)

// Payout runs: open, calculate, approve, release, then close (or cancel
// before release). The run is read from its stream, so a read shows every
// write at once; its ETag is the run stream's revision and If-Match on a
// command takes it. The ledger re-checks every role and the four-eyes rule
// (self_approval), so these routes list the same roles the domain allows.
//
// Calculation is asynchronous (runs_calculation.go): a month of Hanoi takes
// minutes, longer than an HTTP exchange should be held open. Release,
// cancellation and closing fan out to one stream per payment line and run
// synchronously under a long deadline (runLongTimeout); each is resumable,
// so a 503 timeout is answered by sending the command again.

// Roles of disbursement, as domain/disbursement allows them.
var (
	// financeStaff open, calculate, release, cancel and close runs, record
	// the bank's answers and statements, and request corrections.
	financeStaff = []domain.Role{domain.RoleFinanceOfficer, domain.RoleAdmin}
	// deciders approve runs and decide on corrections.
	deciders = []domain.Role{domain.RoleApprover, domain.RoleAdmin}
	// moneyReaders see runs, payments, files, reports and the books.
	moneyReaders = []domain.Role{domain.RoleFinanceOfficer, domain.RoleApprover, domain.RoleAuditor, domain.RoleAdmin}
)

// runLongTimeout bounds the commands that touch every line of a run
// (release, cancel, close) and the file imports: 300,000 lines take a few
// minutes on a busy store.
const runLongTimeout = 10 * time.Minute

func (s *Server) runRoutes() []Route {
	const one = "/v1/payout-runs/:run_id"
	return []Route{
		{Method: http.MethodPost, Path: "/v1/payout-runs", Handler: s.openRun, Roles: financeStaff},
		{Method: http.MethodGet, Path: one, Handler: s.getRun, Roles: moneyReaders},
		{Method: http.MethodPost, Path: one + "/calculate", Handler: s.calculateRun, Roles: financeStaff},
		{Method: http.MethodPost, Path: one + "/approve", Handler: s.approveRun, Roles: deciders},
		{Method: http.MethodPost, Path: one + "/release", Handler: s.releaseRun, Roles: financeStaff, Timeout: runLongTimeout},
		{Method: http.MethodPost, Path: one + "/cancel", Handler: s.cancelRun, Roles: financeStaff, Timeout: runLongTimeout},
		{Method: http.MethodPost, Path: one + "/close", Handler: s.closeRun, Roles: financeStaff, Timeout: runLongTimeout},
	}
}

// Wire types of runs.
type (
	budgetJSON struct {
		MaxPayments *int       `json:"max_payments"`
		MaxAmount   *moneyJSON `json:"max_amount"`
	}
	runProblemJSON struct {
		CitizenID string `json:"citizen_id"`
		Code      string `json:"code"`
		Message   string `json:"message"`
	}
	runJSON struct {
		RunID         string     `json:"run_id"`
		Status        string     `json:"status"`
		Periods       []string   `json:"periods"`
		Programs      []string   `json:"programs"`
		Districts     []string   `json:"districts"`
		ArrearsFrom   *string    `json:"arrears_from"`
		CashOnly      bool       `json:"cash_only"`
		Budget        budgetJSON `json:"budget"`
		OpenedBy      string     `json:"opened_by"`
		CalculatedBy  string     `json:"calculated_by"`
		ApprovedBy    string     `json:"approved_by"`
		ReleasedBy    string     `json:"released_by"`
		CancelledBy   string     `json:"cancelled_by"`
		Pages         int        `json:"pages"`
		Beneficiaries int        `json:"beneficiaries"`
		Payments      int        `json:"payments"`
		Lines         int        `json:"lines"`
		Skipped       int        `json:"skipped"`
		Gross         moneyJSON  `json:"gross"`
		Net           moneyJSON  `json:"net"`
		CashWards     []string   `json:"cash_wards"`
		// ProblemCount beneficiaries could not be paid; Problems shows the
		// first ledger.MaxProblemsShown.
		ProblemCount int              `json:"problem_count"`
		Problems     []runProblemJSON `json:"problems"`
		Revision     int64            `json:"revision"`
		// Calculation is this server's background calculation of the run,
		// if it started one (see runs_calculation.go).
		Calculation *calculationJSON `json:"calculation,omitempty"`
	}
	runWritten struct {
		Run runJSON `json:"run"`
		Written
	}
)

func toRunJSON(r ledger.RunSummary) runJSON {
	out := runJSON{
		RunID: r.RunID, Status: string(r.Status), Periods: make([]string, len(r.Scope.Periods)), Programs: r.Scope.Programs,
		Districts: r.Scope.Districts, ArrearsFrom: periodOrNil(r.Scope.ArrearsFrom), CashOnly: r.Scope.CashOnly,
		OpenedBy: r.OpenedBy, CalculatedBy: r.CalculatedBy, ApprovedBy: r.ApprovedBy, ReleasedBy: r.ReleasedBy, CancelledBy: r.CancelledBy,
		Pages: r.Pages, Beneficiaries: r.Beneficiaries, Payments: r.Payments, Lines: r.Lines, Skipped: r.Skipped,
		Gross: toMoneyJSON(r.Gross), Net: toMoneyJSON(r.Net), CashWards: r.Wards,
		ProblemCount: r.ProblemCount, Problems: make([]runProblemJSON, len(r.Problems)), Revision: r.Revision,
	}
	for i, p := range r.Scope.Periods {
		out.Periods[i] = p.String()
	}
	if out.Programs == nil {
		out.Programs = []string{}
	}
	if out.Districts == nil {
		out.Districts = []string{}
	}
	if out.CashWards == nil {
		out.CashWards = []string{}
	}
	if r.Budget.MaxPayments > 0 {
		n := r.Budget.MaxPayments
		out.Budget.MaxPayments = &n
	}
	out.Budget.MaxAmount = toMoneyPtr(r.Budget.MaxAmount)
	for i, p := range r.Problems {
		out.Problems[i] = runProblemJSON{CitizenID: p.CitizenID, Code: p.Code, Message: p.Message}
	}
	return out
}

func runPath(runID string) string { return "/v1/payout-runs/" + url.PathEscape(runID) }

// runResult answers a run command: the run after it, its revision as ETag
// and the position of its last event.
func (s *Server) runResult(c echo.Context, status int, r ledger.RunSummary) error {
	body := runWritten{Run: toRunJSON(r), Written: Written{Position: r.Position}}
	body.Run.Calculation = s.calcs.view(r.RunID)
	SetPosition(c, r.Position)
	if r.Revision >= 0 {
		SetETag(c, uint64(r.Revision))
	}
	return c.JSON(status, body)
}

type openRunRequest struct {
	RunID       string      `json:"run_id"`
	Periods     []string    `json:"periods"`
	Programs    []string    `json:"programs"`
	Districts   []string    `json:"districts"`
	ArrearsFrom string      `json:"arrears_from"`
	CashOnly    bool        `json:"cash_only"`
	Budget      *budgetJSON `json:"budget"`
	Reason      string      `json:"reason"`
}

// maxScopeItems bounds the periods, programs and districts parsed before
// the domain checks their counts (12, 20, 30), so that a body of a million
// periods is refused without building a million errors.
const maxScopeItems = 100

func (s *Server) openRun(c echo.Context) error {
	var in openRunRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	for _, l := range []struct {
		field string
		n     int
	}{{"periods", len(in.Periods)}, {"programs", len(in.Programs)}, {"districts", len(in.Districts)}} {
		if l.n > maxScopeItems {
			f.add(l.field, "too many items")
		}
	}
	if err := f.err(); err != nil {
		return err
	}
	cmd := disbursement.OpenRun{RunID: in.RunID, Scope: disbursement.Scope{
		Programs: in.Programs, Districts: in.Districts, ArrearsFrom: f.period("arrears_from", in.ArrearsFrom), CashOnly: in.CashOnly,
	}}
	for i, p := range in.Periods {
		cmd.Scope.Periods = append(cmd.Scope.Periods, f.period("periods["+strconv.Itoa(i)+"]", p))
	}
	if in.Budget != nil {
		if in.Budget.MaxPayments != nil {
			cmd.Budget.MaxPayments = *in.Budget.MaxPayments
		}
		cmd.Budget.MaxAmount = f.money("budget.max_amount", in.Budget.MaxAmount)
	}
	if err := f.err(); err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, in.Reason)
	if err != nil {
		return err
	}
	sum, err := s.deps.Ledger.OpenRun(c.Request().Context(), req, cmd)
	if err != nil {
		return ledgerError(err)
	}
	Logger(c).Info("payout run opened", "run_id", sum.RunID)
	c.Response().Header().Set(echo.HeaderLocation, runPath(sum.RunID))
	return s.runResult(c, http.StatusCreated, sum)
}

func (s *Server) getRun(c echo.Context) error {
	sum, err := s.deps.Ledger.RunStatus(c.Request().Context(), c.Param("run_id"))
	if err != nil {
		return ledgerError(err)
	}
	SetETag(c, uint64(sum.Revision))
	out := toRunJSON(sum)
	out.Calculation = s.calcs.view(sum.RunID)
	return c.JSON(http.StatusOK, out)
}

// decodeOptional decodes a body the client may leave out: an empty body is
// the zero value; a body that is there is held to Decode's strict rules.
func decodeOptional(c echo.Context, v any) error {
	req := c.Request()
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(req.Body) // bounded by the route's body limit
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	return Decode(c, v)
}

// runCommand runs one of the commands that take only a reason (an optional
// body, reasonRequest of beneficiaries.go); the reason is recorded with the
// events.
func (s *Server) runCommand(c echo.Context, what string, run func(ledger.Request, string) (ledger.RunSummary, error)) error {
	var in reasonRequest
	if err := decodeOptional(c, &in); err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, in.Reason)
	if err != nil {
		return err
	}
	sum, err := run(req, c.Param("run_id"))
	if err != nil {
		return ledgerError(err)
	}
	Logger(c).Info("payout run "+what, "run_id", sum.RunID, "run_status", string(sum.Status))
	return s.runResult(c, http.StatusOK, sum)
}

func (s *Server) approveRun(c echo.Context) error {
	return s.runCommand(c, "approved", func(req ledger.Request, id string) (ledger.RunSummary, error) {
		return s.deps.Ledger.ApproveRun(c.Request().Context(), req, id)
	})
}

func (s *Server) releaseRun(c echo.Context) error {
	return s.runCommand(c, "released", func(req ledger.Request, id string) (ledger.RunSummary, error) {
		return s.deps.Ledger.ReleaseRun(c.Request().Context(), req, id)
	})
}

func (s *Server) closeRun(c echo.Context) error {
	return s.runCommand(c, "closed", func(req ledger.Request, id string) (ledger.RunSummary, error) {
		return s.deps.Ledger.CloseRun(c.Request().Context(), req, id)
	})
}

// cancelRun needs a reason: it is recorded in the run, not only in the
// events' metadata.
func (s *Server) cancelRun(c echo.Context) error {
	var in reasonRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, in.Reason)
	if err != nil {
		return err
	}
	sum, err := s.deps.Ledger.CancelRun(c.Request().Context(), req, c.Param("run_id"), in.Reason)
	if err != nil {
		return ledgerError(err)
	}
	Logger(c).Info("payout run cancelled", "run_id", sum.RunID)
	return s.runResult(c, http.StatusOK, sum)
}
