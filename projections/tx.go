package projections

import (
	"errors"
	"fmt"
	"github.com/ansinh/ansinh/eventstore"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Value is a piece of projection state that a Tx keeps decoded while a batch
// of events is applied and encodes once, when the batch is written. A
// balance touched by 50 events of one batch is decoded once and encoded
// once, not 50 times: that is most of what makes a rebuild fast.
type Value interface {
	AppendBinary(b []byte) ([]byte, error)
}

// decodable is a pointer to a Value type that can read itself back.
type decodable[T any] interface {
	*T
	Value
	UnmarshalBinary(b []byte) error
}

// Tx is a projection's window on its own state while the runner applies a
// batch of events: reads see the committed state plus everything the batch
// has written so far; writes stay in memory until the runner commits them,
// together with the new checkpoint, in one Pebble batch. Keys are relative
// to the projection's generation; a Tx cannot touch another projection.
//
// Apply must read and write state only through its Tx: what it keeps in Go
// variables across events is lost at the next restart, and what it writes
// elsewhere is not covered by the checkpoint.
type Tx struct {
	db      pebble.Reader
	prefix  []byte
	entries map[string]*entry
	keyBuf  []byte
	dirty   []*entry // entries changed since the last commit, each once
	// complete: entries holds every key of the keyspace (it was empty
	// when the Tx started and nothing was dropped since), so a key missing
	// from entries does not exist and lookup need not ask Pebble. A replay
	// into a fresh generation looks up every new key once; with complete
	// that costs a map miss instead of a Pebble Get.
	complete bool
	// written, for a Tx that started on an empty keyspace, remembers every
	// key it wrote there, so that after its cache is dropped a key it never
	// wrote is still known not to exist (see keyFilter). Nil otherwise.
	written *keyFilter
	// slab is where new entries are cut from, entrySlab at a time: a
	// rebuild creates an entry for every key it touches, and one
	// allocation each was a tenth of its allocations.
	slab []entry
	// last is the entry looked up last, in entries: Apply mostly loads a
	// key and then puts it back, and comparing the key with last's is
	// cheaper than hashing it again.
	last *entry
	// sizeHint is the number of keys entries is expected to reach (the
	// runner's CacheKeys): see insert. sized: entries was made at that size
	// (clearing a map keeps its room, so once is enough).
	sizeHint int
	sized    bool
	// keep, when the projection is a Keeper, tells the keys whose values
	// stay in memory when the cache is over its bound (see Keeper). kept
	// counts them in entries; transient lists the other entries, the ones
	// an eviction drops.
	keep      func(key string) bool
	kept      int
	transient []*entry
}

// Keeper is implemented by a projection whose state holds values it reads
// again long after writing them, among many it writes once and seldom
// reads: a person's running account sums, read once a month, beside the
// rows of that month's payments. When a Tx's cache is over its bound
// (Options.CacheKeys) it drops every other value but keeps the values of
// the keys Keep accepts, up to Options.KeptKeys of them; without that, at
// Hanoi scale (300,000 people, a cache of 100,000 keys) every person's sums
// were read back from Pebble every month, a sixth of a rebuild's CPU.
//
// Keep must be a pure function of the key (it is asked once per key when
// the key first enters the cache) and cheap.
type Keeper interface {
	Keep(key string) bool
}

// growAt is the size at which a Tx's entries map is remade at its full
// expected size (sizeHint) instead of doubling its way there: a rebuild
// inserts every key of a fresh generation, and rehashing a map of a
// hundred thousand keys as it grew was 5% of a rebuild's CPU (each move a
// cache miss). A projection with few keys never gets there and never pays
// for the space.
const growAt = 4096

const entrySlab = 256

type entry struct {
	key    string // the map's key, kept here so that commits need no map lookups
	raw    []byte // encoded value; nil when obj holds the value or it does not exist
	obj    Value  // decoded value, encoded at commit
	exists bool
	dirty  bool
	kept   bool // see Keeper
	// inFilter: the Tx's written filter has key (or answers as if it had,
	// a false positive), so a commit need not add it again.
	inFilter bool
}

func newTx(db pebble.Reader, prefix []byte) *Tx {
	return &Tx{db: db, prefix: prefix, entries: make(map[string]*entry)}
}

// Get returns the value of key, or found=false. The bytes must not be
// modified or kept beyond the next call on tx.
func (tx *Tx) Get(key []byte) (value []byte, found bool, err error) {
	e, err := tx.lookup(key)
	if err != nil || !e.exists {
		return nil, false, err
	}
	if e.obj != nil {
		b, err := e.obj.AppendBinary(nil)
		if err != nil {
			return nil, false, fmt.Errorf("projections: encode %q: %w", string(key), err)
		}
		return b, true, nil
	}
	return e.raw, true, nil
}

// Set stores value (copied) under key.
func (tx *Tx) Set(key, value []byte) {
	e := tx.entry(key)
	e.raw = append(make([]byte, 0, len(value)), value...)
	e.obj = nil
	e.exists = true
	tx.markDirty(key, e)
}

// Delete removes key.
func (tx *Tx) Delete(key []byte) {
	e := tx.entry(key)
	e.raw, e.obj, e.exists = nil, nil, false
	tx.markDirty(key, e)
}

// Put stores v under key. v is encoded when the batch commits, so later
// changes to v made during the same batch are stored too; but a value
// obtained with Load and changed without Put is not guaranteed to be stored
// (it is, or not, depending on where the batch ends). Always Put what you
// change.
func (tx *Tx) Put(key []byte, v Value) {
	e := tx.entry(key)
	e.raw, e.obj, e.exists = nil, v, true
	tx.markDirty(key, e)
}

// Load returns the value stored under key, decoded into a *T, or nil and
// false. Within one batch every Load of a key returns the same pointer.
func Load[T any, P decodable[T]](tx *Tx, key []byte) (P, bool, error) {
	e, err := tx.lookup(key)
	if err != nil || !e.exists {
		return nil, false, err
	}
	if e.obj != nil {
		p, ok := e.obj.(P)
		if !ok {
			return nil, false, fmt.Errorf("projections: key %q holds a %T, not a %T", string(key), e.obj, p)
		}
		return p, true, nil
	}
	p := P(new(T))
	if err := p.UnmarshalBinary(e.raw); err != nil {
		return nil, false, fmt.Errorf("projections: decode %q: %w", string(key), err)
	}
	e.obj, e.raw = p, nil
	return p, true, nil
}

// Keys are passed to a Tx as byte slices it does not keep (it copies the
// ones it stores): Apply can build them in a buffer on its stack, with
// joinKey, instead of allocating a few for every event. (Errors format a
// copy of the key, so that the key does not escape to the heap.)

// Dirty is the number of keys changed since the last commit; the runner
// commits before it grows past its bound.
func (tx *Tx) Dirty() int { return len(tx.dirty) }

func (tx *Tx) markDirty(key []byte, e *entry) {
	if !e.dirty {
		e.dirty = true
		tx.dirty = append(tx.dirty, e)
	}
}

// entry returns the in-memory entry for key, creating an empty one without
// reading the database (the caller overwrites it).
func (tx *Tx) entry(key []byte) *entry {
	if e := tx.last; e != nil && e.key == string(key) {
		return e
	}
	if e, ok := tx.entries[string(key)]; ok {
		tx.last = e
		return e
	}
	e := tx.newEntry(key)
	tx.insert(e)
	return e
}

// insert adds a new entry to entries and makes it the last one used.
func (tx *Tx) insert(e *entry) {
	if len(tx.entries) == growAt && tx.sizeHint > 2*growAt && !tx.sized {
		m := make(map[string]*entry, tx.sizeHint)
		for k, v := range tx.entries {
			m[k] = v
		}
		tx.entries, tx.sized = m, true
	}
	tx.entries[e.key] = e
	tx.last = e
}

// newEntry returns an empty entry for key. An entry stays in its slab: the
// slab's memory is freed once none of its entries is referenced. A kept
// entry (see Keeper) is allocated on its own, so that it does not hold a
// slab of dropped entries in memory for as long as it lives.
func (tx *Tx) newEntry(key []byte) *entry {
	// keep is given the entry's own copy of the key: given key, a func value
	// would move every caller's stack buffer for keys (joinKey) to the heap.
	k := string(key)
	if tx.keep != nil && tx.keep(k) {
		tx.kept++
		return &entry{key: k, kept: true}
	}
	if len(tx.slab) == cap(tx.slab) {
		tx.slab = make([]entry, 0, entrySlab)
	}
	tx.slab = append(tx.slab, entry{key: k})
	e := &tx.slab[len(tx.slab)-1]
	if tx.keep != nil {
		tx.transient = append(tx.transient, e)
	}
	return e
}

// lookup returns the entry for key, reading the committed value on a miss.
func (tx *Tx) lookup(key []byte) (*entry, error) {
	if e := tx.last; e != nil && e.key == string(key) {
		return e, nil
	}
	if e, ok := tx.entries[string(key)]; ok {
		tx.last = e
		return e, nil
	}
	e := tx.newEntry(key)
	if tx.complete || (tx.written != nil && !tx.written.mayHave(key)) {
		// complete: the keyspace was empty and nothing was dropped since,
		// so a key missing from entries was never written either.
		tx.insert(e)
		return e, nil
	}
	// Whatever Pebble answers, the filter has the key or answers as if it
	// had (a false positive): adding it again would change nothing.
	e.inFilter = true
	tx.keyBuf = append(append(tx.keyBuf[:0], tx.prefix...), key...)
	v, closer, err := tx.db.Get(tx.keyBuf)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("projections: read %q: %w", string(key), err)
	default:
		e.raw = append(make([]byte, 0, len(v)), v...)
		e.exists = true
		closeQuietly(closer)
	}
	tx.insert(e)
	return e, nil
}

// writeTo adds every change to b. buf is scratch space for encoding; the
// (possibly grown) buffer is returned for reuse.
func (tx *Tx) writeTo(b *pebble.Batch, buf []byte) ([]byte, error) {
	// Keys go into the batch in order: the memtable's skiplist inserts
	// neighbouring keys faster than random ones.
	slices.SortFunc(tx.dirty, func(a, b *entry) int { return strings.Compare(a.key, b.key) })
	for _, e := range tx.dirty {
		k := e.key
		tx.keyBuf = append(append(tx.keyBuf[:0], tx.prefix...), k...)
		key := tx.keyBuf
		if !e.exists {
			if err := b.Delete(key, nil); err != nil {
				return buf, err
			}
			continue
		}
		v := e.raw
		if e.obj != nil {
			var err error
			if buf, err = e.obj.AppendBinary(buf[:0]); err != nil {
				return buf, fmt.Errorf("projections: encode %q: %w", k, err)
			}
			v = buf
		}
		// Batch.Set copies key and value, so the buffers can be reused.
		if err := b.Set(key, v, nil); err != nil {
			return buf, err
		}
		if tx.written != nil && !e.inFilter {
			// Before the commit: if it fails, the filter only claims a key
			// that may exist and does not, which costs a Get.
			tx.written.add(k)
			e.inFilter = true
		}
	}
	return buf, nil
}

// committed marks everything clean once the batch is on disk. The values
// stay in memory, decoded, as a cache for the next batches (a balance
// touched in every batch is read from disk once, not once per batch), up to
// cacheMax keys; past that the cache is dropped, but for the values a
// Keeper keeps (up to keptMax keys).
func (tx *Tx) committed(cacheMax, keptMax int) {
	tx.markClean()
	tx.evict(cacheMax, keptMax)
}

// markClean marks the entries clean once they are in a batch on its way
// to disk (see committer); they stay in the cache, and must, until that
// batch is committed.
func (tx *Tx) markClean() {
	for _, e := range tx.dirty {
		e.dirty = false
	}
	tx.dirty = tx.dirty[:0]
}

// evict drops the clean entries if the cache holds more than cacheMax keys
// besides the kept ones: all of them if the kept ones are more than
// keptMax, the others only if not. Dirty entries always stay. The caller
// must have no commit in flight (committed, or the committer between
// commits), so that every clean entry is on disk.
func (tx *Tx) evict(cacheMax, keptMax int) {
	if len(tx.entries)-tx.kept <= cacheMax {
		return
	}
	tx.complete = false
	tx.last = nil
	if tx.kept > 0 && tx.kept <= keptMax {
		// Drop the others one by one: each was inserted once and is deleted
		// once, where rebuilding the map would reinsert every kept key at
		// every eviction.
		n := 0
		for _, e := range tx.transient {
			if e.dirty {
				tx.transient[n] = e
				n++
				continue
			}
			delete(tx.entries, e.key)
			e.raw, e.obj = nil, nil // the slab may outlive the entry
		}
		clear(tx.transient[n:])
		tx.transient = tx.transient[:n]
		return
	}
	if len(tx.dirty) == 0 {
		tx.reset()
		return
	}
	clear(tx.entries)
	tx.kept = 0
	tx.transient = tx.transient[:0]
	for _, e := range tx.dirty {
		tx.entries[e.key] = e // at most as many as before: no regrowth
		if e.kept {
			tx.kept++
		} else if tx.keep != nil {
			tx.transient = append(tx.transient, e)
		}
	}
}

// reset forgets everything in memory: after a failure the batch is thrown
// away, and the cache may hold its uncommitted changes.
func (tx *Tx) reset() {
	tx.complete = false
	tx.last = nil
	clear(tx.entries)
	clear(tx.dirty)
	tx.dirty = tx.dirty[:0]
	tx.kept = 0
	clear(tx.transient)
	tx.transient = tx.transient[:0]
}

// Reader reads one projection's committed state, as of the moment its View
// was taken. Keys are relative to the projection's generation.
type Reader struct {
	r       pebble.Reader
	prefix  []byte
	ckptKey []byte
	// pos is the projection's position in the view when the view knew it
	// (Runner.View); otherwise Position reads the checkpoint.
	pos      eventstore.Position
	posKnown bool
}

// Get returns a copy of the value under key, or found=false.
func (r *Reader) Get(key []byte) (value []byte, found bool, err error) {
	v, closer, err := r.r.Get(append(append([]byte(nil), r.prefix...), key...))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("projections: read %q: %w", key, err)
	}
	defer closeQuietly(closer)
	return append([]byte(nil), v...), true, nil
}

// Read returns the value under key decoded into a *T, or nil and false.
func Read[T any, P decodable[T]](r *Reader, key []byte) (P, bool, error) {
	v, found, err := r.Get(key)
	if err != nil || !found {
		return nil, false, err
	}
	p := P(new(T))
	if err := p.UnmarshalBinary(v); err != nil {
		return nil, false, fmt.Errorf("projections: decode %q: %w", key, err)
	}
	return p, true, nil
}

// Scan calls fn for each key in [lower, upper) in key order (upper nil: to
// the end of the projection's keyspace) until fn returns more=false or an
// error. key and value are only valid during the call.
func (r *Reader) Scan(lower, upper []byte, fn func(key, value []byte) (more bool, err error)) error {
	lo := append(append([]byte(nil), r.prefix...), lower...)
	var hi []byte
	if upper != nil {
		hi = append(append([]byte(nil), r.prefix...), upper...)
	} else {
		hi = prefixEnd(r.prefix)
	}
	it, err := r.r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("projections: scan: %w", err)
	}
	n := len(r.prefix)
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("projections: scan: %w", err)
		}
		more, err := fn(it.Key()[n:], v)
		if err != nil {
			_ = it.Close()
			return err
		}
		if !more {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("projections: scan: %w", err)
	}
	return nil
}

// iter is a raw iterator over the reader's keyspace (keys keep the prefix).
func (r *Reader) iter() (*pebble.Iterator, error) {
	it, err := r.r.NewIter(&pebble.IterOptions{LowerBound: r.prefix, UpperBound: prefixEnd(r.prefix)})
	if err != nil {
		return nil, fmt.Errorf("projections: iterate: %w", err)
	}
	return it, nil
}

// PrefixEnd is the smallest key greater than every key that starts with p:
// Scan(p, PrefixEnd(p), ...) visits exactly the keys starting with p.
func PrefixEnd(p []byte) []byte { return prefixEnd(p) }

// startEmpty marks tx complete if its keyspace holds no key yet (a fresh
// generation): see Tx.complete.
func (tx *Tx) startEmpty() error {
	it, err := tx.db.NewIter(&pebble.IterOptions{LowerBound: tx.prefix, UpperBound: prefixEnd(tx.prefix)})
	if err != nil {
		return fmt.Errorf("projections: read %q: %w", tx.prefix, err)
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("projections: read %q: %w", tx.prefix, err)
	}
	tx.complete = empty && len(tx.entries) == 0
	tx.written = nil
	if tx.complete {
		tx.written = newKeyFilter()
	}
	return nil
}
