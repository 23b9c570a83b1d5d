package ledger

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
)

// A bank's answer names a payment; its lines (which obligation streams to
// settle) are recorded only in the payment's run, in the pages of the
// calculation. Loading the run for every answer would make a bank feed that
// posts 300,000 answers one by one quadratic. The settlement index keeps,
// for released runs, payment ID -> lines, built once from one load of the
// run and shared by every later answer.
//
// It is never stale: a released run's payments cannot change (pages are
// recorded only while a run is opened; after release only PayoutRunClosed
// and PaymentsReconciled follow), and every use first reads the run
// stream's last event (one event, backwards) to check the revision the
// entry was built at. For a released run, events appended since are read
// and checked to be of the kinds that leave payments alone; anything else
// drops the entry and reloads the run. A run not yet released is used only
// at the very revision it was built at (answers sent too early are refused
// without reloading the run each time).

// settlementIndexMaxLines bounds the lines the index holds across runs
// (about 100 bytes each, plus about 150 per payment): a month of Hanoi is
// 300,000 payments of one to three lines. The least recently used runs are
// evicted first; a single run larger than the bound is still held, alone,
// because the alternative is a reload per answer.
const settlementIndexMaxLines = 1_000_000

// settlementIndex is the cache; its zero value is ready to use. It is safe
// for concurrent use.
type settlementIndex struct {
	mu      sync.Mutex
	entries map[string]*list.Element // run ID -> element holding *indexedRun
	lru     list.List                // front: most recently used
	lines   int
	loading map[string]*indexFlight // one load per run at a time
	maxLine int                     // 0: settlementIndexMaxLines (tests lower it)
}

// indexedRun is what settlement needs of a run. It is read-only once built;
// a revision check that finds new harmless events makes a new one sharing
// the payments map.
type indexedRun struct {
	runID    string
	revision int64
	status   disbursement.RunStatus
	payments map[string]*indexedPayment
	lines    int
}

// indexedPayment is one payment's net amount (the bank states it) and its
// lines.
type indexedPayment struct {
	net   domain.Money
	lines []indexedLine
}

type indexedLine struct {
	obligation disbursement.ObligationKey
	attempt    int
}

type indexFlight struct {
	done chan struct{}
	run  *indexedRun
	err  error
}

func indexRun(ld Loaded[disbursement.Run]) *indexedRun {
	r := ld.State
	ir := &indexedRun{runID: r.ID, revision: ld.Revision, status: r.Status, payments: make(map[string]*indexedPayment, len(r.Payments))}
	for id, p := range r.Payments {
		ip := &indexedPayment{net: p.Net(), lines: make([]indexedLine, len(p.Lines))}
		for i, ln := range p.Lines {
			ip.lines[i] = indexedLine{obligation: ln.Obligation, attempt: ln.Attempt}
		}
		ir.payments[id] = ip
		ir.lines += len(p.Lines)
	}
	return ir
}

func settledOnceReleased(s disbursement.RunStatus) bool {
	return s == disbursement.RunReleased || s == disbursement.RunClosed
}

// paymentsOf returns the settlement view of a run: from the index when it
// holds the run at its current revision, else from one load (cached if the
// run is released).
func (l *Ledger) paymentsOf(ctx context.Context, runID string) (*indexedRun, error) {
	idx := &l.settlements
	if ir := idx.lookup(runID); ir != nil {
		fresh, err := l.revalidate(ctx, ir)
		if err != nil {
			return nil, err
		}
		if fresh != nil {
			idx.store(fresh)
			return fresh, nil
		}
		idx.drop(runID, ir)
	}
	return idx.load(runID, func() (*indexedRun, error) {
		ld, err := l.LoadRun(ctx, runID)
		if err != nil {
			return nil, err
		}
		return indexRun(ld), nil
	})
}

// revalidate checks a cached run against its stream: the same run if
// nothing was appended, a copy at the new revision if only harmless events
// were, nil if it must be reloaded.
func (l *Ledger) revalidate(ctx context.Context, ir *indexedRun) (*indexedRun, error) {
	stream := disbursement.RunStream(ir.runID)
	last, err := l.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 1})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: revision of run %s: %w", ir.runID, err)
	}
	if len(last) != 1 || int64(last[0].Revision) < ir.revision {
		return nil, nil
	}
	head := int64(last[0].Revision)
	if head == ir.revision {
		return ir, nil
	}
	if !settledOnceReleased(ir.status) {
		return nil, nil // its payments may have changed: rebuild
	}
	next := *ir
	for from := uint64(ir.revision + 1); int64(from) <= head; {
		recs, err := l.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: eventstore.Forwards, From: from, Limit: readPage})
		if err != nil {
			return nil, fmt.Errorf("ledger: read run %s from %d: %w", ir.runID, from, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			switch rec.Type {
			case disbursement.PaymentsReconciled{}.EventType():
			case disbursement.PayoutRunClosed{}.EventType():
				next.status = disbursement.RunClosed
			default:
				return nil, nil // not expected after release: rebuild from the stream
			}
			next.revision = int64(rec.Revision)
		}
		from = recs[len(recs)-1].Revision + 1
	}
	return &next, nil
}

func (x *settlementIndex) lookup(runID string) *indexedRun {
	x.mu.Lock()
	defer x.mu.Unlock()
	if el, ok := x.entries[runID]; ok {
		x.lru.MoveToFront(el)
		return el.Value.(*indexedRun)
	}
	return nil
}

// load builds a run's entry, once for all callers that miss at the same
// time: a 300,000-payment run is loaded once, not once per worker.
func (x *settlementIndex) load(runID string, build func() (*indexedRun, error)) (*indexedRun, error) {
	x.mu.Lock()
	if el, ok := x.entries[runID]; ok {
		// Built by another caller meanwhile at the current revision or
		// later: a run's payments do not change once it is cached.
		x.mu.Unlock()
		return el.Value.(*indexedRun), nil
	}
	if f, ok := x.loading[runID]; ok {
		x.mu.Unlock()
		<-f.done
		return f.run, f.err
	}
	f := &indexFlight{done: make(chan struct{})}
	if x.loading == nil {
		x.loading = map[string]*indexFlight{}
	}
	x.loading[runID] = f
	x.mu.Unlock()

	f.run, f.err = build()
	x.mu.Lock()
	// Stored before the flight ends, so that no caller finds neither and
	// loads the run a second time.
	if f.err == nil {
		x.storeLocked(f.run)
	}
	delete(x.loading, runID)
	x.mu.Unlock()
	close(f.done)
	return f.run, f.err
}

// store puts or replaces a run's entry and evicts the least recently used
// runs past the line bound (never the one just stored).
func (x *settlementIndex) store(ir *indexedRun) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.storeLocked(ir)
}

func (x *settlementIndex) storeLocked(ir *indexedRun) {
	if x.entries == nil {
		x.entries = map[string]*list.Element{}
	}
	if el, ok := x.entries[ir.runID]; ok {
		old := el.Value.(*indexedRun)
		if old.revision > ir.revision {
			return // a newer check won the race
		}
		x.lines += ir.lines - old.lines
		el.Value = ir
		x.lru.MoveToFront(el)
	} else {
		x.entries[ir.runID] = x.lru.PushFront(ir)
		x.lines += ir.lines
	}
	maxLines := x.maxLine
	if maxLines == 0 {
		maxLines = settlementIndexMaxLines
	}
	for x.lines > maxLines && x.lru.Len() > 1 {
		x.remove(x.lru.Back())
	}
}

// drop forgets a run's entry if it is still ir.
func (x *settlementIndex) drop(runID string, ir *indexedRun) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if el, ok := x.entries[runID]; ok && el.Value == ir {
		x.remove(el)
	}
}

func (x *settlementIndex) remove(el *list.Element) {
	ir := el.Value.(*indexedRun)
	x.lru.Remove(el)
	delete(x.entries, ir.runID)
	x.lines -= ir.lines
}

// runView is the runs one settlement call (an import, or one answer)
// touches, each checked against its stream once per call.
type runView struct {
	l    *Ledger
	mu   sync.Mutex
	runs map[string]*viewEntry
}

type viewEntry struct {
	once sync.Once
	run  *indexedRun
	err  error
}

// maxRunsPerImport bounds the runs one import answers for: a file answers
// for one run, or a few.
const maxRunsPerImport = 8

func newRunView(l *Ledger) *runView { return &runView{l: l, runs: map[string]*viewEntry{}} }

func (v *runView) get(ctx context.Context, runID string) (*indexedRun, error) {
	v.mu.Lock()
	e, ok := v.runs[runID]
	if !ok {
		if len(v.runs) >= maxRunsPerImport {
			v.mu.Unlock()
			return nil, domain.Reject("too_many_runs", "payment_id", "one import may answer for at most %d runs", maxRunsPerImport)
		}
		e = &viewEntry{}
		v.runs[runID] = e
	}
	v.mu.Unlock()
	e.once.Do(func() { e.run, e.err = v.l.paymentsOf(ctx, runID) })
	return e.run, e.err
}
