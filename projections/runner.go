package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
)

// Options configure a Runner. Zero values mean the documented defaults.
type Options struct {
	// Decoder decodes event data once for all projections. Nil: projections
	// get no decoded data.
	Decoder Decoder
	// CountablePositions says the store's positions number the events one
	// by one (the embedded store), so that lag can be told in events. With
	// EventStoreDB, positions are byte offsets and lag is only "behind" and
	// the head position.
	CountablePositions bool
	// PageEvents is the ReadAll page size while catching up. Default 4096,
	// at most eventstore.MaxReadLimit.
	PageEvents int
	// BatchEvents bounds the events applied between two commits. Default
	// 50,000. Larger batches rebuild faster (fewer commits, values decoded
	// and encoded once per batch); smaller ones lose less work in a crash.
	BatchEvents int
	// BatchKeys bounds the keys all projections together change between
	// two commits. Default 200,000.
	BatchKeys int
	// CacheKeys bounds the keys each projection keeps in memory, decoded,
	// across commits. Default 100,000.
	CacheKeys int
	// KeptKeys bounds, for a projection that is a Keeper, the keys it keeps
	// in memory besides those CacheKeys bounds: past it, they are dropped
	// too. Default 500,000 (the balances keep a person's account sums: about
	// 80 MB for Hanoi's 300,000 people).
	KeptKeys int
	// RetryDelay is the pause before reading again after the store failed.
	// Default 1s.
	RetryDelay time.Duration
	// MaxWait bounds WaitFor whatever the caller's context says. Default 10s.
	MaxWait time.Duration
	// RebuildUpgraded: Run rebuilds, beside the generation it serves, every
	// projection that is an Upgrader and was opened on the state of an
	// earlier version (the service sets it; commands that rebuild only what
	// they are told leave it off).
	RebuildUpgraded bool
	// Logger; nil logs nothing.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.PageEvents == 0 {
		o.PageEvents = 4096
	}
	if o.BatchEvents == 0 {
		o.BatchEvents = 50_000
	}
	if o.BatchKeys == 0 {
		o.BatchKeys = 200_000
	}
	if o.CacheKeys == 0 {
		o.CacheKeys = 100_000
	}
	if o.KeptKeys == 0 {
		o.KeptKeys = 500_000
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
	if o.MaxWait == 0 {
		o.MaxWait = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.PageEvents < 1 || o.PageEvents > eventstore.MaxReadLimit:
		return o, fmt.Errorf("projections: PageEvents %d, want 1 to %d", o.PageEvents, eventstore.MaxReadLimit)
	case o.BatchEvents < 1 || o.BatchEvents > 10_000_000:
		return o, fmt.Errorf("projections: BatchEvents %d, want 1 to 10,000,000", o.BatchEvents)
	case o.BatchKeys < 1 || o.BatchKeys > 100_000_000:
		return o, fmt.Errorf("projections: BatchKeys %d, want 1 to 100,000,000", o.BatchKeys)
	case o.CacheKeys < 0 || o.CacheKeys > 100_000_000:
		return o, fmt.Errorf("projections: CacheKeys %d, want 0 to 100,000,000", o.CacheKeys)
	case o.KeptKeys < 0 || o.KeptKeys > 100_000_000:
		return o, fmt.Errorf("projections: KeptKeys %d, want 0 to 100,000,000", o.KeptKeys)
	case o.RetryDelay < 0 || o.MaxWait < 0:
		return o, errors.New("projections: RetryDelay and MaxWait must not be negative")
	}
	return o, nil
}

// Runner keeps a set of projections up to date with the log: it catches
// each one up from its checkpoint and then follows live writes. All
// projections share one read of the log and one Pebble batch per commit, so
// a View sees them all at the same position.
//
// Checkpoint and state of each projection are written in the same batch;
// after a crash a projection resumes from its last committed checkpoint with
// exactly the state that checkpoint describes, so no event is applied twice
// or skipped.
type Runner struct {
	db    *DB
	store eventstore.Store
	opts  Options
	log   *slog.Logger

	slots  []*slot
	byName map[string]*slot

	running atomic.Bool
	adopt   chan *member // a rebuilt generation handed to the Run loop

	// mu guards the published state: each slot's active and building
	// member, every member's committed checkpoint and failure, and changed.
	// It is held for a Pebble commit only when the commit switches
	// generations, so that a View never pairs a prefix with a snapshot from
	// the other side of a switch.
	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) whenever a checkpoint moves or a projection fails
	atHead  bool          // the Run loop has caught up once and follows live
	// inPass: the Run loop has taken the members of its current pass, so a
	// generation adopted now waits for the next pass (see StartRebuild).
	inPass bool
	// writing counts commits whose Pebble write has started and whose
	// checkpoints are not yet published (or rolled back). While it is
	// zero, the published checkpoints are exactly those in Pebble, and a
	// View takes its positions from them instead of a Get per projection.
	writing int

	// writeGate, set by tests only, holds a committer's write back until
	// the committer waits for it: the next batch is then applied entirely
	// while the commit before it is not on disk, the case a committer must
	// get right. Nil: writes start at once.
	writeGate chan struct{}
}

type slot struct {
	proj Projection
	name string
	meta meta // as stored

	active   *member
	building *member // a rebuild in progress, nil otherwise
}

// member is one generation of one projection being applied.
type member struct {
	proj    Projection
	name    string
	gen     generation
	prefix  []byte
	ckptKey []byte
	tx      *Tx

	// applied is owned by the goroutine that applies to the member.
	applied checkpoint
	// committed and failure are written by that goroutine under Runner.mu.
	committed checkpoint
	failure   *Failure

	// inflight is the checkpoint of a commit on its way to disk, if
	// hasInflight (see committer). Owned by the goroutine that commits.
	inflight    checkpoint
	hasInflight bool

	// batchBytes is the size of the member's last commit batch: the next
	// one starts at that size instead of growing (and copying itself)
	// from a few kilobytes. Owned by the committing goroutine.
	batchBytes int

	adopted  bool       // applied by the Run loop (always true for an active member)
	switched chan error // a rebuild's outcome; nil for an active member
}

// NewRunner opens every projection's stored state in db. A projection whose
// stored version differs from its Version starts a new generation from
// zero; a rebuild that was interrupted by a restart is dropped.
func NewRunner(db *DB, store eventstore.Store, projs []Projection, opts Options) (*Runner, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Runner{
		db:      db,
		store:   store,
		opts:    opts,
		log:     opts.Logger,
		byName:  make(map[string]*slot, len(projs)),
		adopt:   make(chan *member),
		changed: make(chan struct{}),
	}
	for _, p := range projs {
		name := p.Name()
		if err := validateName(name); err != nil {
			return nil, err
		}
		if p.Version() < 1 {
			return nil, fmt.Errorf("projections: %s has version %d, want at least 1", name, p.Version())
		}
		if _, dup := r.byName[name]; dup {
			return nil, fmt.Errorf("projections: two projections named %s", name)
		}
		s, err := r.openSlot(p)
		if err != nil {
			return nil, err
		}
		r.slots = append(r.slots, s)
		r.byName[name] = s
	}
	return r, nil
}

func (r *Runner) openSlot(p Projection) (*slot, error) {
	name := p.Name()
	m, found, err := r.db.readMeta(name)
	if err != nil {
		return nil, err
	}
	b := r.db.pdb.NewBatch()
	defer b.Close()
	changed := false
	if !found {
		m = meta{Active: generation{Gen: 1, Version: p.Version()}}
		changed = true
	}
	if m.Building != nil {
		r.log.Warn("dropping a rebuild interrupted by a restart", "projection", name, "generation", m.Building.Gen)
		if err := dropGeneration(b, name, m.Building.Gen); err != nil {
			return nil, err
		}
		m.Building = nil
		changed = true
	}
	if u, ok := p.(Upgrader); ok && m.Active.Version != p.Version() && u.ReadsVersion(m.Active.Version) {
		// The code reads what the earlier version stored: keep serving it
		// (and applying new events to it) until a rebuild has replaced it.
		r.log.Info("stored state has an earlier version, which this one reads; serving it until a rebuild replaces it",
			"projection", name, "stored_version", m.Active.Version, "version", p.Version())
	} else if m.Active.Version != p.Version() {
		next := generation{Gen: m.Active.Gen + 1, Version: p.Version()}
		r.log.Warn("stored state has another version; starting again from the beginning of the log",
			"projection", name, "stored_version", m.Active.Version, "version", p.Version())
		if err := dropGeneration(b, name, m.Active.Gen); err != nil {
			return nil, err
		}
		m.Active = next
		changed = true
	}
	if changed {
		if err := setMeta(b, name, m); err != nil {
			return nil, err
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return nil, fmt.Errorf("projections: open %s: %w", name, err)
		}
	}
	ck, err := r.db.readCheckpoint(name, m.Active.Gen)
	if err != nil {
		return nil, err
	}
	s := &slot{proj: p, name: name, meta: m}
	s.active = r.newMember(p, m.Active, ck)
	s.active.adopted = true
	return s, nil
}

func (r *Runner) newMember(p Projection, g generation, ck checkpoint) *member {
	prefix := statePrefix(p.Name(), g.Gen)
	tx := newTx(r.db.pdb, prefix)
	tx.sizeHint = r.opts.CacheKeys
	if k, ok := p.(Keeper); ok {
		tx.keep = k.Keep
	}
	return &member{
		proj:      p,
		name:      p.Name(),
		gen:       g,
		prefix:    prefix,
		ckptKey:   checkpointKey(p.Name(), g.Gen),
		tx:        tx,
		applied:   ck,
		committed: ck,
	}
}

// logHasEvents reports whether the log holds an event; false too if the
// store cannot say (the live loop then reads it as before). Without this
// check, a catch-up from the start of an empty log would end at once and
// start again, for ever.
func (r *Runner) logHasEvents(ctx context.Context) bool {
	head, err := r.store.Head(ctx)
	return err == nil && !head.IsStart()
}

// errRestart ends one pass of the Run loop so that the next one reads the
// log from the new lowest checkpoint.
var errRestart = errors.New("restart")

// Run applies the log to the projections until ctx is done: it catches up
// from the lowest checkpoint, then follows live writes. A failed read of the
// store is retried after RetryDelay; a projection that fails on an event is
// stopped (see Status) while the others go on. Run returns ctx's error, or
// eventstore.ErrClosed when the store is closed.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("projections: Run is already running")
	}
	defer r.running.Store(false)
	if r.opts.RebuildUpgraded {
		// Started before the first pass, so that the upgrades are built in
		// it if it reads the log from the first event anyway. The rebuild
		// hands its generations to this loop: waiting for it must end
		// before the loop does, whatever ends the loop.
		rctx, cancel := context.WithCancel(ctx)
		if wait := r.rebuildUpgraded(rctx); wait != nil {
			var upgrades sync.WaitGroup
			upgrades.Go(wait)
			defer upgrades.Wait()
		}
		defer cancel()
	}
	for {
		err := r.runPass(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errRestart):
			continue
		case errors.Is(err, eventstore.ErrClosed):
			return err
		}
		r.log.Error("projections: reading the log failed; retrying", "error", err, "retry_in", r.opts.RetryDelay)
		select {
		case <-time.After(r.opts.RetryDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// liveMembers are the members the Run loop applies to: every adopted member
// that has not failed.
func (r *Runner) liveMembers() []*member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.liveMembersLocked()
}

func (r *Runner) liveMembersLocked() []*member {
	var ms []*member
	for _, s := range r.slots {
		for _, m := range []*member{s.active, s.building} {
			if m != nil && m.adopted && m.failure == nil {
				ms = append(ms, m)
			}
		}
	}
	return ms
}

// beginPass takes the members of a pass of the Run loop; endPass ends it.
func (r *Runner) beginPass() []*member {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inPass = true
	return r.liveMembersLocked()
}

func (r *Runner) endPass() {
	r.mu.Lock()
	r.inPass = false
	r.mu.Unlock()
}

func (r *Runner) runPass(ctx context.Context) error {
	// A rebuilt generation handed over at the head has nothing left to
	// apply, so no commit would come to switch it: check now as well.
	if err := r.switchCaughtUp(); err != nil {
		return err
	}
	members := r.beginPass()
	defer r.endPass()
	if len(members) == 0 {
		// Everything failed (or there is nothing): wait for a rebuild.
		select {
		case m := <-r.adopt:
			r.adoptMember(m)
			return errRestart
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	from := members[0].applied.Position
	for _, m := range members[1:] {
		if m.applied.Position.Compare(from) < 0 {
			from = m.applied.Position
		}
	}
	if from.IsStart() && r.logHasEvents(ctx) {
		// A read model starts from nothing (the first start after an
		// import, a new version): catch up as a rebuild does, the log read
		// once and applied by every read model on its own goroutine, the
		// commits overlapped with the apply, and the new generations' Tx
		// answering missing keys from memory; then follow live from the
		// next pass. Page by page with the read models in step, as below,
		// took half as long again at Hanoi scale.
		if err := r.replay(ctx, members, Until{}, false); err != nil {
			return err
		}
		return errRestart
	}
	feedCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := r.startFeed(feedCtx, from, true)
	for {
		var it feedItem
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-r.adopt:
			r.adoptMember(m)
			return errRestart
		case it = <-f.next():
		}
		if it.err != nil {
			return it.err
		}
		if it.atHead {
			f.isLive = true
			r.markAtHead()
			continue
		}
		n := r.applyAll(members, it.events)
		keys := txKeys(members)
		// Take whatever else is ready, up to the batch bounds, so that one
		// commit covers as many events as possible.
		var feedErr error
	drain:
		for n < r.opts.BatchEvents && keys < r.opts.BatchKeys {
			select {
			case it2 := <-f.next():
				if it2.err != nil {
					feedErr = it2.err
					break drain
				}
				if it2.atHead {
					f.isLive = true
					r.markAtHead()
					continue
				}
				n += r.applyAll(members, it2.events)
				keys = txKeys(members)
			default:
				break drain
			}
		}
		if err := r.commit(members); err != nil {
			r.rollback(members)
			return err
		}
		if err := r.switchCaughtUp(); err != nil {
			return err
		}
		if feedErr != nil {
			return feedErr
		}
		if members = r.liveMembers(); len(members) == 0 {
			return errRestart
		}
	}
}

func (r *Runner) markAtHead() {
	r.mu.Lock()
	r.atHead = true
	r.mu.Unlock()
}

func txKeys(ms []*member) int {
	n := 0
	for _, m := range ms {
		n += m.tx.Dirty()
	}
	return n
}

// applyAll applies events to every member that has not seen them yet, and
// returns how many events it looked at. Members are independent (each has
// its own Tx and keyspace), so each applies the page on its own goroutine:
// on two cores the read models no longer wait for one another.
func (r *Runner) applyAll(ms []*member, events []Event) int {
	apply := func(m *member) {
		for i := range events {
			ev := &events[i]
			if m.failure != nil || ev.Position.Compare(m.applied.Position) <= 0 {
				continue
			}
			r.applyOne(m, ev)
		}
	}
	if len(ms) == 1 || len(events) < parallelMinEvents {
		for _, m := range ms {
			apply(m)
		}
		return len(events)
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() { apply(m) })
	}
	wg.Wait()
	return len(events)
}

// parallelMinEvents: below it, starting goroutines costs more than it
// saves (a live batch is often one event).
const parallelMinEvents = 64

func (r *Runner) applyOne(m *member, ev *Event) {
	if err := safeApply(m.proj, m.tx, ev); err != nil {
		r.fail(m, newFailure(m.name, ev, err))
		return
	}
	m.applied.Position = ev.Position
	m.applied.Applied++
}

// safeApply turns a panic in Apply into an error, so that one faulty
// projection stops itself and not the service.
func safeApply(p Projection, tx *Tx, ev *Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return p.Apply(tx, ev)
}

// fail stops a member: its uncommitted work is thrown away and its
// checkpoint stays where it was committed, before the failing event.
func (r *Runner) fail(m *member, f *Failure) {
	m.tx.reset()
	m.applied = m.committed
	if m.hasInflight {
		m.applied = m.inflight // on disk once the commit in flight is
	}
	r.log.Error("projection stopped on an event", "projection", m.name, "generation", m.gen.Gen,
		"position", f.Position.String(), "stream", f.StreamID, "revision", f.Revision,
		"type", f.EventType, "event_id", f.EventID.String(), "error", f.Err)
	r.mu.Lock()
	m.failure = f
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *Runner) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// commit writes every member's changes and new checkpoint in one batch.
// Each member encodes its values into a batch of its own, in parallel; the
// batches are then joined, so the commit stays one atomic write.
func (r *Runner) commit(ms []*member) error {
	p, err := r.prepareCommit(ms, nil)
	if p == nil {
		return err
	}
	defer p.close(nil)
	if err != nil {
		return err
	}
	r.startWrite()
	if err := p.write(r.db); err != nil {
		r.endWrite()
		return err
	}
	for _, m := range p.moved {
		m.tx.committed(r.opts.CacheKeys, r.opts.KeptKeys)
	}
	r.finishCommit(p)
	return nil
}

// startWrite and endWrite bracket a commit's Pebble write that will not be
// published (finishCommit ends the others).
func (r *Runner) startWrite() {
	r.mu.Lock()
	r.writing++
	r.mu.Unlock()
}

func (r *Runner) endWrite() {
	r.mu.Lock()
	r.writing--
	r.mu.Unlock()
}

// pendingCommit is one commit between the encoding of the members' changes
// and their arrival on disk.
type pendingCommit struct {
	moved   []*member
	ckpts   []checkpoint    // each moved member's checkpoint in this commit
	batches []*pebble.Batch // one per moved member
	merged  *pebble.Batch   // all of them joined, when there are several
	done    chan error      // the result of write, when it runs on its own goroutine
}

// prepareCommit encodes every member's changes and new checkpoint into a
// batch of its own, in parallel, taking the batches from spares if it holds
// any. It returns nil when no member moved. On an error the returned
// commit (if any) must still be closed.
func (r *Runner) prepareCommit(ms []*member, spares *[]*pebble.Batch) (*pendingCommit, error) {
	p := &pendingCommit{}
	for _, m := range ms {
		if m.failure == nil && m.applied != m.committed {
			p.moved = append(p.moved, m)
			p.ckpts = append(p.ckpts, m.applied)
		}
	}
	if len(p.moved) == 0 {
		return nil, nil
	}
	p.batches = make([]*pebble.Batch, len(p.moved))
	for i, m := range p.moved {
		switch {
		case spares == nil:
			p.batches[i] = r.db.pdb.NewBatchWithSize(m.batchBytes)
		case len(*spares) > 0:
			p.batches[i] = (*spares)[len(*spares)-1]
			*spares = (*spares)[:len(*spares)-1]
		default:
			p.batches[i] = r.db.pdb.NewBatchWithSize(m.batchBytes, pebble.WithMaxRetainedSizeBytes(spareBatchBytesMax))
		}
	}
	errs := make([]error, len(p.moved))
	encode := func(i int) {
		m := p.moved[i]
		b := p.batches[i]
		// A lone batch is committed as it is: its checkpoint (c/...) goes
		// first so that the batch is in key order (see write). Joined
		// batches get their checkpoints from write.
		if len(p.moved) == 1 {
			if err := b.Set(m.ckptKey, p.ckpts[i].encode(), nil); err != nil {
				errs[i] = fmt.Errorf("projections: commit %s: %w", m.name, err)
				return
			}
		}
		if _, err := m.tx.writeTo(b, nil); err != nil {
			errs[i] = fmt.Errorf("projections: commit %s: %w", m.name, err)
			return
		}
		m.batchBytes = b.Len()
	}
	if len(p.moved) == 1 {
		encode(0)
	} else {
		var wg sync.WaitGroup
		for i := range p.moved {
			wg.Go(func() { encode(i) })
		}
		wg.Wait()
	}
	return p, errors.Join(errs...)
}

// write joins the batches and commits them. It touches no member, so it
// may run while the members apply the next events.
//
// The joined batch is in key order: the checkpoints (c/<name>/...) first,
// in key order, then each member's state (s/<name>/<gen>/..., sorted by
// Tx.writeTo) in the order of the members' prefixes, which do not overlap.
// Pebble inserts sorted keys into its memtable faster, and a batch large
// enough to be flushed on its own is sorted again by Pebble, which costs
// little when it already is.
func (p *pendingCommit) write(db *DB) error {
	b := p.batches[0]
	if len(p.batches) > 1 {
		// One batch sized for all: appending the others to the first would
		// grow (and copy) it several times.
		size := 0
		for _, x := range p.batches {
			size += x.Len()
		}
		order := make([]int, len(p.moved))
		for i := range order {
			order[i] = i
			size += len(p.moved[i].ckptKey) + checkpointBytes + 16
		}
		p.merged = db.pdb.NewBatchWithSize(size)
		b = p.merged
		slices.SortFunc(order, func(i, j int) int { return bytes.Compare(p.moved[i].ckptKey, p.moved[j].ckptKey) })
		for _, i := range order {
			if err := b.Set(p.moved[i].ckptKey, p.ckpts[i].encode(), nil); err != nil {
				return fmt.Errorf("projections: commit: %w", err)
			}
		}
		slices.SortFunc(order, func(i, j int) int { return bytes.Compare(p.moved[i].prefix, p.moved[j].prefix) })
		for _, i := range order {
			if err := b.Apply(p.batches[i], nil); err != nil {
				return fmt.Errorf("projections: commit: %w", err)
			}
		}
	}
	// NoSync: a projection is derived data. If the machine loses power the
	// WAL's tail may be lost, but Pebble recovers a prefix of whole batches,
	// so each projection comes back at an older checkpoint with the state
	// of that checkpoint and simply reapplies from there.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("projections: commit: %w", err)
	}
	return nil
}

// close releases the commit's batches. With spares, the members' batches
// of a commit that joined them into another (so were never committed
// themselves) are kept there for the next commit: a rebuild's batches are
// tens of megabytes, and allocating them anew at every commit was a
// quarter of the bytes a rebuild allocated.
//
// A batch made to be kept (it holds on to up to spareBatchBytesMax) is
// never closed, only dropped: Close would put it, buffer and all, in
// Pebble's pool of batches, where any later NewBatch could get it and keep
// its large buffer alive in turn.
func (p *pendingCommit) close(spares *[]*pebble.Batch) {
	for _, x := range p.batches {
		switch {
		case x == nil:
		case spares == nil:
			_ = x.Close()
		case p.merged != nil:
			x.Reset()
			*spares = append(*spares, x)
		}
	}
	if p.merged != nil {
		_ = p.merged.Close()
	}
}

// spareBatchBytesMax bounds the buffer a kept batch holds on to.
const spareBatchBytesMax = 256 << 20

// finishCommit publishes the checkpoints of a commit that is on disk.
func (r *Runner) finishCommit(p *pendingCommit) {
	r.mu.Lock()
	r.writing--
	for i, m := range p.moved {
		m.committed = p.ckpts[i]
	}
	r.notifyLocked()
	r.mu.Unlock()
}

// A committer overlaps the Pebble commit of one batch with the apply of
// the next, for the loops that only catch up (a replay, a rebuild's new
// generation): while the commit joins and writes the batches on one core,
// the read models apply the next events on the other. It commits in order
// and has at most one commit in flight.
//
// The members' Tx must not ask Pebble for a key whose latest value is in
// the commit in flight: every such key is dirty in the cache when the
// commit is encoded, and the cache drops only clean entries, only when no
// commit is in flight (Tx.evict). A member that fails while a commit
// is in flight goes back to that commit's checkpoint (member.inflight).
type committer struct {
	r        *Runner
	inflight *pendingCommit
	spares   []*pebble.Batch // see pendingCommit.close
}

// commit waits for the commit in flight, then encodes the members'
// changes and starts writing them; with last, it also waits for that one.
func (c *committer) commit(ms []*member, last bool) error {
	if err := c.wait(); err != nil {
		return err
	}
	r := c.r
	for _, m := range ms {
		m.tx.evict(r.opts.CacheKeys, r.opts.KeptKeys)
	}
	p, err := r.prepareCommit(ms, &c.spares)
	if p == nil {
		return err
	}
	if err != nil {
		p.close(&c.spares)
		return err
	}
	for i, m := range p.moved {
		m.tx.markClean()
		m.inflight, m.hasInflight = p.ckpts[i], true
	}
	p.done = make(chan error, 1)
	c.inflight = p
	gate := r.writeGate
	r.startWrite()
	go func() {
		if gate != nil {
			<-gate
		}
		p.done <- p.write(r.db)
	}()
	if last {
		return c.wait()
	}
	return nil
}

// close waits for the commit in flight and drops the spare batches (not
// closed: see pendingCommit.close).
func (c *committer) close() {
	_ = c.wait()
	c.spares = nil
}

// wait waits for the commit in flight, if any, and publishes it; if it
// failed, every member goes back to its last commit on disk.
func (c *committer) wait() error {
	p := c.inflight
	if p == nil {
		return nil
	}
	c.inflight = nil
	if c.r.writeGate != nil {
		c.r.writeGate <- struct{}{}
	}
	err := <-p.done
	p.close(&c.spares)
	for _, m := range p.moved {
		m.hasInflight = false
	}
	if err != nil {
		c.r.endWrite()
		c.r.rollback(p.moved)
		return err
	}
	c.r.finishCommit(p)
	return nil
}

// rollback forgets uncommitted work after a failed commit; the next pass
// reads the log again from the committed checkpoints.
func (r *Runner) rollback(ms []*member) {
	for _, m := range ms {
		m.tx.reset()
		m.applied = m.committed
	}
}

// Projection returns the named projection, or nil.
func (r *Runner) Projection(name string) Projection {
	if s, ok := r.byName[name]; ok {
		return s.proj
	}
	return nil
}

// Names lists the projections in the order they were given.
func (r *Runner) Names() []string {
	names := make([]string, len(r.slots))
	for i, s := range r.slots {
		names[i] = s.name
	}
	return names
}

// View is a consistent, read-only picture of every projection's committed
// state, taken at one instant. Close it when done.
type View struct {
	snap    *pebble.Snapshot
	readers map[string]*Reader
}

// View takes a snapshot of all projections' committed state.
func (r *Runner) View() *View {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := &View{snap: r.db.pdb.NewSnapshot(), readers: make(map[string]*Reader, len(r.slots))}
	// With no commit between its write and its publication, what is
	// published is what the snapshot holds: each projection's position is
	// known without reading its checkpoint. Otherwise Position reads it
	// from the snapshot, which is exact at any time.
	exact := r.writing == 0
	for _, s := range r.slots {
		v.readers[s.name] = &Reader{r: v.snap, prefix: s.active.prefix, ckptKey: s.active.ckptKey,
			pos: s.active.committed.Position, posKnown: exact}
	}
	return v
}

// Reader returns the named projection's reader, or nil if there is no such
// projection.
func (v *View) Reader(name string) *Reader { return v.readers[name] }

// Position is the position the named projection had reached when the view
// was taken.
func (v *View) Position(name string) (eventstore.Position, error) {
	rd := v.readers[name]
	if rd == nil {
		return eventstore.Start, fmt.Errorf("projections: no projection named %s", name)
	}
	return rd.Position()
}

// Close releases the snapshot.
func (v *View) Close() error { return v.snap.Close() }

// Position of the reader's projection as of its view.
func (rd *Reader) Position() (eventstore.Position, error) {
	if rd.posKnown {
		return rd.pos, nil
	}
	v, closer, err := rd.r.Get(rd.ckptKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Start, fmt.Errorf("projections: read checkpoint: %w", err)
	}
	defer closeQuietly(closer)
	ck, err := decodeCheckpoint(v)
	return ck.Position, err
}
