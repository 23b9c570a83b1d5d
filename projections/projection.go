package projections

import (
	"fmt"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// Projection folds the global log, event by event, into a read model.
//
// Apply must be a deterministic function of the state it reads through tx
// and the event: the same log always gives the same state, whatever the
// batch boundaries, restarts or rebuilds along the way. That is what lets
// verify compare a live projection with a fresh replay byte for byte.
type Projection interface {
	// Name is the projection's stable identity (1 to 40 of a-z 0-9 _ -);
	// it keys the stored state.
	Name() string
	// Version changes whenever Apply or the state layout changes. A stored
	// state of another version is not used: the projection starts again
	// from the beginning of the log.
	Version() int
	// Apply folds one event into the state. An error (or a panic) stops the
	// projection at this event: nothing of the batch it was in is stored,
	// and the event is reported, never skipped.
	Apply(tx *Tx, ev *Event) error
}

// Event is a recorded event as a projection sees it, with its data decoded
// once for all projections.
type Event struct {
	eventstore.RecordedEvent
	data      any
	decodeErr error
	// derived is what several read models compute from the same event,
	// computed once with the decoding, on the feed's goroutine: before the
	// read models apply the event concurrently, which only read it.
	derived derived
}

// Upgrader is implemented by a projection whose code still reads the state
// an earlier version of it stored. After an upgrade the runner keeps
// serving that state (applying new events to it with the new code) and,
// with Options.RebuildUpgraded, rebuilds the projection beside it and
// switches once the rebuild has caught up: no answers from part of the log.
// A projection that is not an Upgrader, or does not read the stored
// version, starts again from nothing in a new generation when its version
// changes.
type Upgrader interface {
	ReadsVersion(stored int) bool
}

// Decoded returns the event's data decoded by the runner's Decoder: nil and
// no error for a type the decoder does not know (or when there is no
// decoder), an error when the data of a known type does not decode.
func (e *Event) Decoded() (any, error) { return e.data, e.decodeErr }

// Decoder turns stored event data into a Go value. It returns (nil, nil) for
// event types it does not know: projections skip those.
type Decoder func(eventType string, data []byte) (any, error)

// NewEvent wraps a recorded event for Apply, decoding it with dec (which may
// be nil). Tests and replays use it; the runner decodes on its own.
func NewEvent(rec eventstore.RecordedEvent, dec Decoder) *Event {
	ev := &Event{RecordedEvent: rec}
	ev.decode(dec)
	return ev
}

func (e *Event) decode(dec Decoder) {
	if dec != nil {
		e.data, e.decodeErr = dec(e.Type, e.Data)
		e.derive()
	}
}

// Failure is why a projection stopped: the event it could not apply and the
// error. The projection's checkpoint stays before that event.
type Failure struct {
	Projection string
	Position   eventstore.Position
	StreamID   string
	Revision   uint64
	EventType  string
	EventID    uuid.UUID
	Err        error
	At         time.Time
}

func (f *Failure) Error() string {
	return fmt.Sprintf("projection %s stopped at event %s (%s, stream %s revision %d, id %s): %v",
		f.Projection, f.Position, f.EventType, f.StreamID, f.Revision, f.EventID, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

func newFailure(name string, ev *Event, err error) *Failure {
	return &Failure{
		Projection: name,
		Position:   ev.Position,
		StreamID:   ev.StreamID,
		Revision:   ev.Revision,
		EventType:  ev.Type,
		EventID:    ev.ID,
		Err:        err,
		At:         time.Now().UTC(),
	}
}
