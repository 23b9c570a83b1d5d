package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ansinh/ansinh/eventstore"
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
// others go on. See StartRebuild for how the pass is shared with the Run
// loop.
func (r *Runner) RebuildAll(ctx context.Context, names []string) []error {
	return r.StartRebuild(ctx, names)()
}

// StartRebuild starts what RebuildAll does and returns at once; wait blocks
// until the outcome and returns one error per name. Each projection is
// rebuilt one of three ways, so that the log is read once where it can be:
//
//   - A projection whose serving generation holds nothing while the log
//     holds events (its version changed, or nothing has caught it up since
//     an import) is being replayed from the first event by the Run loop
//     already. That replay is its rebuild: it is not built a second time
//     beside it, and wait returns when it has reached the head of the log
//     as it was when StartRebuild was called, or has failed before. (Not
//     so for an Upgrader whose generation of an earlier version holds
//     nothing: it needs a generation of its version, built as below.)
//   - If the Run loop's next pass reads the log from the first event anyway
//     (a projection holds nothing, as above, and Run has not started that
//     pass yet: it has not started at all, or is between passes), the new
//     generations are handed to the Run loop at once and built in that
//     same pass (not that of a projection that has failed: built as
//     below). `ansinh rebuild` calls StartRebuild before it starts Run for
//     this reason: after an upgrade that emptied one read model, a rebuild
//     of the others reads the log once instead of twice.
//   - Otherwise the new generations are built in a pass of their own,
//     beside the serving generations, which keep following live writes,
//     and handed to the Run loop when they have reached the head.
//
// In every case Run must be running for the rebuild to finish. If ctx ends
// after a new generation was handed to Run, the switch still happens;
// wait just stops waiting for it.
func (r *Runner) StartRebuild(ctx context.Context, names []string) (wait func() []error) {
	wait, _ = r.startRebuild(ctx, names, false)
	return wait
}

// TryRebuild is StartRebuild all or nothing: if a name is unknown or given
// twice, or a named projection is being rebuilt already, it starts nothing
// and returns why (ErrRebuildInProgress for the last), so that a caller
// can refuse a request instead of accepting one that cannot succeed.
func (r *Runner) TryRebuild(ctx context.Context, names []string) (wait func() []error, err error) {
	return r.startRebuild(ctx, names, true)
}

func (r *Runner) startRebuild(ctx context.Context, names []string, allOrNothing bool) (wait func() []error, err error) {
	errs := make([]error, len(names))
	head, headErr := r.store.Head(ctx)
	logHasEvents := headErr == nil && !head.IsStart()

	type caught struct {
		i int
		s *slot
	}
	var (
		catching []caught  // served generations the Run loop replays from nothing
		joined   []*member // new generations the Run loop builds in its next pass
		joinedAt []int     // joined[j] is the rebuild of names[joinedAt[j]]
		beside   []*member // new generations built in a pass of their own
		slots    []*slot   // beside[j] is in slots[j]
		besideAt []int     // beside[j] is the rebuild of names[besideAt[j]]
		seen     []*slot   // every slot named so far
	)
	r.mu.Lock()
	if allOrNothing {
		for i, name := range names {
			s, ok := r.byName[name]
			switch {
			case !ok:
				err = fmt.Errorf("projections: no projection named %s", name)
			case slices.Contains(names[:i], name):
				err = fmt.Errorf("projections: %s named twice", name)
			case s.building != nil:
				err = fmt.Errorf("%w: %s", ErrRebuildInProgress, name)
			}
			if err != nil {
				r.mu.Unlock()
				return nil, err
			}
		}
	}
	join := logHasEvents && !r.inPass && r.nextPassFromStartLocked()
	for i, name := range names {
		s, ok := r.byName[name]
		switch {
		case !ok:
			errs[i] = fmt.Errorf("projections: no projection named %s", name)
			continue
		case slices.Contains(seen, s):
			errs[i] = ErrRebuildInProgress // named twice
			continue
		}
		seen = append(seen, s)
		a := s.active
		if logHasEvents && replayedFromNothingLocked(s) {
			catching = append(catching, caught{i, s})
			continue
		}
		m, err := r.startBuildingLocked(s)
		switch {
		case err != nil:
			errs[i] = err
		case join && a.failure == nil:
			// Not when the serving generation failed: it may have
			// committed nothing, and a new generation joined now would be
			// level with it, so switched to at the start of the next pass
			// before it had applied anything.
			m.adopted = true
			joined, joinedAt = append(joined, m), append(joinedAt, i)
		default:
			beside, slots, besideAt = append(beside, m), append(slots, s), append(besideAt, i)
		}
	}
	r.mu.Unlock()

	// The pass of their own, if any, runs while the caller goes on.
	besideDone := make(chan []int, 1)
	if len(beside) > 0 {
		go func() { besideDone <- r.passBeside(ctx, beside, slots, besideAt, errs) }()
	} else {
		besideDone <- nil
	}
	return func() []error {
		handed := <-besideDone
		for _, j := range handed {
			joined, joinedAt = append(joined, beside[j]), append(joinedAt, besideAt[j])
		}
		for j, m := range joined {
			select {
			case err := <-m.switched:
				errs[joinedAt[j]] = err
			case <-ctx.Done():
				errs[joinedAt[j]] = ctx.Err()
			}
		}
		for _, c := range catching {
			errs[c.i] = r.waitCaughtUp(ctx, c.s, head)
		}
		return errs
	}, nil
}

// replayedFromNothingLocked reports whether the serving generation of s
// holds nothing yet (nothing committed, not failed, no rebuild) and is of
// its projection's version, so that the Run loop's replay from the first
// event, when the log has events, is its rebuild. An Upgrader's empty
// generation of an earlier version is not: it needs one of its version.
func replayedFromNothingLocked(s *slot) bool {
	a := s.active
	return s.building == nil && a.failure == nil && a.committed.Position.IsStart() && s.meta.Active.Version == s.proj.Version()
}

// FromNothing names the projections the Run loop replays from the first
// event in the generation they serve, the log having events: those a
// rebuild (StartRebuild) does not build a second time, but waits for.
func (r *Runner) FromNothing(ctx context.Context) ([]string, error) {
	head, err := r.store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("projections: from nothing: %w", err)
	}
	if head.IsStart() {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, s := range r.slots {
		if replayedFromNothingLocked(s) {
			names = append(names, s.name)
		}
	}
	return names, nil
}

// nextPassFromStartLocked reports whether the Run loop's next pass reads
// the log from the first event: some projection it applies to has applied
// nothing yet.
func (r *Runner) nextPassFromStartLocked() bool {
	for _, s := range r.slots {
		for _, m := range []*member{s.active, s.building} {
			if m != nil && m.adopted && m.failure == nil && m.committed.Position.IsStart() {
				return true
			}
		}
	}
	return false
}

// passBeside builds ms in one pass of their own over the log, up to the
// head as it was when the last page was read, and hands each one that did
// not fail to the Run loop. It sets errs for the others and returns the
// indexes in ms of the ones handed over.
func (r *Runner) passBeside(ctx context.Context, ms []*member, slots []*slot, at []int, errs []error) (handed []int) {
	if err := r.replay(ctx, ms, Until{}, false); err != nil {
		for j, m := range ms {
			r.abandon(slots[j], m)
			errs[at[j]] = err
		}
		return nil
	}
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
	return handed
}

// waitCaughtUp waits until the serving generation of s has reached head,
// and returns its failure if it stops on an event before.
func (r *Runner) waitCaughtUp(ctx context.Context, s *slot, head eventstore.Position) error {
	for {
		r.mu.Lock()
		m, changed := s.active, r.changed
		if m.committed.Position.Compare(head) >= 0 {
			r.mu.Unlock()
			return nil // a failure on a later event is not the rebuild's
		}
		if m.failure != nil {
			r.mu.Unlock()
			return m.failure
		}
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *Runner) startBuildingLocked(s *slot) (*member, error) {
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

// rebuildUpgraded starts the rebuild of the projections opened on the
// state of an earlier version that they read (Upgrader), in one pass: after
// an upgrade the service keeps answering from that state while the rebuild
// runs beside it, and switches when it has caught up. If the Run loop's
// first pass reads the log from the first event anyway (another projection
// holds nothing), they are built in that pass instead (StartRebuild). A
// rebuild that fails leaves the earlier state serving; the next start tries
// again. It returns what waits for the outcome and logs it, nil if there is
// nothing to rebuild.
func (r *Runner) rebuildUpgraded(ctx context.Context) (wait func()) {
	var names []string
	r.mu.Lock()
	for _, s := range r.slots {
		if s.meta.Active.Version != s.proj.Version() {
			names = append(names, s.name)
		}
	}
	r.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	r.log.Info("rebuilding projections stored by an earlier version", "projections", names)
	outcome := r.StartRebuild(ctx, names)
	return func() {
		for i, err := range outcome() {
			switch {
			case err == nil:
				r.log.Info("projection upgraded", "projection", names[i])
			case ctx.Err() == nil:
				r.log.Error("projection not upgraded: still serving the earlier version's state", "projection", names[i], "error", err)
			}
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
