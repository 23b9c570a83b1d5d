package projections

import (
	"context"

	"github.com/ansinh/ansinh/eventstore"
)

// A feed reads the log in its own goroutine and decodes each event once, so
// that reading and decoding run on one core while the projections apply on
// another. It first reads pages with ReadAll up to the head (catch-up), then
// sends a marker, then (if asked to follow) delivers live events from a
// subscription one by one.
//
// Pages and live events travel on two channels because they need different
// bounds: a few whole pages while catching up, up to a subscription buffer of
// single events live. The consumer reads the live channel only after the
// marker, so the order is kept.
type feed struct {
	pages  chan feedItem
	events chan feedItem
	isLive bool // consumer side: the marker has been received
	// free takes back pages the consumer is done with (recycle), for the
	// feed to decode the next pages into.
	free chan []Event
}

type feedItem struct {
	events []Event
	atHead bool // the marker: catch-up is done
	err    error
}

// feedPagesAhead bounds the decoded pages waiting for the read models.
// While the runner commits a batch the read models apply nothing; with
// room for eight pages (32,768 events at the default page size, about
// 60 MB with their data and decoded values) the feed keeps reading and
// decoding on the other core meanwhile. Two pages gave a tenth fewer
// events/s in a rebuild (docs/BENCHMARKS.md, Projections).
const feedPagesAhead = 8

// feedPagesFree bounds the pages kept for reuse: as many as a replay has
// out between two commits at the default sizes (BatchEvents / PageEvents,
// 13) and the pages ahead, with room to spare.
const feedPagesFree = 32

// recycle hands pages back to the feed once nothing refers to them any
// more: no read model is applying them, none will, and nothing kept a
// pointer into them (Apply only reads its Event). A replay rebuilding ten
// million events allocated 5.9 GB of pages (about 580 bytes an event), a
// fifth of its allocations. A page is cleared as it goes back: otherwise it
// would keep its events' data and decoded values alive until reused (about
// 5 MB a page), and the heap grew by a few hundred MB under GOGC 400.
// Pages that do not fit are left to the garbage collector.
func (f *feed) recycle(pages [][]Event) {
	for _, p := range pages {
		if len(f.free) == cap(f.free) {
			return // the replay is the only sender: room now is room at the send
		}
		clear(p)
		f.free <- p
	}
}

// page returns a page of n zero events to decode into: a recycled one if
// one is large enough.
func (f *feed) page(n int) []Event {
	select {
	case p := <-f.free:
		if cap(p) >= n {
			return p[:n]
		}
	default:
	}
	return make([]Event, n)
}

func (r *Runner) startFeed(ctx context.Context, from eventstore.Position, follow bool) *feed {
	f := &feed{
		pages:  make(chan feedItem, feedPagesAhead),
		events: make(chan feedItem, eventstore.SubscriptionBuffer),
		free:   make(chan []Event, feedPagesFree),
	}
	go r.runFeed(ctx, f, from, follow)
	return f
}

// next is the channel the consumer reads now.
func (f *feed) next() <-chan feedItem {
	if f.isLive {
		return f.events
	}
	return f.pages
}

func (r *Runner) runFeed(ctx context.Context, f *feed, from eventstore.Position, follow bool) {
	send := func(ch chan feedItem, it feedItem) bool {
		select {
		case ch <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	pos := from
	for {
		page, err := r.store.ReadAll(ctx, pos, r.opts.PageEvents)
		if err != nil {
			send(f.pages, feedItem{err: err})
			return
		}
		// An empty page, and only an empty page, means the head: the store
		// may return short pages (it bounds the bytes of one page).
		if len(page) == 0 {
			break
		}
		evs := f.page(len(page))
		for i := range page {
			evs[i].RecordedEvent = page[i]
			evs[i].decode(r.opts.Decoder)
		}
		if !send(f.pages, feedItem{events: evs}) {
			return
		}
		pos = page[len(page)-1].Position
	}
	if !send(f.pages, feedItem{atHead: true}) || !follow {
		return
	}
	sub, err := r.store.Subscribe(ctx, pos, eventstore.Filter{})
	if err != nil {
		send(f.events, feedItem{err: err})
		return
	}
	defer sub.Close()
	for {
		rec, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				send(f.events, feedItem{err: err})
			}
			return
		}
		evs := []Event{{RecordedEvent: rec}}
		evs[0].decode(r.opts.Decoder)
		if !send(f.events, feedItem{events: evs}) {
			return
		}
	}
}
