package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Event is a fact the domain decided. Its type name is what the store records
// and what projections key on: past tense, then the schema version, e.g.
// "BeneficiaryRegistered.v2". A type, once stored, is never renamed or
// reshaped; a new shape gets a new version and an upcaster from the old one.
//
// Events are plain structs whose JSON form is their wire form; EventType is
// defined on the value (not the pointer), so the zero value names its type.
type Event interface {
	EventType() string
}

// ErrUnknownEventType is returned by Decode for a type no package registered.
// A projection that reads the global log may skip such events; an aggregate
// must not (its state would be wrong), so the ledger treats it as a failure.
var ErrUnknownEventType = errors.New("unknown event type")

// maxUpcasts bounds the upcaster chain so that a cycle of upcasters (a
// programming error) fails instead of looping.
const maxUpcasts = 16

// Upcaster turns the stored data of an old event type into the data of a
// newer type. It returns the newer type's name; Decode keeps upcasting until
// it reaches a type with a decoder.
type Upcaster func(data json.RawMessage) (newType string, newData json.RawMessage, err error)

// Codec maps event types to Go values and back. Packages register their
// events once, at start-up (see Register and RegisterUpcaster); after that a
// Codec is only read and is safe for concurrent use.
type Codec struct {
	decoders  map[string]func(json.RawMessage) (Event, error)
	upcasters map[string]Upcaster
}

// NewCodec returns an empty codec.
func NewCodec() *Codec {
	return &Codec{
		decoders:  map[string]func(json.RawMessage) (Event, error){},
		upcasters: map[string]Upcaster{},
	}
}

// Register adds the event type E to c. It panics on a duplicate or on a type
// name without a ".vN" version, both programming errors found by any test
// that builds the codec. If *E is a CanonicalDecoder, Decode tries it first
// and falls back to encoding/json when it declines.
func Register[E Event](c *Codec) {
	var zero E
	t := zero.EventType()
	if SchemaVersion(t) == 0 {
		panic(fmt.Sprintf("event type %q: name must end in .v<version>", t))
	}
	if _, dup := c.decoders[t]; dup {
		panic(fmt.Sprintf("event type %q registered twice", t))
	}
	if _, dup := c.upcasters[t]; dup {
		panic(fmt.Sprintf("event type %q has both a decoder and an upcaster", t))
	}
	_, canonical := any(&zero).(CanonicalDecoder)
	c.decoders[t] = func(data json.RawMessage) (Event, error) {
		var e E
		if canonical {
			if any(&e).(CanonicalDecoder).DecodeCanonicalJSON(data) {
				return e, nil
			}
			// It may have written part of e before it gave up.
			e = *new(E)
		}
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, err
		}
		return e, nil
	}
}

// RegisterUpcaster declares that stored events of type from are read by up.
func (c *Codec) RegisterUpcaster(from string, up Upcaster) {
	if _, dup := c.upcasters[from]; dup {
		panic(fmt.Sprintf("upcaster for %q registered twice", from))
	}
	if _, dup := c.decoders[from]; dup {
		panic(fmt.Sprintf("event type %q has both a decoder and an upcaster", from))
	}
	c.upcasters[from] = up
}

// Encode returns e's type name and JSON data.
func (c *Codec) Encode(e Event) (string, json.RawMessage, error) {
	t := e.EventType()
	if _, ok := c.decoders[t]; !ok {
		return "", nil, fmt.Errorf("encode %s: %w", t, ErrUnknownEventType)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return t, data, nil
}

// Decode reads stored data of type t into the current Go value, upcasting
// older versions first.
func (c *Codec) Decode(t string, data json.RawMessage) (Event, error) {
	orig := t
	for range maxUpcasts {
		if dec, ok := c.decoders[t]; ok {
			e, err := dec(data)
			if err != nil {
				return nil, fmt.Errorf("decode %s: %w", orig, err)
			}
			return e, nil
		}
		up, ok := c.upcasters[t]
		if !ok {
			return nil, fmt.Errorf("decode %s: %w", orig, ErrUnknownEventType)
		}
		var err error
		if t, data, err = up(data); err != nil {
			return nil, fmt.Errorf("upcast %s: %w", orig, err)
		}
	}
	return nil, fmt.Errorf("decode %s: more than %d upcasts, is there a cycle?", orig, maxUpcasts)
}

// Knows reports whether c can decode type t (directly or by upcasting).
func (c *Codec) Knows(t string) bool {
	_, dec := c.decoders[t]
	_, up := c.upcasters[t]
	return dec || up
}

// Types lists the current (decodable) event types, for documentation and
// tests.
func (c *Codec) Types() []string {
	out := make([]string, 0, len(c.decoders))
	for t := range c.decoders {
		out = append(out, t)
	}
	return out
}

// SchemaVersion reads the N of a type name ending in ".vN"; 0 when the name
// has no version.
func SchemaVersion(eventType string) int {
	i := strings.LastIndex(eventType, ".v")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(eventType[i+2:])
	if err != nil || n < 1 {
		return 0
	}
	return n
}
