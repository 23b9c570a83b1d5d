package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ErrRebuildInProgress: the projection is already being rebuilt.
var ErrRebuildInProgress = errors.New("projections: a rebuild of this projection is already in progress")

// Rebuild builds the named projection again from the beginning of the log,
// into a new generation, while the current generation keeps serving
// queries and following live writes. When the new generation has caught up
// with the serving one, the Run loop switches queries over to it in one
// atomic step and drops the old one.
//
// Rebuild blocks until the switch, and returns the failure if the new
// generation fails on an event (the serving generation is then kept and the
// new one dropped). Run must be running for the hand-over. If ctx ends
// after the new generation was handed to Run, the switch still happens;
// Rebuild just stops waiting for it.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	s, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("projections: no projection named %s", name)
	}
	m, err := r.startBuilding(s)
	if err != nil {
		return err
	}
	if err := r.catchUpAlone(ctx, m); err != nil {
		r.abandon(s, m)
		return err
	}
	select {
	case r.adopt <- m:
	case <-ctx.Done():
		r.abandon(s, m)
		return ctx.Err()
	}
	select {
	case err := <-m.switched:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) startBuilding(s *slot) (*member, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.building != nil {
		return nil, ErrRebuildInProgress
	}
	g := generation{Gen: s.meta.Active.Gen + 1, Version: s.proj.Version()}
	m := r.newMember(s.proj, g, checkpoint{})
	m.switched = make(chan error, 1)
	nm := s.meta
	nm.Building = &g
	b := r.db.pdb.NewBatch()
	defer b.Close()
	// The generation number may have been used by an abandoned rebuild
	// whose range deletion is still pending; deleting again is harmless.
	if err := dropGeneration(b, s.name, g.Gen); err != nil {
		return nil, err
	}
	if err := setMeta(b, s.name, nm); err != nil {
		return nil, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("projections: start rebuild of %s: %w", s.name, err)
	}
	s.meta, s.building = nm, m
	return m, nil
}

// catchUpAlone applies the log to a new generation, on the caller's
// goroutine, up to the head as it was when the last page was read.
func (r *Runner) catchUpAlone(ctx context.Context, m *member) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ms := []*member{m}
	// The new generation is empty: its Tx need not ask Pebble for the keys
	// it has not written (Tx.complete, Tx.written).
	if err := m.tx.startEmpty(); err != nil {
		return err
	}
	f := r.startFeed(ctx, m.applied.Position, false)
	c := committer{r: r}
	// Whatever ends the catch-up, the commit in flight ends first.
	defer c.close()
	n := 0
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
		if !it.atHead {
			n += r.applyAll(ms, it.events)
		}
		if m.failure != nil {
			return m.failure
		}
		if it.atHead || n >= r.opts.BatchEvents || m.tx.Dirty() >= r.opts.BatchKeys {
			if err := c.commit(ms, it.atHead); err != nil {
				return err
			}
			n = 0
		}
		if it.atHead {
			return nil
		}
	}
}

// abandon drops a generation that will not be switched to.
func (r *Runner) abandon(s *slot, m *member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abandonLocked(s, m, nil)
}

func (r *Runner) abandonLocked(s *slot, m *member, reason error) {
	if s.building != m {
		return
	}
	nm := s.meta
	nm.Building = nil
	b := r.db.pdb.NewBatch()
	defer b.Close()
	err := dropGeneration(b, s.name, m.gen.Gen)
	if err == nil {
		err = setMeta(b, s.name, nm)
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		// The generation stays on disk and is dropped at the next start,
		// which treats any rebuild it finds as interrupted.
		r.log.Error("projections: could not drop an abandoned rebuild", "projection", s.name, "error", err)
	}
	s.meta, s.building = nm, nil
	if reason != nil {
		m.switched <- reason
	}
}

func (r *Runner) adoptMember(m *member) {
	r.mu.Lock()
	m.adopted = true
	r.mu.Unlock()
}

// switchCaughtUp switches every projection whose rebuilt generation has
// reached the serving one. It runs in the Run loop right after a commit, so
// both generations' checkpoints are on disk. The meta change and the
// deletion of the old generation are one batch, committed under mu so that
// a View sees either the old generation or the new one, never a mix.
func (r *Runner) switchCaughtUp() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.slots {
		m := s.building
		if m == nil || !m.adopted {
			continue
		}
		if m.failure != nil {
			r.abandonLocked(s, m, m.failure)
			continue
		}
		if m.committed.Position.Compare(s.active.committed.Position) < 0 {
			continue
		}
		nm := meta{Active: m.gen}
		b := r.db.pdb.NewBatch()
		err := setMeta(b, s.name, nm)
		if err == nil {
			err = dropGeneration(b, s.name, s.active.gen.Gen)
		}
		if err == nil {
			err = b.Commit(pebble.Sync)
		}
		_ = b.Close()
		if err != nil {
			return fmt.Errorf("projections: switch %s to generation %d: %w", s.name, m.gen.Gen, err)
		}
		r.log.Info("projection rebuilt", "projection", s.name, "generation", m.gen.Gen,
			"position", m.committed.Position.String(), "applied", m.committed.Applied)
		s.meta, s.active, s.building = nm, m, nil
		m.switched <- nil
		r.notifyLocked()
	}
	return nil
}
