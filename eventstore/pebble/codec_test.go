package pebble

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		ev     eventstore.EventData
	}{
		{"small", "a", eventstore.EventData{Type: "T", Data: []byte(`{}`)}},
		{"metadata", "beneficiary-001234567890", eventstore.EventData{Type: "Registered.v1", Data: []byte(`{"x":1}`), Metadata: []byte(`{"by":"me"}`)}},
		{"long fields", strings.Repeat("s", eventstore.MaxStreamNameBytes), eventstore.EventData{
			Type: strings.Repeat("t", eventstore.MaxEventTypeBytes),
			Data: []byte(`"` + strings.Repeat("d", 300<<10) + `"`), // uvarint lengths of 3 bytes
		}},
	}
	recorded := time.Date(2024, 2, 10, 0, 0, 0, 123, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.ev.ID = uuid.New()
			b := make([]byte, encodedEventLen(tc.stream, &tc.ev))
			encodeEvent(b, tc.stream, 42, &tc.ev, recorded.UnixNano())
			v, err := parseEvent(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var d decoder
			got := d.record(&v, 7)
			if got.StreamID != tc.stream || got.Revision != 42 || got.ID != tc.ev.ID || got.Type != tc.ev.Type ||
				!bytes.Equal(got.Data, tc.ev.Data) || !bytes.Equal(got.Metadata, tc.ev.Metadata) ||
				!got.RecordedAt.Equal(recorded) || got.Position != (eventstore.Position{Commit: 7, Prepare: 7}) {
				t.Fatalf("round trip changed the event: %+v", got)
			}
			// The copy must not alias the stored bytes.
			clear(b)
			if !bytes.Equal(got.Data, tc.ev.Data) {
				t.Fatal("decoded data aliases the stored value")
			}
		})
	}
}

// TestCodecRejectsDamage checks that every truncation and a few corruptions
// of a stored event are reported as corruption, never a panic or a wrong
// event.
func TestCodecRejectsDamage(t *testing.T) {
	ev := eventstore.EventData{ID: uuid.New(), Type: "T.v1", Data: []byte(`{"a":1}`), Metadata: []byte(`{"m":2}`)}
	good := make([]byte, encodedEventLen("s-1", &ev))
	encodeEvent(good, "s-1", 1, &ev, 1)
	for n := range len(good) {
		if _, err := parseEvent(good[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("truncated to %d bytes: err = %v, want corruption", n, err)
		}
	}
	damaged := map[string]func(b []byte) []byte{
		"version":        func(b []byte) []byte { b[0] = 9; return b },
		"trailing bytes": func(b []byte) []byte { return append(b, 0) },
		"huge length":    func(b []byte) []byte { b[eventFixedBytes] = 0xff; return b },
	}
	for name, damage := range damaged {
		b := damage(append([]byte(nil), good...))
		if _, err := parseEvent(b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err = %v, want corruption", name, err)
		}
	}
}

func TestDecoderChunksDoNotOverlap(t *testing.T) {
	var d decoder
	var evs []eventstore.RecordedEvent
	for i := range 500 {
		ev := eventstore.EventData{ID: uuid.New(), Type: "T", Data: []byte(`{"i":"` + strings.Repeat("x", i) + `"}`), Metadata: []byte(`{}`)}
		b := make([]byte, encodedEventLen("s", &ev))
		encodeEvent(b, "s", uint64(i), &ev, 0)
		v, err := parseEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, d.record(&v, uint64(i+1)))
	}
	// Appending to one event's data must not touch its metadata or the next
	// event (the slices are capped).
	for i := range evs {
		before := string(evs[i].Metadata)
		_ = append(evs[i].Data, "XXXXXXXX"...)
		if string(evs[i].Metadata) != before {
			t.Fatalf("append to event %d's data overwrote its metadata", i)
		}
	}
	for i := range evs {
		if i+1 < len(evs) {
			_ = append(evs[i].Metadata, "YYYYYYYY"...)
			if !strings.HasPrefix(string(evs[i+1].Data), `{"i":"`) {
				t.Fatalf("append to event %d's metadata overwrote event %d", i, i+1)
			}
		}
	}
}

// TestDecoderChunksGrow: a short read takes a small chunk, a long one
// reaches the full size, and every payload is whole and where it belongs.
func TestDecoderChunksGrow(t *testing.T) {
	var d decoder
	first := d.bytes(100)
	if cap(d.chunk) != firstDecodeChunkBytes || len(first) != 100 {
		t.Fatalf("first chunk %d bytes, payload %d", cap(d.chunk), len(first))
	}
	var sizes []int
	for range 2000 {
		p := d.bytes(700)
		if len(p) != 700 || cap(p) != 700 {
			t.Fatalf("payload of len %d cap %d, want 700", len(p), cap(p))
		}
		if n := cap(d.chunk); len(sizes) == 0 || sizes[len(sizes)-1] != n {
			sizes = append(sizes, n)
		}
	}
	want := []int{4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}
	if !slices.Equal(sizes, want) {
		t.Fatalf("chunk sizes %v, want %v", sizes, want)
	}
	if big := d.bytes(decodeChunkBytes/4 + 1); cap(d.chunk) != decodeChunkBytes || len(big) != decodeChunkBytes/4+1 {
		t.Fatalf("a large payload went into the chunk")
	}
	var fresh decoder
	if p := fresh.bytes(10_000); len(p) != 10_000 || cap(fresh.chunk) != 16<<10 {
		t.Fatalf("a first payload of 10,000 bytes: chunk %d", cap(fresh.chunk))
	}
}
