package ledger

import (
	"container/list"
	"sync"

	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// stateCache keeps the state of streams the ledger recently commanded, so
// that the next command on the same stream decides without reading and
// folding the stream again (a read was a quarter of a registry command's
// CPU, most of it for a person touched a moment before).
//
// A cached state is only ever a guess. A command decided on it appends
// with the cached revision as the expected one, so if anything else wrote
// to the stream since (another replica on EventStoreDB, a writer that does
// not go through this ledger) the append fails, writes nothing, and the
// command runs again from a fresh load. A command the cached state refuses
// or finds nothing to do for is also decided again from a fresh load
// before the answer is given, and a command whose ID already wrote to the
// stream always takes the loading path (it is a replay). So the answers
// are those of the uncached ledger; the cache only saves reads.
//
// Only states that concurrent commands can share are kept (cacheable): a
// beneficiary's, whose Evolve copies what it changes. A payout run's Evolve
// adds to maps it shares with the state before (disbursement.Run, so that a
// run of 300,000 payments is not copied per event): two commands holding
// one cached run would race on its maps.
//
// It is a bounded LRU; streams longer than maxCachedEvents are not kept.
type stateCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element
	lru     list.List // of *cachedState, most recent first
}

const maxCachedEvents = 256

// cacheable reports whether states of state's type may be cached: their
// Evolve must never change what an earlier state holds, and deciders must
// not change the state they are given (TestEvolveKeepsEarlierStates in
// domain/registry and domain/entitlement).
func cacheable(state any) bool {
	switch state.(type) {
	case registry.Beneficiary:
		return true
	}
	return false
}

type cachedState struct {
	stream   string
	state    any
	revision int64
	position eventstore.Position
	ids      []uuid.UUID // of the stream's events, in order
}

func newStateCache(max int) *stateCache {
	if max <= 0 {
		return nil
	}
	return &stateCache{max: max, entries: make(map[string]*list.Element)}
}

// get returns the cached state of stream unless the command ID already
// wrote to it (firstID, the derived ID of its first event; zero for a
// command without an ID).
func (c *stateCache) get(stream string, firstID uuid.UUID) (*cachedState, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[stream]
	if !ok {
		return nil, false
	}
	cs := el.Value.(*cachedState)
	if firstID != uuid.Nil {
		for _, id := range cs.ids {
			if id == firstID {
				return nil, false
			}
		}
	}
	c.lru.MoveToFront(el)
	return cs, true
}

// put records stream's state after a load or a successful append. The
// entry is replaced, never changed: a reader may hold the old one.
func (c *stateCache) put(cs *cachedState) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[cs.stream]; ok {
		c.lru.Remove(el)
		delete(c.entries, cs.stream)
	}
	if cs.revision >= maxCachedEvents || int64(len(cs.ids)) != cs.revision+1 {
		return // too long to keep, or its IDs are not all known
	}
	c.entries[cs.stream] = c.lru.PushFront(cs)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cachedState).stream)
	}
}

// drop forgets stream's state.
func (c *stateCache) drop(stream string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[stream]; ok {
		c.lru.Remove(el)
		delete(c.entries, stream)
	}
}

// len is the number of cached streams (tests).
func (c *stateCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
