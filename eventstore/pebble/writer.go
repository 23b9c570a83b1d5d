package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// appendRequest is one Append waiting for the writer.
type appendRequest struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData
	bytes    int              // data + metadata, for the group's byte bound
	reply    chan appendReply // buffered (1): the writer never blocks on it
}

type appendReply struct {
	result eventstore.AppendResult
	err    error
}

// Append validates the request in the caller's goroutine (so that validation
// runs in parallel), then hands it to the writer and waits for the group it
// lands in to be synced.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	select {
	case <-s.stopping:
		return eventstore.AppendResult{}, eventstore.ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w", stream, err)
	}
	req := &appendRequest{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		events:   events,
		reply:    make(chan appendReply, 1),
	}
	for i := range events {
		req.bytes += len(events[i].Data) + len(events[i].Metadata)
	}
	select {
	case s.queue <- req:
	case <-s.stopping:
		return eventstore.AppendResult{}, eventstore.ErrClosed
	case <-ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: not queued: %w", stream, ctx.Err())
	}
	select {
	case r := <-req.reply:
		return r.result, r.err
	case <-s.writerDone:
		// The writer answers every request it takes before it exits, so a
		// reply may already be waiting; if not, the request was queued after
		// the writer's last look and was never written.
		select {
		case r := <-req.reply:
			return r.result, r.err
		default:
			return eventstore.AppendResult{}, eventstore.ErrClosed
		}
	case <-ctx.Done():
		// The writer may still commit it: the caller learns the outcome by
		// retrying with the same event IDs, which is idempotent.
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: outcome unknown, retry with the same event IDs: %w", stream, ctx.Err())
	}
}

// writer is the state of the single writer goroutine. Nothing in it is
// touched by any other goroutine.
type writer struct {
	s       *Store
	lastSeq uint64           // seq of the last committed event
	heads   map[string]int64 // committed stream heads (-1: no events), a cache of h/ keys
	pending map[string]*pendingStream
	free    []*pendingStream
	batch   *pebble.Batch
	key     []byte // scratch for building keys
	val     [8]byte
	run     [16]byte
	index   sortedSets
	group   []*appendRequest
	replies []appendReply
	written []bool // replies[i] depends on this group's commit (fails if the commit fails)
	wrote   uint64 // appends of this group that wrote events
	failed  error  // set when a commit failed: the store is fail-stop from then on
}

// pendingStream is what the group being built has written to one stream but
// not yet committed; later appends in the same group check against it.
type pendingStream struct {
	head int64 // last revision once the group commits
	segs []pendingSegment
}

// pendingSegment is one append's events: consecutive revisions and seqs.
type pendingSegment struct {
	firstRev, firstSeq uint64
	events             []eventstore.EventData
}

func newWriter(s *Store, head uint64) writer {
	return writer{
		s:       s,
		lastSeq: head,
		heads:   make(map[string]int64),
		pending: make(map[string]*pendingStream),
		batch:   s.db.NewBatch(),
		group:   make([]*appendRequest, 0, s.opts.GroupAppendsMax),
	}
}

func (s *Store) runWriter() {
	defer close(s.writerDone)
	w := &s.w
	defer w.batch.Close()
	var carry *appendRequest // taken off the queue but did not fit the last group
	for {
		select {
		case <-s.stopping:
			w.failRemaining(carry)
			return
		default:
		}
		if carry == nil {
			select {
			case carry = <-s.queue:
			case <-s.stopping:
				w.failRemaining(nil)
				return
			}
		}
		carry = w.fillGroup(carry)
		w.commitGroup()
	}
}

// fillGroup starts a group with first and adds whatever else is already
// queued, up to the group bounds. It returns a request that did not fit.
func (w *writer) fillGroup(first *appendRequest) (carry *appendRequest) {
	o := &w.s.opts
	w.group = append(w.group[:0], first)
	events, bytes := len(first.events), first.bytes
	for len(w.group) < o.GroupAppendsMax {
		select {
		case req := <-w.s.queue:
			if events+len(req.events) > o.GroupEventsMax || bytes+req.bytes > o.GroupBytesMax {
				return req
			}
			w.group = append(w.group, req)
			events += len(req.events)
			bytes += req.bytes
		default:
			return nil
		}
	}
	return nil
}

func (w *writer) failRemaining(carry *appendRequest) {
	if carry != nil {
		carry.reply <- appendReply{err: eventstore.ErrClosed}
	}
	for {
		select {
		case req := <-w.s.queue:
			req.reply <- appendReply{err: eventstore.ErrClosed}
		default:
			return
		}
	}
}

// commitGroup decides every append of the group in order against the
// committed state plus what earlier appends of the group wrote, puts the
// accepted ones in one batch, syncs it once and answers everybody.
func (w *writer) commitGroup() {
	w.replies = append(w.replies[:0], make([]appendReply, len(w.group))...)
	w.written = append(w.written[:0], make([]bool, len(w.group))...)
	w.batch.Reset()
	w.index.reset()
	w.wrote = 0
	seq := w.lastSeq
	now := time.Now().UnixNano()
	for i, req := range w.group {
		if w.failed != nil {
			w.replies[i].err = w.failed
			continue
		}
		if err := req.ctx.Err(); err != nil {
			w.replies[i].err = fmt.Errorf("append to %q: not written: %w", req.stream, err)
			continue
		}
		w.replies[i], w.written[i] = w.decideAndWrite(req, &seq, now)
	}
	if seq != w.lastSeq {
		for stream, ps := range w.pending {
			w.key = appendHeadKey(w.key[:0], stream)
			w.index.add(w.key, appendUint64(w.val[:0], uint64(ps.head)))
		}
		w.index.add(metaHeadKey, appendUint64(w.val[:0], seq))
		w.index.flush(w.batch)
		w.finishCommit(seq, w.s.db.Apply(w.batch, pebble.Sync))
	}
	w.releasePending()
	for i, req := range w.group {
		req.reply <- w.replies[i]
		w.group[i] = nil
	}
}

func (w *writer) finishCommit(seq uint64, err error) {
	st := &w.s.stats
	if err != nil {
		// Whether any of the batch reached the disk is unknown, and the
		// in-memory heads may no longer match it: stop writing (fail-stop)
		// rather than guess. Reopening recovers from what is on disk.
		w.failed = fmt.Errorf("eventstore/pebble: commit failed, store stopped writing (reopen it): %w", err)
		for i := range w.replies {
			if w.written[i] {
				w.replies[i] = appendReply{err: w.failed}
			}
		}
		return
	}
	if len(w.heads) > headsCacheMax {
		clear(w.heads)
	}
	for stream, ps := range w.pending {
		w.heads[stream] = ps.head
	}
	st.events.Add(seq - w.lastSeq)
	st.commits.Add(1)
	st.appends.Add(w.wrote)
	w.lastSeq = seq
	w.s.committed.Store(seq)
	w.s.broadcastCommit()
}

func (w *writer) releasePending() {
	for stream, ps := range w.pending {
		clear(ps.segs) // drop references to the callers' events
		ps.segs = ps.segs[:0]
		w.free = append(w.free, ps)
		delete(w.pending, stream)
	}
}

// decideAndWrite checks one append and, if accepted, adds its events to the
// batch. written reports whether the reply depends on the commit.
func (w *writer) decideAndWrite(req *appendRequest, seq *uint64, now int64) (reply appendReply, written bool) {
	ps := w.pending[req.stream]
	head, err := w.head(req.stream, ps)
	if err != nil {
		return appendReply{err: err}, false
	}
	res, done, err := w.checkIdempotent(req, head, ps)
	switch {
	case err != nil:
		var wrong *eventstore.WrongExpectedRevisionError
		if errors.As(err, &wrong) || errors.Is(err, eventstore.ErrIdempotencyConflict) {
			w.s.stats.rejected.Add(1)
		}
		return appendReply{err: err}, false
	case done:
		// A retry of an append earlier in this same group is answered from
		// it, so it too depends on the commit.
		w.s.stats.idempotent.Add(1)
		return appendReply{result: res}, ps != nil
	}
	if ps == nil {
		ps = w.newPending(req.stream, head)
	}
	firstRev := uint64(head + 1)
	firstSeq := *seq + 1
	for k := range req.events {
		ev := &req.events[k]
		rev := firstRev + uint64(k)
		*seq++
		w.putEvent(req.stream, rev, *seq, ev, now)
	}
	ps.head = head + int64(len(req.events))
	ps.segs = append(ps.segs, pendingSegment{firstRev: firstRev, firstSeq: firstSeq, events: req.events})
	w.key = appendStreamKey(w.key[:0], req.stream, firstRev)
	w.index.add(w.key, appendRunValue(w.run[:0], streamRun{firstRev: firstRev, firstSeq: firstSeq, count: uint64(len(req.events))}))
	last := *seq
	w.wrote++
	return appendReply{result: eventstore.AppendResult{
		NextRevision: uint64(ps.head),
		Position:     eventstore.Position{Commit: last, Prepare: last},
	}}, true
}

func (w *writer) putEvent(stream string, rev, seq uint64, ev *eventstore.EventData, now int64) {
	op := w.batch.SetDeferred(logKeyLen, encodedEventLen(stream, ev))
	appendLogKey(op.Key[:0], seq)
	encodeEvent(op.Value, stream, rev, ev, now)
	mustFinish(op.Finish())

	w.key = appendIDKey(w.key[:0], stream, ev.ID)
	w.index.add(w.key, appendUint64(w.val[:0], rev))
}

// sortedSets holds a group's index writes (everything but the log) so they
// can go into the batch in key order. Pebble inserts a batch into its
// memtable skiplist in batch order; keys in order let each insert start from
// where the previous one ended instead of searching from the top, which was
// a third of the writer's CPU. The log keys need no sorting: seqs ascend,
// and the log family sorts before all the others.
type sortedSets struct {
	buf  []byte
	ents []setEntry
}

type setEntry struct{ off, keyLen, valLen int }

func (ss *sortedSets) reset() {
	ss.buf = ss.buf[:0]
	ss.ents = ss.ents[:0]
}

func (ss *sortedSets) add(key, value []byte) {
	ss.ents = append(ss.ents, setEntry{off: len(ss.buf), keyLen: len(key), valLen: len(value)})
	ss.buf = append(ss.buf, key...)
	ss.buf = append(ss.buf, value...)
}

func (ss *sortedSets) key(e setEntry) []byte { return ss.buf[e.off : e.off+e.keyLen] }

// flush adds the sets to the batch in key order. The sort is stable, so of
// two sets of one key the later still wins.
func (ss *sortedSets) flush(b *pebble.Batch) {
	slices.SortStableFunc(ss.ents, func(a, c setEntry) int { return bytes.Compare(ss.key(a), ss.key(c)) })
	for _, e := range ss.ents {
		k := ss.key(e)
		// A Set on an unindexed batch fails only on a closed batch, which
		// the writer never has: a failure is a programming error.
		mustFinish(b.Set(k, ss.buf[e.off+e.keyLen:e.off+e.keyLen+e.valLen], nil))
	}
}

func mustFinish(err error) {
	if err != nil {
		panic(fmt.Sprintf("eventstore/pebble: building batch: %v", err))
	}
}

func (w *writer) newPending(stream string, head int64) *pendingStream {
	var ps *pendingStream
	if n := len(w.free); n > 0 {
		ps, w.free = w.free[n-1], w.free[:n-1]
	} else {
		ps = &pendingStream{}
	}
	ps.head = head
	w.pending[stream] = ps
	return ps
}

// head is the stream's last revision as the group sees it (-1: no events).
func (w *writer) head(stream string, ps *pendingStream) (int64, error) {
	if ps != nil {
		return ps.head, nil
	}
	if h, ok := w.heads[stream]; ok {
		return h, nil
	}
	w.key = appendHeadKey(w.key[:0], stream)
	v, ok, err := w.get(w.key)
	if err != nil {
		return 0, fmt.Errorf("append to %q: read stream head: %w", stream, err)
	}
	h := int64(-1)
	if ok {
		if v > math.MaxInt64 {
			return 0, fmt.Errorf("%w: head of %q is %d", errCorrupt, stream, v)
		}
		h = int64(v)
	}
	if len(w.heads) >= headsCacheMax {
		clear(w.heads)
	}
	w.heads[stream] = h
	return h, nil
}

// get reads an 8-byte value.
func (w *writer) get(key []byte) (v uint64, found bool, err error) {
	b, closer, err := w.s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	v, ok := decodeUint64(b)
	if !ok {
		return 0, false, fmt.Errorf("%w: %d-byte value under %q", errCorrupt, len(b), key)
	}
	return v, true, nil
}

// checkIdempotent applies the expected revision and the idempotency rules of
// the port. done means the append was already written and res is the first
// result; err is a refusal; neither means: write it at head+1.
func (w *writer) checkIdempotent(req *appendRequest, head int64, ps *pendingStream) (res eventstore.AppendResult, done bool, err error) {
	wrong := func() error {
		return &eventstore.WrongExpectedRevisionError{Stream: req.stream, Expected: req.expected, Actual: head}
	}
	exp := req.expected
	if exp.IsAny() || exp.IsStreamExists() {
		if exp.IsStreamExists() && head < 0 {
			return res, false, wrong()
		}
		if head < 0 {
			return res, false, nil
		}
		first, found, err := w.revisionOf(req.stream, ps, req.events[0].ID)
		if err != nil || !found {
			return res, false, err
		}
		// A retry: the whole append must be the run that starts there.
		return w.matchRun(req, first, head, ps)
	}
	// Exact(n) or NoStream (n = -1).
	n := int64(-1)
	if r, ok := exp.Revision(); ok {
		if r > math.MaxInt64 {
			return res, false, wrong()
		}
		n = int64(r)
	}
	switch {
	case head == n:
		return res, false, nil
	case head < n:
		return res, false, wrong()
	}
	// The stream moved past n: either this append is a retry of the one that
	// moved it (its events sit at n+1...), or somebody else's append won.
	present := 0
	for k := range req.events {
		rev, found, err := w.revisionOf(req.stream, ps, req.events[k].ID)
		if err != nil {
			return res, false, err
		}
		if found && (n < 0 || rev > uint64(n)) {
			present++
		}
	}
	if present == 0 {
		return res, false, wrong()
	}
	return w.matchRun(req, uint64(n+1), head, ps)
}

// matchRun succeeds with the original result when the append's events are
// exactly the stream's events first, first+1, ..., and fails with
// ErrIdempotencyConflict otherwise.
func (w *writer) matchRun(req *appendRequest, first uint64, head int64, ps *pendingStream) (res eventstore.AppendResult, done bool, err error) {
	last := first + uint64(len(req.events)) - 1
	if last > uint64(head) {
		return res, false, w.conflict(req, first)
	}
	for k := range req.events {
		rev, found, err := w.revisionOf(req.stream, ps, req.events[k].ID)
		if err != nil {
			return res, false, err
		}
		if !found || rev != first+uint64(k) {
			return res, false, w.conflict(req, first)
		}
	}
	seq, err := w.seqOf(req.stream, ps, last)
	if err != nil {
		return res, false, err
	}
	return eventstore.AppendResult{
		NextRevision: last,
		Position:     eventstore.Position{Commit: seq, Prepare: seq},
	}, true, nil
}

func (w *writer) conflict(req *appendRequest, first uint64) error {
	return fmt.Errorf("%w: stream %q from revision %d (a retry must resend the same events in the same order with the same expected revision)",
		eventstore.ErrIdempotencyConflict, req.stream, first)
}

// revisionOf finds the revision of an event ID in the stream: first among the
// group's uncommitted appends, then on disk.
func (w *writer) revisionOf(stream string, ps *pendingStream, id uuid.UUID) (uint64, bool, error) {
	if ps != nil {
		for _, seg := range ps.segs {
			for k := range seg.events {
				if seg.events[k].ID == id {
					return seg.firstRev + uint64(k), true, nil
				}
			}
		}
	}
	w.key = appendIDKey(w.key[:0], stream, id)
	rev, found, err := w.get(w.key)
	if err != nil {
		return 0, false, fmt.Errorf("append to %q: read event ID index: %w", stream, err)
	}
	return rev, found, nil
}

// seqOf finds the global seq of one revision of the stream.
func (w *writer) seqOf(stream string, ps *pendingStream, rev uint64) (uint64, error) {
	if ps != nil {
		for _, seg := range ps.segs {
			if rev >= seg.firstRev && rev < seg.firstRev+uint64(len(seg.events)) {
				return seg.firstSeq + (rev - seg.firstRev), nil
			}
		}
	}
	lower, upper := streamBounds(stream)
	it, err := w.s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("append to %q: read stream index: %w", stream, err)
	}
	defer it.Close()
	if !it.SeekLT(appendStreamKey(w.key[:0], stream, rev+1)) {
		if err := it.Error(); err != nil {
			return 0, fmt.Errorf("append to %q: read stream index: %w", stream, err)
		}
		return 0, fmt.Errorf("%w: stream %q has no index entry for revision %d below its head", errCorrupt, stream, rev)
	}
	run, ok := decodeRun(it.Key(), it.Value(), len(lower))
	if !ok || rev > run.lastRev() {
		return 0, fmt.Errorf("%w: stream %q index entry %x does not hold revision %d", errCorrupt, stream, it.Key(), rev)
	}
	return run.seqOf(rev), nil
}
