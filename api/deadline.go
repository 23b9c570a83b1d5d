package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// connectionSlack is how much longer than a long route's deadline its
// connection may stay open: time to write the 503 timeout problem.
const connectionSlack = 30 * time.Second

// extendConnection lifts the HTTP server's read and write timeouts for a
// route that declares a longer deadline (an upload of 64 MiB, the release
// of a large run). The server's timeouts (cmd/ansinh: 60 s) are shorter;
// without this they would cut the connection silently mid-request instead
// of letting the route finish or answer 503 timeout. It runs before the
// body is read. Servers that cannot set deadlines (tests) are left alone.
func extendConnection(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rc := http.NewResponseController(c.Response())
			deadline := time.Now().Add(d + connectionSlack)
			_ = rc.SetReadDeadline(deadline) // http.ErrNotSupported off a real connection
			_ = rc.SetWriteDeadline(deadline)
			return next(c)
		}
	}
}
