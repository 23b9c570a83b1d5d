package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// MaxHistoryLimit bounds one page of a stream's history.
const MaxHistoryLimit = 1000

// StreamEvent is one event of a stream's history as an auditor reads it:
// what happened (type, data), and who, when and why (metadata).
type StreamEvent struct {
	Revision   uint64              `json:"revision"`
	Position   eventstore.Position `json:"position"`
	ID         uuid.UUID           `json:"id"`
	Type       string              `json:"type"`
	RecordedAt time.Time           `json:"recorded_at"`
	Data       json.RawMessage     `json:"data"`
	Metadata   domain.Metadata     `json:"metadata"`
}

// StreamHistory reads up to limit events of one stream from revision from
// on, oldest first, with their metadata decoded. next is the revision to
// ask for the following page; more is false at the end of the stream. A
// stream with no events returns an error wrapping eventstore.ErrStreamNotFound.
func StreamHistory(ctx context.Context, store eventstore.Store, stream string, from uint64, limit int) (events []StreamEvent, next uint64, more bool, err error) {
	if limit < 1 || limit > MaxHistoryLimit {
		return nil, 0, false, fmt.Errorf("projections: history limit %d, want 1 to %d", limit, MaxHistoryLimit)
	}
	// One more than asked tells whether there is a next page.
	recs, err := store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{
		Direction: eventstore.Forwards, From: from, Limit: limit + 1,
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("projections: history of %s: %w", stream, err)
	}
	if len(recs) > limit {
		recs, more = recs[:limit], true
	}
	events = make([]StreamEvent, len(recs))
	for i, rec := range recs {
		e := StreamEvent{
			Revision:   rec.Revision,
			Position:   rec.Position,
			ID:         rec.ID,
			Type:       rec.Type,
			RecordedAt: rec.RecordedAt,
			Data:       rec.Data,
		}
		if len(rec.Metadata) > 0 {
			if err := json.Unmarshal(rec.Metadata, &e.Metadata); err != nil {
				return nil, 0, false, fmt.Errorf("projections: metadata of %s revision %d: %w", stream, rec.Revision, err)
			}
		}
		events[i] = e
	}
	next = from
	if len(recs) > 0 {
		next = recs[len(recs)-1].Revision + 1
	}
	return events, next, more, nil
}
