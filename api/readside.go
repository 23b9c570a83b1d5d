package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// The read side: queries answered by the projections (docs/projections.md)
// rather than by loading one stream. Every such query
//
//   - first honours ?min_position= (AwaitProjections), so a client reads
//     its own writes;
//   - answers with "position", the place in the log its figures reflect
//     (for a CSV download, the X-Ansinh-Position header);
//   - pages with ?limit= (1 to projections.MaxPageLimit, 200) and ?cursor=.
//
// Balances and the trial balance also take ?as_of=, an RFC 3339 instant or
// a log position: the figures as the ledger knew them then, computed by
// replaying the log up to there into memory (projections.AsOf). That costs
// a full read of the log up to the point asked for, and memory for every
// read model of that time, so it is bounded: finance officers, auditors
// and admins only, one replay at a time per server (503 as_of_busy beyond),
// within the route's deadline (asOfTimeout).

// readSide is the Server's state for the read side. The zero value is
// ready.
type readSide struct {
	asOfBusy      atomic.Bool // one as-of replay at a time
	codecOnce     sync.Once
	codec         *domain.Codec
	verifications verifications // audit.go
	rebuilds      rebuilds      // rebuilds.go
}

// asOfRoles may ask for past figures (?as_of=).
var asOfRoles = []domain.Role{domain.RoleFinanceOfficer, domain.RoleAuditor, domain.RoleAdmin}

// asOfTimeout is the deadline of the routes that take ?as_of=: a replay of
// a year of Hanoi's log (about ten million events) takes minutes.
const asOfTimeout = 10 * time.Minute

// QueryAsOf names the parameter of past figures.
const QueryAsOf = "as_of"

// errNoReadModels answers a query on a server that runs without
// projections (tests of other parts, or a misconfiguration).
var errNoReadModels = NewProblem(http.StatusServiceUnavailable, "projections_unavailable",
	"this server runs without read models, so it cannot answer this query; ask another instance").WithHeader("Retry-After", "5")

// codec decodes events for as-of replays and verification; built once, on
// first use (it registers every event type of the ledger).
func (s *Server) codec() *domain.Codec {
	s.reads.codecOnce.Do(func() { s.reads.codec = ledger.NewCodec() })
	return s.reads.codec
}

// liveReadModels waits for ?min_position= and returns the live read models.
func (s *Server) liveReadModels(c echo.Context) (*projections.Set, error) {
	if s.deps.ReadModels == nil {
		return nil, errNoReadModels
	}
	if err := s.AwaitProjections(c); err != nil {
		return nil, err
	}
	return s.deps.ReadModels, nil
}

// readModelsAt returns the read models a query reads: the live ones, or
// with ?as_of= a replay of the log up to then. done releases what it holds
// (the replay's memory, the as-of slot); call it when the answer is built.
// until is where the replay stopped, nil for the live read models.
func (s *Server) readModelsAt(c echo.Context) (set *projections.Set, done func(), until *projections.Until, err error) {
	raw := c.QueryParam(QueryAsOf)
	if raw == "" {
		set, err := s.liveReadModels(c)
		return set, func() {}, nil, err
	}
	if !slices.Contains(asOfRoles, ActorOf(c).Role) {
		return nil, nil, nil, NewProblem(http.StatusForbidden, "forbidden",
			"as_of replays the event log and is for finance officers, auditors and admins; leave it out for the current figures")
	}
	u, err := s.parseAsOf(c, raw)
	if err != nil {
		return nil, nil, nil, err
	}
	if !s.reads.asOfBusy.CompareAndSwap(false, true) {
		return nil, nil, nil, NewProblem(http.StatusServiceUnavailable, "as_of_busy",
			"this server is already computing figures as of a past time, which replays the log; retry in a minute").
			WithHeader("Retry-After", "60")
	}
	start := time.Now()
	set, err = projections.AsOf(c.Request().Context(), s.deps.Store, s.codec(), u, projections.SetOptions{})
	if err != nil {
		s.reads.asOfBusy.Store(false)
		return nil, nil, nil, fmt.Errorf("as of %s: %w", raw, err)
	}
	Logger(c).Info("as-of replay", "as_of", raw, "position", set.Position().String(),
		"duration_ms", time.Since(start).Milliseconds())
	return set, func() {
		if err := set.Close(); err != nil {
			Logger(c).Warn("closing an as-of replay", "err", err)
		}
		s.reads.asOfBusy.Store(false)
	}, &u, nil
}

// parseAsOf reads ?as_of=: an RFC 3339 instant (not in the future) or a
// position of this log (not past its end).
func (s *Server) parseAsOf(c echo.Context, raw string) (projections.Until, error) {
	bad := func(msg string) error {
		return NewProblem(http.StatusBadRequest, "bad_request", QueryAsOf+": "+msg).WithField(QueryAsOf, msg)
	}
	if len(raw) > 64 {
		return projections.Until{}, bad("too long; want an RFC 3339 time or a position")
	}
	if strings.ContainsAny(raw, "-T:") {
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return projections.Until{}, bad("want an RFC 3339 time with a zone, e.g. 2024-01-18T17:00:00+07:00, or a position such as 1234/1234")
		}
		if t.After(s.now()) {
			return projections.Until{}, bad("is in the future; leave it out for the current figures")
		}
		return projections.UntilTime(t), nil
	}
	pos, err := eventstore.ParsePosition(raw)
	if err != nil {
		return projections.Until{}, bad("want a position such as 1234/1234 (a command's X-Ansinh-Position) or an RFC 3339 time")
	}
	if pos.IsStart() {
		return projections.Until{}, bad("position 0 is before the first event; nothing is known there")
	}
	head, err := s.deps.Store.Head(c.Request().Context())
	if err != nil {
		return projections.Until{}, fmt.Errorf("as of: head: %w", err)
	}
	if pos.Compare(head) > 0 {
		return projections.Until{}, bad(fmt.Sprintf("position %s is past the end of the event log (%s)", pos, head))
	}
	return projections.UntilPosition(pos), nil
}

// readError turns the projections' own errors into problems.
func readError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, projections.ErrInvalidCursor):
		msg := "pass back next_cursor of the previous page unchanged, with the same query, or omit it for the first page"
		return NewProblem(http.StatusBadRequest, "invalid_cursor", "cursor: "+msg).WithField("cursor", msg)
	}
	return err
}

// parseReadPage reads ?limit= and ?cursor= for a read-model query, whose
// pages are at most projections.MaxPageLimit. The cursor the read model
// made travels inside the API's own cursor (NextCursor), so clients see one
// kind of cursor everywhere.
func parseReadPage(c echo.Context) (Page, error) {
	p, err := ParsePage(c)
	if err != nil {
		return p, err
	}
	if p.Limit > projections.MaxPageLimit {
		msg := fmt.Sprintf("want a whole number from 1 to %d for this list", projections.MaxPageLimit)
		return Page{}, NewProblem(http.StatusBadRequest, "invalid_limit", "limit: "+msg).WithField("limit", msg)
	}
	return p, nil
}

// nextCursor wraps a read model's cursor; "" stays "" (the last page).
func nextCursor(next string) string {
	if next == "" {
		return ""
	}
	return NextCursor(next)
}

// badParam is a 400 for one malformed query parameter.
func badParam(field, msg string) *Problem {
	return NewProblem(http.StatusBadRequest, "bad_request", field+": "+msg).WithField(field, msg)
}

// validCode reports whether s is 1 to max ASCII digits: the form of the
// statistics office's district and ward codes.
func validCode(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// currentPeriod is the month it is in Vietnam by the ledger's clock (by
// the server's clock without a ledger).
func (s *Server) currentPeriod() domain.Period {
	if s.deps.Ledger != nil {
		return s.today().Period()
	}
	return domain.DateOf(s.now()).Period()
}
