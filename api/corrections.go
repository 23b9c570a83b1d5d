package api

import (
	"net/http"
	"net/url"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/ledger"
	"github.com/labstack/echo/v4"
)

// Corrections of payments: a top-up for an underpayment, a recovery of an
// overpayment, or the reversal of a settled payment. Finance staff request
// one with a reason and a document reference; another person approves it
// (403 self_approval for the requester) or rejects it. Nothing takes effect
// before approval, and history is never edited. The ETag is the correction
// stream's revision.
func (s *Server) correctionRoutes() []Route {
	const one = "/v1/corrections/:correction_id"
	return []Route{
		{Method: http.MethodPost, Path: "/v1/corrections", Handler: s.requestCorrection, Roles: financeStaff},
		{Method: http.MethodGet, Path: one, Handler: s.getCorrection, Roles: moneyReaders},
		{Method: http.MethodPost, Path: one + "/approve", Handler: s.approveCorrection, Roles: deciders},
		{Method: http.MethodPost, Path: one + "/reject", Handler: s.rejectCorrection, Roles: deciders},
	}
}

type (
	paymentCorrectionRequest struct {
		CorrectionID string `json:"correction_id"`
		Kind         string `json:"kind"`
		CitizenID    string `json:"citizen_id"`
		Program      string `json:"program"`
		Period       string `json:"period"`
		// TopUp names the top-up obligation a reversal reverses (its
		// correction ID).
		TopUp  string     `json:"top_up"`
		Amount *moneyJSON `json:"amount"`
		Mode   string     `json:"mode"`
		Reason string     `json:"reason"`
		// DocumentRef is the decision that justifies the correction.
		DocumentRef string `json:"document_ref"`
	}
	correctionJSON struct {
		CorrectionID string    `json:"correction_id"`
		Status       string    `json:"status"`
		Kind         string    `json:"kind"`
		CitizenID    string    `json:"citizen_id"`
		Program      string    `json:"program"`
		Period       string    `json:"period"`
		TopUp        string    `json:"top_up"`
		Amount       moneyJSON `json:"amount"`
		Mode         string    `json:"mode"`
		Attempt      int       `json:"attempt"`
		Reason       string    `json:"reason"`
		DocumentRef  string    `json:"document_ref"`
		RequestedBy  string    `json:"requested_by"`
		ApprovedBy   string    `json:"approved_by"`
		RejectedBy   string    `json:"rejected_by"`
		Revision     int64     `json:"revision"`
	}
	correctionWritten struct {
		Correction correctionJSON `json:"correction"`
		Written
	}
)

func toCorrectionJSON(c ledger.CorrectionSummary) correctionJSON {
	r := c.Request
	return correctionJSON{
		CorrectionID: c.CorrectionID, Status: string(c.Status), Kind: string(r.Kind), CitizenID: r.CitizenID, Program: r.Program,
		Period: r.Period.String(), TopUp: r.TopUp, Amount: toMoneyJSON(r.Amount), Mode: string(r.Mode), Attempt: r.Attempt,
		Reason: r.Reason, DocumentRef: r.DocumentRef, RequestedBy: r.RequestedBy, ApprovedBy: c.ApprovedBy, RejectedBy: c.RejectedBy,
		Revision: c.Revision,
	}
}

func correctionPath(id string) string { return "/v1/corrections/" + url.PathEscape(id) }

// correctionResult answers a correction command. The summary carries the
// stream's revision but not its position; the head of the log after the
// command is at or after every event it wrote (the approval's effects are
// in other streams).
func (s *Server) correctionResult(c echo.Context, status int, sum ledger.CorrectionSummary) error {
	pos, err := s.deps.Store.Head(c.Request().Context())
	if err != nil {
		return err
	}
	SetPosition(c, pos)
	SetETag(c, uint64(sum.Revision))
	return c.JSON(status, correctionWritten{Correction: toCorrectionJSON(sum), Written: Written{pos}})
}

func (s *Server) requestCorrection(c echo.Context) error {
	var in paymentCorrectionRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := disbursement.RequestCorrection{
		CorrectionID: in.CorrectionID, Kind: disbursement.CorrectionKind(in.Kind), CitizenID: in.CitizenID, Program: in.Program,
		Period: f.period("period", in.Period), TopUp: in.TopUp, Mode: disbursement.RecoveryMode(in.Mode),
		Reason: in.Reason, DocumentRef: in.DocumentRef,
	}
	if m := f.money("amount", in.Amount); m != nil {
		cmd.Amount = *m
	} else {
		// A reversal takes the settled gross; the others are told the
		// amount is missing by the domain.
		cmd.Amount = domain.ZeroVND()
	}
	if err := f.err(); err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, in.Reason)
	if err != nil {
		return err
	}
	sum, err := s.deps.Ledger.RequestCorrection(c.Request().Context(), req, cmd)
	if err != nil {
		return ledgerError(err)
	}
	Logger(c).Info("correction requested", "correction_id", sum.CorrectionID, "kind", in.Kind)
	c.Response().Header().Set(echo.HeaderLocation, correctionPath(sum.CorrectionID))
	return s.correctionResult(c, http.StatusCreated, sum)
}

func (s *Server) getCorrection(c echo.Context) error {
	ld, err := s.deps.Ledger.LoadCorrection(c.Request().Context(), c.Param("correction_id"))
	if err != nil {
		return ledgerError(err)
	}
	st := ld.State
	SetETag(c, uint64(ld.Revision))
	return c.JSON(http.StatusOK, toCorrectionJSON(ledger.CorrectionSummary{
		CorrectionID: c.Param("correction_id"), Status: st.Status, Request: st.Requested,
		ApprovedBy: st.ApprovedBy, RejectedBy: st.RejectedBy, Revision: ld.Revision,
	}))
}

func (s *Server) approveCorrection(c echo.Context) error {
	var in reasonRequest
	if err := decodeOptional(c, &in); err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, in.Reason)
	if err != nil {
		return err
	}
	sum, err := s.deps.Ledger.ApproveCorrection(c.Request().Context(), req, c.Param("correction_id"))
	if err != nil {
		return ledgerError(err)
	}
	Logger(c).Info("correction approved", "correction_id", sum.CorrectionID)
	return s.correctionResult(c, http.StatusOK, sum)
}

func (s *Server) rejectCorrection(c echo.Context) error {
	var in reasonRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	req, err := s.ledgerRequest(c, in.Reason)
	if err != nil {
		return err
	}
	sum, err := s.deps.Ledger.RejectCorrection(c.Request().Context(), req, c.Param("correction_id"), in.Reason)
	if err != nil {
		return ledgerError(err)
	}
	Logger(c).Info("correction rejected", "correction_id", sum.CorrectionID)
	return s.correctionResult(c, http.StatusOK, sum)
}
