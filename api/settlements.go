package api

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/labstack/echo/v4"
)

// The bank's answers: one at a time (a bank feed, a ward cashier's receipt)
// or a settlement file (docs/disbursement.md, "Settlement file"). Both are
// idempotent in the ledger: an answer already recorded with the same
// content changes nothing, one that contradicts it is refused.
//
// An answer touches several payment streams, none of which the client has
// read, so these commands take no If-Match (400 if sent) and return no
// ETag. Their position is the head of the log after the write: at or after
// every event they wrote, which is what min_position needs.

// uploadMaxBytes bounds an uploaded file. The ledger takes files of up to
// 128 MiB; the API takes what one request may carry (Config's upper
// bound): a larger file is split.
const uploadMaxBytes = maxBodyMaxBytes

func (s *Server) settlementRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "/v1/payments/:payment_id/settlement", Handler: s.recordSettlement, Roles: financeStaff},
		{Method: http.MethodPost, Path: "/v1/bank-results", Handler: s.importBankResults, Roles: financeStaff,
			BodyMaxBytes: uploadMaxBytes, Timeout: runLongTimeout},
	}
}

type (
	settlementRequest struct {
		Outcome    string     `json:"outcome"`
		Reference  string     `json:"reference"`
		OccurredAt string     `json:"occurred_at"`
		Amount     *moneyJSON `json:"amount"`
		Reason     string     `json:"reason"`
		Detail     string     `json:"detail"`
	}
	settlementWritten struct {
		PaymentID string `json:"payment_id"`
		Outcome   string `json:"outcome"`
		// Applied is false when the answer was already recorded with the
		// same content: nothing was written.
		Applied bool `json:"applied"`
		Written
	}
	rejectionJSON struct {
		Line      int    `json:"line"`
		PaymentID string `json:"payment_id"`
		Code      string `json:"code"`
		Message   string `json:"message"`
	}
	settlementReportJSON struct {
		Lines     int             `json:"lines"`
		Applied   int             `json:"applied"`
		Unchanged int             `json:"unchanged"`
		Rejected  []rejectionJSON `json:"rejected"`
		Written
	}
)

func (s *Server) recordSettlement(c echo.Context) error {
	if err := refuseIfMatch(c); err != nil {
		return err
	}
	var in settlementRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	st := disbursement.Settlement{
		PaymentID: c.Param("payment_id"), Outcome: disbursement.Outcome(in.Outcome), Reference: in.Reference,
		Amount: f.money("amount", in.Amount), Reason: disbursement.FailureReason(in.Reason), Detail: in.Detail,
	}
	if in.OccurredAt != "" {
		at, err := time.Parse(time.RFC3339, in.OccurredAt)
		if err != nil {
			f.add("occurred_at", "want RFC 3339 with a zone, e.g. 2024-01-20T09:30:00+07:00")
		}
		st.At = at
	}
	if err := f.err(); err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, "")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	rep, err := s.deps.Ledger.RecordSettlement(ctx, req, st)
	if err != nil {
		return ledgerError(err)
	}
	pos, err := s.deps.Store.Head(ctx)
	if err != nil {
		return err
	}
	Logger(c).Info("settlement recorded", "payment_id", st.PaymentID, "outcome", in.Outcome, "applied", rep.Applied == 1)
	SetPosition(c, pos)
	return c.JSON(http.StatusOK, settlementWritten{PaymentID: st.PaymentID, Outcome: in.Outcome, Applied: rep.Applied == 1, Written: Written{pos}})
}

// importBankResults imports a settlement file sent as the body (text/csv).
// Refused lines are reported, the others applied; a file not of the layout
// is refused whole (422 invalid_file).
func (s *Server) importBankResults(c echo.Context) error {
	if err := refuseIfMatch(c); err != nil {
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
	rep, err := s.deps.Ledger.ImportSettlements(ctx, req, body)
	if err != nil {
		return ledgerError(err)
	}
	pos, err := s.deps.Store.Head(ctx)
	if err != nil {
		return err
	}
	out := settlementReportJSON{Lines: rep.Lines, Applied: rep.Applied, Unchanged: rep.Unchanged,
		Rejected: make([]rejectionJSON, len(rep.Rejected)), Written: Written{pos}}
	for i, r := range rep.Rejected {
		out.Rejected[i] = rejectionJSON{Line: r.Line, PaymentID: r.PaymentID, Code: r.Code, Message: r.Message}
	}
	Logger(c).Info("bank results imported", "lines", rep.Lines, "applied", rep.Applied, "unchanged", rep.Unchanged, "rejected", len(rep.Rejected))
	SetPosition(c, pos)
	return c.JSON(http.StatusOK, out)
}

// csvBody is the body of an upload, which must be text/csv. The body was
// read whole by the idempotency middleware (within the route's limit), so
// this only checks its media type and hands it on.
func csvBody(c echo.Context) (io.Reader, error) {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != "text/csv" {
		return nil, NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the file as the body with Content-Type: text/csv")
	}
	if req.Body == nil {
		return bytes.NewReader(nil), nil
	}
	return req.Body, nil
}

// refuseIfMatch refuses a precondition the command cannot honour: it
// writes to streams the client has no ETag of, and a client that sent one
// would believe the command conditional when it is not.
func refuseIfMatch(c echo.Context) error {
	if c.Request().Header.Get("If-Match") == "" {
		return nil
	}
	msg := "this command has no single resource to compare an ETag with; send it without If-Match (it is idempotent)"
	return NewProblem(http.StatusBadRequest, "precondition_invalid", msg).WithField("If-Match", msg)
}
