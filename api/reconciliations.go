package api

import (
	"net/http"
	"net/url"

	"github.com/ansinh/ansinh/ledger"
	"github.com/labstack/echo/v4"
)

// Reconciliation: a bank statement (CSV, docs/disbursement.md "Bank
// statement") matched line by line against the bank payments of the runs it
// covers. The statement is the body, as sent by the bank, so the request's
// other inputs are query parameters:
//
//	POST /v1/reconciliations?id=STMT-2024-01-20&run=LB-2024-T1&run=LB-2024-T1-R
//	Content-Type: text/csv
//
// The ID is the client's (one per statement): importing the same file under
// the same ID again returns the recorded report (200, replayed), another
// file under it is 409 reconciliation_exists, and a statement that
// contradicts an earlier reconciled payment is refused whole (409
// contradicts_reconciled). Reconciliation moves no money.
func (s *Server) reconciliationRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "/v1/reconciliations", Handler: s.importStatement, Roles: financeStaff,
			BodyMaxBytes: uploadMaxBytes, Timeout: runLongTimeout},
		{Method: http.MethodGet, Path: "/v1/reconciliations/:reconciliation_id", Handler: s.getReconciliation, Roles: moneyReaders,
			Timeout: runLongTimeout},
	}
}

type (
	statementLineJSON struct {
		Line            int        `json:"line"`
		Reference       string     `json:"reference"`
		Amount          moneyJSON  `json:"amount"`
		ValueDate       string     `json:"value_date"`
		BankTransaction string     `json:"bank_transaction"`
		Status          string     `json:"status"`
		Expected        *moneyJSON `json:"expected"`
	}
	missingPaymentJSON struct {
		PaymentID string    `json:"payment_id"`
		Amount    moneyJSON `json:"amount"`
	}
	reconciliationJSON struct {
		ReconciliationID string              `json:"reconciliation_id"`
		Runs             []string            `json:"runs"`
		FileSHA256       string              `json:"file_sha256"`
		Counts           map[string]int      `json:"counts"`
		Lines            []statementLineJSON `json:"lines"`
		// Missing are settled payments of the runs the statement does not
		// show.
		Missing []missingPaymentJSON `json:"missing"`
		// Replayed: this statement was imported before under this ID; the
		// report is the recorded one and nothing was written.
		Replayed bool `json:"replayed"`
	}
	reconciliationWritten struct {
		Reconciliation reconciliationJSON `json:"reconciliation"`
		Written
	}
)

// maxStatementRunParams bounds the run parameters read before the ledger
// checks their number (ledger.MaxStatementRuns).
const maxStatementRunParams = 100

func toReconciliationJSON(r ledger.ReconciliationReport) reconciliationJSON {
	out := reconciliationJSON{
		ReconciliationID: r.ReconciliationID, Runs: r.Runs, FileSHA256: r.FileSHA256, Counts: map[string]int{},
		Lines: make([]statementLineJSON, len(r.Lines)), Missing: make([]missingPaymentJSON, len(r.Missing)), Replayed: r.Replayed,
	}
	if out.Runs == nil {
		out.Runs = []string{}
	}
	for k, n := range r.Counts {
		out.Counts[string(k)] = n
	}
	for i, l := range r.Lines {
		out.Lines[i] = statementLineJSON{Line: l.Line, Reference: l.Reference, Amount: toMoneyJSON(l.Amount), ValueDate: l.ValueDate.String(),
			BankTransaction: l.Transaction, Status: string(l.Status), Expected: toMoneyPtr(l.Expected)}
	}
	for i, m := range r.Missing {
		out.Missing[i] = missingPaymentJSON{PaymentID: m.PaymentID, Amount: toMoneyJSON(m.Amount)}
	}
	return out
}

func (s *Server) importStatement(c echo.Context) error {
	if err := refuseIfMatch(c); err != nil {
		return err
	}
	id, runs := c.QueryParam("id"), c.QueryParams()["run"]
	var f fieldErrors
	f.code = "bad_request"
	if id == "" {
		f.add("id", "required: the ID you give this statement (e.g. STMT-2024-01-20)")
	}
	if len(runs) == 0 || len(runs) > maxStatementRunParams {
		f.add("run", "name each run the statement covers: run=<run ID>, repeated, 1 to 20")
	}
	if err := f.err(); err != nil {
		return err
	}
	body, err := csvBody(c)
	if err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, "")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	rep, err := s.deps.Ledger.ImportStatement(ctx, req, id, runs, body)
	if err != nil {
		return ledgerError(err)
	}
	pos, err := s.deps.Store.Head(ctx)
	if err != nil {
		return err
	}
	Logger(c).Info("statement reconciled", "reconciliation_id", id, "lines", len(rep.Lines), "missing", len(rep.Missing), "replayed", rep.Replayed)
	status := http.StatusCreated
	if rep.Replayed {
		status = http.StatusOK
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/reconciliations/"+url.PathEscape(id))
	SetPosition(c, pos)
	return c.JSON(status, reconciliationWritten{Reconciliation: toReconciliationJSON(rep), Written: Written{pos}})
}

func (s *Server) getReconciliation(c echo.Context) error {
	rep, err := s.deps.Ledger.LoadReconciliation(c.Request().Context(), c.Param("reconciliation_id"))
	if err != nil {
		return ledgerError(err)
	}
	// A recorded report, not an answer to an import.
	rep.Replayed = false
	return c.JSON(http.StatusOK, toReconciliationJSON(rep))
}
