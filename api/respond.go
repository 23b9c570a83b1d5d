package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/labstack/echo/v4"
)

// CommandMetadata is the metadata of the events a command handler writes:
// who (the caller), when, the request ID as correlation ID, and the POST's
// Idempotency-Key and body hash as command ID and hash, so that the ledger
// can answer a retried command from the events it already wrote even after
// the API's in-memory replay record is gone.
func (s *Server) CommandMetadata(c echo.Context) domain.Metadata {
	cmd := CommandKeyOf(c)
	return domain.Metadata{
		Actor:         ActorOf(c),
		RecordedAt:    s.now().UTC(),
		CorrelationID: RequestID(c),
		CommandID:     cmd.Key,
		CommandHash:   cmd.BodyHash,
	}
}

// CommandResult sends a command's response: the status and body, the position of
// the last event written (X-Ansinh-Position; the body should embed Written
// with the same value) and the stream's new revision as ETag.
func CommandResult(c echo.Context, status int, res eventstore.AppendResult, body any) error {
	SetPosition(c, res.Position)
	SetETag(c, res.NextRevision)
	return c.JSON(status, body)
}

// Pagination: a page of a list is asked for with ?limit= (1 to 500, default
// 50) and ?cursor=; the answer holds the items and, when more follow,
// next_cursor to pass back. A cursor is opaque to clients: base64url of a
// version tag and the sort key of the last item sent, so that an insert
// between two pages neither repeats nor skips an item.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
	maxCursorBytes   = 512
	cursorVersion    = "1:"
)

// Page is a client's request for one page.
type Page struct {
	Limit int
	// After is the sort key of the last item of the previous page; "" for
	// the first page.
	After string
}

// List is the wire form of a page of T.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// ParsePage reads ?limit= and ?cursor=.
func ParsePage(c echo.Context) (Page, error) {
	p := Page{Limit: DefaultPageLimit}
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxPageLimit {
			msg := "want a whole number from 1 to " + strconv.Itoa(MaxPageLimit)
			return Page{}, NewProblem(http.StatusBadRequest, "invalid_limit", "limit: "+msg).WithField("limit", msg)
		}
		p.Limit = n
	}
	if raw := c.QueryParam("cursor"); raw != "" {
		after, ok := decodeCursor(raw)
		if !ok {
			msg := "pass back next_cursor of the previous page unchanged, or omit it for the first page"
			return Page{}, NewProblem(http.StatusBadRequest, "invalid_cursor", "cursor: "+msg).WithField("cursor", msg)
		}
		p.After = after
	}
	return p, nil
}

// NextCursor is the cursor of the page after the one that ends with the
// item whose sort key is last.
func NextCursor(last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + last))
}

func decodeCursor(raw string) (string, bool) {
	if len(raw) > maxCursorBytes {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", false
	}
	after, ok := strings.CutPrefix(string(b), cursorVersion)
	return after, ok && after != ""
}

// Paginate cuts the page out of items sorted by key, ascending.
func Paginate[T any](items []T, key func(T) string, p Page) List[T] {
	start := 0
	if p.After != "" {
		// Items are sorted: the first one after the cursor's key.
		lo, hi := 0, len(items)
		for lo < hi {
			mid := (lo + hi) / 2
			if key(items[mid]) <= p.After {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		start = lo
	}
	end := min(start+p.Limit, len(items))
	out := List[T]{Items: items[start:end]}
	if out.Items == nil {
		out.Items = []T{}
	}
	if end < len(items) {
		out.NextCursor = NextCursor(key(items[end-1]))
	}
	return out
}

// timeOrNil renders a zero time as JSON null rather than year 1.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
