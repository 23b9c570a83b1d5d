package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/labstack/echo/v4"
)

// ETags are the revision of the resource's stream, as a strong entity tag:
// `"7"`. Strong, because If-Match compares strongly (RFC 9110 §13.1.1: a
// weak tag never matches), and optimistic concurrency is their whole use. A
// representation of one revision is the same bytes every time, so the
// promise a strong tag makes holds.

// ETag renders a stream revision as an entity tag.
func ETag(revision uint64) string { return `"` + strconv.FormatUint(revision, 10) + `"` }

// SetETag sets the response's ETag to the stream revision.
func SetETag(c echo.Context, revision uint64) {
	c.Response().Header().Set("ETag", ETag(revision))
}

// IfMatch reads the If-Match header as the revision a command expects its
// stream to be at, for the ledger to append with. ok is false when the
// header is absent: the handler then appends with the revision it loaded
// (and a concurrent change is retried by the ledger rather than refused).
// "*" means the resource must exist. A malformed header is a 400; a weak or
// several entity tags are refused rather than guessed at.
func IfMatch(c echo.Context) (expected eventstore.ExpectedRevision, ok bool, err error) {
	values := c.Request().Header.Values("If-Match")
	if len(values) == 0 {
		return eventstore.ExpectedRevision{}, false, nil
	}
	v := strings.TrimSpace(strings.Join(values, ","))
	switch {
	case v == "*":
		return eventstore.StreamExists(), true, nil
	case strings.Contains(v, ","):
		return eventstore.ExpectedRevision{}, false, ifMatchProblem("too_many_entity_tags",
			"send one entity tag in If-Match, the ETag of the resource as you last read it")
	case strings.HasPrefix(v, "W/"):
		return eventstore.ExpectedRevision{}, false, ifMatchProblem("weak_etag_in_if_match",
			"If-Match needs the strong entity tag of the resource (its ETag header, e.g. \"7\"), not a weak one")
	}
	rev, err := ParseETag(v)
	if err != nil {
		return eventstore.ExpectedRevision{}, false, ifMatchProblem("precondition_invalid",
			"If-Match must be the ETag of the resource as you last read it, e.g. \"7\" with the quotes")
	}
	return eventstore.Exact(rev), true, nil
}

// ParseETag reads an entity tag written by ETag.
func ParseETag(tag string) (uint64, error) {
	inner, ok := strings.CutPrefix(tag, `"`)
	if ok {
		inner, ok = strings.CutSuffix(inner, `"`)
	}
	if !ok || inner == "" || len(inner) > 20 {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(inner, 10, 64)
}

func ifMatchProblem(code, detail string) *Problem {
	return NewProblem(http.StatusBadRequest, code, detail).WithField("If-Match", detail)
}
