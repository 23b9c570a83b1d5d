package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/ansinh/ansinh/eventstore"
)

// Until says where a replay stops. The zero value replays the whole log as
// it is when the replay reaches its end.
type Until struct {
	// Position: apply events up to and including this position.
	Position eventstore.Position
	// Time: apply the events the store recorded at or before this instant.
	// The log's order is the ledger's order of knowledge, so the replay
	// stops at the first event recorded after Time.
	Time time.Time
}

// UntilPosition stops a replay after pos.
func UntilPosition(pos eventstore.Position) Until { return Until{Position: pos} }

// UntilTime stops a replay at the first event recorded after t.
func UntilTime(t time.Time) Until { return Until{Time: t} }

func (u Until) past(ev *Event) bool {
	if !u.Position.IsStart() && ev.Position.Compare(u.Position) > 0 {
		return true
	}
	return !u.Time.IsZero() && ev.RecordedAt.After(u.Time)
}

// Replay applies the log from its beginning to fresh generations of projs
// in db, which must hold none of them yet (normally a new in-memory DB), up
// to until. It is how as-of queries and verify compute a projection without
// touching the live one. The returned runner is not running: use its View.
func Replay(ctx context.Context, store eventstore.Store, db *DB, projs []Projection, opts Options, until Until) (*Runner, error) {
	r, err := NewRunner(db, store, projs, opts)
	if err != nil {
		return nil, err
	}
	ms := r.liveMembers()
	for _, m := range ms {
		if !m.applied.Position.IsStart() {
			return nil, fmt.Errorf("projections: replay into a database that already holds %s", m.name)
		}
	}
	defer raiseGCPercent(ReplayGCPercent)()
	if err := r.replay(ctx, ms, until, true); err != nil {
		return nil, err
	}
	return r, nil
}

// replay applies the log from the start up to until. With stopOnFailure a
// projection that fails ends the replay with its failure; without, it is
// left stopped (see member.failure) and the others go on.
func (r *Runner) replay(ctx context.Context, ms []*member, until Until, stopOnFailure bool) error {
	// A member with nothing applied yet normally has an empty generation:
	// its Tx need not ask Pebble for the keys it has not written
	// (Tx.complete, Tx.written; startEmpty checks that it is empty).
	for _, m := range ms {
		if m.applied.Position.IsStart() {
			if err := m.tx.startEmpty(); err != nil {
				return err
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := r.startFeed(ctx, eventstore.Start, false)
	c := committer{r: r}
	// Whatever ends the replay, the commit in flight ends first.
	defer c.close()
	w := r.startWorkers(ms)
	// Deferred after c.close, so run before it: the workers are done with
	// the members before anything else touches them.
	defer w.stop()
	failed := func() error {
		for _, m := range ms {
			if m.failure != nil && stopOnFailure {
				return m.failure
			}
		}
		return nil
	}
	n := 0
	// sent is the pages handed to the workers since the last sync, given
	// back to the feed after the next one.
	var sent [][]Event
	for {
		var it feedItem
		select {
		case it = <-f.pages:
		case <-ctx.Done():
			return ctx.Err()
		}
		if it.err != nil {
			return it.err
		}
		events, done := it.events, it.atHead
		for i := range events {
			if until.past(&events[i]) {
				events, done = events[:i], true
				break
			}
		}
		if len(events) > 0 {
			w.send(events)
			n += len(events)
			sent = append(sent, it.events)
		}
		if stopOnFailure && w.failed.Load() {
			w.sync()
			return failed()
		}
		if done || n >= r.opts.BatchEvents || w.keys() >= r.opts.BatchKeys {
			w.sync()
			f.recycle(sent)
			clear(sent)
			sent = sent[:0]
			if err := failed(); err != nil {
				return err
			}
			if err := c.commit(ms, done); err != nil {
				return err
			}
			n = 0
		}
		if done {
			return nil
		}
	}
}
