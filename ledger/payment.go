package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
)

// Bounds of the disbursement processes.
const (
	// DefaultWorkers is how many streams a fan-out (claiming, releasing,
	// settling) works on at once. The store groups concurrent appends into
	// one commit, so a few dozen in flight keep it busy without queueing.
	DefaultWorkers = 16
	MaxWorkers     = 64
	// fanoutAttempts bounds reload-and-redecide rounds for one stream in a
	// fan-out when a concurrent writer moved it.
	fanoutAttempts = 5
)

// appendDerived appends events decided by a multi-stream process (a run's
// calculation or release, a settlement, a correction's effects). Their IDs
// are derived from step (e.g. "release:R1@4") and from a digest of the
// events' content, so that re-driving the step after a crash, or a second
// replica deciding the same thing, is answered by the store as a resend and
// writes nothing twice, while a replica that decided something else at the
// same place is refused by the expected revision instead of being mistaken
// for a resend. Every money event is checked to post a balanced entry
// before it is written.
func (l *Ledger) appendDerived(ctx context.Context, stream string, expected eventstore.ExpectedRevision, meta domain.Metadata, step string, events []domain.Event) (eventstore.AppendResult, error) {
	if len(events) == 0 {
		return eventstore.AppendResult{}, errors.New("ledger: appendDerived with no events")
	}
	data := make([]eventstore.EventData, len(events))
	digest := sha256.New()
	for i, ev := range events {
		if _, err := disbursement.Postings(ev); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("ledger: refusing to write %s to %s: %w", ev.EventType(), stream, err)
		}
		t, body, err := l.codec.Encode(ev)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("ledger: %w", err)
		}
		m := meta
		m.SchemaVersion = domain.SchemaVersion(t)
		mb, err := json.Marshal(m)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("ledger: metadata: %w", err)
		}
		fmt.Fprintf(digest, "%s\x00%d\x00", t, len(body))
		digest.Write(body)
		data[i] = eventstore.EventData{Type: t, Data: body, Metadata: mb}
	}
	// Metadata (who, when) is left out of the digest: two replicas acting
	// for different users still decide the same facts.
	key := step + ":" + hex.EncodeToString(digest.Sum(nil))
	for i := range data {
		data[i].ID = eventID(stream, key, i)
	}
	return l.store.Append(ctx, stream, expected, data...)
}

// expectAt is the expected revision of a stream loaded at rev (-1: none).
func expectAt(rev int64) eventstore.ExpectedRevision {
	if rev < 0 {
		return eventstore.NoStream()
	}
	return eventstore.Exact(uint64(rev))
}

// processMeta is the metadata of events a process writes for a person's
// command: the command's own metadata, with the step as causation.
func (l *Ledger) processMeta(req Request) (domain.Metadata, error) {
	req.CommandID = "" // the process derives its own event IDs per step
	return l.metadata(req)
}

// loadObligation loads one payment stream.
func (l *Ledger) loadObligation(ctx context.Context, k disbursement.ObligationKey) (Loaded[disbursement.Obligation], error) {
	ld, err := Load[disbursement.Obligation](ctx, l, k.Stream())
	if err != nil {
		return ld, err
	}
	ld.State.Key = k
	return ld, nil
}

// LoadObligation reads the payment stream of one obligation: its attempts,
// and its revision (the ETag).
func (l *Ledger) LoadObligation(ctx context.Context, k disbursement.ObligationKey) (Loaded[disbursement.Obligation], error) {
	if err := k.Validate(); err != nil {
		return Loaded[disbursement.Obligation]{}, err
	}
	return l.loadObligation(ctx, k)
}

// LoadAdjustments reads a beneficiary's approved top-ups and recoveries.
func (l *Ledger) LoadAdjustments(ctx context.Context, citizenID string) (Loaded[disbursement.Adjustments], error) {
	if err := disbursement.ValidateCitizenID("citizen_id", citizenID); err != nil {
		return Loaded[disbursement.Adjustments]{}, err
	}
	return Load[disbursement.Adjustments](ctx, l, disbursement.AdjustmentsStream(citizenID))
}

// decideAndAppend loads a stream, decides, and appends the decision with
// derived IDs, reloading and deciding again when a concurrent writer moved
// the stream. It returns whether anything was written.
func decideAndAppend[S State[S]](ctx context.Context, l *Ledger, stream string, meta domain.Metadata, step string, init func(*S), decide func(S) ([]domain.Event, error)) (bool, error) {
	for attempt := 1; ; attempt++ {
		ld, err := Load[S](ctx, l, stream)
		if err != nil {
			return false, err
		}
		if init != nil {
			init(&ld.State)
		}
		events, err := decide(ld.State)
		if err != nil || len(events) == 0 {
			return false, err
		}
		_, err = l.appendDerived(ctx, stream, expectAt(ld.Revision), meta, fmt.Sprintf("%s@%d", step, ld.Revision), events)
		if errors.Is(err, eventstore.ErrWrongExpectedRevision) && attempt < fanoutAttempts {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("ledger: %s: %w", stream, err)
		}
		return true, nil
	}
}

// forEach runs f on items 0..n-1 with at most workers at once and returns
// the first error (the others still finish: every step is idempotent, so
// partial work is completed by the next call).
func forEach(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	if workers < 1 {
		workers = 1
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func workersOr(n int) int {
	switch {
	case n <= 0:
		return DefaultWorkers
	case n > MaxWorkers:
		return MaxWorkers
	}
	return n
}
