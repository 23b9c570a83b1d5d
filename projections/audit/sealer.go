package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
)

// SealerOptions configure a Sealer. Zero values mean the defaults.
type SealerOptions struct {
	// Every: seal as soon as this many events are unsealed. Default 10,000,
	// at most MaxSealEvents.
	Every int
	// Interval: seal whatever ledger events are unsealed at least this
	// often. Default 10 minutes.
	Interval time.Duration
	// PageEvents is the ReadAll page size while catching up. Default 4096.
	PageEvents int
	// RetryDelay is the pause after the store failed. Default 1s.
	RetryDelay time.Duration
	// Logger; nil logs nothing.
	Logger *slog.Logger

	now  func() time.Time // tests fake the clock
	tick <-chan time.Time // tests drive the interval check
}

func (o SealerOptions) withDefaults() (SealerOptions, error) {
	if o.Every == 0 {
		o.Every = 10_000
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Minute
	}
	if o.PageEvents == 0 {
		o.PageEvents = 4096
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = func() time.Time { return time.Now().UTC() }
	}
	switch {
	case o.Every < 1 || o.Every > MaxSealEvents:
		return o, fmt.Errorf("sealer: Every %d, want 1 to %d", o.Every, MaxSealEvents)
	case o.Interval < time.Second:
		return o, fmt.Errorf("sealer: Interval %s, want at least 1s", o.Interval)
	case o.PageEvents < 1 || o.PageEvents > eventstore.MaxReadLimit:
		return o, fmt.Errorf("sealer: PageEvents %d, want 1 to %d", o.PageEvents, eventstore.MaxReadLimit)
	}
	return o, nil
}

// Sealer folds every event of the log into the chain and appends a signed
// seal every Every events or Interval, whichever comes first.
//
// Its state (the chain, the short digests not yet sealed, and the position
// it has folded) lives in the projections database under its own prefix,
// written in one batch per step, so a restart resumes exactly where it was.
//
// Seals are appended to SealStream with an exact expected revision, so two
// replicas sealing at once cannot interleave: the loser's append fails, it
// drops its seal, learns the winner's from the stream, and seals the rest
// later. A seal is first recorded as pending, then appended; a crash in
// between re-sends the same event (same ID, same expected revision), which
// the store treats as a retry.
type Sealer struct {
	store  eventstore.Store
	db     *pebble.DB
	prefix []byte
	key    ed25519.PrivateKey
	opts   SealerOptions

	st    sealerState
	chain Chain
	fresh []freshDigest // folded since the last flush

	mu     sync.Mutex
	status SealerStatus
}

type freshDigest struct {
	count  uint64
	digest [ShortDigestBytes]byte
}

// sealerState is what the sealer stores under <prefix>state.
type sealerState struct {
	Position eventstore.Position `json:"position"` // last event folded
	Count    uint64              `json:"count"`
	Hash     Hash                `json:"hash"`
	// LastSeal is the Count of the latest seal known to be in the log; the
	// stored digests are those of events LastSeal+1..Count.
	LastSeal   uint64    `json:"last_seal"`
	LastSealAt time.Time `json:"last_seal_at"`
	// SealsRevision is the revision of the last event of SealStream known
	// to this sealer, -1 when it has none.
	SealsRevision int64 `json:"seals_revision"`
	// LastLedgerEvent is the Count of the last event that is not a seal:
	// the interval trigger does not seal seals alone, or an idle ledger
	// would seal its own seals forever.
	LastLedgerEvent uint64 `json:"last_ledger_event"`
	// TrimmedTo: digests of events up to here are deleted.
	TrimmedTo uint64 `json:"trimmed_to"`
	// Pending is a seal decided and signed but not known to be appended.
	Pending *Seal `json:"pending,omitempty"`
}

// SealerStatus is for /metrics and logs.
type SealerStatus struct {
	Position     eventstore.Position `json:"position"`
	Count        uint64              `json:"count"`
	LastSeal     uint64              `json:"last_seal"`
	LastSealAt   time.Time           `json:"last_seal_at"`
	SealsWritten int                 `json:"seals_written"` // by this process
	Pending      bool                `json:"pending"`
}

// NewSealer returns a sealer keeping its state in db under prefix (for
// example projections.ComponentPrefix("sealer")) and signing with key.
func NewSealer(store eventstore.Store, db *pebble.DB, prefix []byte, key ed25519.PrivateKey, opts SealerOptions) (*Sealer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("sealer: an Ed25519 private key is required")
	}
	return &Sealer{store: store, db: db, prefix: append([]byte(nil), prefix...), key: key, opts: opts}, nil
}

// Status reports the sealer's progress.
func (s *Sealer) Status() SealerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run folds and seals until ctx is done. Store failures are retried after
// RetryDelay; Run returns ctx's error, or eventstore.ErrClosed.
func (s *Sealer) Run(ctx context.Context) error {
	for {
		err := s.runOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, eventstore.ErrClosed):
			return err
		}
		s.opts.Logger.Error("sealer: failed; retrying", "error", err, "retry_in", s.opts.RetryDelay)
		select {
		case <-time.After(s.opts.RetryDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Sealer) runOnce(ctx context.Context) error {
	// Start from what is on disk: after an error, memory may be ahead.
	if err := s.load(); err != nil {
		return err
	}
	if s.st.Pending != nil {
		if err := s.appendPending(ctx); err != nil {
			return err
		}
	}
	for {
		page, err := s.store.ReadAll(ctx, s.st.Position, s.opts.PageEvents)
		if err != nil {
			return fmt.Errorf("sealer: read: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			if err := s.fold(ctx, &page[i]); err != nil {
				return err
			}
		}
		if err := s.flush(false); err != nil {
			return err
		}
	}
	return s.follow(ctx)
}

func (s *Sealer) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := s.store.Subscribe(ctx, s.st.Position, eventstore.Filter{})
	if err != nil {
		return fmt.Errorf("sealer: subscribe: %w", err)
	}
	defer sub.Close()
	type item struct {
		ev  eventstore.RecordedEvent
		err error
	}
	events := make(chan item, eventstore.SubscriptionBuffer)
	go func() {
		for {
			ev, err := sub.Next(ctx)
			select {
			case events <- item{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	tick := s.opts.tick
	if tick == nil {
		t := time.NewTicker(min(max(s.opts.Interval/10, time.Second), time.Minute))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			if s.intervalDue() {
				if err := s.seal(ctx); err != nil {
					return err
				}
			}
		case it := <-events:
			for {
				if it.err != nil {
					if ferr := s.flush(false); ferr != nil {
						return ferr
					}
					return fmt.Errorf("sealer: subscription: %w", it.err)
				}
				if err := s.fold(ctx, &it.ev); err != nil {
					return err
				}
				more := false
				select {
				case it = <-events:
					more = true
				default:
				}
				if !more {
					break
				}
			}
			if err := s.flush(false); err != nil {
				return err
			}
		}
	}
}

func (s *Sealer) intervalDue() bool {
	return s.st.Pending == nil && s.st.LastLedgerEvent > s.st.LastSeal &&
		s.opts.now().Sub(s.st.LastSealAt) >= s.opts.Interval
}

// fold adds one event to the chain and seals when Every events are unsealed.
func (s *Sealer) fold(ctx context.Context, ev *eventstore.RecordedEvent) error {
	d := s.chain.Fold(ev)
	s.st.Position, s.st.Count, s.st.Hash = ev.Position, s.chain.Count, s.chain.Hash
	if ev.StreamID == SealStream && ev.Type == SealedEventType {
		s.st.SealsRevision = max(s.st.SealsRevision, int64(ev.Revision))
		// Another replica's seal (ours are already counted when appended).
		// An undecodable one is folded like any event; Verify reports it.
		if seal, err := DecodeSeal(ev.Data); err == nil && seal.Count > s.st.LastSeal {
			s.advanceLastSeal(seal.Count, seal.SealedAt)
		}
	} else {
		s.st.LastLedgerEvent = s.st.Count
	}
	if s.st.Count > s.st.LastSeal {
		var fd freshDigest
		fd.count = s.st.Count
		copy(fd.digest[:], d[:ShortDigestBytes])
		s.fresh = append(s.fresh, fd)
	}
	if s.st.Pending == nil && s.st.Count >= s.st.LastSeal+uint64(s.opts.Every) {
		return s.seal(ctx)
	}
	return nil
}

func (s *Sealer) advanceLastSeal(count uint64, at time.Time) {
	s.st.LastSeal, s.st.LastSealAt = count, at
	i := 0
	for i < len(s.fresh) && s.fresh[i].count <= count {
		i++
	}
	s.fresh = s.fresh[i:]
}

// seal signs the events since the last seal, records the seal as pending,
// and appends it.
func (s *Sealer) seal(ctx context.Context) error {
	if s.st.Count <= s.st.LastSeal {
		return nil
	}
	if err := s.flush(false); err != nil {
		return err
	}
	digests, err := s.storedDigests(s.st.LastSeal+1, s.st.Count)
	if err != nil {
		return err
	}
	p := &Seal{
		Count:     s.st.Count,
		PrevCount: s.st.LastSeal,
		Through:   s.st.Position,
		Hash:      s.st.Hash.String(),
		Digests:   digests,
		SealedAt:  s.opts.now(),
	}
	if err := p.sign(s.key); err != nil {
		return err
	}
	s.st.Pending = p
	// Synced: the pending seal is what a restart re-sends.
	if err := s.flush(true); err != nil {
		return err
	}
	return s.appendPending(ctx)
}

func (s *Sealer) appendPending(ctx context.Context) error {
	p := s.st.Pending
	ev, err := sealEvent(p)
	if err != nil {
		return err
	}
	exp := eventstore.NoStream()
	if s.st.SealsRevision >= 0 {
		exp = eventstore.Exact(uint64(s.st.SealsRevision))
	}
	res, err := s.store.Append(ctx, SealStream, exp, ev)
	switch {
	case err == nil:
		s.st.SealsRevision = int64(res.NextRevision)
		s.advanceLastSeal(p.Count, p.SealedAt)
		s.st.Pending = nil
		s.mu.Lock()
		s.status.SealsWritten++
		s.mu.Unlock()
		s.opts.Logger.Info("sealed the log", "count", p.Count, "through", p.Through.String(), "hash", p.Hash, "seal_position", res.Position.String())
	case errors.Is(err, eventstore.ErrWrongExpectedRevision):
		// Someone else sealed since: take their latest seal as the base
		// and seal the rest at the next trigger.
		if err := s.learnLatestSeal(ctx); err != nil {
			return err
		}
		s.st.Pending = nil
	default:
		return fmt.Errorf("sealer: append seal of %d events: %w", p.Count, err)
	}
	return s.flush(true)
}

func (s *Sealer) learnLatestSeal(ctx context.Context) error {
	recs, err := s.store.ReadStream(ctx, SealStream, eventstore.ReadStreamOptions{
		Direction: eventstore.Backwards, From: eventstore.End, Limit: 1,
	})
	if err != nil {
		return fmt.Errorf("sealer: read the latest seal: %w", err)
	}
	if len(recs) == 0 {
		return errors.New("sealer: the seal stream changed but has no events")
	}
	s.st.SealsRevision = int64(recs[0].Revision)
	seal, err := DecodeSeal(recs[0].Data)
	if err != nil {
		return err
	}
	if seal.Count > s.st.LastSeal {
		s.advanceLastSeal(seal.Count, seal.SealedAt)
	}
	return nil
}

// Keys under the prefix: "state" and "d/<count:8>" (short digests).
func (s *Sealer) stateKey() []byte { return append(append([]byte(nil), s.prefix...), "state"...) }

func (s *Sealer) digestKey(count uint64) []byte {
	return binary.BigEndian.AppendUint64(append(append([]byte(nil), s.prefix...), "d/"...), count)
}

func (s *Sealer) load() error {
	s.st = sealerState{SealsRevision: -1}
	s.fresh = s.fresh[:0]
	v, closer, err := s.db.Get(s.stateKey())
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("sealer: load: %w", err)
	default:
		err = json.Unmarshal(v, &s.st)
		_ = closer.Close()
		if err != nil {
			return fmt.Errorf("sealer: stored state is corrupt: %w", err)
		}
	}
	s.chain = Chain{Count: s.st.Count, Hash: s.st.Hash}
	s.publish()
	return nil
}

// flush writes the state and the new digests in one batch.
func (s *Sealer) flush(sync bool) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, fd := range s.fresh {
		if err := b.Set(s.digestKey(fd.count), fd.digest[:], nil); err != nil {
			return err
		}
	}
	if s.st.LastSeal > s.st.TrimmedTo {
		if err := b.DeleteRange(s.digestKey(0), s.digestKey(s.st.LastSeal+1), nil); err != nil {
			return err
		}
		s.st.TrimmedTo = s.st.LastSeal
	}
	v, err := json.Marshal(&s.st)
	if err != nil {
		return fmt.Errorf("sealer: encode state: %w", err)
	}
	if err := b.Set(s.stateKey(), v, nil); err != nil {
		return err
	}
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	if err := b.Commit(opt); err != nil {
		return fmt.Errorf("sealer: store state: %w", err)
	}
	s.fresh = s.fresh[:0]
	s.publish()
	return nil
}

func (s *Sealer) storedDigests(from, to uint64) ([]byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.digestKey(from), UpperBound: s.digestKey(to + 1)})
	if err != nil {
		return nil, fmt.Errorf("sealer: read digests: %w", err)
	}
	defer it.Close()
	out := make([]byte, 0, (to-from+1)*ShortDigestBytes)
	want := from
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if got := binary.BigEndian.Uint64(k[len(k)-8:]); got != want || len(it.Value()) != ShortDigestBytes {
			return nil, fmt.Errorf("sealer: stored digests have event %d where %d belongs", got, want)
		}
		out = append(out, it.Value()...)
		want++
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("sealer: read digests: %w", err)
	}
	if want != to+1 {
		return nil, fmt.Errorf("sealer: stored digests end at event %d, want %d", want-1, to)
	}
	return out, nil
}

func (s *Sealer) publish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Position = s.st.Position
	s.status.Count = s.st.Count
	s.status.LastSeal = s.st.LastSeal
	s.status.LastSealAt = s.st.LastSealAt
	s.status.Pending = s.st.Pending != nil
}
