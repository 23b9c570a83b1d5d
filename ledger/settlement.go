package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
)

// SettlementReport says what an import did, line by line for the lines it
// refused. Applied lines changed something; unchanged lines were already
// recorded with the same content (a resent file is all unchanged).
type SettlementReport struct {
	Lines     int                      `json:"lines"`
	Applied   int                      `json:"applied"`
	Unchanged int                      `json:"unchanged"`
	Rejected  []disbursement.Rejection `json:"rejected"`
}

// RecordSettlement records one answer of the bank (or of a ward cashier) for
// one payment. A refused answer is returned as the RuleError that says why.
func (l *Ledger) RecordSettlement(ctx context.Context, req Request, s disbursement.Settlement) (SettlementReport, error) {
	if err := l.authorizeSettlement(req); err != nil {
		return SettlementReport{}, err
	}
	s, err := s.Validate()
	if err != nil {
		return SettlementReport{}, err
	}
	meta, err := l.processMeta(req)
	if err != nil {
		return SettlementReport{}, err
	}
	changed, err := l.settle(ctx, meta, newRunView(l), s)
	if err != nil {
		return SettlementReport{}, err
	}
	rep := SettlementReport{Lines: 1}
	if changed {
		rep.Applied = 1
	} else {
		rep.Unchanged = 1
	}
	return rep, nil
}

// ImportSettlements imports a settlement file (layout:
// disbursement.SettlementHeader). Each line is all or nothing: it is checked
// against every payment line it touches before anything is written, and a
// refused line is reported with its number and reason while the other lines
// are imported. Importing the same file twice changes nothing the second
// time. A file that is not of the layout, or too large, is refused whole.
func (l *Ledger) ImportSettlements(ctx context.Context, req Request, r io.Reader) (SettlementReport, error) {
	if err := l.authorizeSettlement(req); err != nil {
		return SettlementReport{}, err
	}
	meta, err := l.processMeta(req)
	if err != nil {
		return SettlementReport{}, err
	}
	answers, rejected, err := disbursement.ParseSettlements(r)
	if err != nil {
		return SettlementReport{}, err
	}
	rep := SettlementReport{Lines: len(answers) + len(rejected), Rejected: rejected}
	// Two lines of one file about the same payment would race each other;
	// the first one counts and a different second one is refused, so the
	// outcome does not depend on scheduling.
	first := map[string]disbursement.Settlement{}
	var todo []disbursement.Settlement
	for _, s := range answers {
		if f, dup := first[s.PaymentID]; dup {
			if !sameAnswer(f, s) {
				rep.Rejected = append(rep.Rejected, disbursement.Rejection{Line: s.Line, PaymentID: s.PaymentID, Code: "duplicate_in_file",
					Message: fmt.Sprintf("line %d already answers payment %s differently", f.Line, s.PaymentID)})
			} else {
				rep.Unchanged++
			}
			continue
		}
		first[s.PaymentID] = s
		todo = append(todo, s)
	}
	runs := newRunView(l)
	outcome := make([]int, len(todo)) // 1 applied, 2 unchanged, 3 rejected
	rejects := make([]disbursement.Rejection, len(todo))
	err = forEach(ctx, len(todo), DefaultWorkers, func(ctx context.Context, i int) error {
		changed, err := l.settle(ctx, meta, runs, todo[i])
		switch {
		case err == nil && changed:
			outcome[i] = 1
		case err == nil:
			outcome[i] = 2
		default:
			if _, ok := domain.AsRuleError(err); !ok {
				return err
			}
			outcome[i], rejects[i] = 3, rejectionOf(todo[i], err)
		}
		return nil
	})
	if err != nil {
		return SettlementReport{}, fmt.Errorf("ledger: settlement import stopped (importing the file again completes it): %w", err)
	}
	for i, o := range outcome {
		switch o {
		case 1:
			rep.Applied++
		case 2:
			rep.Unchanged++
		case 3:
			rep.Rejected = append(rep.Rejected, rejects[i])
		}
	}
	sortRejections(rep.Rejected)
	return rep, nil
}

func (l *Ledger) authorizeSettlement(req Request) error {
	if !disbursement.CanRecordSettlement(req.Actor.Role) {
		return domain.Rejectf(domain.Forbidden, "role_not_allowed", "", "a %s may not record the bank's answers", req.Actor.Role)
	}
	return nil
}

func sameAnswer(a, b disbursement.Settlement) bool {
	sameAmount := (a.Amount == nil) == (b.Amount == nil) && (a.Amount == nil || a.Amount.Equal(*b.Amount))
	return a.Outcome == b.Outcome && a.Reference == b.Reference && a.At.Equal(b.At) && sameAmount && a.Reason == b.Reason && a.Detail == b.Detail
}

func rejectionOf(s disbursement.Settlement, err error) disbursement.Rejection {
	re, _ := domain.AsRuleError(err)
	msg := re.Message
	if re.Field != "" {
		msg = re.Field + ": " + msg
	}
	return disbursement.Rejection{Line: s.Line, PaymentID: s.PaymentID, Code: re.Code, Message: msg}
}

func sortRejections(rs []disbursement.Rejection) {
	slices.SortStableFunc(rs, func(a, b disbursement.Rejection) int { return a.Line - b.Line })
}

// settle applies one answer to every line of its payment. It first decides
// every line; only if none refuses does it write. It reports whether it
// wrote anything. A write that meets a concurrent change re-decides that
// line; a line already in the answered state decides nothing, so a retried
// or resent answer completes what is missing and writes nothing twice.
func (l *Ledger) settle(ctx context.Context, meta domain.Metadata, runs *runView, s disbursement.Settlement) (bool, error) {
	runID, err := disbursement.RunOfPayment(s.PaymentID)
	if err != nil {
		return false, err
	}
	run, err := runs.get(ctx, runID)
	if err != nil {
		return false, err
	}
	p, ok := run.payments[s.PaymentID]
	if !ok {
		return false, domain.Rejectf(domain.NotFound, "unknown_payment", "payment_id", "run %s has no payment %s", runID, s.PaymentID)
	}
	if !settledOnceReleased(run.status) {
		return false, domain.Rejectf(domain.Conflict, "not_released", "payment_id", "run %s is %s; it has not been sent to the bank", runID, run.status)
	}
	if s.Amount != nil && !s.Amount.Equal(p.net) {
		return false, domain.Reject("amount_mismatch", "amount", "payment %s is %s, the answer says %s", s.PaymentID, p.net, *s.Amount)
	}
	// Decide every line before writing any.
	type decided struct {
		line indexedLine
		ev   domain.Event
		rev  int64
	}
	ds := make([]decided, len(p.lines))
	for i, ln := range p.lines {
		ob, err := l.loadObligation(ctx, ln.obligation)
		if err != nil {
			return false, err
		}
		ev, err := ob.State.Settle(s)
		if err != nil {
			return false, err
		}
		ds[i] = decided{line: ln, ev: ev, rev: ob.Revision}
	}
	changed := false
	for _, d := range ds {
		wrote, err := l.settleLine(ctx, meta, s, d.line, d.ev, d.rev)
		if err != nil {
			return changed, err
		}
		changed = changed || wrote
		if err := l.releaseOffsetsOfUndone(ctx, meta, s, d.line); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// settleLine writes one line's decision, re-deciding on a concurrent change.
func (l *Ledger) settleLine(ctx context.Context, meta domain.Metadata, s disbursement.Settlement, ln indexedLine, ev domain.Event, rev int64) (bool, error) {
	step := "answer:" + s.PaymentID
	for attempt := 1; ; attempt++ {
		if ev == nil {
			return false, nil
		}
		_, err := l.appendDerived(ctx, ln.obligation.Stream(), expectAt(rev), meta, fmt.Sprintf("%s@%d", step, rev), []domain.Event{ev})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedRevision) || attempt >= fanoutAttempts {
			return false, fmt.Errorf("ledger: settle %s: %w", ln.obligation.Stream(), err)
		}
		ob, err := l.loadObligation(ctx, ln.obligation)
		if err != nil {
			return false, err
		}
		if ev, err = ob.State.Settle(s); err != nil {
			return false, err
		}
		rev = ob.Revision
	}
}

// releaseOffsetsOfUndone makes the recoveries a failed or returned attempt
// kept back due again. It runs for every such answer, also a resent one, so
// that a crash between the two writes is healed by importing again.
func (l *Ledger) releaseOffsetsOfUndone(ctx context.Context, meta domain.Metadata, s disbursement.Settlement, ln indexedLine) error {
	if s.Outcome == disbursement.OutcomeSettled {
		return nil
	}
	ob, err := l.loadObligation(ctx, ln.obligation)
	if err != nil {
		return err
	}
	a, ok := ob.State.Attempt(ln.attempt)
	if !ok || len(a.Offsets) == 0 || !a.Status.Reopens() {
		return nil
	}
	_, err = decideAndAppend(ctx, l, disbursement.AdjustmentsStream(ln.obligation.CitizenID), meta, "unreserve:"+s.PaymentID, nil,
		func(adj disbursement.Adjustments) ([]domain.Event, error) {
			return adj.ReleaseOffsets(a.AttemptRef, a.Offsets, "payment "+string(a.Status)), nil
		})
	return err
}
