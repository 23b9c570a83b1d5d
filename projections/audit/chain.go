// Package audit makes the log tamper-evident. A chain folds every event of
// the global log, in order, into a running SHA-256; a sealer periodically
// appends a signed seal of the chain to the log; Verify re-reads the log,
// recomputes the chain and checks every seal, and reports the first event
// that is not what was sealed.
//
// Canonical encoding of an event (what is hashed), version 1:
//
//	"ansinh.event.v1\x00"
//	uvarint(len(stream))   stream
//	uint64 big-endian      revision
//	16 bytes               event ID
//	uvarint(len(type))     type
//	uvarint(len(data))     data      (the stored JSON bytes, unchanged)
//	uvarint(len(metadata)) metadata  (the stored JSON bytes, unchanged)
//
// The global position and the store's recorded time are left out on
// purpose: both are assigned by the store and change when the log is copied
// to another store (embedded Pebble to EventStoreDB), while everything that
// the ledger decided - including its own recorded_at in the metadata - is
// in. The order of events is covered by the chain itself:
//
//	digest(e)  = SHA-256(canonical(e))
//	H(0)       = 32 zero bytes
//	H(n)       = SHA-256("ansinh.chain.v1\x00" || H(n-1) || digest(e_n))
//
// where e_n is the n-th event of the log (n counts from 1). Seal events are
// events of the log like any other and are folded where they stand; a seal
// covers the events before it, never itself.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/ansinh/ansinh/eventstore"
)

const (
	eventDomain = "ansinh.event.v1\x00"
	chainDomain = "ansinh.chain.v1\x00"
)

// Digest is the SHA-256 of one event's canonical encoding.
type Digest [32]byte

// Hash is a value of the running chain.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText and UnmarshalText store a hash as hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("hash %q: want %d hex digits", b, 2*len(h))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// AppendCanonical appends the canonical encoding of ev to b.
func AppendCanonical(b []byte, ev *eventstore.RecordedEvent) []byte {
	b = append(b, eventDomain...)
	b = binary.AppendUvarint(b, uint64(len(ev.StreamID)))
	b = append(b, ev.StreamID...)
	b = binary.BigEndian.AppendUint64(b, ev.Revision)
	b = append(b, ev.ID[:]...)
	b = binary.AppendUvarint(b, uint64(len(ev.Type)))
	b = append(b, ev.Type...)
	b = binary.AppendUvarint(b, uint64(len(ev.Data)))
	b = append(b, ev.Data...)
	b = binary.AppendUvarint(b, uint64(len(ev.Metadata)))
	return append(b, ev.Metadata...)
}

// Chain is the running hash of a prefix of the log.
type Chain struct {
	Count uint64 // events folded
	Hash  Hash   // H(Count)
	buf   []byte
}

// Fold adds the next event of the log and returns its digest.
func (c *Chain) Fold(ev *eventstore.RecordedEvent) Digest {
	c.buf = AppendCanonical(c.buf[:0], ev)
	d := Digest(sha256.Sum256(c.buf))
	c.foldDigest(d)
	return d
}

func (c *Chain) foldDigest(d Digest) {
	c.buf = append(append(append(c.buf[:0], chainDomain...), c.Hash[:]...), d[:]...)
	c.Hash = sha256.Sum256(c.buf)
	c.Count++
}

// ShortDigestBytes is how much of each event's digest a seal lists. The
// chain hash gives the seal its full 256-bit strength; the short digests
// only locate which event differs, so 64 bits are plenty.
const ShortDigestBytes = 8
