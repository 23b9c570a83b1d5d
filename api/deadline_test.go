package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// A route with a long deadline outlives the HTTP server's write timeout:
// the response arrives. Without one, the same slow handler's response is
// cut off by the server, which is what extendConnection prevents for the
// routes that declare they are long.
func TestLongRoutesOutliveTheServerWriteTimeout(t *testing.T) {
	env := newTestAPI(t)
	slow := func(c echo.Context) error {
		time.Sleep(150 * time.Millisecond) // past the server's 30 ms below
		return c.String(http.StatusOK, "done")
	}
	env.route(Route{Method: http.MethodGet, Path: "/test/long", Handler: slow, Timeout: time.Minute})
	env.route(Route{Method: http.MethodGet, Path: "/test/short", Handler: slow})
	ts := httptest.NewUnstartedServer(env.srv)
	ts.Config.WriteTimeout = 30 * time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)

	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+env.admin)
		return ts.Client().Do(req)
	}
	resp, err := get("/test/long")
	if err != nil {
		t.Fatalf("long route: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("long route: status %d", resp.StatusCode)
	}
	if resp, err := get("/test/short"); err == nil {
		resp.Body.Close()
		t.Fatalf("the control route answered %d through the write timeout; the test proves nothing", resp.StatusCode)
	}
}
