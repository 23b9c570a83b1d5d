package storetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/storetest"
)

// TestMemStore runs the suite against a fresh reference store per subtest,
// as the embedded adapter does.
func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		s := newMemStore(newMemLog())
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestMemStoreShared runs the suite against handles on one log that already
// holds other data, as the EventStoreDB adapter does against a long-lived
// server: it checks that the suite only ever looks at its own events.
func TestMemStoreShared(t *testing.T) {
	shared := newMemLog()
	seed := newMemStore(shared)
	for i := range 3 {
		ev := eventstore.EventData{ID: uuid.New(), Type: "Foreign.v1", Data: json.RawMessage(`{}`)}
		if _, err := seed.Append(context.Background(), fmt.Sprintf("foreign-%d", i), eventstore.Any(), ev); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		s := newMemStore(shared)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
