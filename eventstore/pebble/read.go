package pebble

import (
	"bytes"
	"context"
	"fmt"
	"math"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
)

// ctxCheckEvery is how many events a read handles between looks at its
// context: often enough to stop promptly, rarely enough to cost nothing.
const ctxCheckEvery = 1024

// beginRead holds the store open for the duration of one read; the returned
// function must be called when the read is done.
func (s *Store) beginRead(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, eventstore.ErrClosed
	}
	select {
	case <-s.stopping:
		s.mu.RUnlock()
		return nil, eventstore.ErrClosed
	default:
	}
	return s.mu.RUnlock, nil
}

// ReadStream reads a window of one stream through the stream index, fetching
// each event from the global log.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateStreamName(stream); err != nil {
		return nil, err
	}
	if err := eventstore.ValidateReadLimit(opts.Limit); err != nil {
		return nil, err
	}
	if opts.Direction != eventstore.Forwards && opts.Direction != eventstore.Backwards {
		return nil, fmt.Errorf("eventstore/pebble: read %q: unknown direction %d", stream, opts.Direction)
	}
	release, err := s.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	head := s.committed.Load()

	lower, upper := streamBounds(stream)
	idx, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("eventstore/pebble: read %q: %w", stream, err)
	}
	defer idx.Close()
	log, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logLower, UpperBound: logUpper})
	if err != nil {
		return nil, fmt.Errorf("eventstore/pebble: read %q: %w", stream, err)
	}
	defer log.Close()

	r := streamReader{stream: stream, prefixLen: len(lower), head: head, idx: idx, log: log,
		forwards: opts.Direction == eventstore.Forwards, limit: opts.Limit}
	if err := r.read(ctx, opts.From); err != nil {
		return nil, err
	}
	if len(r.out) == 0 {
		// Tell "no such stream" from "nothing in this window": revision 0
		// is in the first run of every stream that has events.
		exists := idx.First()
		if exists {
			run, ok := decodeRun(idx.Key(), idx.Value(), len(lower))
			exists = ok && run.firstSeq+run.count-1 <= head
		}
		if err := idx.Error(); err != nil {
			return nil, fmt.Errorf("eventstore/pebble: read %q: %w", stream, err)
		}
		if !exists {
			return nil, fmt.Errorf("%w: %q", eventstore.ErrStreamNotFound, stream)
		}
	}
	return r.out, nil
}

// streamReader walks a stream's runs (one per append) and, within a run, the
// consecutive log entries the run points at.
type streamReader struct {
	stream    string
	prefixLen int
	head      uint64
	idx, log  *pebble.Iterator
	forwards  bool
	limit     int
	out       []eventstore.RecordedEvent
	size      int
	logKey    []byte
	dec       decoder
}

func (r *streamReader) read(ctx context.Context, from uint64) error {
	var valid bool
	if from == eventstore.End {
		valid = r.idx.Last()
	} else {
		// The run holding from is the last one that starts at or before it.
		valid = r.idx.SeekLT(appendStreamKey(nil, r.stream, from+1))
	}
	first := true
	var prev streamRun
	for ; valid && len(r.out) < r.limit && r.size < readBytesMax; valid = step(r.idx, r.forwards) {
		if err := ctx.Err(); err != nil {
			return err
		}
		run, ok := decodeRun(r.idx.Key(), r.idx.Value(), r.prefixLen)
		if !ok {
			return fmt.Errorf("%w: stream index entry %x", errCorrupt, r.idx.Key())
		}
		// Runs tile the revisions: each starts where its neighbour ends.
		if !first && ((r.forwards && run.firstRev != prev.lastRev()+1) || (!r.forwards && run.lastRev()+1 != prev.firstRev)) {
			return fmt.Errorf("%w: stream %q runs at %d and %d do not meet", errCorrupt, r.stream, prev.firstRev, run.firstRev)
		}
		prev = run
		if run.firstSeq+run.count-1 > r.head {
			// Written by a group whose commit is not yet announced; later
			// revisions are later still.
			if r.forwards {
				break
			}
			first = false
			continue
		}
		// The first revision to read in this run.
		rev := run.firstRev
		switch {
		case !r.forwards:
			rev = run.lastRev()
			if first && from < rev {
				rev = from
			}
		case first && from != eventstore.End && from > rev:
			rev = from
		case first && from == eventstore.End:
			rev = run.lastRev()
		}
		first = false
		if rev > run.lastRev() {
			continue // from is past the end of the stream
		}
		if err := r.readRun(run, rev); err != nil {
			return err
		}
	}
	if err := r.idx.Error(); err != nil {
		return fmt.Errorf("eventstore/pebble: read %q: %w", r.stream, err)
	}
	return nil
}

// readRun reads the run's events from revision rev onwards in the reader's
// direction, until the run, the limit or the byte budget ends.
func (r *streamReader) readRun(run streamRun, rev uint64) error {
	r.logKey = appendLogKey(r.logKey[:0], run.seqOf(rev))
	valid := r.log.SeekGE(r.logKey)
	for {
		seq := run.seqOf(rev)
		if !valid || !bytes.Equal(r.log.Key(), appendLogKey(r.logKey[:0], seq)) {
			if err := r.log.Error(); err != nil {
				return fmt.Errorf("eventstore/pebble: read %q: %w", r.stream, err)
			}
			return fmt.Errorf("%w: stream %q revision %d points at missing seq %d", errCorrupt, r.stream, rev, seq)
		}
		v, err := parseEvent(r.log.Value())
		if err != nil {
			return fmt.Errorf("seq %d: %w", seq, err)
		}
		// Re-check what the index promised against what the log holds.
		if v.revision != rev || string(v.stream) != r.stream {
			return fmt.Errorf("%w: index says %q@%d, seq %d holds %q@%d", errCorrupt, r.stream, rev, seq, v.stream, v.revision)
		}
		r.out = append(r.out, r.dec.record(&v, seq))
		r.size += len(v.data) + len(v.metadata)
		if len(r.out) >= r.limit || r.size >= readBytesMax {
			return nil
		}
		if r.forwards {
			if rev == run.lastRev() {
				return nil
			}
			rev++
		} else {
			if rev == run.firstRev {
				return nil
			}
			rev--
		}
		valid = step(r.log, r.forwards)
	}
}

func step(it *pebble.Iterator, forwards bool) bool {
	if forwards {
		return it.Next()
	}
	return it.Prev()
}

// ReadAll reads the global log strictly after a position.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateReadLimit(limit); err != nil {
		return nil, err
	}
	release, err := s.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	start, ok := firstSeqAfter(after)
	if !ok {
		return nil, nil
	}
	page, _, err := s.scanLog(ctx, start, limit, limit, nil)
	return page, err
}

// firstSeqAfter is the first seq whose position {seq, seq} is strictly after
// p; ok is false when no seq can be.
func firstSeqAfter(p eventstore.Position) (uint64, bool) {
	if p.Prepare < p.Commit {
		// {c, c} is after {c, p} when p < c.
		return p.Commit, true
	}
	if p.Commit == math.MaxUint64 {
		return 0, false
	}
	return p.Commit + 1, true
}

// scanLog reads the log from seq start up to the committed head, looking at
// no more than scanMax events and returning at most limit of those that
// match filter (nil: all). next is the seq to continue from: it advances
// over non-matching events too, so a filtered reader makes progress.
// The caller holds beginRead.
func (s *Store) scanLog(ctx context.Context, start uint64, scanMax, limit int, filter *eventstore.Filter) (out []eventstore.RecordedEvent, next uint64, err error) {
	head := s.committed.Load()
	if start > head {
		return nil, start, nil
	}
	lower := appendLogKey(nil, start)
	upper := appendLogKey(nil, head+1)
	if head == math.MaxUint64 {
		upper = logUpper
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, start, fmt.Errorf("eventstore/pebble: read log: %w", err)
	}
	defer it.Close()
	want := uint64(min(scanMax, int(head-start+1)))
	if filter == nil {
		out = make([]eventstore.RecordedEvent, 0, min(uint64(limit), want))
	}
	next = start
	var dec decoder
	size, scanned := 0, 0
	valid := it.First()
	for ; valid && scanned < scanMax && len(out) < limit && size < readBytesMax; valid = it.Next() {
		scanned++
		if scanned%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, start, err
			}
		}
		seq, ok := logKeySeq(it.Key())
		if !ok || seq != next {
			// Seqs are dense: a hole is corruption, never a legal state.
			return nil, start, fmt.Errorf("%w: log has key %x where seq %d belongs", errCorrupt, it.Key(), next)
		}
		v, err := parseEvent(it.Value())
		if err != nil {
			return nil, start, fmt.Errorf("seq %d: %w", seq, err)
		}
		next = seq + 1
		if filter != nil && !filter.Match(string(v.stream), string(v.eventType)) {
			continue
		}
		out = append(out, dec.record(&v, seq))
		size += len(v.data) + len(v.metadata)
	}
	if err := it.Error(); err != nil {
		return nil, start, fmt.Errorf("eventstore/pebble: read log: %w", err)
	}
	if !valid && next <= head {
		return nil, start, fmt.Errorf("%w: log ends at seq %d, head is %d", errCorrupt, next-1, head)
	}
	return out, next, nil
}
