package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// Waiter lets a query read its own writes: a command's response carries
// the position of what it appended, and the query waits until the
// projections have applied that position.
type Waiter interface {
	// Position is the lowest position every serving projection has
	// committed: a query answered now reflects at least the log up to it.
	Position() eventstore.Position
	// WaitFor returns nil once Position() is at or after pos. It gives up
	// when ctx ends or after the runner's MaxWait, with an error wrapping
	// ErrNotCaughtUp; it fails at once, wrapping ErrPositionAhead, for a
	// position beyond the end of the log, and with the *Failure when a
	// projection stopped before pos.
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

var (
	// ErrNotCaughtUp: the projections did not reach the position in time.
	ErrNotCaughtUp = errors.New("projections have not reached the requested position")
	// ErrPositionAhead: the position is after the last event of the log, so
	// no wait could reach it (the client sent a position it did not get
	// from this service).
	ErrPositionAhead = errors.New("position is beyond the end of the log")
)

var _ Waiter = (*Runner)(nil)

// Position implements Waiter.
func (r *Runner) Position() eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, _ := r.positionLocked()
	return p
}

// positionLocked returns the lowest committed position of the serving
// generations, and the failure of the one that is lowest because it failed.
func (r *Runner) positionLocked() (eventstore.Position, *Failure) {
	var low eventstore.Position
	var failure *Failure
	for i, s := range r.slots {
		c := s.active.committed.Position
		if i == 0 || c.Compare(low) < 0 {
			low = c
		}
		if s.active.failure != nil && (failure == nil || c.Compare(failure.Position) < 0) {
			failure = s.active.failure
		}
	}
	return low, failure
}

// WaitFor implements Waiter.
func (r *Runner) WaitFor(ctx context.Context, pos eventstore.Position) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.MaxWait)
	defer cancel()
	checkedHead := false
	for {
		r.mu.Lock()
		cur, failure := r.positionLocked()
		changed := r.changed
		r.mu.Unlock()
		if cur.Compare(pos) >= 0 {
			return nil
		}
		// A failed projection whose checkpoint is before pos will not get
		// there; say so now rather than at the timeout.
		if failure != nil && failure.Position.Compare(pos) <= 0 {
			return fmt.Errorf("%w: waiting for %s: %w", ErrNotCaughtUp, pos, failure)
		}
		if !checkedHead {
			head, err := r.store.Head(ctx)
			if err != nil {
				return fmt.Errorf("projections: wait for %s: %w", pos, err)
			}
			if pos.Compare(head) > 0 {
				return fmt.Errorf("%w: %s, the log ends at %s", ErrPositionAhead, pos, head)
			}
			checkedHead = true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: at %s, waiting for %s: %w", ErrNotCaughtUp, cur, pos, ctx.Err())
		}
	}
}

// Lag is how far the projections are behind the log, for /readyz and
// /metrics.
type Lag struct {
	Head eventstore.Position `json:"head"`
	// Position is the lowest position of the serving projections.
	Position eventstore.Position `json:"position"`
	Behind   bool                `json:"behind"`
	// EventsBehind is Head minus Position in events when the store's
	// positions count events (the embedded store), -1 otherwise.
	EventsBehind int64 `json:"events_behind"`
	// Live: the runner has caught up with the log at least once since it
	// started and now follows live writes.
	Live bool `json:"live"`
	// Failed names the projections that stopped on an event.
	Failed      []string `json:"failed,omitempty"`
	Projections []Status `json:"projections"`
}

// Status is one projection's state.
type Status struct {
	Name         string              `json:"name"`
	Version      int                 `json:"version"`
	Generation   uint64              `json:"generation"`
	Position     eventstore.Position `json:"position"`
	Applied      uint64              `json:"applied"`
	Behind       bool                `json:"behind"`
	EventsBehind int64               `json:"events_behind"`
	Failure      *Failure            `json:"failure,omitempty"`
	Rebuild      *RebuildStatus      `json:"rebuild,omitempty"`
}

// RebuildStatus is the progress of a rebuild: the new generation's
// checkpoint.
type RebuildStatus struct {
	Generation   uint64              `json:"generation"`
	Position     eventstore.Position `json:"position"`
	Applied      uint64              `json:"applied"`
	EventsBehind int64               `json:"events_behind"`
}

// Lag reads the head of the log and reports every projection against it.
func (r *Runner) Lag(ctx context.Context) (Lag, error) {
	head, err := r.store.Head(ctx)
	if err != nil {
		return Lag{}, fmt.Errorf("projections: lag: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l := Lag{Head: head, Live: r.atHead}
	l.Position, _ = r.positionLocked()
	l.Behind = l.Position.Compare(head) < 0
	l.EventsBehind = r.eventsBehind(l.Position, head)
	l.Projections, l.Failed = r.statusesLocked(head, true)
	return l, nil
}

// Statuses reports every projection as it stands, without reading the log:
// what Lag reports but how far behind each is (Behind false, EventsBehind
// -1). It answers when the store does not.
func (r *Runner) Statuses() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	sts, _ := r.statusesLocked(eventstore.Position{}, false)
	return sts
}

// statusesLocked reports each projection against head; without a known
// head nothing is said to be behind, and EventsBehind is -1.
func (r *Runner) statusesLocked(head eventstore.Position, known bool) (sts []Status, failed []string) {
	behind := func(pos eventstore.Position) (bool, int64) {
		if !known {
			return false, -1
		}
		return pos.Compare(head) < 0, r.eventsBehind(pos, head)
	}
	for _, s := range r.slots {
		a := s.active
		st := Status{
			Name:       s.name,
			Version:    a.gen.Version,
			Generation: a.gen.Gen,
			Position:   a.committed.Position,
			Applied:    a.committed.Applied,
			Failure:    a.failure,
		}
		st.Behind, st.EventsBehind = behind(a.committed.Position)
		if a.failure != nil {
			failed = append(failed, s.name)
		}
		if b := s.building; b != nil {
			st.Rebuild = &RebuildStatus{
				Generation: b.gen.Gen,
				Position:   b.committed.Position,
				Applied:    b.committed.Applied,
			}
			_, st.Rebuild.EventsBehind = behind(b.committed.Position)
		}
		sts = append(sts, st)
	}
	return sts, failed
}

func (r *Runner) eventsBehind(pos, head eventstore.Position) int64 {
	if !r.opts.CountablePositions {
		return -1
	}
	if pos.Commit >= head.Commit {
		return 0
	}
	return int64(head.Commit - pos.Commit)
}

// MarshalJSON renders a failure for /readyz and logs.
func (f *Failure) MarshalJSON() ([]byte, error) {
	msg := ""
	if f.Err != nil {
		msg = f.Err.Error()
	}
	return json.Marshal(struct {
		Projection string              `json:"projection"`
		Position   eventstore.Position `json:"position"`
		StreamID   string              `json:"stream"`
		Revision   uint64              `json:"revision"`
		EventType  string              `json:"type"`
		EventID    uuid.UUID           `json:"event_id"`
		Error      string              `json:"error"`
		At         time.Time           `json:"at"`
	}{f.Projection, f.Position, f.StreamID, f.Revision, f.EventType, f.EventID, msg, f.At})
}
