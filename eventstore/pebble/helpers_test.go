package pebble

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

func openMemory(t testing.TB) *Store {
	t.Helper()
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatalf("Open in memory: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openDisk(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newEvents(n int, typ string) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{
			ID:   uuid.New(),
			Type: typ,
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
	}
	return evs
}

func mustAppend(t testing.TB, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append %s %s: %v", stream, exp, err)
	}
	return res
}

func readAllEvents(t testing.TB, s eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	after := eventstore.Start
	for {
		page, err := s.ReadAll(context.Background(), after, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatalf("ReadAll after %s: %v", after, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}
