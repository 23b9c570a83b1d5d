package api

import (
	"log/slog"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// HeaderRequestID carries the request ID both ways. A client (or a proxy in
// front) may choose it, to follow one request across its own logs and ours;
// otherwise the server makes one up.
const HeaderRequestID = "X-Request-ID"

// maxRequestIDBytes bounds a client-chosen request ID; it is logged with
// every line of the request.
const maxRequestIDBytes = 128

// Keys of the values the middleware leaves in the echo.Context.
const (
	ctxRequestID = "ansinh.request_id"
	ctxLogger    = "ansinh.logger"
)

// requestID gives every request an ID and a logger that carries it.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		c.Set(ctxRequestID, id)
		c.Set(ctxLogger, s.log.With("request_id", id))
		c.Response().Header().Set(HeaderRequestID, id)
		return next(c)
	}
}

// validRequestID accepts what is safe to log and echo in a header: 1 to 128
// of letters, digits and "-_.:". Anything else is replaced, not refused: a
// bad request ID is no reason to fail a payment.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// RequestID is the ID of the request being served.
func RequestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// Logger is the request's logger: every line it writes carries the request
// ID (and, once authenticated, the user).
func Logger(c echo.Context) *slog.Logger {
	if l, ok := c.Get(ctxLogger).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
