package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/labstack/echo/v4"
)

// ProblemTypeBase prefixes every problem's type: the type of a problem with
// code "body_too_large" is "https://ansinh.dev/problems/body_too_large". The
// URI is an identifier clients may compare, not a page they must fetch;
// docs/api.md lists the codes. The code is also sent on its own ("code") so
// that clients need not parse the URI.
const ProblemTypeBase = "https://ansinh.dev/problems/"

// MediaTypeProblem is the media type of every error response (RFC 9457).
const MediaTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem detail. Handlers return one (as an error)
// when they reject a request themselves; domain.RuleError and the event
// store's errors are turned into one by the error handler.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	Code      string       `json:"code"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`

	header http.Header // sent with the problem: Retry-After, Allow, ETag, ...
	cause  error       // logged for 5xx, never sent
}

// FieldError names one input at fault.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// NewProblem builds a problem. Detail should say what to do about it.
func NewProblem(status int, code, detail string) *Problem {
	return &Problem{
		Type:   ProblemTypeBase + code,
		Title:  titleOf(code, status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// Problemf is NewProblem with a formatted detail.
func Problemf(status int, code, format string, args ...any) *Problem {
	return NewProblem(status, code, fmt.Sprintf(format, args...))
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%d %s: %s", p.Status, p.Code, p.Detail)
}

// Unwrap exposes the cause to errors.Is/As.
func (p *Problem) Unwrap() error { return p.cause }

// WithField adds a field-level error.
func (p *Problem) WithField(field, message string) *Problem {
	p.Errors = append(p.Errors, FieldError{Field: field, Message: message})
	return p
}

// WithHeader adds a response header to the problem.
func (p *Problem) WithHeader(key, value string) *Problem {
	if p.header == nil {
		p.header = http.Header{}
	}
	p.header.Set(key, value)
	return p
}

// WithCause records the error behind the problem, for the log.
func (p *Problem) WithCause(err error) *Problem {
	p.cause = err
	return p
}

// Titles are fixed per code (RFC 9457: the title does not change from
// occurrence to occurrence); the detail carries the specifics.
var problemTitles = map[string]string{
	"bad_request":                "The request is malformed",
	"invalid_json":               "The request body is not acceptable JSON",
	"unsupported_media_type":     "The request body has the wrong media type",
	"unauthorized":               "Authentication is required",
	"forbidden":                  "Your role does not allow this",
	"not_found":                  "Not found",
	"method_not_allowed":         "Method not allowed",
	"body_too_large":             "The request body is too large",
	"precondition_failed":        "The resource has changed",
	"concurrent_write":           "The resource changed while the request ran",
	"idempotency_key_required":   "An Idempotency-Key header is required",
	"idempotency_key_invalid":    "The Idempotency-Key header is invalid",
	"idempotency_key_reused":     "The Idempotency-Key was used for another request",
	"idempotency_key_in_use":     "A request with this Idempotency-Key is in progress",
	"idempotency_response_lost":  "The response to this Idempotency-Key was not kept",
	"rate_limited":               "Too many requests",
	"projection_behind":          "The data is not yet up to date",
	"projection_stopped":         "A read model has stopped",
	"projections_unavailable":    "This server does not serve projections",
	"invalid_position":           "The position is invalid",
	"invalid_cursor":             "The pagination cursor is invalid",
	"invalid_limit":              "The page size is invalid",
	"unavailable":                "The service is unavailable",
	"timeout":                    "The request took too long",
	"request_cancelled":          "The request was cancelled",
	"internal":                   "Internal error",
	"too_many_conflicts":         "The record is busy",
	"too_many_lines":             "The answer would be too long",
	"not_ready":                  "The service is not ready",
	"invalid":                    "The request breaks a rule",
	"conflict":                   "The request conflicts with the current state",
	"precondition_invalid":       "The If-Match header is invalid",
	"weak_etag_in_if_match":      "The If-Match header holds a weak entity tag",
	"too_many_entity_tags":       "The If-Match header holds several entity tags",
	"stream_not_found":           "Not found",
	"invalid_identifier":         "The identifier is invalid",
	"cannot_disable_self":        "You cannot disable yourself",
	"unsupported_authentication": "Unsupported authentication",
}

func titleOf(code string, status int) string {
	if t, ok := problemTitles[code]; ok {
		return t
	}
	return http.StatusText(status)
}

// ruleStatus maps domain.RuleError kinds to HTTP statuses (see domain.Kind).
var ruleStatus = map[domain.Kind]int{
	domain.Invalid:   http.StatusUnprocessableEntity,
	domain.Conflict:  http.StatusConflict,
	domain.NotFound:  http.StatusNotFound,
	domain.Forbidden: http.StatusForbidden,
}

var ruleTitle = map[domain.Kind]string{
	domain.Invalid:   "The request breaks a rule",
	domain.Conflict:  "The request conflicts with the current state",
	domain.NotFound:  "Not found",
	domain.Forbidden: "Not allowed",
}

// problemOf turns any error a handler returns into the problem to send.
func problemOf(err error, c echo.Context) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	// The ledger's own errors (a stale If-Match, too many conflicts) are
	// mapped here too, so a handler that returns one unmapped still gives
	// the client the right status rather than a 500.
	if errors.As(ledgerError(err), &p) {
		return p
	}
	if re, ok := domain.AsRuleError(err); ok {
		status, known := ruleStatus[re.Kind]
		if !known {
			return NewProblem(http.StatusInternalServerError, "internal", genericDetail).WithCause(err)
		}
		p := &Problem{
			Type: ProblemTypeBase + re.Code, Title: ruleTitle[re.Kind], Status: status,
			Detail: re.Message, Code: re.Code,
		}
		if re.Field != "" {
			p.WithField(re.Field, re.Message)
		}
		return p
	}
	var wrong *eventstore.WrongExpectedRevisionError
	if errors.As(err, &wrong) || errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		return revisionProblem(c, wrong, err)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return Problemf(http.StatusRequestEntityTooLarge, "body_too_large",
			"the request body exceeds %d bytes; send less (split a batch into pages)", tooLarge.Limit)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return echoProblem(he, c)
	}
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return NewProblem(http.StatusNotFound, "not_found", "nothing exists at this address")
	case errors.Is(err, eventstore.ErrInvalidStreamName):
		// Stream names are built from identifiers in the URL.
		return NewProblem(http.StatusBadRequest, "invalid_identifier",
			"the identifier in the address may hold only letters, digits and - _ . : @, at most 200 bytes")
	case errors.Is(err, eventstore.ErrClosed):
		return NewProblem(http.StatusServiceUnavailable, "unavailable", "the service is shutting down; retry on another instance or shortly").
			WithHeader("Retry-After", "5").WithCause(err)
	case errors.Is(err, context.DeadlineExceeded):
		return NewProblem(http.StatusServiceUnavailable, "timeout", "the request did not finish in time; retry shortly").
			WithHeader("Retry-After", "1").WithCause(err)
	case errors.Is(err, context.Canceled):
		return NewProblem(http.StatusServiceUnavailable, "request_cancelled", "the request was cancelled before it finished").WithCause(err)
	}
	return NewProblem(http.StatusInternalServerError, "internal", genericDetail).WithCause(err)
}

const genericDetail = "an internal error occurred; quote the request_id when you report it"

// revisionProblem is a lost optimistic-concurrency race. When the client
// named the revision it expected (If-Match) it is a failed precondition
// (412) and the current ETag tells it what to re-read; otherwise a
// concurrent writer won (409), which the ledger normally retries itself.
func revisionProblem(c echo.Context, wrong *eventstore.WrongExpectedRevisionError, err error) *Problem {
	var p *Problem
	if c.Request().Header.Get("If-Match") != "" {
		p = NewProblem(http.StatusPreconditionFailed, "precondition_failed",
			"the resource changed since you read it (If-Match does not match); fetch it again, check your change still applies, and retry with the new ETag")
	} else {
		p = NewProblem(http.StatusConflict, "concurrent_write",
			"another request changed the resource at the same time; retry")
	}
	if wrong != nil && wrong.Actual >= 0 {
		p.WithHeader("ETag", ETag(uint64(wrong.Actual)))
	}
	return p.WithCause(err)
}

// echoProblem covers Echo's own errors: unknown routes, wrong methods, and
// the binder's rejections.
func echoProblem(he *echo.HTTPError, c echo.Context) *Problem {
	detail := ""
	if msg, ok := he.Message.(string); ok && msg != http.StatusText(he.Code) {
		detail = msg
	}
	switch he.Code {
	case http.StatusNotFound:
		return NewProblem(he.Code, "not_found", "no resource at "+clip(c.Request().URL.Path)+"; see /docs for the API")
	case http.StatusMethodNotAllowed:
		p := NewProblem(he.Code, "method_not_allowed", "this address does not accept "+clip(c.Request().Method))
		if allow := c.Response().Header().Get(echo.HeaderAllow); allow != "" {
			p.WithHeader(echo.HeaderAllow, allow)
			p.Detail += "; it accepts " + allow
		}
		return p
	case http.StatusRequestEntityTooLarge:
		return NewProblem(he.Code, "body_too_large", "the request body is too large; send less")
	case http.StatusUnauthorized:
		return NewProblem(he.Code, "unauthorized", detail)
	case http.StatusForbidden:
		return NewProblem(he.Code, "forbidden", detail)
	case http.StatusUnsupportedMediaType:
		return NewProblem(he.Code, "unsupported_media_type", "send the body as application/json")
	}
	if he.Code >= 500 {
		return NewProblem(http.StatusInternalServerError, "internal", genericDetail).WithCause(he)
	}
	if detail == "" {
		detail = http.StatusText(he.Code)
	}
	return NewProblem(he.Code, "bad_request", detail)
}

// handleError is Echo's HTTPErrorHandler: every error leaves as
// problem+json, with the request ID, and 5xx causes are logged.
func (s *Server) handleError(err error, c echo.Context) {
	log := Logger(c)
	if c.Response().Committed {
		// The handler wrote part of a response before failing; all that is
		// left is to log it.
		log.Error("error after the response was sent", "err", err)
		return
	}
	p := *problemOf(err, c) // a copy: a shared *Problem var must not collect request fields
	p.RequestID = RequestID(c)
	p.Instance = c.Request().URL.Path
	if p.Type == "" {
		p.Type = ProblemTypeBase + p.Code
	}
	switch {
	case p.Status >= 500 && p.Code == "internal":
		log.Error("internal error", "err", err)
	case p.Status >= 500:
		log.Warn("request failed", "code", p.Code, "err", err)
	}
	for k, vs := range p.header {
		for _, v := range vs {
			c.Response().Header().Add(k, v)
		}
	}
	if p.Status == http.StatusUnauthorized && c.Response().Header().Get(echo.HeaderWWWAuthenticate) == "" {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="ansinh"`)
	}
	if err := writeProblem(c, &p); err != nil {
		log.Error("writing a problem response", "err", err)
	}
}

func writeProblem(c echo.Context, p *Problem) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // details quote <placeholders>; this is not HTML
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("encode problem: %w", err)
	}
	body := buf.Bytes()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, MediaTypeProblem)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if c.Request().Method == http.MethodHead {
		return c.NoContent(p.Status)
	}
	return c.Blob(p.Status, MediaTypeProblem, body)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
