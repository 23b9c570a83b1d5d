package esdb

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/ansinh/ansinh/eventstore/storetest"
)

// testOptions keep retries short so that tests of failures stay fast; the
// attempt count is the production default.
func testOptions() Options {
	return Options{
		BackoffBase: time.Millisecond,
		BackoffMax:  10 * time.Millisecond,
		Logger:      slog.New(slog.DiscardHandler),
	}
}

// openBacking is the store behind the fake server: the embedded store, in
// memory.
func openBacking(t *testing.T) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(t.Name(), pebble.Options{InMemory: true})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openAdapter(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, testOptions())
	if err != nil {
		t.Fatalf("Open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestContractOverGRPC runs the port's contract suite against the adapter,
// through the real client library and gRPC, against the in-process fake
// server (fakeserver_test.go). All subtests share one server, as they would
// share a real one, and every new adapter first makes the server write
// system events of its own, which the adapter must keep out of sight.
func TestContractOverGRPC(t *testing.T) {
	srv := startFakeServer(t, openBacking(t))
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		for _, ev := range []struct{ stream, typ string }{
			{"stats-127.0.0.1:2113", "$statsCollected"},
			{"settings", "settingsUpdated"}, // ordinary type, system stream
		} {
			if err := srv.appendSystemEvent(t.Context(), ev.stream, ev.typ); err != nil {
				t.Fatalf("system event: %v", err)
			}
		}
		return openAdapter(t, srv.url())
	})
}

// TestContractAgainstEventStoreDB runs the same suite against a real server.
func TestContractAgainstEventStoreDB(t *testing.T) {
	url := os.Getenv("ESDB_URL")
	if url == "" {
		t.Skipf("ESDB_URL is not set, so the contract suite did not run against a real EventStoreDB/KurrentDB; " +
			"run it with: docker compose up -d eventstore && ESDB_URL='esdb://localhost:2113?tls=false' go test ./eventstore/esdb/")
	}
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return openAdapter(t, url)
	})
}
