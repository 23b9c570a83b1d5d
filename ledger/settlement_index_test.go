package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/eventstore"
)

// readCounter counts the reads of run streams: loads (forward reads from
// revision 0), forward reads from later revisions that find events, and
// backward reads.
type readCounter struct {
	eventstore.Store
	mu                      sync.Mutex
	loads, tails, backwards map[string]int
}

func newReadCounter(s eventstore.Store) *readCounter {
	return &readCounter{Store: s, loads: map[string]int{}, tails: map[string]int{}, backwards: map[string]int{}}
}

func (c *readCounter) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.RecordedEvent, error) {
	recs, err := c.Store.ReadStream(ctx, stream, opts)
	if strings.HasPrefix(stream, disbursement.RunStreamPrefix) {
		c.mu.Lock()
		switch {
		case opts.Direction == eventstore.Backwards:
			c.backwards[stream]++
		case opts.From == 0:
			c.loads[stream]++
		case len(recs) > 0: // a load ends with an empty read past the end
			c.tails[stream]++
		}
		c.mu.Unlock()
	}
	return recs, err
}

func (c *readCounter) counts(runID string) (loads, tails, backwards int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := disbursement.RunStream(runID)
	return c.loads[s], c.tails[s], c.backwards[s]
}

// countedLedger is a second ledger over the fixture's store that counts its
// reads of run streams.
func (f *payoutFixture) countedLedger() (*Ledger, *readCounter) {
	rc := newReadCounter(f.store)
	cfg := DefaultConfig()
	cfg.Clock = func() time.Time { return payoutNow }
	return New(rc, cfg), rc
}

// crowdRun opens, calculates and (if release) releases a run over n
// beneficiaries, and returns its payments in file order.
func (f *payoutFixture) crowdRun(id string, n int, release bool) []*disbursement.RunPayment {
	f.t.Helper()
	ids, _ := f.crowd(n)
	f.open(id, []domain.Period{jan24}, entitlement.SocialMonthly)
	if _, err := f.l.CalculateRun(f.ctx, thu, id, NewStaticRoster(ids...), CalculateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	if release {
		f.approveAndRelease(id)
	}
	r := f.run(id)
	out := make([]*disbursement.RunPayment, len(r.PaymentIDs))
	for i, pid := range r.PaymentIDs {
		out[i] = r.Payments[pid]
	}
	return out
}

func settledAnswer(p *disbursement.RunPayment, ref string) disbursement.Settlement {
	return disbursement.Settlement{PaymentID: p.PaymentID, Outcome: disbursement.OutcomeSettled, Reference: ref, At: bankDay}
}

// One answer after another on a released run loads the run once: every
// later answer checks the run's revision with a one-event read and finds
// the payment in the index.
func TestRecordSettlementLoadsTheRunOnce(t *testing.T) {
	f := newPayoutFixture(t)
	pays := f.crowdRun("BIG", 60, true)
	l, rc := f.countedLedger()
	for i, p := range pays {
		rep, err := l.RecordSettlement(f.ctx, lan, settledAnswer(p, fmt.Sprintf("FT%d", i)))
		if err != nil || rep.Applied != 1 {
			t.Fatalf("answer %d: %+v %v", i, rep, err)
		}
	}
	loads, tails, backwards := rc.counts("BIG")
	if loads != 1 || tails != 0 {
		t.Fatalf("%d answers loaded the run %d times and read its tail %d times, want once and never", len(pays), loads, tails)
	}
	// The first answer found nothing cached, so only the others checked.
	if backwards != len(pays)-1 {
		t.Fatalf("%d revision checks for %d answers, want %d", backwards, len(pays), len(pays)-1)
	}
	// A file of the same answers is all unchanged, still without a load.
	var lines []string
	for i, p := range pays {
		lines = append(lines, fmt.Sprintf("%s,settled,FT%d,2024-01-20T09:30:00+07:00,,,", p.PaymentID, i))
	}
	rep, err := l.ImportSettlements(f.ctx, lan, settlementFile(lines...))
	if err != nil || rep.Unchanged != len(pays) || rep.Applied != 0 || len(rep.Rejected) != 0 {
		t.Fatalf("import again: %+v %v", rep, err)
	}
	if loads, _, _ := rc.counts("BIG"); loads != 1 {
		t.Fatalf("the import reloaded the run (%d loads)", loads)
	}
}

// The index is never stale: answers before release are refused, and the
// release is seen at once; events after release (close, reconciliation)
// are read from the tail, not by reloading the run.
func TestSettlementIndexFollowsTheRun(t *testing.T) {
	f := newPayoutFixture(t)
	pays := f.crowdRun("LATE", 6, false)
	l, rc := f.countedLedger()
	for i := range 2 {
		_, err := l.RecordSettlement(f.ctx, lan, settledAnswer(pays[0], "FT0"))
		payoutRule(t, err, domain.Conflict, "not_released")
		if loads, _, _ := rc.counts("LATE"); loads != 1 {
			t.Fatalf("refusal %d: %d loads of an unchanged run, want 1", i, loads)
		}
	}
	if _, err := l.ApproveRun(f.ctx, minh, "LATE"); err != nil {
		t.Fatal(err)
	}
	// Approved is not released: the changed revision forces a rebuild.
	_, err := l.RecordSettlement(f.ctx, lan, settledAnswer(pays[0], "FT0"))
	payoutRule(t, err, domain.Conflict, "not_released")
	if _, err := l.ReleaseRun(f.ctx, thu, "LATE"); err != nil {
		t.Fatal(err)
	}
	loadsBefore, _, _ := rc.counts("LATE")
	for i, p := range pays {
		if _, err := l.RecordSettlement(f.ctx, lan, settledAnswer(p, fmt.Sprintf("FT%d", i))); err != nil {
			t.Fatalf("answer %d after release: %v", i, err)
		}
	}
	if loads, _, _ := rc.counts("LATE"); loads != loadsBefore+1 {
		t.Fatalf("after release: %d loads, want one more than %d", loads, loadsBefore)
	}
	// Close the run (another ledger instance: the index must notice).
	if _, err := f.l.CloseRun(f.ctx, thu, "LATE"); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.RecordSettlement(f.ctx, lan, settledAnswer(pays[1], "FT1")); err != nil || rep.Unchanged != 1 {
		t.Fatalf("answer after close: %+v %v", rep, err)
	}
	loads, tails, _ := rc.counts("LATE")
	if loads != loadsBefore+1 || tails != 1 {
		t.Fatalf("after close: %d loads and %d tail reads, want %d and 1", loads, tails, loadsBefore+1)
	}
	ir := l.settlements.lookup("LATE")
	if ir == nil || ir.status != disbursement.RunClosed {
		t.Fatalf("cached entry after close: %+v", ir)
	}
	// A wrong payment of a cached run is still refused.
	bad := *pays[0]
	bad.PaymentID = pays[0].PaymentID[:len(pays[0].PaymentID)-1] + "0"
	if bad.PaymentID == pays[0].PaymentID {
		bad.PaymentID = pays[0].PaymentID[:len(pays[0].PaymentID)-1] + "1"
	}
	_, err = l.RecordSettlement(f.ctx, lan, settledAnswer(&bad, "FT9"))
	payoutRule(t, err, domain.NotFound, "unknown_payment")
}

// The index holds at most its line bound, least recently used runs first
// out, but always the run just used.
func TestSettlementIndexIsBounded(t *testing.T) {
	var x settlementIndex
	x.maxLine = 10
	run := func(id string, lines int) *indexedRun {
		return &indexedRun{runID: id, status: disbursement.RunReleased, lines: lines, payments: map[string]*indexedPayment{}}
	}
	x.store(run("A", 4))
	x.store(run("B", 4))
	x.lookup("A") // A is now the most recent
	x.store(run("C", 4))
	if x.lookup("B") != nil || x.lookup("A") == nil || x.lookup("C") == nil || x.lines != 8 {
		t.Fatalf("after C: B should be evicted; lines %d", x.lines)
	}
	x.store(run("HUGE", 25))
	if x.lru.Len() != 1 || x.lookup("HUGE") == nil || x.lines != 25 {
		t.Fatalf("a run over the bound is held alone: %d runs, %d lines", x.lru.Len(), x.lines)
	}
	// An older revision never replaces a newer one.
	newer := run("HUGE", 25)
	newer.revision = 9
	x.store(newer)
	x.store(run("HUGE", 25))
	if x.lookup("HUGE").revision != 9 {
		t.Fatal("an older entry replaced a newer one")
	}
}

// BenchmarkRecordSettlement posts answers one by one to released runs of
// two sizes: the time per answer must not grow with the run.
//
//	go test -run '^$' -bench RecordSettlement ./ledger/
func BenchmarkRecordSettlement(b *testing.B) {
	for _, n := range []int{100, 400} {
		b.Run(fmt.Sprintf("payments=%d", n), func(b *testing.B) {
			f := newPayoutFixture(b)
			pays := f.crowdRun("BENCH", n, true)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				// The first pass settles, later ones resend (unchanged):
				// both look the payment up the same way.
				p := pays[i%len(pays)]
				if _, err := f.l.RecordSettlement(f.ctx, lan, settledAnswer(p, "FT-"+p.PaymentID[len(p.PaymentID)-7:])); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/answer")
		})
	}
}

// Answers arriving at once for a run nobody cached load it once: the
// others wait for that load instead of each reading the whole run.
func TestConcurrentAnswersLoadTheRunOnce(t *testing.T) {
	f := newPayoutFixture(t)
	pays := f.crowdRun("BURST", 24, true)
	l, rc := f.countedLedger()
	var wg sync.WaitGroup
	errs := make(chan error, len(pays))
	for i, p := range pays {
		wg.Go(func() {
			if _, err := l.RecordSettlement(f.ctx, lan, settledAnswer(p, fmt.Sprintf("FT%d", i))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if loads, tails, _ := rc.counts("BURST"); loads != 1 || tails != 0 {
		t.Fatalf("%d concurrent answers: %d loads, %d tail reads; want 1 and 0", len(pays), loads, tails)
	}
}
