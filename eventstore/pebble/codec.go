package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// The stored envelope of one event, the value of a g/<seq> key. It is a
// hand-written binary encoding rather than JSON because it is encoded once per
// event on the write path and decoded once per event on every read; JSON would
// cost an order of magnitude more in both. Fixed-size fields come first so
// that a reader can skip to the variable part without parsing:
//
//	[0]      format version (eventFormatV1)
//	[1:9]    revision, big-endian
//	[9:25]   event ID
//	[25:33]  recorded time, Unix nanoseconds, big-endian
//	then     uvarint len + stream, uvarint len + type,
//	         uvarint len + data, uvarint len + metadata
//
// A new field means a new format version; readers keep decoding the old ones
// (stored events are never rewritten).
const (
	eventFormatV1   byte = 1
	eventFixedBytes      = 1 + 8 + 16 + 8
)

var errCorrupt = errors.New("eventstore/pebble: corrupt stored event")

// encodedEventLen is the exact size encodeEvent writes.
func encodedEventLen(stream string, ev *eventstore.EventData) int {
	return eventFixedBytes +
		uvarintLen(len(stream)) + len(stream) +
		uvarintLen(len(ev.Type)) + len(ev.Type) +
		uvarintLen(len(ev.Data)) + len(ev.Data) +
		uvarintLen(len(ev.Metadata)) + len(ev.Metadata)
}

// encodeEvent writes the envelope into dst, which must be exactly
// encodedEventLen bytes long (it is a slice of the pebble batch, so the event
// is encoded in place without an intermediate buffer).
func encodeEvent(dst []byte, stream string, rev uint64, ev *eventstore.EventData, recordedNanos int64) {
	dst[0] = eventFormatV1
	binary.BigEndian.PutUint64(dst[1:9], rev)
	copy(dst[9:25], ev.ID[:])
	binary.BigEndian.PutUint64(dst[25:33], uint64(recordedNanos))
	n := eventFixedBytes
	n += putBytes(dst[n:], stream)
	n += putBytes(dst[n:], ev.Type)
	n += putBytes(dst[n:], ev.Data)
	n += putBytes(dst[n:], ev.Metadata)
	if n != len(dst) {
		panic(fmt.Sprintf("eventstore/pebble: encoded %d bytes into a %d-byte slot", n, len(dst)))
	}
}

func putBytes[T ~string | ~[]byte](dst []byte, b T) int {
	n := binary.PutUvarint(dst, uint64(len(b)))
	return n + copy(dst[n:], b)
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// eventView is a parsed envelope whose byte slices alias the stored value.
// It lets a filtered reader look at stream and type without copying.
type eventView struct {
	revision      uint64
	id            uuid.UUID
	recordedNanos int64
	stream        []byte
	eventType     []byte
	data          []byte
	metadata      []byte
}

func parseEvent(b []byte) (eventView, error) {
	var v eventView
	if len(b) < eventFixedBytes {
		return v, fmt.Errorf("%w: %d bytes, shorter than the fixed header", errCorrupt, len(b))
	}
	if b[0] != eventFormatV1 {
		return v, fmt.Errorf("%w: unknown format version %d", errCorrupt, b[0])
	}
	v.revision = binary.BigEndian.Uint64(b[1:9])
	copy(v.id[:], b[9:25])
	v.recordedNanos = int64(binary.BigEndian.Uint64(b[25:33]))
	rest := b[eventFixedBytes:]
	var ok bool
	if v.stream, rest, ok = takeBytes(rest); !ok {
		return v, fmt.Errorf("%w: stream name", errCorrupt)
	}
	if v.eventType, rest, ok = takeBytes(rest); !ok {
		return v, fmt.Errorf("%w: event type", errCorrupt)
	}
	if v.data, rest, ok = takeBytes(rest); !ok {
		return v, fmt.Errorf("%w: data", errCorrupt)
	}
	if v.metadata, rest, ok = takeBytes(rest); !ok {
		return v, fmt.Errorf("%w: metadata", errCorrupt)
	}
	if len(rest) != 0 {
		return v, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(rest))
	}
	return v, nil
}

func takeBytes(b []byte) (field, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	end := w + int(n)
	return b[w:end:end], b[end:], true
}

// decoder copies events out of pebble's memory (which is only valid until
// the iterator moves) into RecordedEvents. A read of thousands of events
// would otherwise cost three allocations per event; instead payloads are cut
// from shared chunks, event types (a few dozen in a whole log) are interned,
// and a stream name is allocated once per run of events of that stream.
// One decoder serves one read, so the intern table lives only that long.
type decoder struct {
	chunk      []byte
	types      map[string]string
	lastStream string
}

const (
	// decodeChunkBytes is the chunk payloads are cut from. A caller that
	// keeps one event keeps its chunk alive, so chunks stay small; payloads
	// above a quarter of it get their own allocation.
	decodeChunkBytes = 64 << 10
	// firstDecodeChunkBytes is a read's first chunk; each next one is
	// twice the last, up to decodeChunkBytes.
	firstDecodeChunkBytes = 4 << 10
	// typesMax bounds the intern table of one read.
	typesMax = 1024
)

func (d *decoder) bytes(n int) []byte {
	if n > decodeChunkBytes/4 {
		return make([]byte, n)
	}
	if len(d.chunk)+n > cap(d.chunk) {
		// Chunks grow from 4 KiB: most reads are a stream of a few events,
		// and a 64 KiB chunk (allocated and cleared) for those was a tenth
		// of a registry command's CPU; a scan of the log reaches the full
		// size after four chunks.
		size := min(max(2*cap(d.chunk), firstDecodeChunkBytes), decodeChunkBytes)
		for size < n {
			size *= 2
		}
		d.chunk = make([]byte, 0, size)
	}
	start := len(d.chunk)
	d.chunk = d.chunk[:start+n]
	return d.chunk[start : start+n : start+n]
}

func (d *decoder) eventType(b []byte) string {
	if s, ok := d.types[string(b)]; ok { // no allocation: the compiler elides it for map lookups
		return s
	}
	s := string(b)
	if d.types == nil {
		d.types = make(map[string]string)
	}
	if len(d.types) < typesMax {
		d.types[s] = s
	}
	return s
}

func (d *decoder) record(v *eventView, seq uint64) eventstore.RecordedEvent {
	// Data and metadata share one slice; each is capped so that an append
	// by the caller cannot run into the other or into a neighbour.
	payload := d.bytes(len(v.data) + len(v.metadata))
	n := copy(payload, v.data)
	copy(payload[n:], v.metadata)
	// Stream names are not interned: out of a run they rarely repeat within
	// one page (a ledger log of 217,441 events has 70,007 streams), so an
	// intern table cost a map miss and insert on top of the allocation for
	// most events, a tenth of a log scan's CPU.
	stream := d.lastStream
	if stream != string(v.stream) {
		stream = string(v.stream)
		d.lastStream = stream
	}
	ev := eventstore.RecordedEvent{
		StreamID:   stream,
		Revision:   v.revision,
		Position:   eventstore.Position{Commit: seq, Prepare: seq},
		ID:         v.id,
		Type:       d.eventType(v.eventType),
		Data:       payload[:n:n],
		RecordedAt: time.Unix(0, v.recordedNanos).UTC(),
	}
	if len(v.metadata) > 0 {
		ev.Metadata = payload[n:]
	}
	return ev
}
