package projections

import "hash/maphash"

// keyFilter is a Bloom filter of the keys a Tx has written to a generation
// that was empty when it started. Once the Tx drops its cache (it holds at
// most CacheKeys keys) it can no longer answer a missing key from memory,
// and a rebuild looks up every new key once (the first event of an
// obligation, of a person): without the filter each is a Pebble Get,
// which on a large log reads index and filter blocks from disk, more than
// a third of a rebuild's CPU on a million events. A key the filter has
// not seen was never written, so it does not exist; a key it may have
// seen is looked up in Pebble as before (under 1% of new keys, the
// filter's false positives).
//
// It grows as a chain of parts, each twice as large as the one before, so
// that it needs no estimate of the number of keys: 2 bytes a key, 20 to
// 40 MB for ten million keys.
type keyFilter struct {
	seed  maphash.Seed
	parts []filterPart
}

type filterPart struct {
	bits     []uint64
	n, limit int // keys added; keys it is sized for
}

const (
	filterBitsPerKey = 16 // a power of two, as the parts' key counts: masks, not divisions
	filterProbes     = 8  // 0.06% false positives in a full part
	filterFirstKeys  = 1 << 16
)

func newKeyFilter() *keyFilter { return &keyFilter{seed: maphash.MakeSeed()} }

// The bits of hash h in a part are found by double hashing: h1 + i*h2 for
// i below filterProbes, modulo the part's size (a power of two).

func (p *filterPart) has(h uint64) bool {
	mask := uint64(len(p.bits))*64 - 1
	h1, h2 := h&0xffffffff, h>>32|1
	for i := range uint64(filterProbes) {
		bit := (h1 + i*h2) & mask
		if p.bits[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (p *filterPart) set(h uint64) {
	mask := uint64(len(p.bits))*64 - 1
	h1, h2 := h&0xffffffff, h>>32|1
	for i := range uint64(filterProbes) {
		bit := (h1 + i*h2) & mask
		p.bits[bit/64] |= 1 << (bit % 64)
	}
	p.n++
}

func (f *keyFilter) mayHaveHash(h uint64) bool {
	for i := range f.parts {
		if f.parts[i].has(h) {
			return true
		}
	}
	return false
}

// add records key without asking whether the filter has it already:
// asking tests every part of the filter, a cache miss each, and was 4% of
// a rebuild's CPU at ten million events. A Tx adds a key once while the
// key stays in its cache (entry.inFilter); it adds it again only when it
// writes the key without reading it after dropping it from the cache, and
// a rebuild's read models write without reading only keys that are new (a
// payment attempt's row, an index line). A key counted twice fills the
// current part a little sooner: the filter grows a part earlier, and its
// false-positive rate stays what each part was sized for.
func (f *keyFilter) add(key string) {
	h := maphash.String(f.seed, key)
	if len(f.parts) == 0 || f.parts[len(f.parts)-1].n >= f.parts[len(f.parts)-1].limit {
		limit := filterFirstKeys
		if len(f.parts) > 0 {
			limit = 2 * f.parts[len(f.parts)-1].limit
		}
		f.parts = append(f.parts, filterPart{bits: make([]uint64, limit*filterBitsPerKey/64), limit: limit})
	}
	f.parts[len(f.parts)-1].set(h)
}

// mayHave reports false only for a key that was never added.
func (f *keyFilter) mayHave(key []byte) bool { return f.mayHaveHash(maphash.Bytes(f.seed, key)) }
