package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestDebugListenerServesProfiles(t *testing.T) {
	addr, stop, err := serveDebug("127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("status %d, body %.200s", resp.StatusCode, body)
	}
	if _, _, err := serveDebug(addr, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("a second listener on the same address did not fail")
	}
}
