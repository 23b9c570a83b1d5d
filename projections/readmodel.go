package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ansinh/ansinh/domain"
)

// Helpers shared by the read models.

// appendJSON is the encoding of every read-model value: JSON, because it is
// readable in a debugger and deterministic (maps are written in key order),
// which verify's byte-for-byte comparison with a fresh replay relies on.
func appendJSON(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// NewDecoder decodes events with the domain's codec, once per event for all
// projections. Event types the codec does not know (seals, or types from a
// newer version of the service) decode to nil and are skipped.
func NewDecoder(codec *domain.Codec) Decoder {
	return func(eventType string, data []byte) (any, error) {
		e, err := codec.Decode(eventType, data)
		if errors.Is(err, domain.ErrUnknownEventType) {
			return nil, nil
		}
		return e, err
	}
}

// domainEvent returns the event's decoded domain value, nil for an unknown
// type, or the decoding error (which stops the projection: the data of a
// known type that does not decode is a bug or a damaged log).
func domainEvent(ev *Event) (domain.Event, error) {
	d, err := ev.Decoded()
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", ev.Type, err)
	}
	de, _ := d.(domain.Event)
	return de, nil
}

// MaskAccount shows only the last four characters of an account number:
// enough for a person to recognize their account, not enough to use it.
func MaskAccount(number string) string {
	if number == "" {
		return ""
	}
	keep := 4
	if len(number) <= keep {
		keep = len(number) / 2
	}
	// One allocation (every payment issued masks its account).
	var b strings.Builder
	b.Grow(len(number))
	for range len(number) - keep {
		b.WriteByte('*')
	}
	b.WriteString(number[len(number)-keep:])
	return b.String()
}

func zeroIfUnset(m domain.Money) domain.Money {
	if m.Currency == "" {
		return domain.ZeroVND()
	}
	return m
}

// add adds b to a, treating an unset Money as zero.
func add(a, b domain.Money) domain.Money { return zeroIfUnset(a).Add(zeroIfUnset(b)) }

func sub(a, b domain.Money) domain.Money { return zeroIfUnset(a).Sub(zeroIfUnset(b)) }

// Cursors of paged queries are the last key a page read, opaque to clients.
var ErrInvalidCursor = errors.New("invalid cursor: pass back the cursor a previous page returned, for the same query")

// Limits on what a client controls.
const (
	// MaxPageLimit bounds the items of one page of any query.
	MaxPageLimit = 200
	// MaxScanKeys bounds the index entries one search looks at: a query
	// whose filters match few of them returns a partial page and a cursor
	// rather than scanning the whole registry.
	MaxScanKeys = 20_000
	// MaxQueryRunes bounds a search text.
	MaxQueryRunes = 100
)

func checkLimit(limit int) error {
	if limit < 1 || limit > MaxPageLimit {
		return fmt.Errorf("limit %d: want 1 to %d", limit, MaxPageLimit)
	}
	return nil
}

// keyBytes is the size of the stack buffers read models build keys in
// (var kb [keyBytes]byte; key := joinKey(kb[:0], ...)): room for the
// longest key of a payment event. A longer key is still right, only
// allocated.
const keyBytes = 160

// joinKey appends parts to buf. With buf on the caller's stack and a Tx
// that copies the keys it keeps, building a key allocates nothing; read
// models build several for every event.
func joinKey(buf []byte, parts ...string) []byte {
	for _, p := range parts {
		buf = append(buf, p...)
	}
	return buf
}

// appendPeriod appends p as Period.String writes it ("2024-01").
func appendPeriod(b []byte, p domain.Period) []byte {
	if p.Year < 0 || p.Year > 9999 || p.Month < 0 || p.Month > 99 {
		return append(b, p.String()...)
	}
	y, m := p.Year, int(p.Month)
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-', byte('0'+m/10), byte('0'+m%10))
}
