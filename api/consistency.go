package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// Read-your-writes. A command answers with the position of the last event
// it wrote (header X-Ansinh-Position and body field "position"). A query
// that passes it back (?min_position= or header X-Ansinh-Min-Position) is
// answered only once the projections have applied that event, so a client
// never reads a list that lacks what it just wrote. The wait is bounded
// (Config.WaitMax); past it the answer is 503 projection_behind with
// Retry-After, never a silently stale read.
const (
	HeaderPosition    = "X-Ansinh-Position"
	HeaderMinPosition = "X-Ansinh-Min-Position"
	QueryMinPosition  = "min_position"
)

// Projections is what the API needs of the projection engine.
type Projections interface {
	// Position is the position of the last event that every projection
	// has applied (the slowest one's checkpoint); Start before any.
	Position() eventstore.Position
	// WaitFor returns once Position() is at or after pos, or with ctx's
	// error when ctx ends first.
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

// Written is embedded in the response body of every command.
type Written struct {
	Position eventstore.Position `json:"position"`
}

// SetPosition sets the X-Ansinh-Position header of a command's response.
func SetPosition(c echo.Context, pos eventstore.Position) {
	c.Response().Header().Set(HeaderPosition, pos.String())
}

// MinPosition reads the position a query must reflect, from ?min_position=
// or the X-Ansinh-Min-Position header (the query parameter wins). ok is false
// when the client sent neither.
func MinPosition(c echo.Context) (pos eventstore.Position, ok bool, err error) {
	raw := c.QueryParam(QueryMinPosition)
	field := QueryMinPosition
	if raw == "" {
		raw = c.Request().Header.Get(HeaderMinPosition)
		field = HeaderMinPosition
	}
	if raw == "" {
		return eventstore.Position{}, false, nil
	}
	if len(raw) > 41 { // two uint64s and a slash
		return eventstore.Position{}, false, invalidPosition(field)
	}
	pos, err = eventstore.ParsePosition(raw)
	if err != nil {
		return eventstore.Position{}, false, invalidPosition(field)
	}
	return pos, true, nil
}

func invalidPosition(field string) *Problem {
	msg := "want the position a command returned (X-Ansinh-Position), e.g. 1234/1234"
	return NewProblem(http.StatusBadRequest, "invalid_position", field+": "+msg).WithField(field, msg)
}

// AwaitProjections is called first by every query handler that reads
// projections: it waits, within Config.WaitMax, until they reflect the
// position the client asked for, if it asked. A position past the end of
// the log is refused at once (it cannot come from this store).
func (s *Server) AwaitProjections(c echo.Context) error {
	pos, ok, err := MinPosition(c)
	if err != nil || !ok {
		return err
	}
	p := s.deps.Projections
	if p == nil {
		return NewProblem(http.StatusServiceUnavailable, "projections_unavailable",
			"this server runs without projections, so it cannot wait for a position; retry without min_position")
	}
	if p.Position().Compare(pos) >= 0 {
		return nil
	}
	ctx := c.Request().Context()
	head, err := s.deps.Store.Head(ctx)
	if err != nil {
		return fmt.Errorf("await projections: head: %w", err)
	}
	if pos.Compare(head) > 0 {
		return Problemf(http.StatusBadRequest, "invalid_position",
			"position %s is past the end of the event log (%s); send a position a command of this service returned", pos, head).
			WithField(QueryMinPosition, "past the end of the log")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WaitMax)
	defer cancel()
	err = p.WaitFor(ctx, pos)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && c.Request().Context().Err() == nil:
		return Problemf(http.StatusServiceUnavailable, "projection_behind",
			"the read models have not reached position %s within %s (they are at %s); retry shortly",
			pos, s.cfg.WaitMax, p.Position()).
			WithHeader("Retry-After", "1")
	case errors.As(err, new(*projections.Failure)):
		// A read model stopped on an event before pos: it will not get
		// there by itself, so this is an outage an operator must see
		// (GET /v1/projections names the event), not a bug in the request.
		return Problemf(http.StatusServiceUnavailable, "projection_stopped",
			"the read models cannot reach position %s: %v; an operator must fix the read model (see GET /v1/projections)", pos, err).
			WithHeader("Retry-After", "30").WithCause(err)
	default:
		return fmt.Errorf("await projections: %w", err)
	}
}

// projectionLag is how long the oldest event the projections have not
// applied has been waiting: zero when they are at the head. It is measured
// in time rather than in positions because positions are not event counts
// in EventStoreDB (they are byte offsets in its log).
func (s *Server) projectionLag(ctx context.Context) (time.Duration, error) {
	p := s.deps.Projections
	if p == nil {
		return 0, nil
	}
	next, err := s.deps.Store.ReadAll(ctx, p.Position(), 1)
	if err != nil {
		return 0, fmt.Errorf("projection lag: %w", err)
	}
	if len(next) == 0 {
		return 0, nil
	}
	lag := s.now().Sub(next[0].RecordedAt)
	if lag < 0 {
		lag = 0
	}
	return lag, nil
}
