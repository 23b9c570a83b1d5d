package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
)

// Bounds of a calculation.
const (
	// DefaultPageSize beneficiaries are calculated and recorded together; a
	// crash loses at most one page of work, which the next call redoes.
	DefaultPageSize = 500
	MaxPageSize     = 1000
	// linesPerPart bounds the lines of one PayoutRunPaymentsCalculated event
	// (about 450 bytes each with the payee), well under the store's 256 KiB.
	linesPerPart = 250
)

// CalculateOptions tune a calculation; the zero value takes the defaults.
type CalculateOptions struct {
	PageSize int // beneficiaries per page, 1..MaxPageSize
	Workers  int // beneficiaries calculated at once, 1..MaxWorkers
	// Progress, when set, is called after every recorded page, so that a
	// long calculation is never silent.
	Progress func(CalculationProgress)
}

// CalculationProgress is reported after every page.
type CalculationProgress struct {
	RunID         string
	Pages         int
	Beneficiaries int
	Payments      int
	Lines         int
	Skipped       int
	Problems      int
	Net           domain.Money
	Cursor        string
	Done          bool
}

// CalculateRun calculates an opened run: for every beneficiary the roster
// lists (a page at a time, in citizen ID order), it computes what the
// entitlements and approved top-ups owe in the run's scope, claims every
// obligation still owed by appending PaymentIssued to its payment stream at
// the revision it loaded, and records the page in the run. An obligation
// already paid or claimed by another run is skipped: two runs, or two
// replicas, racing for it cannot both append. When the roster is exhausted
// the run becomes calculated.
//
// The calculation resumes where it stopped: calling it again after a crash,
// a timeout or a cancelled context continues after the last recorded page,
// and redoing a page writes nothing twice. Calling it on a calculated run is
// a read.
func (l *Ledger) CalculateRun(ctx context.Context, req Request, runID string, roster Roster, opt CalculateOptions) (RunSummary, error) {
	if opt.PageSize == 0 {
		opt.PageSize = DefaultPageSize
	}
	if opt.PageSize < 1 || opt.PageSize > MaxPageSize {
		return RunSummary{}, domain.Reject("invalid_page_size", "page_size", "must be 1 to %d", MaxPageSize)
	}
	opt.Workers = workersOr(opt.Workers)
	meta, err := l.processMeta(req)
	if err != nil {
		return RunSummary{}, err
	}
	ld, err := l.LoadRun(ctx, runID)
	if err != nil {
		return RunSummary{}, err
	}
	switch ld.State.Status {
	case disbursement.RunCalculated, disbursement.RunApproved, disbursement.RunReleased, disbursement.RunClosed:
		return summarize(ld), nil
	}
	if err := ld.State.CanCalculate(req.Actor); err != nil {
		return RunSummary{}, err
	}
	cat, _, err := l.Catalogue(ctx)
	if err != nil {
		return RunSummary{}, err
	}
	c := &calculation{l: l, meta: meta, run: ld.State, cat: cat, today: l.Today(), cancelled: map[string]bool{}}
	stream := disbursement.RunStream(runID)
	conflicts := 0
	// onConflict reloads the run after another writer moved it (a replica
	// recorded a page, or the run was cancelled). done is set when there is
	// nothing left for this call to do.
	onConflict := func() (done bool, err error) {
		if conflicts++; conflicts > fanoutAttempts {
			return true, fmt.Errorf("ledger: calculate run %s: %w", runID, ErrTooManyConflicts)
		}
		if ld, err = l.LoadRun(ctx, runID); err != nil {
			return true, err
		}
		switch ld.State.Status {
		case disbursement.RunOpened:
			c.run = ld.State
			return false, nil
		case disbursement.RunCancelled:
			return true, ld.State.CanCalculate(req.Actor)
		}
		return true, nil // another replica finished it
	}
	for {
		page := ld.State.Pages + 1
		// A page started and not recorded (a crash) is redone with the same
		// beneficiaries; otherwise the roster gives the next ones, and they
		// are recorded before anything is claimed.
		redo := ld.State.Pending != nil
		var ids []string
		if redo {
			ids = ld.State.Pending.CitizenIDs
		} else {
			ids, err = roster.CitizenIDs(ctx, ld.State.Scope.Districts, ld.State.Cursor, opt.PageSize)
			if err != nil {
				return RunSummary{}, fmt.Errorf("ledger: roster after %q: %w", ld.State.Cursor, err)
			}
			if err := checkRosterPage(ids, ld.State.Cursor, opt.PageSize); err != nil {
				return RunSummary{}, err
			}
			if len(ids) == 0 {
				break
			}
			start := disbursement.PayoutRunPageStarted{RunID: runID, Page: page, After: ld.State.Cursor, CitizenIDs: ids, By: req.Actor.UserID}
			res, err := l.appendDerived(ctx, stream, eventstore.Exact(uint64(ld.Revision)), meta, fmt.Sprintf("start:%d", page), []domain.Event{start})
			if errors.Is(err, eventstore.ErrWrongExpectedRevision) || errors.Is(err, eventstore.ErrIdempotencyConflict) {
				if done, err := onConflict(); done {
					return summarize(ld), err
				}
				continue
			}
			if err != nil {
				return RunSummary{}, fmt.Errorf("ledger: start page %d of run %s: %w", page, runID, err)
			}
			ld.State = ld.State.Evolve(start)
			ld.Revision, ld.Position = int64(res.NextRevision), res.Position
			c.run = ld.State
		}
		events, err := c.page(ctx, page, ids, opt.Workers, redo)
		if err != nil {
			return RunSummary{}, err
		}
		res, err := l.appendDerived(ctx, stream, eventstore.Exact(uint64(ld.Revision)), meta, fmt.Sprintf("page:%d", page), events)
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) || errors.Is(err, eventstore.ErrIdempotencyConflict) {
			if done, err := onConflict(); done {
				return summarize(ld), err
			}
			continue
		}
		if err != nil {
			return RunSummary{}, fmt.Errorf("ledger: record page %d of run %s: %w", page, runID, err)
		}
		// Fold the page into the state we hold rather than reloading the
		// run: a reload per page would make the calculation quadratic.
		for _, ev := range events {
			ld.State = ld.State.Evolve(ev)
		}
		ld.Revision, ld.Position = int64(res.NextRevision), res.Position
		c.run = ld.State
		if opt.Progress != nil {
			opt.Progress(progressOf(ld.State, false))
		}
	}
	ld, err = l.runCommand(ctx, req, runID, struct{ Calculate string }{runID}, func(r disbursement.Run) ([]domain.Event, error) {
		return r.CompleteCalculation(req.Actor)
	})
	if err != nil {
		return RunSummary{}, err
	}
	if opt.Progress != nil {
		opt.Progress(progressOf(ld.State, true))
	}
	return summarize(ld), nil
}

func progressOf(r disbursement.Run, done bool) CalculationProgress {
	return CalculationProgress{RunID: r.ID, Pages: r.Pages, Beneficiaries: r.Beneficiaries, Payments: len(r.Payments), Lines: r.Lines,
		Skipped: r.Skipped, Problems: len(r.Problems), Net: r.Net, Cursor: r.Cursor, Done: done}
}

// checkRosterPage refuses a roster page that would make the calculation skip
// or repeat beneficiaries, or loop: IDs must ascend strictly from after.
func checkRosterPage(ids []string, after string, limit int) error {
	if len(ids) > limit {
		return fmt.Errorf("ledger: roster returned %d IDs, asked for at most %d", len(ids), limit)
	}
	prev := after
	for _, id := range ids {
		if id <= prev {
			return fmt.Errorf("ledger: roster returned %q after %q: IDs must ascend", id, prev)
		}
		prev = id
	}
	return nil
}

// calculation is the state shared by the pages of one CalculateRun call.
type calculation struct {
	l     *Ledger
	meta  domain.Metadata
	run   disbursement.Run // read only while a page runs
	cat   entitlement.Catalogue
	today domain.Date

	mu        sync.Mutex
	cancelled map[string]bool // other runs' cancellation, looked up once per call
}

// benResult is what one beneficiary adds to a page.
type benResult struct {
	lines   []disbursement.PlannedLine
	skipped int
	problem *disbursement.Problem
}

// page calculates the beneficiaries of one page, claiming their
// obligations, and returns the events that record the page.
func (c *calculation) page(ctx context.Context, page int, ids []string, workers int, redo bool) ([]domain.Event, error) {
	results := make([]benResult, len(ids))
	err := forEach(ctx, len(ids), workers, func(ctx context.Context, i int) error {
		r, err := c.beneficiary(ctx, ids[i])
		if err == nil && redo {
			r.lines, err = c.leftovers(ctx, ids[i], r.lines)
		}
		if err != nil {
			return fmt.Errorf("ledger: calculate %s in run %s: %w", ids[i], c.run.ID, err)
		}
		results[i] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	head := disbursement.PayoutRunPaymentsCalculated{RunID: c.run.ID, Page: page, Part: 0, Cursor: ids[len(ids)-1], Beneficiaries: len(ids)}
	var lines []disbursement.PlannedLine
	for _, r := range results {
		head.Skipped += r.skipped
		if r.problem != nil {
			head.Problems = append(head.Problems, *r.problem)
		}
		lines = append(lines, r.lines...)
	}
	events := []domain.Event{head}
	for i := 0; i < len(lines); i += linesPerPart {
		events = append(events, disbursement.PayoutRunPaymentsCalculated{RunID: c.run.ID, Page: page, Part: len(events), Cursor: head.Cursor,
			Payments: disbursement.GroupPayments(lines[i:min(i+linesPerPart, len(lines))])})
	}
	return events, nil
}

// beneficiary calculates one beneficiary and claims what it is owed. A
// conflict on the beneficiary's adjustments stream (a correction approved
// meanwhile, another run reserving an offset) makes it start over.
func (c *calculation) beneficiary(ctx context.Context, citizenID string) (benResult, error) {
	for attempt := 1; ; attempt++ {
		r, retry, err := c.tryBeneficiary(ctx, citizenID)
		if !retry || err != nil {
			return r, err
		}
		if attempt >= fanoutAttempts {
			return r, fmt.Errorf("adjustments of %s: %w", citizenID, ErrTooManyConflicts)
		}
	}
}

func problem(citizenID string, err error) (benResult, bool, error) {
	re, ok := domain.AsRuleError(err)
	if !ok {
		return benResult{}, false, err
	}
	return benResult{problem: &disbursement.Problem{CitizenID: citizenID, Code: re.Code, Message: re.Error()}}, false, nil
}

func (c *calculation) tryBeneficiary(ctx context.Context, citizenID string) (benResult, bool, error) {
	l, run := c.l, c.run
	bl, err := Load[registry.Beneficiary](ctx, l, registry.Stream(citizenID))
	if err != nil {
		return benResult{}, false, err
	}
	b := bl.State
	if !b.Registered {
		return problem(citizenID, domain.Rejectf(domain.NotFound, "beneficiary_not_found", "citizen_id", "the roster lists %s, who is not registered", citizenID))
	}
	if len(run.Scope.Districts) > 0 && !slices.Contains(run.Scope.Districts, b.Address.DistrictCode) {
		return benResult{}, false, nil
	}
	owed, err := c.owed(b)
	if err != nil {
		return problem(citizenID, err)
	}
	adj, err := Load[disbursement.Adjustments](ctx, l, disbursement.AdjustmentsStream(citizenID))
	if err != nil {
		return benResult{}, false, err
	}
	cands, err := disbursement.Candidates(run.Scope, owed, adj.State)
	if err != nil {
		return benResult{}, false, err
	}
	if len(cands) == 0 {
		return benResult{}, false, nil
	}
	obs := make(map[string]disbursement.Obligation, len(cands))
	revs := make(map[string]int64, len(cands))
	for _, cand := range cands {
		ob, err := l.loadObligation(ctx, cand.Key)
		if err != nil {
			return benResult{}, false, err
		}
		obs[cand.Key.Stream()], revs[cand.Key.Stream()] = ob.State, ob.Revision
	}
	cancelled, err := c.cancelledRuns(ctx, obs, adj.State)
	if err != nil {
		return benResult{}, false, err
	}
	plan, err := disbursement.PlanBeneficiary(disbursement.PlanInput{RunID: run.ID, Scope: run.Scope, Owed: owed, Lines: cands,
		Adjustments: adj.State, Obligations: obs, RunCancelled: func(id string) bool { return cancelled[id] }})
	if err != nil {
		return problem(citizenID, err)
	}
	if len(plan.Reserve) > 0 {
		_, err := l.appendDerived(ctx, disbursement.AdjustmentsStream(citizenID), expectAt(adj.Revision), c.meta,
			fmt.Sprintf("reserve:%s@%d", run.ID, adj.Revision), plan.Reserve)
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			return benResult{}, true, nil
		}
		if err != nil {
			return benResult{}, false, err
		}
	}
	res := benResult{lines: plan.Held, skipped: len(plan.Skipped)}
	for _, cl := range plan.Claims {
		rev := revs[cl.Stream]
		_, err := l.appendDerived(ctx, cl.Stream, expectAt(rev), c.meta, fmt.Sprintf("issue:%s@%d", run.ID, rev), cl.Events)
		if err == nil {
			res.lines = append(res.lines, cl.PlannedLine)
			continue
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedRevision) && !errors.Is(err, eventstore.ErrIdempotencyConflict) {
			return benResult{}, false, err
		}
		// Lost the race for this obligation. If the winner is this very run
		// (another replica), the line is ours all the same.
		ob, err := l.loadObligation(ctx, cl.Line.Obligation)
		if err != nil {
			return benResult{}, false, err
		}
		if last, ok := ob.State.Last(); ok && last.RunID == run.ID && !last.Status.Reopens() {
			res.lines = append(res.lines, disbursement.PlannedLine{PaymentID: last.PaymentID, Payee: last.Payee,
				Line: disbursement.RunLine{Obligation: cl.Line.Obligation, Attempt: last.Attempt, Gross: last.Gross, Net: last.Net}})
			continue
		}
		res.skipped++
		if len(cl.Offsets) > 0 {
			ref := disbursement.AttemptRef{Obligation: cl.Line.Obligation, Attempt: cl.Line.Attempt, RunID: run.ID, PaymentID: cl.PaymentID}
			_, err := decideAndAppend(ctx, l, disbursement.AdjustmentsStream(citizenID), c.meta, "unreserve:"+run.ID, nil,
				func(a disbursement.Adjustments) ([]domain.Event, error) {
					return a.ReleaseOffsets(ref, cl.Offsets, "the obligation was claimed by another run"), nil
				})
			if err != nil {
				return benResult{}, false, err
			}
		}
	}
	return res, false, nil
}

// leftovers adds to lines the claims this run holds for a beneficiary that
// the plan did not include: when a page is redone after a crash, what the
// beneficiary is owed may have changed (an entitlement ended, the person
// moved district), but what the run claimed before the crash is the run's
// and must be in its record, to be released or cancelled with it.
func (c *calculation) leftovers(ctx context.Context, citizenID string, lines []disbursement.PlannedLine) ([]disbursement.PlannedLine, error) {
	have := map[string]bool{}
	for _, l := range lines {
		have[l.Line.Obligation.Stream()] = true
	}
	var keys []disbursement.ObligationKey
	for _, prog := range c.run.Scope.Programs {
		for _, p := range c.run.Scope.AllPeriods() {
			keys = append(keys, disbursement.ObligationKey{CitizenID: citizenID, Program: prog, Period: p})
		}
	}
	adj, err := Load[disbursement.Adjustments](ctx, c.l, disbursement.AdjustmentsStream(citizenID))
	if err != nil {
		return nil, err
	}
	for _, t := range adj.State.TopUps {
		keys = append(keys, t.Obligation)
	}
	for _, k := range keys {
		if have[k.Stream()] {
			continue
		}
		ob, err := c.l.loadObligation(ctx, k)
		if err != nil {
			return nil, err
		}
		if last, ok := ob.State.Last(); ok && last.RunID == c.run.ID && !last.Status.Reopens() {
			lines = append(lines, disbursement.PlannedLine{PaymentID: last.PaymentID, Payee: last.Payee,
				Line: disbursement.RunLine{Obligation: k, Attempt: last.Attempt, Gross: last.Gross, Net: last.Net}})
		}
	}
	return lines, nil
}

// cancelledRuns looks up, once per calculation, whether the other runs that
// hold a claim or a reservation of this beneficiary were cancelled.
func (c *calculation) cancelledRuns(ctx context.Context, obs map[string]disbursement.Obligation, adj disbursement.Adjustments) (map[string]bool, error) {
	var ids []string
	for _, ob := range obs {
		if last, ok := ob.Last(); ok && last.Status == disbursement.StatusIssued && last.RunID != c.run.ID {
			ids = append(ids, last.RunID)
		}
	}
	for _, r := range adj.Recoveries {
		for _, x := range r.Reservations {
			if x.RunID != c.run.ID {
				ids = append(ids, x.RunID)
			}
		}
	}
	out := map[string]bool{}
	for _, id := range ids {
		c.mu.Lock()
		v, ok := c.cancelled[id]
		c.mu.Unlock()
		if !ok {
			var err error
			if v, err = c.l.runCancelled(ctx, id); err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.cancelled[id] = v
			c.mu.Unlock()
		}
		out[id] = v
	}
	return out, nil
}

// owed is what the entitlement rules owe b in the run's scope, and the payee
// the registry names for today.
func (c *calculation) owed(b registry.Beneficiary) (disbursement.Owed, error) {
	out := disbursement.Owed{CitizenID: b.CitizenID}
	for _, p := range c.run.Scope.AllPeriods() {
		lines, err := b.Owed(c.cat, p, c.l.cfg.Limits)
		if err != nil {
			return out, err
		}
		for _, x := range lines {
			if !slices.Contains(c.run.Scope.Programs, x.Program) {
				continue
			}
			out.Lines = append(out.Lines, disbursement.OwedLine{
				Key:    disbursement.ObligationKey{CitizenID: b.CitizenID, Program: x.Program, Period: x.Period},
				Amount: x.Amount, Trace: traceOf(x),
			})
		}
	}
	if len(out.Lines) == 0 {
		return out, nil // nothing owed: the payee does not matter (it may be unresolvable)
	}
	rp, err := b.PayeeOn(c.today)
	if err != nil {
		return out, err
	}
	out.Payee = payeeOf(b, rp)
	return out, nil
}

// payeeOf maps the registry's payee to the disbursement's.
func payeeOf(b registry.Beneficiary, rp registry.Payee) disbursement.Payee {
	p := disbursement.Payee{CitizenID: b.CitizenID, Name: rp.Name, Method: disbursement.MethodCash,
		District: b.Address.DistrictCode, Ward: b.Address.WardCode}
	if rp.Proxy != nil {
		p.CitizenID, p.Proxy = rp.Proxy.CitizenID, true
	}
	if rp.Method == registry.BankTransfer && rp.BankAccount != nil {
		p.Method, p.BankCode, p.AccountNumber = disbursement.MethodBank, rp.BankAccount.BankCode, rp.BankAccount.AccountNumber
	}
	return p
}

// traceOf keeps the entitlement's trace in the payment, in words.
func traceOf(x entitlement.Line) disbursement.Trace {
	t := disbursement.Trace{Entitlement: x.EntitlementID}
	tr := x.Trace
	switch {
	case tr.BaseAmount != nil && tr.Coefficient != nil:
		ra := *tr.BaseAmount
		t.Rate, t.Decree = &ra, tr.BaseDecreeRef
		t.Rule = fmt.Sprintf("%s: %s %s (from %s) x %s, terms from %s", tr.Rule, tr.BaseLevel, tr.BaseAmount, tr.BaseFrom, tr.Coefficient, tr.TermsFrom)
	case tr.FixedAmount != nil:
		fa := *tr.FixedAmount
		t.Rate = &fa
		t.Rule = fmt.Sprintf("%s: %s, terms from %s", tr.Rule, tr.FixedAmount, tr.TermsFrom)
	default:
		t.Rule = strings.TrimSpace(string(tr.Rule))
	}
	return t
}
