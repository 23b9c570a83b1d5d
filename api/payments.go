package api

import (
	"context"
	"net/http"
	"slices"
	"sync"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/labstack/echo/v4"
)

// A run's payments, and the files that carry them: the bank transfer file
// and a ward's cash list (CSV, layouts in docs/disbursement.md).
//
// The list is read from the run stream and each listed line's state from
// its payment stream, so it is exact but costs one load of the run per
// page; a payments projection should serve it for runs of hundreds of
// thousands of payments.
func (s *Server) paymentRoutes() []Route {
	const one = "/v1/payout-runs/:run_id"
	return []Route{
		{Method: http.MethodGet, Path: one + "/payments", Handler: s.listPayments, Roles: moneyReaders},
		{Method: http.MethodGet, Path: one + "/bank-file", Handler: s.bankFile, Roles: moneyReaders, Timeout: runLongTimeout},
		{Method: http.MethodGet, Path: one + "/cash-list", Handler: s.cashList, Roles: moneyReaders, Timeout: runLongTimeout},
	}
}

type (
	payeeJSON struct {
		CitizenID     string `json:"citizen_id"`
		Name          string `json:"name"`
		Proxy         bool   `json:"proxy"`
		Method        string `json:"method"`
		BankCode      string `json:"bank_code"`
		AccountNumber string `json:"account_number"`
		District      string `json:"district"`
		Ward          string `json:"ward"`
	}
	paymentLineJSON struct {
		CitizenID string    `json:"citizen_id"`
		Program   string    `json:"program"`
		Period    string    `json:"period"`
		TopUp     string    `json:"top_up"`
		Attempt   int       `json:"attempt"`
		Gross     moneyJSON `json:"gross"`
		Net       moneyJSON `json:"net"`
		// Status of this attempt: issued, released, settled, failed,
		// returned, reversed or cancelled.
		Status    string `json:"status"`
		Reference string `json:"reference"`
		Failure   string `json:"failure"`
	}
	paymentJSON struct {
		PaymentID string    `json:"payment_id"`
		RunID     string    `json:"run_id"`
		Payee     payeeJSON `json:"payee"`
		Gross     moneyJSON `json:"gross"`
		Net       moneyJSON `json:"net"`
		// Status is the lines' common status, or "mixed" when they differ
		// (one line reversed by a correction, say).
		Status     string            `json:"status"`
		Reconciled bool              `json:"reconciled"`
		Lines      []paymentLineJSON `json:"lines"`
	}
)

// paymentLoaders bounds the payment streams one page reads at once.
const paymentLoaders = 8

func (s *Server) listPayments(c echo.Context) error {
	page, err := ParsePage(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ld, err := s.deps.Ledger.LoadRun(ctx, c.Param("run_id"))
	if err != nil {
		return ledgerError(err)
	}
	run := ld.State
	// Sorted by payment ID, the cursor's key: stable whatever order pages
	// were recorded in.
	ids := slices.Sorted(slices.Values(run.PaymentIDs))
	list := Paginate(ids, func(id string) string { return id }, page)
	out := List[paymentJSON]{Items: make([]paymentJSON, len(list.Items)), NextCursor: list.NextCursor}
	lines := make([][]disbursement.RunLine, len(list.Items))
	for i, id := range list.Items {
		_, reconciled := run.Reconciled[id]
		out.Items[i] = toPaymentJSON(run.ID, run.Payments[id], reconciled)
		lines[i] = run.Payments[id].Lines
	}
	if err := s.lineStates(ctx, out.Items, lines); err != nil {
		return ledgerError(err)
	}
	SetETag(c, uint64(ld.Revision))
	return c.JSON(http.StatusOK, out)
}

func toPaymentJSON(runID string, p *disbursement.RunPayment, reconciled bool) paymentJSON {
	gross, net := domain.ZeroVND(), domain.ZeroVND()
	out := paymentJSON{
		PaymentID: p.PaymentID, RunID: runID, Reconciled: reconciled, Lines: make([]paymentLineJSON, len(p.Lines)),
		Payee: payeeJSON{CitizenID: p.Payee.CitizenID, Name: p.Payee.Name, Proxy: p.Payee.Proxy, Method: string(p.Payee.Method),
			BankCode: p.Payee.BankCode, AccountNumber: p.Payee.AccountNumber, District: p.Payee.District, Ward: p.Payee.Ward},
	}
	for i, ln := range p.Lines {
		k := ln.Obligation
		out.Lines[i] = paymentLineJSON{CitizenID: k.CitizenID, Program: k.Program, Period: k.Period.String(), TopUp: k.TopUp,
			Attempt: ln.Attempt, Gross: toMoneyJSON(ln.Gross), Net: toMoneyJSON(ln.Net)}
		gross, net = gross.Add(ln.Gross), net.Add(ln.Net)
	}
	out.Gross, out.Net = toMoneyJSON(gross), toMoneyJSON(net)
	return out
}

// lineStates fills in each line's attempt state from its payment stream
// (lines[i] are the run lines of items[i]) and each payment's overall
// status.
func (s *Server) lineStates(ctx context.Context, items []paymentJSON, lines [][]disbursement.RunLine) error {
	type ref struct{ p, l int }
	var refs []ref
	for i := range items {
		for j := range items[i].Lines {
			refs = append(refs, ref{i, j})
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan ref)
	)
	for range min(paymentLoaders, len(refs)) {
		wg.Go(func() {
			for r := range next {
				if err := s.lineState(ctx, &items[r.p].Lines[r.l], lines[r.p][r.l]); err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, r := range refs {
		next <- r
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	for i := range items {
		items[i].Status = ""
		for _, ln := range items[i].Lines {
			switch items[i].Status {
			case "":
				items[i].Status = ln.Status
			case ln.Status:
			default:
				items[i].Status = "mixed"
			}
		}
	}
	return nil
}

func (s *Server) lineState(ctx context.Context, ln *paymentLineJSON, rl disbursement.RunLine) error {
	ob, err := s.deps.Ledger.LoadObligation(ctx, rl.Obligation)
	if err != nil {
		return err
	}
	if a, ok := ob.State.Attempt(rl.Attempt); ok {
		ln.Status, ln.Reference, ln.Failure = string(a.Status), a.Reference, string(a.Failure)
	}
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// csvWriter sends a CSV download. Its headers are set at the first write,
// so that an error before any (a run not released) still leaves as a
// problem rather than as a file.
type csvWriter struct {
	c        echo.Context
	filename string
	started  bool
}

func (w *csvWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.started = true
		h := w.c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+w.filename+`"`)
		w.c.Response().WriteHeader(http.StatusOK)
	}
	return w.c.Response().Write(b)
}

// bankFile streams the bank transfer file of a released run. Run IDs hold
// only letters, digits and - _ . (disbursement.ValidateID), so they are
// safe in the file name.
func (s *Server) bankFile(c echo.Context) error {
	runID := c.Param("run_id")
	w := &csvWriter{c: c, filename: runID + "-bank.csv"}
	if err := s.deps.Ledger.BankFile(c.Request().Context(), runID, w); err != nil {
		return ledgerError(err)
	}
	return nil
}

// cashList streams one ward's cash list of a released run (the wards with
// cash are the run's cash_wards).
func (s *Server) cashList(c echo.Context) error {
	runID, ward := c.Param("run_id"), c.QueryParam("ward")
	if !validWardCode(ward) {
		msg := "want the ward's code, 1 to 10 digits (see the run's cash_wards)"
		return NewProblem(http.StatusBadRequest, "bad_request", "ward: "+msg).WithField("ward", msg)
	}
	w := &csvWriter{c: c, filename: runID + "-cash-" + ward + ".csv"}
	if err := s.deps.Ledger.CashList(c.Request().Context(), runID, ward, w); err != nil {
		return ledgerError(err)
	}
	return nil
}

func validWardCode(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
