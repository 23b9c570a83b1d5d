package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
)

// RunSummary is what a run command reports: the run's state after it, and
// the revision of its stream (the ETag).
type RunSummary struct {
	RunID         string                 `json:"run_id"`
	Status        disbursement.RunStatus `json:"status"`
	Scope         disbursement.Scope     `json:"scope"`
	Budget        disbursement.Budget    `json:"budget"`
	OpenedBy      string                 `json:"opened_by"`
	CalculatedBy  string                 `json:"calculated_by,omitempty"`
	ApprovedBy    string                 `json:"approved_by,omitempty"`
	ReleasedBy    string                 `json:"released_by,omitempty"`
	CancelledBy   string                 `json:"cancelled_by,omitempty"`
	Pages         int                    `json:"pages"`
	Beneficiaries int                    `json:"beneficiaries"`
	Payments      int                    `json:"payments"`
	Lines         int                    `json:"lines"`
	Skipped       int                    `json:"skipped"`
	Gross         domain.Money           `json:"gross"`
	Net           domain.Money           `json:"net"`
	Revision      int64                  `json:"revision"`
	Position      eventstore.Position    `json:"position"`
	Wards         []string               `json:"cash_wards,omitempty"`
	// Problems are beneficiaries the calculation could not pay (the first
	// MaxProblemsShown of ProblemCount).
	ProblemCount int                    `json:"problem_count"`
	Problems     []disbursement.Problem `json:"problems,omitempty"`
}

// MaxProblemsShown bounds the problems a summary carries; the run stream
// holds them all.
const MaxProblemsShown = 100

func summarize(ld Loaded[disbursement.Run]) RunSummary {
	r := ld.State
	return RunSummary{
		RunID: r.ID, Status: r.Status, Scope: r.Scope, Budget: r.Budget, OpenedBy: r.OpenedBy, CalculatedBy: r.CalculatedBy,
		ApprovedBy: r.ApprovedBy, ReleasedBy: r.ReleasedBy, CancelledBy: r.CancelledBy, Pages: r.Pages,
		Beneficiaries: r.Beneficiaries, Payments: len(r.Payments), Lines: r.Lines, Skipped: r.Skipped,
		Gross: r.Gross, Net: r.Net, Revision: ld.Revision, Position: ld.Position, Wards: disbursement.Wards(r),
		ProblemCount: len(r.Problems), Problems: r.Problems[:min(len(r.Problems), MaxProblemsShown)],
	}
}

// afterFanout moves a summary's position past the per-payment events a
// command wrote after its run event, so that a client waiting for that
// position (read-your-writes) sees every payment the command touched. The
// log's head is at or after all of them once they are acknowledged.
func (l *Ledger) afterFanout(ctx context.Context, s RunSummary) (RunSummary, error) {
	head, err := l.store.Head(ctx)
	if err != nil {
		return RunSummary{}, fmt.Errorf("ledger: read the log head: %w", err)
	}
	if head.Compare(s.Position) > 0 {
		s.Position = head
	}
	return s, nil
}

// LoadRun reads a run. An unknown run is a NotFound RuleError.
func (l *Ledger) LoadRun(ctx context.Context, runID string) (Loaded[disbursement.Run], error) {
	if err := disbursement.ValidateID("run_id", runID); err != nil {
		return Loaded[disbursement.Run]{}, err
	}
	ld, err := Load[disbursement.Run](ctx, l, disbursement.RunStream(runID))
	if err != nil {
		return ld, err
	}
	if !ld.State.Exists() {
		return ld, domain.Rejectf(domain.NotFound, "run_not_found", "run_id", "no payout run %s", runID)
	}
	return ld, nil
}

// RunStatus summarizes a run.
func (l *Ledger) RunStatus(ctx context.Context, runID string) (RunSummary, error) {
	ld, err := l.LoadRun(ctx, runID)
	if err != nil {
		return RunSummary{}, err
	}
	return summarize(ld), nil
}

// runCommand runs a decision on the run stream through Handle and returns
// the run after it.
func (l *Ledger) runCommand(ctx context.Context, req Request, runID string, cmd any, decide func(disbursement.Run) ([]domain.Event, error)) (Loaded[disbursement.Run], error) {
	if err := disbursement.ValidateID("run_id", runID); err != nil {
		return Loaded[disbursement.Run]{}, err
	}
	stream := disbursement.RunStream(runID)
	res, err := Handle(ctx, l, stream, req, cmd, func(r disbursement.Run) ([]domain.Event, error) {
		if !r.Exists() {
			r.ID = runID
		}
		return decide(r)
	})
	if err != nil {
		return Loaded[disbursement.Run]{}, err
	}
	// The run as the command left it, without reading its stream again
	// (a run of a city's month is tens of thousands of lines). A replay
	// reads it: the result's position is then the first run's.
	if r, ok := res.State.(disbursement.Run); ok && r.Exists() && !res.Replayed {
		return Loaded[disbursement.Run]{State: r, Revision: res.StateRevision, Position: res.Position}, nil
	}
	return l.LoadRun(ctx, runID)
}

// OpenRun opens a payout run: its periods, programs, districts and budget.
// Re-sending the same command is a read; the same run ID with another scope
// is refused (run_exists).
func (l *Ledger) OpenRun(ctx context.Context, req Request, cmd disbursement.OpenRun) (RunSummary, error) {
	ld, err := l.runCommand(ctx, req, cmd.RunID, cmd, func(r disbursement.Run) ([]domain.Event, error) {
		return r.Open(cmd, req.Actor)
	})
	if err != nil {
		return RunSummary{}, err
	}
	return summarize(ld), nil
}

// ApproveRun approves a calculated run. The approver must be neither the
// user who opened it nor the one who calculated it (self_approval,
// Forbidden), and the run must fit its budget (over_budget).
func (l *Ledger) ApproveRun(ctx context.Context, req Request, runID string) (RunSummary, error) {
	ld, err := l.runCommand(ctx, req, runID, struct{ Approve string }{runID}, func(r disbursement.Run) ([]domain.Event, error) {
		return r.Approve(req.Actor)
	})
	if err != nil {
		return RunSummary{}, err
	}
	return summarize(ld), nil
}

// ReleaseRun releases an approved run: the run is marked released (from then
// on it cannot be cancelled), then every payment line is released to its
// payment stream; lines fully kept back by recoveries settle at once. A
// release interrupted half way is completed by calling ReleaseRun again. The
// bank file and the cash lists are then read with BankFile and CashList.
func (l *Ledger) ReleaseRun(ctx context.Context, req Request, runID string) (RunSummary, error) {
	ld, err := l.runCommand(ctx, req, runID, struct{ Release string }{runID}, func(r disbursement.Run) ([]domain.Event, error) {
		return r.Release(req.Actor)
	})
	if err != nil {
		return RunSummary{}, err
	}
	meta, err := l.processMeta(req)
	if err != nil {
		return RunSummary{}, err
	}
	lines := runLines(ld.State)
	err = forEach(ctx, len(lines), DefaultWorkers, func(ctx context.Context, i int) error {
		pl := lines[i]
		_, err := decideAndAppend(ctx, l, pl.line.Obligation.Stream(), meta, "release:"+runID, func(o *disbursement.Obligation) { o.Key = pl.line.Obligation },
			func(o disbursement.Obligation) ([]domain.Event, error) {
				ev, err := o.Release(runID)
				if err != nil || ev == nil {
					return nil, err
				}
				out := []domain.Event{*ev}
				if pl.payee.Method == disbursement.MethodOffset {
					// Nothing to hand over: the line settles as it is released.
					out = append(out, disbursement.PaymentSettled{AttemptRef: ev.AttemptRef, Method: disbursement.MethodOffset,
						Net: ev.Net, Reference: "offset", SettledAt: l.cfg.Clock().UTC()})
				}
				return out, nil
			})
		return err
	})
	if err != nil {
		return RunSummary{}, fmt.Errorf("ledger: release run %s (call ReleaseRun again to complete it): %w", runID, err)
	}
	return l.afterFanout(ctx, summarize(ld))
}

// CancelRun cancels a run before release, with a reason: the run is marked
// cancelled, then every claimed line is withdrawn from its payment stream,
// so that its obligation is owed again. An interrupted cancellation is
// completed by calling CancelRun again.
func (l *Ledger) CancelRun(ctx context.Context, req Request, runID, reason string) (RunSummary, error) {
	ld, err := l.runCommand(ctx, req, runID, struct{ Cancel, Reason string }{runID, reason}, func(r disbursement.Run) ([]domain.Event, error) {
		return r.Cancel(req.Actor, reason)
	})
	if err != nil {
		return RunSummary{}, err
	}
	meta, err := l.processMeta(req)
	if err != nil {
		return RunSummary{}, err
	}
	why := "run " + runID + " was cancelled"
	lines := runLines(ld.State)
	err = forEach(ctx, len(lines), DefaultWorkers, func(ctx context.Context, i int) error {
		k := lines[i].line.Obligation
		_, err := decideAndAppend(ctx, l, k.Stream(), meta, "cancel:"+runID, func(o *disbursement.Obligation) { o.Key = k },
			func(o disbursement.Obligation) ([]domain.Event, error) {
				ev, err := o.Cancel(runID, why)
				if err != nil || ev == nil {
					return nil, err
				}
				return []domain.Event{*ev}, nil
			})
		return err
	})
	if err != nil {
		return RunSummary{}, fmt.Errorf("ledger: cancel run %s (call CancelRun again to complete it): %w", runID, err)
	}
	return l.afterFanout(ctx, summarize(ld))
}

// CloseRun closes a released run once every line has the bank's answer.
func (l *Ledger) CloseRun(ctx context.Context, req Request, runID string) (RunSummary, error) {
	ld, err := l.LoadRun(ctx, runID)
	if err != nil {
		return RunSummary{}, err
	}
	pending := 0
	if ld.State.Status == disbursement.RunReleased {
		lines := runLines(ld.State)
		states := make([]disbursement.Status, len(lines))
		err := forEach(ctx, len(lines), DefaultWorkers, func(ctx context.Context, i int) error {
			ob, err := l.loadObligation(ctx, lines[i].line.Obligation)
			if err != nil {
				return err
			}
			if a, ok := ob.State.Attempt(lines[i].line.Attempt); ok {
				states[i] = a.Status
			}
			return nil
		})
		if err != nil {
			return RunSummary{}, err
		}
		for _, s := range states {
			if s == disbursement.StatusIssued || s == disbursement.StatusReleased {
				pending++
			}
		}
	}
	ld, err = l.runCommand(ctx, req, runID, struct{ Close string }{runID}, func(r disbursement.Run) ([]domain.Event, error) {
		return r.Close(req.Actor, pending)
	})
	if err != nil {
		return RunSummary{}, err
	}
	return summarize(ld), nil
}

// BankFile writes the bank transfer file of a released run (layout:
// disbursement.BankFileHeader, see docs/disbursement.md).
func (l *Ledger) BankFile(ctx context.Context, runID string, w io.Writer) error {
	ld, err := l.releasedRun(ctx, runID)
	if err != nil {
		return err
	}
	return disbursement.WriteBankFile(w, ld.State)
}

// CashList writes the cash list of one ward of a released run.
func (l *Ledger) CashList(ctx context.Context, runID, ward string, w io.Writer) error {
	ld, err := l.releasedRun(ctx, runID)
	if err != nil {
		return err
	}
	return disbursement.WriteCashList(w, ld.State, ward)
}

func (l *Ledger) releasedRun(ctx context.Context, runID string) (Loaded[disbursement.Run], error) {
	ld, err := l.LoadRun(ctx, runID)
	if err != nil {
		return ld, err
	}
	if s := ld.State.Status; s != disbursement.RunReleased && s != disbursement.RunClosed {
		return ld, domain.Rejectf(domain.Conflict, "not_released", "run_id", "run %s is %s; its files exist once it is released", runID, s)
	}
	return ld, nil
}

// plannedLine is a run line with the payee of its payment.
type plannedLine struct {
	paymentID string
	payee     disbursement.Payee
	line      disbursement.RunLine
}

func runLines(r disbursement.Run) []plannedLine {
	var out []plannedLine
	for _, id := range r.PaymentIDs {
		p := r.Payments[id]
		for _, ln := range p.Lines {
			out = append(out, plannedLine{paymentID: id, payee: p.Payee, line: ln})
		}
	}
	return out
}

// runCancelled reports whether a run was cancelled, by reading only its last
// event: cancellation is final and nothing is appended after it.
func (l *Ledger) runCancelled(ctx context.Context, runID string) (bool, error) {
	recs, err := l.store.ReadStream(ctx, disbursement.RunStream(runID), eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 1})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ledger: status of run %s: %w", runID, err)
	}
	return len(recs) == 1 && recs[0].Type == disbursement.PayoutRunCancelled{}.EventType(), nil
}
