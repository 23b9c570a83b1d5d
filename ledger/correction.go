package ledger

import (
	"context"
	"fmt"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// CorrectionSummary is a correction's state after a command.
type CorrectionSummary struct {
	CorrectionID string                           `json:"correction_id"`
	Status       disbursement.CorrectionStatus    `json:"status"`
	Request      disbursement.CorrectionRequested `json:"request"`
	ApprovedBy   string                           `json:"approved_by,omitempty"`
	RejectedBy   string                           `json:"rejected_by,omitempty"`
	Revision     int64                            `json:"revision"`
}

// LoadCorrection reads a correction. An unknown one is a NotFound RuleError.
func (l *Ledger) LoadCorrection(ctx context.Context, id string) (Loaded[disbursement.Correction], error) {
	if err := disbursement.ValidateID("correction_id", id); err != nil {
		return Loaded[disbursement.Correction]{}, err
	}
	ld, err := Load[disbursement.Correction](ctx, l, disbursement.CorrectionStream(id))
	if err != nil {
		return ld, err
	}
	if ld.State.Status == "" {
		return ld, domain.Rejectf(domain.NotFound, "correction_not_found", "correction_id", "no correction %s", id)
	}
	return ld, nil
}

func correctionSummary(id string, ld Loaded[disbursement.Correction]) CorrectionSummary {
	c := ld.State
	return CorrectionSummary{CorrectionID: id, Status: c.Status, Request: c.Requested, ApprovedBy: c.ApprovedBy, RejectedBy: c.RejectedBy, Revision: ld.Revision}
}

// RequestCorrection records a finance officer's correction: a top-up, a
// recovery or a reversal, with a reason and a document reference. It has no
// effect until another person approves it.
func (l *Ledger) RequestCorrection(ctx context.Context, req Request, cmd disbursement.RequestCorrection) (CorrectionSummary, error) {
	if err := disbursement.ValidateID("correction_id", cmd.CorrectionID); err != nil {
		return CorrectionSummary{}, err
	}
	var ob disbursement.Obligation
	if cmd.Kind == disbursement.CorrectReversal {
		k := disbursement.ObligationKey{CitizenID: cmd.CitizenID, Program: cmd.Program, Period: cmd.Period, TopUp: cmd.TopUp}
		if err := k.Validate(); err != nil {
			return CorrectionSummary{}, err
		}
		ld, err := l.loadObligation(ctx, k)
		if err != nil {
			return CorrectionSummary{}, err
		}
		ob = ld.State
	}
	stream := disbursement.CorrectionStream(cmd.CorrectionID)
	if _, err := Handle(ctx, l, stream, req, cmd, func(c disbursement.Correction) ([]domain.Event, error) {
		return c.Request(cmd, ob, req.Actor)
	}); err != nil {
		return CorrectionSummary{}, err
	}
	ld, err := l.LoadCorrection(ctx, cmd.CorrectionID)
	if err != nil {
		return CorrectionSummary{}, err
	}
	return correctionSummary(cmd.CorrectionID, ld), nil
}

// ApproveCorrection approves a correction by a person other than the one
// who requested it, and writes its effect: a top-up obligation or a recovery
// in the beneficiary's adjustments stream, and for a reversal the voided
// payment. The effect is checked before the approval is written; an approval
// interrupted before its effect is complete is completed by approving again
// (the same approver).
func (l *Ledger) ApproveCorrection(ctx context.Context, req Request, id string) (CorrectionSummary, error) {
	ld, err := l.LoadCorrection(ctx, id)
	if err != nil {
		return CorrectionSummary{}, err
	}
	// Check that the effect can be written (a reversed payment may have come
	// back meanwhile) before anybody approves it.
	preview := ld.State
	if _, err := preview.Approve(id, req.Actor); err != nil {
		return CorrectionSummary{}, err
	}
	preview.Status = disbursement.CorrectionApprovedStatus
	if err := l.correctionEffects(ctx, nil, preview, false); err != nil {
		return CorrectionSummary{}, err
	}
	if _, err := Handle(ctx, l, disbursement.CorrectionStream(id), req, struct{ Approve string }{id}, func(c disbursement.Correction) ([]domain.Event, error) {
		return c.Approve(id, req.Actor)
	}); err != nil {
		return CorrectionSummary{}, err
	}
	meta, err := l.processMeta(req)
	if err != nil {
		return CorrectionSummary{}, err
	}
	if ld, err = l.LoadCorrection(ctx, id); err != nil {
		return CorrectionSummary{}, err
	}
	if err := l.correctionEffects(ctx, &meta, ld.State, true); err != nil {
		return CorrectionSummary{}, fmt.Errorf("ledger: effect of correction %s (approve again to complete it): %w", id, err)
	}
	return correctionSummary(id, ld), nil
}

// correctionEffects decides the effects of an approved correction and, when
// write is set, appends them: first the payment stream, then the
// adjustments stream, each re-decided on a concurrent change.
func (l *Ledger) correctionEffects(ctx context.Context, meta *domain.Metadata, c disbursement.Correction, write bool) error {
	id := c.Requested.CorrectionID
	k := c.Obligation()
	adjStream := disbursement.AdjustmentsStream(c.Requested.CitizenID)
	decide := func(ob disbursement.Obligation, adj disbursement.Adjustments) ([]domain.Event, []domain.Event, error) {
		return c.Effects(ob, adj)
	}
	if !write {
		ob, err := l.loadObligation(ctx, k)
		if err != nil {
			return err
		}
		adj, err := Load[disbursement.Adjustments](ctx, l, adjStream)
		if err != nil {
			return err
		}
		_, _, err = decide(ob.State, adj.State)
		return err
	}
	if c.Requested.Kind == disbursement.CorrectReversal {
		_, err := decideAndAppend(ctx, l, k.Stream(), *meta, "correction:"+id, func(o *disbursement.Obligation) { o.Key = k },
			func(ob disbursement.Obligation) ([]domain.Event, error) {
				pay, _, err := decide(ob, disbursement.Adjustments{})
				return pay, err
			})
		if err != nil {
			return err
		}
	}
	ob, err := l.loadObligation(ctx, k)
	if err != nil {
		return err
	}
	_, err = decideAndAppend(ctx, l, adjStream, *meta, "correction:"+id, nil, func(adj disbursement.Adjustments) ([]domain.Event, error) {
		_, out, err := decide(ob.State, adj)
		return out, err
	})
	return err
}

// RejectCorrection rejects a correction, with a reason, by a person other
// than the one who requested it. It never takes effect.
func (l *Ledger) RejectCorrection(ctx context.Context, req Request, id, reason string) (CorrectionSummary, error) {
	if err := disbursement.ValidateID("correction_id", id); err != nil {
		return CorrectionSummary{}, err
	}
	if _, err := Handle(ctx, l, disbursement.CorrectionStream(id), req, struct{ Reject, Reason string }{id, reason}, func(c disbursement.Correction) ([]domain.Event, error) {
		return c.Reject(id, req.Actor, reason)
	}); err != nil {
		return CorrectionSummary{}, err
	}
	ld, err := l.LoadCorrection(ctx, id)
	if err != nil {
		return CorrectionSummary{}, err
	}
	return correctionSummary(id, ld), nil
}
