package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/ansinh/ansinh/eventstore"
)

// Limits of one verification.
const (
	// MaxProblems bounds the problems one report lists.
	MaxProblems = 100
	// MaxSealLag bounds how many events after the last seal Verify keeps
	// in memory to check the next one against (80 bytes each). A seal is
	// appended right after the events it covers, so the gap is normally a
	// handful of events, and at most the sealer's Every plus what was
	// appended while it sealed.
	MaxSealLag = 200_000
)

// Problem is one thing Verify found wrong.
type Problem struct {
	// Position is where in the verified log the problem is: for a changed
	// event, the first event whose content differs from what was sealed
	// (for a removed event, the event that now stands in its place); for a
	// bad seal, the seal event.
	Position eventstore.Position `json:"position"`
	// Count is that event's place in the log, from 1.
	Count uint64 `json:"count"`
	// Seal is the position of the seal that disagrees, if any.
	Seal   eventstore.Position `json:"seal"`
	Reason string              `json:"reason"`
}

func (p Problem) String() string {
	return fmt.Sprintf("event #%d at %s: %s", p.Count, p.Position, p.Reason)
}

// Report is the outcome of Verify.
type Report struct {
	Events uint64              `json:"events"`
	Head   eventstore.Position `json:"head"`
	// Hash is the chain over the whole log as read.
	Hash string `json:"hash"`
	// Seals is the number of seals that checked out; SealedThrough is the
	// Count of the last seal found, and Unsealed the events after it (they
	// are covered by no seal yet).
	Seals         int    `json:"seals"`
	SealedThrough uint64 `json:"sealed_through"`
	Unsealed      uint64 `json:"unsealed"`
	// Problems in log order. After the first, later ones may be its
	// consequences (a removed event shifts every later event's place).
	Problems  []Problem `json:"problems"`
	Truncated bool      `json:"truncated,omitempty"` // more than MaxProblems
}

// OK reports whether the log is exactly what its seals say.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// First is the earliest problem, or nil.
func (r *Report) First() *Problem {
	if len(r.Problems) == 0 {
		return nil
	}
	return &r.Problems[0]
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// ExpectSealedThrough: the auditor last saw a seal covering this many
	// events; a log whose seals stop short of it has lost its tail (removal
	// of the last events and seals is otherwise undetectable).
	ExpectSealedThrough uint64
	// PageEvents is the ReadAll page size. Default 4096.
	PageEvents int
}

// window holds what Verify needs of the events after the last seal.
type windowEntry struct {
	digest Digest
	hash   Hash
	pos    eventstore.Position
}

type verifier struct {
	keys   map[string]ed25519.PublicKey
	chain  Chain
	base   uint64 // Count of the last seal taken; window holds base+1..
	window []windowEntry
	rep    Report
}

// Verify re-reads the whole log, recomputes the chain and checks every
// seal: its signature against the trusted keys, that it follows the
// previous seal, that every event it covers has the digest it lists, and
// that the chain matches its hash. Each authentic seal becomes the base for
// the next, so a change is reported where it is and not again at every
// later seal. The error is for failures to read; what is wrong with the log
// is in the report.
func Verify(ctx context.Context, store eventstore.Store, trusted []ed25519.PublicKey, opts VerifyOptions) (Report, error) {
	if opts.PageEvents == 0 {
		opts.PageEvents = 4096
	}
	v := &verifier{keys: map[string]ed25519.PublicKey{}}
	for _, k := range trusted {
		v.keys[KeyID(k)] = k
	}
	pos := eventstore.Start
	for {
		page, err := store.ReadAll(ctx, pos, opts.PageEvents)
		if err != nil {
			return v.rep, fmt.Errorf("verify: read after %s: %w", pos, err)
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			v.event(&page[i])
		}
		pos = page[len(page)-1].Position
	}
	v.rep.Events, v.rep.Head, v.rep.Hash = v.chain.Count, pos, v.chain.Hash.String()
	v.rep.SealedThrough = v.base
	v.rep.Unsealed = v.chain.Count - v.base
	if v.base < opts.ExpectSealedThrough {
		v.problem(Problem{Position: pos, Count: v.chain.Count,
			Reason: fmt.Sprintf("the seals cover %d events, but a seal of %d events was seen before: the log lost its tail", v.base, opts.ExpectSealedThrough)})
	}
	slices.SortStableFunc(v.rep.Problems, func(a, b Problem) int { return a.Position.Compare(b.Position) })
	return v.rep, nil
}

func (v *verifier) problem(p Problem) {
	if len(v.rep.Problems) >= MaxProblems {
		v.rep.Truncated = true
		return
	}
	v.rep.Problems = append(v.rep.Problems, p)
}

func (v *verifier) event(ev *eventstore.RecordedEvent) {
	d := v.chain.Fold(ev)
	e := windowEntry{digest: d, hash: v.chain.Hash, pos: ev.Position}
	if len(v.window) >= MaxSealLag {
		// No seal for too long: forget the oldest; a later seal that
		// covers them is reported as unverifiable.
		v.window = v.window[1:]
		v.base++
	}
	v.window = append(v.window, e)
	if ev.StreamID == SealStream && ev.Type == SealedEventType {
		v.seal(ev)
	}
}

func (v *verifier) seal(ev *eventstore.RecordedEvent) {
	here := v.chain.Count
	bad := func(format string, args ...any) {
		v.problem(Problem{Position: ev.Position, Count: here, Seal: ev.Position, Reason: "seal " + fmt.Sprintf(format, args...)})
	}
	s, err := DecodeSeal(ev.Data)
	if err != nil {
		bad("does not decode: %v", err)
		return
	}
	if err := s.check(v.keys); err != nil {
		bad("%v", err)
		return
	}
	if s.Count >= here {
		bad("claims %d events but stands at event %d: events before it were removed, or it was moved", s.Count, here)
		return
	}
	if s.Count <= v.base {
		bad("covers %d events, but an earlier seal already covers %d: seals out of order", s.Count, v.base)
		return
	}
	if s.PrevCount != v.base {
		bad("follows a seal of %d events, but the previous seal in the log covers %d: a seal was removed or reordered", s.PrevCount, v.base)
	}
	from := max(s.PrevCount, v.base) + 1
	clean := s.PrevCount == v.base
	if from <= v.base || from-v.base > uint64(len(v.window))+1 {
		bad("covers events no longer held in memory (more than %d events after the previous seal)", MaxSealLag)
		clean = false
	} else {
		for c := from; c <= s.Count; c++ {
			e := &v.window[c-v.base-1]
			if !bytes.Equal(e.digest[:ShortDigestBytes], s.shortDigest(c)) {
				v.problem(Problem{Position: e.pos, Count: c, Seal: ev.Position,
					Reason: fmt.Sprintf("differs from the event the seal at %s recorded here (altered, inserted, removed or reordered)", ev.Position)})
				clean = false
				break
			}
		}
		if clean && v.window[s.Count-v.base-1].hash.String() != s.Hash {
			bad("hash differs from the chain recomputed up to event %d", s.Count)
			clean = false
		}
	}
	if clean {
		v.rep.Seals++
	}
	// The seal is authentic: it becomes the base, and the chain continues
	// from its hash, so each interval is judged on its own.
	var h Hash
	if err := h.UnmarshalText([]byte(s.Hash)); err == nil {
		rest := v.window[s.Count-v.base:]
		v.window = append(v.window[:0], rest...)
		v.base = s.Count
		if len(v.window) > 0 {
			// Refold the events after the sealed ones onto the seal's hash.
			v.rebase(h)
		} else {
			v.chain.Hash = h
		}
	}
}

// rebase recomputes the window's chain hashes from the seal's hash. After
// a clean seal this changes nothing; after a mismatch it lets the next
// interval be judged on its own.
func (v *verifier) rebase(h Hash) {
	c := Chain{Count: v.base, Hash: h}
	for i := range v.window {
		c.foldDigest(v.window[i].digest)
		v.window[i].hash = c.Hash
	}
	v.chain.Hash = c.Hash
}
