package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
	return r.RebuildAll(ctx, []string{name})[0]
}

// RebuildAll rebuilds the named projections as Rebuild does, in one pass
// over the log: the log is read and decoded once for all of them, and they
// apply it in parallel, as a Replay does. A rebuild of the five read models
// one after the other read and decoded the log five times (`ansinh
// rebuild` at Hanoi scale, ten million events: 137 s, against 59 s in one
// pass). The price is memory: every new generation's batch and cache at
// once.
//
// It returns one error per name, nil for each projection switched over. A
// projection that fails on an event keeps its serving generation and the
// others go on.
func (r *Runner) RebuildAll(ctx context.Context, names []string) []error {
	errs := make([]error, len(names))
	var (
		ms    []*member
		slots []*slot
		at    []int // ms[j] is the rebuild of names[at[j]]
	)
	for i, name := range names {
		s, ok := r.byName[name]
		if !ok {
			errs[i] = fmt.Errorf("projections: no projection named %s", name)
			continue
		}
		if slices.Contains(slots, s) {
			errs[i] = ErrRebuildInProgress // named twice
			continue
		}
		m, err := r.startBuilding(s)
		if err != nil {
			errs[i] = err
			continue
		}
		ms, slots, at = append(ms, m), append(slots, s), append(at, i)
	}
	if len(ms) == 0 {
		return errs
	}
	// Up to the head as it was when the last page was read; a projection
	// that fails is left with its failure and the others go on.
	if err := r.replay(ctx, ms, Until{}, false); err != nil {
		for j, m := range ms {
			r.abandon(slots[j], m)
			errs[at[j]] = err
		}
		return errs
	}
	var handed []int
	for j, m := range ms {
		if m.failure != nil {
			r.abandon(slots[j], m)
			errs[at[j]] = m.failure
			continue
		}
		select {
		case r.adopt <- m:
			handed = append(handed, j)
		case <-ctx.Done():
			r.abandon(slots[j], m)
			errs[at[j]] = ctx.Err()
		}
	}
	for _, j := range handed {
		select {
		case err := <-ms[j].switched:
			errs[at[j]] = err
		case <-ctx.Done():
			errs[at[j]] = ctx.Err()
		}
	}
	return errs
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

// rebuildUpgraded rebuilds, in one pass beside the generations they serve,
// the projections opened on the state of an earlier version that they
// read (Upgrader): after an upgrade the service keeps answering from that
// state while the rebuild runs, and switches when it has caught up. A
// rebuild that fails leaves the earlier state serving; the next start
// tries again.
func (r *Runner) rebuildUpgraded(ctx context.Context) {
	var names []string
	r.mu.Lock()
	for _, s := range r.slots {
		if s.meta.Active.Version != s.proj.Version() {
			names = append(names, s.name)
		}
	}
	r.mu.Unlock()
	if len(names) == 0 {
		return
	}
	r.log.Info("rebuilding projections stored by an earlier version", "projections", names)
	for i, err := range r.RebuildAll(ctx, names) {
		switch {
		case err == nil:
			r.log.Info("projection upgraded", "projection", names[i])
		case ctx.Err() == nil:
			r.log.Error("projection not upgraded: still serving the earlier version's state", "projection", names[i], "error", err)
		}
	}
}

// storedVersion is the version of the code that wrote the serving
// generation of name: an earlier one after an upgrade, until the rebuild
// switches (Upgrader); 0 for an unknown name.
func (r *Runner) storedVersion(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.byName[name]; ok {
		return s.meta.Active.Version
	}
	return 0
}
