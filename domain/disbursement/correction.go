package disbursement

import (
	"github.com/ansinh/ansinh/domain"
)

// CorrectionKind is what a correction does.
type CorrectionKind string

const (
	// CorrectTopUp: the beneficiary was underpaid; the difference becomes an
	// obligation of its own, paid by the next run that covers the program.
	CorrectTopUp CorrectionKind = "top_up"
	// CorrectRecovery: the beneficiary was overpaid; the excess is kept back
	// from later payments (offset) or recorded as owed by them (receivable).
	CorrectRecovery CorrectionKind = "recovery"
	// CorrectReversal: a settled payment should not have been made; it is
	// voided, its obligation closed, and its gross amount recovered.
	CorrectReversal CorrectionKind = "reversal"
)

// CorrectionStatus is where a correction stands: requested, then approved
// (it takes effect) or rejected (it never does).
type CorrectionStatus string

const (
	CorrectionRequestedStatus CorrectionStatus = "requested"
	CorrectionApprovedStatus  CorrectionStatus = "approved"
	CorrectionRejectedStatus  CorrectionStatus = "rejected"
)

// MaxCorrectionDong caps one correction, as the entitlement rules cap one
// owed line: it stops a slipped digit, not a real case.
const MaxCorrectionDong = 50_000_000

// Events of a correction stream (correction-<id>). The correction's effect
// is written by approval to the beneficiary's adjustments stream (and, for a
// reversal, to the payment stream); the correction stream itself moves no
// money.
type (
	CorrectionRequested struct {
		CorrectionID string         `json:"correction_id"`
		Kind         CorrectionKind `json:"kind"`
		CitizenID    string         `json:"citizen_id"`
		Program      string         `json:"program"`
		Period       domain.Period  `json:"period"`
		// TopUp is set when a reversal names a top-up obligation.
		TopUp       string       `json:"top_up,omitempty"`
		Amount      domain.Money `json:"amount"`
		Mode        RecoveryMode `json:"mode,omitempty"`
		Attempt     int          `json:"attempt,omitempty"` // reversal: the settled attempt
		Reason      string       `json:"reason"`
		DocumentRef string       `json:"document_ref"`
		RequestedBy string       `json:"requested_by"`
	}
	CorrectionApproved struct {
		CorrectionID string `json:"correction_id"`
		ApprovedBy   string `json:"approved_by"`
	}
	CorrectionRejected struct {
		CorrectionID string `json:"correction_id"`
		RejectedBy   string `json:"rejected_by"`
		Reason       string `json:"reason"`
	}
)

func (CorrectionRequested) EventType() string { return "CorrectionRequested.v1" }
func (CorrectionApproved) EventType() string  { return "CorrectionApproved.v1" }
func (CorrectionRejected) EventType() string  { return "CorrectionRejected.v1" }

// Correction is the state of a correction stream.
type Correction struct {
	Requested  CorrectionRequested
	Status     CorrectionStatus // "" before it is requested
	ApprovedBy string
	RejectedBy string
}

// Evolve returns the correction after e.
func (c Correction) Evolve(e domain.Event) Correction {
	switch e := e.(type) {
	case CorrectionRequested:
		c = Correction{Requested: e, Status: CorrectionRequestedStatus}
	case CorrectionApproved:
		c.Status, c.ApprovedBy = CorrectionApprovedStatus, e.ApprovedBy
	case CorrectionRejected:
		c.Status, c.RejectedBy = CorrectionRejectedStatus, e.RejectedBy
	}
	return c
}

// Obligation is the obligation a correction concerns: the one it tops up
// (a new top-up key) or reverses.
func (c Correction) Obligation() ObligationKey {
	r := c.Requested
	if r.Kind == CorrectTopUp {
		return ObligationKey{CitizenID: r.CitizenID, Program: r.Program, Period: r.Period, TopUp: r.CorrectionID}
	}
	return ObligationKey{CitizenID: r.CitizenID, Program: r.Program, Period: r.Period, TopUp: r.TopUp}
}

// RequestCorrection is the command a finance officer sends.
type RequestCorrection struct {
	CorrectionID string
	Kind         CorrectionKind
	CitizenID    string
	Program      string
	Period       domain.Period
	// TopUp names a top-up obligation to reverse (its correction ID).
	TopUp string
	// Amount of a top-up or recovery; a reversal takes the settled gross.
	Amount domain.Money
	Mode   RecoveryMode
	// Reason and DocumentRef are required: a correction is read by auditors
	// years later, next to the decision that justified it.
	Reason      string
	DocumentRef string
}

// Request decides RequestCorrection. For a reversal, ob is the obligation to
// reverse as loaded; it must be settled. A resent identical request is a
// read (nil, nil).
func (c Correction) Request(cmd RequestCorrection, ob Obligation, by domain.Actor) ([]domain.Event, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canManage(by.Role) {
		return nil, forbidRole(by, "request a correction")
	}
	if err := ValidateID("correction_id", cmd.CorrectionID); err != nil {
		return nil, err
	}
	if err := ValidateCitizenID("citizen_id", cmd.CitizenID); err != nil {
		return nil, err
	}
	if err := ValidateProgramCode("program", cmd.Program); err != nil {
		return nil, err
	}
	if cmd.Period.IsZero() {
		return nil, domain.Reject("required", "period", "is required: the period (YYYY-MM) the correction concerns")
	}
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	doc, err := domain.CleanText("document_ref", cmd.DocumentRef, 1, MaxDocumentRunes)
	if err != nil {
		return nil, err
	}
	ev := CorrectionRequested{CorrectionID: cmd.CorrectionID, Kind: cmd.Kind, CitizenID: cmd.CitizenID, Program: cmd.Program,
		Period: cmd.Period, Reason: reason, DocumentRef: doc, RequestedBy: by.UserID}
	switch cmd.Kind {
	case CorrectTopUp, CorrectRecovery:
		if err := checkCorrectionAmount(cmd.Amount); err != nil {
			return nil, err
		}
		ev.Amount = cmd.Amount
		if cmd.TopUp != "" {
			return nil, domain.Reject("invalid_correction", "top_up", "only a reversal names a top-up obligation")
		}
		if cmd.Kind == CorrectRecovery {
			if cmd.Mode != RecoverByOffset && cmd.Mode != RecoverAsReceivable {
				return nil, domain.Reject("invalid_mode", "mode", "must be %q or %q", RecoverByOffset, RecoverAsReceivable)
			}
			ev.Mode = cmd.Mode
		} else if cmd.Mode != "" {
			return nil, domain.Reject("invalid_mode", "mode", "a top-up has no recovery mode")
		}
	case CorrectReversal:
		if cmd.Mode != RecoverByOffset && cmd.Mode != RecoverAsReceivable {
			return nil, domain.Reject("invalid_mode", "mode", "must be %q or %q: how the reversed amount is recovered", RecoverByOffset, RecoverAsReceivable)
		}
		if cmd.TopUp != "" {
			if err := ValidateID("top_up", cmd.TopUp); err != nil {
				return nil, err
			}
		}
		ev.Mode, ev.TopUp = cmd.Mode, cmd.TopUp
		key := ObligationKey{CitizenID: cmd.CitizenID, Program: cmd.Program, Period: cmd.Period, TopUp: cmd.TopUp}
		last, ok := ob.Last()
		if !ok || ob.Key != key {
			return nil, domain.Rejectf(domain.NotFound, "payment_not_found", "period", "%s was never paid", key.Stream())
		}
		if last.Status != StatusSettled {
			return nil, domain.Rejectf(domain.Conflict, "not_settled", "period", "%s attempt %d is %s; only a settled payment is reversed", key.Stream(), last.Attempt, last.Status)
		}
		if !cmd.Amount.Amount.IsZero() && !cmd.Amount.Equal(last.Gross) {
			return nil, domain.Reject("invalid_amount", "amount", "a reversal takes the whole settled gross of %s, not %s", last.Gross, cmd.Amount)
		}
		ev.Amount, ev.Attempt = last.Gross, last.Attempt
	default:
		return nil, domain.Reject("invalid_kind", "kind", "must be %q, %q or %q", CorrectTopUp, CorrectRecovery, CorrectReversal)
	}
	if c.Status != "" {
		if sameRequest(c.Requested, ev) {
			return nil, nil
		}
		return nil, domain.Rejectf(domain.Conflict, "correction_exists", "correction_id", "correction %s already exists with other content", cmd.CorrectionID)
	}
	return []domain.Event{ev}, nil
}

func sameRequest(a, b CorrectionRequested) bool {
	return a.Kind == b.Kind && a.CitizenID == b.CitizenID && a.Program == b.Program && a.Period == b.Period &&
		a.TopUp == b.TopUp && a.Amount.Equal(b.Amount) && a.Mode == b.Mode && a.Reason == b.Reason &&
		a.DocumentRef == b.DocumentRef && a.RequestedBy == b.RequestedBy
}

func checkCorrectionAmount(m domain.Money) error {
	switch {
	case m.Currency != domain.VND || !m.IsWhole():
		return domain.Reject("invalid_amount", "amount", "must be a whole number of dong")
	case !m.IsPositive():
		return domain.Reject("invalid_amount", "amount", "must be more than 0 dong")
	case m.Cmp(domain.VNDAmount(MaxCorrectionDong)) > 0:
		return domain.Reject("amount_above_cap", "amount", "%s is above the cap of %d VND for one correction; check for a typo", m, MaxCorrectionDong)
	}
	return nil
}

func (c Correction) mustExist(id string) error {
	if c.Status == "" {
		return domain.Rejectf(domain.NotFound, "correction_not_found", "correction_id", "no correction %s", id)
	}
	return nil
}

// Approve decides approval by a second person. An already approved
// correction approved again by the same person is a read (the ledger then
// re-drives its effects, which are idempotent).
func (c Correction) Approve(id string, by domain.Actor) ([]domain.Event, error) {
	if err := c.mustExist(id); err != nil {
		return nil, err
	}
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canApprove(by.Role) {
		return nil, forbidRole(by, "approve a correction")
	}
	switch c.Status {
	case CorrectionApprovedStatus:
		if c.ApprovedBy == by.UserID {
			return nil, nil
		}
		return nil, domain.Rejectf(domain.Conflict, "already_approved", "correction_id", "correction %s was already approved by %s", id, c.ApprovedBy)
	case CorrectionRejectedStatus:
		return nil, domain.Rejectf(domain.Conflict, "already_rejected", "correction_id", "correction %s was rejected by %s", id, c.RejectedBy)
	}
	if by.UserID == c.Requested.RequestedBy {
		return nil, domain.Rejectf(domain.Forbidden, "self_approval", "", "correction %s was requested by %s; another person must approve it", id, c.Requested.RequestedBy)
	}
	return []domain.Event{CorrectionApproved{CorrectionID: id, ApprovedBy: by.UserID}}, nil
}

// Reject decides rejection by a second person, with a reason.
func (c Correction) Reject(id string, by domain.Actor, reason string) ([]domain.Event, error) {
	if err := c.mustExist(id); err != nil {
		return nil, err
	}
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canApprove(by.Role) {
		return nil, forbidRole(by, "reject a correction")
	}
	reason, err := domain.CleanText("reason", reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	switch c.Status {
	case CorrectionRejectedStatus:
		return nil, nil
	case CorrectionApprovedStatus:
		return nil, domain.Rejectf(domain.Conflict, "already_approved", "correction_id", "correction %s was approved by %s; history is not edited, request a new correction", id, c.ApprovedBy)
	}
	if by.UserID == c.Requested.RequestedBy {
		return nil, domain.Rejectf(domain.Forbidden, "self_approval", "", "correction %s was requested by %s; another person decides on it", id, c.Requested.RequestedBy)
	}
	return []domain.Event{CorrectionRejected{CorrectionID: id, RejectedBy: by.UserID, Reason: reason}}, nil
}

// Effects are the events an approved correction writes: to the obligation's
// payment stream (a reversal) and to the beneficiary's adjustments stream.
// Effects already written are left out, so that re-driving an approval after
// a crash completes it and writes nothing twice.
func (c Correction) Effects(ob Obligation, adj Adjustments) (payment, adjustments []domain.Event, err error) {
	if c.Status != CorrectionApprovedStatus {
		return nil, nil, domain.Rejectf(domain.Conflict, "not_approved", "correction_id", "correction %s is %s", c.Requested.CorrectionID, c.Status)
	}
	r := c.Requested
	switch r.Kind {
	case CorrectTopUp:
		if !adj.hasTopUp(r.CorrectionID) {
			adjustments = append(adjustments, TopUpGranted{CitizenID: r.CitizenID, Correction: r.CorrectionID, Obligation: c.Obligation(), Amount: r.Amount, Reason: r.Reason})
		}
	case CorrectRecovery:
		if !adj.hasRecovery(r.CorrectionID) {
			adjustments = append(adjustments, RecoveryRaised{CitizenID: r.CitizenID, Correction: r.CorrectionID, Kind: r.Kind, Program: r.Program, Amount: r.Amount, Mode: r.Mode})
		}
	case CorrectReversal:
		last, ok := ob.Attempt(r.Attempt)
		if !ok {
			return nil, nil, domain.Rejectf(domain.NotFound, "payment_not_found", "correction_id", "%s has no attempt %d", c.Obligation().Stream(), r.Attempt)
		}
		if last.Status != StatusReversed {
			if cur, _ := ob.Last(); cur.Attempt != r.Attempt || last.Status != StatusSettled {
				// The payment moved on since the request (returned, say):
				// the approver decided on facts that no longer hold.
				return nil, nil, domain.Rejectf(domain.Conflict, "not_settled", "correction_id",
					"%s attempt %d is %s now; reject this correction and request a new one", c.Obligation().Stream(), r.Attempt, last.Status)
			}
			ev, err := ob.Reverse(r.CorrectionID)
			if err != nil {
				return nil, nil, err
			}
			payment = append(payment, *ev)
		}
		if !adj.hasRecovery(r.CorrectionID) {
			adjustments = append(adjustments, RecoveryRaised{CitizenID: r.CitizenID, Correction: r.CorrectionID, Kind: r.Kind, Program: r.Program, Amount: last.Gross, Mode: r.Mode})
		}
	}
	return payment, adjustments, nil
}

func (a Adjustments) hasTopUp(corr string) bool {
	for _, t := range a.TopUps {
		if t.Correction == corr {
			return true
		}
	}
	return false
}

func (a Adjustments) hasRecovery(corr string) bool {
	for _, r := range a.Recoveries {
		if r.Correction == corr {
			return true
		}
	}
	return false
}
