package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/ledger"
	"github.com/labstack/echo/v4"
)

// How the API drives the ledger's command handlers (beneficiaries,
// entitlements, the catalogue; later payouts): every command carries
//
//   - the caller as actor (the ledger checks the role again: a route that
//     forgot one still cannot write);
//   - If-Match as Request.ExpectedRevision, so that a stale ETag is a 412
//     and not a silent overwrite ("*" asks only that the record exist, which
//     every command but a registration requires anyway);
//   - a command ID derived from the caller and the Idempotency-Key (see
//     commandID), so that a retry is idempotent in the event store itself,
//     across restarts and instances, not only within the API's in-memory
//     replay records;
//   - the request ID as correlation ID, and the body's reason, if the
//     command has one, as the reason recorded in every event's metadata.

// commandIDPrefix marks command IDs the API derived from an Idempotency-Key.
const commandIDPrefix = "idem:"

// commandID is the ledger command ID of a POST: a digest of the caller and
// their Idempotency-Key. The key itself cannot be used: the ledger takes 1
// to 100 of letters, digits and "-_.:", while a key may be 255 printable
// characters; and the middleware scopes keys per user, so two users who
// happen to pick the same key must not be taken for one command. 128 bits of
// SHA-256 keep accidental collisions out of reach.
func commandID(c echo.Context) string {
	key := CommandKeyOf(c).Key
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(ActorOf(c).UserID + "\x00" + key))
	return commandIDPrefix + hex.EncodeToString(sum[:16])
}

// correlationID is the request ID, which the ledger records as the
// correlation ID of the events. A request ID may be up to 128 characters and
// the ledger keeps 100: a longer one is replaced by a digest of itself,
// which stays the same for the same request ID.
func correlationID(c echo.Context) string {
	id := RequestID(c)
	if len(id) <= ledger.MaxTraceIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "rid:" + hex.EncodeToString(sum[:16])
}

// ledgerRequest is the ledger.Request of the command being served.
func (s *Server) ledgerRequest(c echo.Context, reason string) (ledger.Request, error) {
	expected, ok, err := IfMatch(c)
	if err != nil {
		return ledger.Request{}, err
	}
	req := ledger.Request{
		Actor:         ActorOf(c),
		CommandID:     commandID(c),
		Reason:        reason,
		CorrelationID: correlationID(c),
	}
	if ok {
		if rev, exact := expected.Revision(); exact {
			req.ExpectedRevision = &rev
		}
	}
	return req, nil
}

// ledgerError turns the ledger's own errors into problems; rule errors and
// store errors pass through to the error handler, which knows them.
func ledgerError(err error) error {
	var mismatch *ledger.RevisionMismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mismatch) || errors.Is(err, ledger.ErrRevisionMismatch):
		p := NewProblem(http.StatusPreconditionFailed, "precondition_failed",
			"the record changed since you read it (If-Match does not match); fetch it again, check your change still applies, and retry with the new ETag")
		if mismatch != nil && mismatch.Actual >= 0 {
			p.WithHeader("ETag", ETag(uint64(mismatch.Actual)))
		}
		return p.WithCause(err)
	case errors.Is(err, ledger.ErrTooManyConflicts):
		return NewProblem(http.StatusServiceUnavailable, "too_many_conflicts",
			"the record is being changed by many requests at once; retry shortly with the same Idempotency-Key").
			WithHeader("Retry-After", "1").WithCause(err)
	}
	return err
}

// markReplayed tells the client that the ledger answered from the events
// of an earlier run of the same command (same Idempotency-Key and content)
// and wrote nothing, as the idempotency middleware does for its own replays.
func markReplayed(c echo.Context, res ledger.Result) {
	if res.Replayed {
		c.Response().Header().Set(HeaderIdempotentReplayed, "true")
	}
}

// eventJSON names one event a command appended.
type eventJSON struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Revision uint64 `json:"revision"`
}

func toEventsJSON(evs []ledger.Appended) []eventJSON {
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = eventJSON{ID: e.ID.String(), Type: e.Type, Revision: e.Revision}
	}
	return out
}

// Wire forms of dates, periods and amounts are parsed by hand rather than by
// the JSON decoder, so that a malformed one is reported with the field it is
// in (the decoder's own errors do not name it).

// fieldErrors collects the malformed fields of one request, to report them
// all at once as a 400 of the code given (default invalid_json; bad_request
// for query parameters).
type fieldErrors struct {
	code string
	p    *Problem
}

func (f *fieldErrors) add(field, msg string) {
	if f.p == nil {
		code := f.code
		if code == "" {
			code = "invalid_json"
		}
		f.p = NewProblem(http.StatusBadRequest, code, "some fields are malformed; see errors")
	}
	f.p.WithField(field, msg)
}

func (f *fieldErrors) err() error {
	if f.p == nil {
		return nil
	}
	if len(f.p.Errors) == 1 {
		f.p.Detail = f.p.Errors[0].Field + ": " + f.p.Errors[0].Message
	}
	return f.p
}

// date parses YYYY-MM-DD; "" is the zero date, which the domain reports as
// missing where one is required.
func (f *fieldErrors) date(field, s string) domain.Date {
	if s == "" {
		return domain.Date{}
	}
	d, err := domain.ParseDate(s)
	if err != nil {
		f.add(field, err.Error())
	}
	return d
}

// period parses YYYY-MM; "" is the zero period.
func (f *fieldErrors) period(field, s string) domain.Period {
	if s == "" {
		return domain.Period{}
	}
	p, err := domain.ParsePeriod(s)
	if err != nil {
		f.add(field, err.Error())
	}
	return p
}

// moneyJSON is an amount on the wire: {"amount": "1250000", "currency": "VND"}.
type moneyJSON struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

func toMoneyJSON(m domain.Money) moneyJSON {
	return moneyJSON{Amount: m.Amount.String(), Currency: string(m.Currency)}
}

func toMoneyPtr(m *domain.Money) *moneyJSON {
	if m == nil {
		return nil
	}
	w := toMoneyJSON(*m)
	return &w
}

// money parses an amount of whole dong; nil stays nil.
func (f *fieldErrors) money(field string, w *moneyJSON) *domain.Money {
	if w == nil {
		return nil
	}
	if w.Currency != string(domain.VND) {
		f.add(field+".currency", "must be VND")
		return nil
	}
	m, err := domain.ParseVND(w.Amount)
	if err != nil {
		f.add(field+".amount", err.Error())
		return nil
	}
	return &m
}

// dateOrNil renders a zero date as JSON null.
func dateOrNil(d domain.Date) *string {
	if d.IsZero() {
		return nil
	}
	s := d.String()
	return &s
}

// periodOrNil renders a zero period as JSON null.
func periodOrNil(p domain.Period) *string {
	if p.IsZero() {
		return nil
	}
	s := p.String()
	return &s
}
