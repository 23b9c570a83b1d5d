package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
)

// Bounds of a statement import.
const (
	MaxStatementRuns = 20
	// reconEventsPerAppend keeps one append of result events under the
	// store's 8 MiB (each event is at most about 150 KiB).
	reconEventsPerAppend = 40
	// reconciledPerEvent bounds the payments one PaymentsReconciled holds.
	reconciledPerEvent = 1000
)

// ReconciliationReport is the result of matching a statement.
type ReconciliationReport struct {
	ReconciliationID string                           `json:"reconciliation_id"`
	Runs             []string                         `json:"runs"`
	FileSHA256       string                           `json:"file_sha256"`
	Counts           map[disbursement.MatchStatus]int `json:"counts"`
	Lines            []disbursement.LineResult        `json:"lines"`
	Missing          []disbursement.MissingPayment    `json:"missing"`
	// Replayed: the same statement was imported before under this ID; the
	// report is the recorded one and nothing was written.
	Replayed bool `json:"replayed"`
}

// ImportStatement matches a bank statement (layout:
// disbursement.StatementHeader) against the bank payments of the given
// released runs, and records the result in reconciliation-<id>: each line
// matched, amount mismatch, unknown reference, duplicate or not settled, and
// the settled payments missing from the statement. Matched payments are
// marked in their runs; a later statement that contradicts one of them is
// refused whole (contradicts_reconciled). Importing the same file under the
// same ID again returns the recorded report; another file under the same ID
// is refused (reconciliation_exists).
func (l *Ledger) ImportStatement(ctx context.Context, req Request, id string, runIDs []string, r io.Reader) (ReconciliationReport, error) {
	if !disbursement.CanRecordSettlement(req.Actor.Role) {
		return ReconciliationReport{}, domain.Rejectf(domain.Forbidden, "role_not_allowed", "", "a %s may not import bank statements", req.Actor.Role)
	}
	if err := disbursement.ValidateID("reconciliation_id", id); err != nil {
		return ReconciliationReport{}, err
	}
	runIDs = slices.Sorted(slices.Values(runIDs))
	runIDs = slices.Compact(runIDs)
	if len(runIDs) == 0 || len(runIDs) > MaxStatementRuns {
		return ReconciliationReport{}, domain.Reject("invalid_runs", "runs", "must name 1 to %d runs the statement covers", MaxStatementRuns)
	}
	meta, err := l.processMeta(req)
	if err != nil {
		return ReconciliationReport{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(r, disbursement.MaxFileBytes+1))
	if err != nil {
		return ReconciliationReport{}, fmt.Errorf("ledger: read statement: %w", err)
	}
	if len(raw) > disbursement.MaxFileBytes {
		return ReconciliationReport{}, domain.Reject("file_too_large", "file", "a statement may have at most %d bytes", disbursement.MaxFileBytes)
	}
	sum := sha256.Sum256(raw)
	sha := hex.EncodeToString(sum[:])
	stream := disbursement.ReconciliationStream(id)
	prev, err := Load[disbursement.ReconciliationState](ctx, l, stream)
	if err != nil {
		return ReconciliationReport{}, err
	}
	if imp := prev.State.Imported; imp != nil {
		if imp.FileSHA256 != sha || !slices.Equal(imp.Runs, runIDs) {
			return ReconciliationReport{}, domain.Rejectf(domain.Conflict, "reconciliation_exists", "reconciliation_id",
				"reconciliation %s was imported from another file or for other runs; use a new ID", id)
		}
		if prev.State.Completed != nil {
			if err := l.markReconciled(ctx, meta, id, prev.State.Lines); err != nil {
				return ReconciliationReport{}, err
			}
			return reconReport(id, prev.State, true), nil
		}
	}
	lines, err := disbursement.ParseStatement(bytes.NewReader(raw))
	if err != nil {
		return ReconciliationReport{}, err
	}
	expected, err := l.expectedPayments(ctx, runIDs)
	if err != nil {
		return ReconciliationReport{}, err
	}
	res, err := disbursement.Reconcile(lines, expected)
	if err != nil {
		return ReconciliationReport{}, err
	}
	events := disbursement.ReconciliationEvents(id, runIDs, sha, len(lines), req.Actor.UserID, res)
	// A large result takes several appends. An import interrupted between
	// them resumes after the events already written.
	for i := int(prev.Revision + 1); i < len(events); i += reconEventsPerAppend {
		part := events[i:min(i+reconEventsPerAppend, len(events))]
		_, err := l.appendDerived(ctx, stream, expectAt(int64(i)-1), meta, fmt.Sprintf("statement:%s:%d", sha, i), part)
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			return ReconciliationReport{}, domain.Rejectf(domain.Conflict, "reconciliation_in_progress", "reconciliation_id",
				"reconciliation %s is being imported by another request; import again to read its result", id)
		}
		if err != nil {
			return ReconciliationReport{}, fmt.Errorf("ledger: record reconciliation %s: %w", id, err)
		}
	}
	final, err := Load[disbursement.ReconciliationState](ctx, l, stream)
	if err != nil {
		return ReconciliationReport{}, err
	}
	if err := l.markReconciled(ctx, meta, id, final.State.Lines); err != nil {
		return ReconciliationReport{}, err
	}
	return reconReport(id, final.State, false), nil
}

func reconReport(id string, s disbursement.ReconciliationState, replayed bool) ReconciliationReport {
	rep := ReconciliationReport{ReconciliationID: id, Lines: s.Lines, Missing: s.Missing, Replayed: replayed}
	if s.Imported != nil {
		rep.Runs, rep.FileSHA256 = s.Imported.Runs, s.Imported.FileSHA256
	}
	if s.Completed != nil {
		rep.Counts = s.Completed.Counts
	}
	return rep
}

// LoadReconciliation reads the recorded report of a statement import.
func (l *Ledger) LoadReconciliation(ctx context.Context, id string) (ReconciliationReport, error) {
	if err := disbursement.ValidateID("reconciliation_id", id); err != nil {
		return ReconciliationReport{}, err
	}
	ld, err := Load[disbursement.ReconciliationState](ctx, l, disbursement.ReconciliationStream(id))
	if err != nil {
		return ReconciliationReport{}, err
	}
	if ld.State.Imported == nil {
		return ReconciliationReport{}, domain.Rejectf(domain.NotFound, "reconciliation_not_found", "reconciliation_id", "no reconciliation %s", id)
	}
	return reconReport(id, ld.State, true), nil
}

// expectedPayments lists the bank payments of the runs with the status our
// records give them, in the runs' order.
func (l *Ledger) expectedPayments(ctx context.Context, runIDs []string) ([]disbursement.ExpectedPayment, error) {
	var out []disbursement.ExpectedPayment
	for _, runID := range runIDs {
		ld, err := l.releasedRun(ctx, runID)
		if err != nil {
			return nil, err
		}
		run := ld.State
		var ps []*disbursement.RunPayment
		for _, pid := range run.PaymentIDs {
			if p := run.Payments[pid]; p.Payee.Method == disbursement.MethodBank && p.Net().IsPositive() {
				ps = append(ps, p)
			}
		}
		exp := make([]disbursement.ExpectedPayment, len(ps))
		err = forEach(ctx, len(ps), DefaultWorkers, func(ctx context.Context, i int) error {
			p := ps[i]
			first := p.Lines[0]
			ob, err := l.loadObligation(ctx, first.Obligation)
			if err != nil {
				return err
			}
			e := disbursement.ExpectedPayment{PaymentID: p.PaymentID, Net: p.Net()}
			if a, ok := ob.State.Attempt(first.Attempt); ok {
				e.Status = a.Status
			}
			if rec, ok := run.Reconciled[p.PaymentID]; ok {
				e.Reconciled = &rec
			}
			exp[i] = e
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, exp...)
	}
	return out, nil
}

// markReconciled records the matched payments in their runs. It is
// idempotent (derived IDs per reconciliation and part), so a resent import
// completes an interrupted marking.
func (l *Ledger) markReconciled(ctx context.Context, meta domain.Metadata, id string, lines []disbursement.LineResult) error {
	byRun := map[string][]disbursement.ReconciledPayment{}
	var runs []string
	for _, ln := range lines {
		if ln.Status != disbursement.Matched {
			continue
		}
		runID, err := disbursement.RunOfPayment(ln.Reference)
		if err != nil {
			return err
		}
		if _, ok := byRun[runID]; !ok {
			runs = append(runs, runID)
		}
		byRun[runID] = append(byRun[runID], disbursement.ReconciledPayment{PaymentID: ln.Reference, Amount: ln.Amount, Transaction: ln.Transaction})
	}
	for _, runID := range runs {
		ps := byRun[runID]
		for part, i := 0, 0; i < len(ps); part, i = part+1, i+reconciledPerEvent {
			ev := disbursement.PaymentsReconciled{RunID: runID, Reconciliation: id, Payments: ps[i:min(i+reconciledPerEvent, len(ps))]}
			_, err := l.appendDerived(ctx, disbursement.RunStream(runID), eventstore.StreamExists(), meta,
				fmt.Sprintf("reconciled:%s:%d", id, part), []domain.Event{ev})
			if err != nil {
				return fmt.Errorf("ledger: mark run %s reconciled by %s: %w", runID, id, err)
			}
		}
	}
	return nil
}
