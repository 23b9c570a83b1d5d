package projections

import "sync/atomic"

// workers apply pages to the members of a replay, each member on a
// goroutine of its own that takes the pages as they come, so that members
// meet only at a commit. applyAll has them all finish a page before any
// starts the next, and on two cores the members that are done early then
// leave a core idle while the slowest finishes.
//
// Between two calls of sync the workers own their members (Tx, applied,
// failure); the caller touches them only after sync returns, which orders
// everything the workers did before it.
type workers struct {
	r      *Runner
	in     []chan workItem
	ack    chan struct{}
	dirty  []atomic.Int64 // each member's Tx.Dirty after its latest page
	failed atomic.Bool    // a member stopped on an event
}

type workItem struct {
	events []Event
	sync   bool // no events: answer on ack once everything before is applied
}

// workerPagesAhead bounds the pages waiting for one member. The pages are
// the feed's, shared by all members, so the bound costs no copies.
const workerPagesAhead = 4

func (r *Runner) startWorkers(ms []*member) *workers {
	w := &workers{r: r, in: make([]chan workItem, len(ms)), ack: make(chan struct{}, len(ms)), dirty: make([]atomic.Int64, len(ms))}
	for i, m := range ms {
		in := make(chan workItem, workerPagesAhead)
		w.in[i] = in
		go func() {
			for it := range in {
				if it.sync {
					w.ack <- struct{}{}
					continue
				}
				for j := range it.events {
					ev := &it.events[j]
					if m.failure != nil || ev.Position.Compare(m.applied.Position) <= 0 {
						continue
					}
					r.applyOne(m, ev)
				}
				w.dirty[i].Store(int64(m.tx.Dirty()))
				if m.failure != nil {
					w.failed.Store(true)
				}
			}
			w.ack <- struct{}{}
		}()
	}
	return w
}

// send hands a page to every member.
func (w *workers) send(events []Event) {
	for _, in := range w.in {
		in <- workItem{events: events}
	}
}

// keys is the keys the members have changed since their last commit, as of
// the pages they have applied so far: the pages still queued are not
// counted, so a batch may pass BatchKeys by a few pages.
func (w *workers) keys() int {
	n := 0
	for i := range w.dirty {
		n += int(w.dirty[i].Load())
	}
	return n
}

// sync returns once every member has applied every page sent so far.
func (w *workers) sync() {
	for _, in := range w.in {
		in <- workItem{sync: true}
	}
	for range w.in {
		<-w.ack
	}
}

// stop ends the workers once they have applied what they were sent.
func (w *workers) stop() {
	for _, in := range w.in {
		close(in)
	}
	for range w.in {
		<-w.ack
	}
}
