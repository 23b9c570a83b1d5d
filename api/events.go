package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/labstack/echo/v4"
)

// The history of any stream, event by event, with what happened (type and
// data as stored) and who, when and why (the metadata): what an auditor
// reads to follow a record, a run or a payment back through every change.
// GET /v1/streams/{stream}/events, oldest first or (direction=backwards)
// newest first, from a revision, paged.
//
// It reads the event store itself, not a projection, so it is always
// current and min_position does not apply. The data is the stored event as
// it is, account numbers included, so only auditors and admins may read it.
var historyReaders = []domain.Role{domain.RoleAuditor, domain.RoleAdmin}

func (s *Server) eventRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/v1/streams/:stream/events", Handler: s.streamEvents, Roles: historyReaders},
	}
}

type (
	actorJSON struct {
		UserID string `json:"user_id"`
		Role   string `json:"role"`
	}
	eventMetadataJSON struct {
		Actor         actorJSON  `json:"actor"`
		RecordedAt    time.Time  `json:"recorded_at"`
		EffectiveAt   *time.Time `json:"effective_at"`
		Reason        string     `json:"reason"`
		CorrelationID string     `json:"correlation_id"`
		CausationID   string     `json:"causation_id"`
		CommandID     string     `json:"command_id"`
		SchemaVersion int        `json:"schema_version"`
	}
	streamEventJSON struct {
		Stream   string              `json:"stream"`
		Revision uint64              `json:"revision"`
		Position eventstore.Position `json:"position"`
		ID       string              `json:"id"`
		Type     string              `json:"type"`
		// StoredAt is when the store recorded the event; metadata.recorded_at
		// when the service decided it.
		StoredAt time.Time       `json:"stored_at"`
		Data     json.RawMessage `json:"data"`
		// Metadata is null when the stored metadata is not the service's
		// (an event written by another tool).
		Metadata *eventMetadataJSON `json:"metadata"`
	}
	streamEventsJSON struct {
		Items      []streamEventJSON `json:"items"`
		NextCursor string            `json:"next_cursor,omitempty"`
	}
)

func (s *Server) streamEvents(c echo.Context) error {
	stream := c.Param("stream")
	if err := eventstore.ValidateStreamName(stream); err != nil {
		return badParam("stream", "want a stream name: 1 to 200 of letters, digits and - _ . : @")
	}
	page, err := ParsePage(c)
	if err != nil {
		return err
	}
	dir := eventstore.Forwards
	switch c.QueryParam("direction") {
	case "", "forwards":
	case "backwards":
		dir = eventstore.Backwards
	default:
		return badParam("direction", "want forwards (oldest first) or backwards (newest first)")
	}
	from := uint64(0)
	if dir == eventstore.Backwards {
		from = eventstore.End
	}
	if raw := c.QueryParam("from"); raw != "" {
		if page.After != "" {
			return badParam("from", "send either from or cursor, not both")
		}
		n, err := strconv.ParseUint(raw, 10, 63)
		if err != nil {
			return badParam("from", "want a revision of the stream, a whole number from 0")
		}
		from = n
	}
	if page.After != "" {
		// The cursor is the direction and the revision to read next, so
		// that it cannot be replayed in the other direction by mistake.
		d, rev, ok := strings.Cut(page.After, ":")
		n, err := strconv.ParseUint(rev, 10, 63)
		if !ok || err != nil || d != directionTag(dir) {
			msg := "pass back next_cursor of the previous page unchanged, with the same direction"
			return NewProblem(http.StatusBadRequest, "invalid_cursor", "cursor: "+msg).WithField("cursor", msg)
		}
		from = n
	}
	// One more than asked tells whether another page follows.
	recs, err := s.deps.Store.ReadStream(c.Request().Context(), stream, eventstore.ReadStreamOptions{Direction: dir, From: from, Limit: page.Limit + 1})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return Problemf(http.StatusNotFound, "stream_not_found", "no events were ever written to stream %s; check its name (e.g. beneficiary-<citizen ID>, run-<run ID>, users, seals)", stream).
			WithField("stream", "no such stream")
	}
	if err != nil {
		return err
	}
	out := streamEventsJSON{Items: make([]streamEventJSON, 0, min(len(recs), page.Limit))}
	if len(recs) > page.Limit {
		recs = recs[:page.Limit]
		last := recs[len(recs)-1].Revision
		next := last + 1
		if dir == eventstore.Backwards {
			next = last - 1 // last > 0: an older event follows
		}
		out.NextCursor = NextCursor(directionTag(dir) + ":" + strconv.FormatUint(next, 10))
	}
	for _, r := range recs {
		out.Items = append(out.Items, toStreamEventJSON(r))
	}
	return c.JSON(http.StatusOK, out)
}

func directionTag(d eventstore.Direction) string {
	if d == eventstore.Backwards {
		return "b"
	}
	return "f"
}

func toStreamEventJSON(r eventstore.RecordedEvent) streamEventJSON {
	out := streamEventJSON{Stream: r.StreamID, Revision: r.Revision, Position: r.Position, ID: r.ID.String(), Type: r.Type,
		StoredAt: r.RecordedAt, Data: json.RawMessage(r.Data)}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage("null")
	}
	var md domain.Metadata
	if len(r.Metadata) > 0 && json.Unmarshal(r.Metadata, &md) == nil {
		out.Metadata = &eventMetadataJSON{
			Actor: actorJSON{UserID: md.Actor.UserID, Role: string(md.Actor.Role)}, RecordedAt: md.RecordedAt,
			EffectiveAt: timeOrNil(md.EffectiveAt), Reason: md.Reason, CorrelationID: md.CorrelationID,
			CausationID: md.CausationID, CommandID: md.CommandID, SchemaVersion: md.SchemaVersion,
		}
	}
	return out
}
