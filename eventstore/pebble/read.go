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

	forwards := opts.Direction == eventstore.Forwards
	var valid bool
	switch {
	case opts.From == eventstore.End:
		valid = idx.Last()
	case forwards:
		valid = idx.SeekGE(appendStreamKey(nil, stream, opts.From))
	default:
		valid = idx.SeekLT(appendStreamKey(nil, stream, opts.From+1))
	}
	var out []eventstore.RecordedEvent
	size := 0
	logKey := make([]byte, 0, logKeyLen)
	for ; valid && len(out) < opts.Limit && size < readBytesMax; valid = step(idx, forwards) {
		if len(out)%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rev, ok := streamKeyRev(idx.Key(), len(lower))
		seq, ok2 := decodeUint64(idx.Value())
		if !ok || !ok2 {
			return nil, fmt.Errorf("%w: stream index entry %x", errCorrupt, idx.Key())
		}
		if seq > head {
			// Written by a group whose commit is not yet announced; later
			// revisions are later still.
			if forwards {
				break
			}
			continue
		}
		logKey = appendLogKey(logKey[:0], seq)
		if !log.SeekGE(logKey) || !bytes.Equal(log.Key(), logKey) {
			if err := log.Error(); err != nil {
				return nil, fmt.Errorf("eventstore/pebble: read %q: %w", stream, err)
			}
			return nil, fmt.Errorf("%w: stream %q revision %d points at missing seq %d", errCorrupt, stream, rev, seq)
		}
		v, err := parseEvent(log.Value())
		if err != nil {
			return nil, fmt.Errorf("seq %d: %w", seq, err)
		}
		// Re-check what the index promised against what the log holds.
		if v.revision != rev || string(v.stream) != stream {
			return nil, fmt.Errorf("%w: index says %q@%d, seq %d holds %q@%d", errCorrupt, stream, rev, seq, v.stream, v.revision)
		}
		out = append(out, v.record(seq))
		size += len(v.data) + len(v.metadata)
	}
	if err := idx.Error(); err != nil {
		return nil, fmt.Errorf("eventstore/pebble: read %q: %w", stream, err)
	}
	if len(out) == 0 {
		// Tell "no such stream" from "nothing in this window".
		exists := idx.First()
		if exists {
			seq, _ := decodeUint64(idx.Value())
			exists = seq <= head
		}
		if !exists {
			return nil, fmt.Errorf("%w: %q", eventstore.ErrStreamNotFound, stream)
		}
	}
	return out, nil
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
		out = append(out, v.record(seq))
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
