package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Decode reads the request body into v, strictly: the body must be
// application/json, hold exactly one JSON value, and name no field v does
// not have (a misspelt field is an error, not silently ignored — in a
// payments API a dropped "reason" or "effective_at" is a wrong payment).
// Its size is already bounded by the route's body limit. Failures are 400
// problems that quote the decoder (413 past the limit, 415 for another media
// type). Rules of the domain are checked afterwards by the domain, not here.
func Decode(c echo.Context, v any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return Problemf(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"send the body as application/json, not %q", clip(ct))
		}
	}
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	// Exactly one value: anything but white space after it is an error
	// (two documents, or a document followed by garbage).
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return invalidJSON("the body holds more than one JSON value; send exactly one object")
	default:
		return decodeProblem(err)
	}
}

func decodeProblem(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		unmarshal *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err // 413, by the error handler
	case errors.As(err, &unmarshal):
		return fmt.Errorf("api.Decode: %w", err) // a programming error: 500
	case errors.Is(err, io.EOF):
		return invalidJSON("the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidJSON("the body ends in the middle of a JSON value")
	case errors.As(err, &syntax):
		return invalidJSON(fmt.Sprintf("the body is not valid JSON (at byte %d): %s", syntax.Offset, syntax.Error()))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		msg := fmt.Sprintf("want a %s, got a JSON %s", typeErr.Type, typeErr.Value)
		return invalidJSON(field+": "+msg).WithField(field, msg)
	}
	msg := err.Error()
	if field, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name := strings.Trim(field, `"`)
		return invalidJSON("unknown field "+field+"; check its spelling against the API documentation").
			WithField(name, "unknown field")
	}
	// Errors of a type's own UnmarshalJSON (an amount with a fraction, a
	// period that is not YYYY-MM) arrive here with their own message.
	return invalidJSON(strings.TrimPrefix(msg, "json: "))
}

func invalidJSON(detail string) *Problem {
	return NewProblem(http.StatusBadRequest, "invalid_json", detail)
}
