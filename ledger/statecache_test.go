package ledger

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// countingStore counts stream reads.
type countingStore struct {
	eventstore.Store
	reads atomic.Int64
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.RecordedEvent, error) {
	s.reads.Add(1)
	return s.Store.ReadStream(ctx, stream, opts)
}

// replicas returns two ledgers over one store, as two service replicas on
// one EventStoreDB: each has its own state cache and neither sees the
// other's writes but through the store.
func replicas(t *testing.T) (a, b *Ledger, store *countingStore) {
	t.Helper()
	l, raw := newLedger(t)
	store = &countingStore{Store: raw}
	a, b = New(store, l.cfg), New(store, l.cfg)
	if _, err := a.SeedCatalogue(ctx); err != nil {
		t.Fatal(err)
	}
	must(t)(a.Register(ctx, registrar, registerAn()))
	return a, b, store
}

var vcb = registry.LinkBankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN THI AN"}

func TestStateCacheSavesTheReadOfAStreamJustCommanded(t *testing.T) {
	a, _, store := replicas(t)
	before := store.reads.Load()
	must(t)(a.Beneficiary(ctx, registrar, anID, vcb))
	res := must(t)(a.Beneficiary(ctx, registrar, anID, registry.ChoosePaymentMethod{Method: registry.BankTransfer}))
	if n := store.reads.Load() - before; n != 0 {
		t.Errorf("%d stream reads for two commands on a stream the ledger just wrote", n)
	}
	if got := res.State.(registry.Beneficiary).PaymentMethod; got != registry.BankTransfer || res.Revision != 2 {
		t.Fatalf("state %s at %d", got, res.Revision)
	}
	ld, err := a.LoadBeneficiary(ctx, anID)
	if err != nil || ld.Revision != 2 || ld.State.PaymentMethod != registry.BankTransfer {
		t.Fatalf("stream says %+v, %v", ld, err)
	}
}

// TestStateCacheNeverDecidesOnAStaleState: what another replica wrote is
// taken into account whether the stale state refuses the command (checked
// on the stream), finds nothing to do (checked too) or accepts it (the
// append fails and the command runs again on the stream's state).
func TestStateCacheNeverDecidesOnAStaleState(t *testing.T) {
	a, b, _ := replicas(t) // a holds An at revision 0, no account, cash
	choose := func(l *Ledger, m registry.PaymentMethod) Result {
		t.Helper()
		return must(t)(l.Beneficiary(ctx, registrar, anID, registry.ChoosePaymentMethod{Method: m}))
	}
	must(t)(b.Beneficiary(ctx, registrar, anID, vcb)) // revision 1; b holds it
	// a's state refuses bank transfer (no account); the stream allows it.
	if r := choose(a, registry.BankTransfer); len(r.Events) != 1 || r.Revision != 2 {
		t.Fatalf("stale refusal: %+v", r)
	}
	// b's state (cash) finds nothing to do; the stream says bank transfer.
	if r := choose(b, registry.Cash); len(r.Events) != 1 || r.Revision != 3 {
		t.Fatalf("stale no-op: %+v", r)
	}
	// a's state (bank transfer) finds nothing to do again; the stream says cash.
	if r := choose(a, registry.BankTransfer); len(r.Events) != 1 || r.Revision != 4 {
		t.Fatalf("stale no-op: %+v", r)
	}
	// b's state (cash, revision 3) accepts bank transfer; the append at
	// revision 3 fails, and on the stream (bank transfer) it is a no-op.
	if r := choose(b, registry.BankTransfer); len(r.Events) != 0 || r.StateRevision != 4 {
		t.Fatalf("stale acceptance: %+v", r)
	}
	ld, err := a.LoadBeneficiary(ctx, anID)
	if err != nil || ld.Revision != 4 || ld.State.PaymentMethod != registry.BankTransfer {
		t.Fatalf("stream: %+v %v", ld, err)
	}
}

func TestStateCacheKeepsCommandIDReplays(t *testing.T) {
	a, b, _ := replicas(t)
	req := registrar
	req.CommandID = "link-1"
	first := must(t)(a.Beneficiary(ctx, req, anID, vcb))
	for name, l := range map[string]*Ledger{"same replica": a, "other replica": b} {
		again := must(t)(l.Beneficiary(ctx, req, anID, vcb))
		if !again.Replayed || again.Events[0].ID != first.Events[0].ID || again.Revision != first.Revision {
			t.Errorf("%s: retry %+v, first %+v", name, again, first)
		}
	}
	other := vcb
	other.AccountNumber = "0011009999999"
	_, err := a.Beneficiary(ctx, req, anID, other)
	wantRule(t, err, domain.Conflict, "command_id_reused")
}

func TestStateCacheIsBounded(t *testing.T) {
	c := newStateCache(3)
	for i, s := range []string{"a", "b", "c", "d"} {
		c.put(&cachedState{stream: s, revision: 0, ids: make([]uuid.UUID, 1)})
		if want := min(i+1, 3); c.len() != want {
			t.Fatalf("after %d puts: %d entries, want %d", i+1, c.len(), want)
		}
	}
	if _, ok := c.get("a", uuid.Nil); ok {
		t.Error("the least recently used stream was kept")
	}
	if _, ok := c.get("d", uuid.Nil); !ok {
		t.Error("the last stream put was not kept")
	}
	c.put(&cachedState{stream: "long", revision: maxCachedEvents, ids: make([]uuid.UUID, maxCachedEvents+1)})
	if _, ok := c.get("long", uuid.Nil); ok {
		t.Error("a stream longer than maxCachedEvents was kept")
	}
	c.put(&cachedState{stream: "partial", revision: 5, ids: make([]uuid.UUID, 2)})
	if _, ok := c.get("partial", uuid.Nil); ok {
		t.Error("a state without all its event IDs was kept")
	}
	var off *stateCache
	off.put(&cachedState{stream: "x", ids: make([]uuid.UUID, 1)})
	if _, ok := off.get("x", uuid.Nil); ok || off.len() != 0 {
		t.Error("a disabled cache kept something")
	}
}

// TestStateCacheUnderConcurrentCommands: commands on one stream from two
// replicas at once each append exactly once, whatever the caches hold.
func TestStateCacheUnderConcurrentCommands(t *testing.T) {
	a, b, _ := replicas(t)
	must(t)(a.Beneficiary(ctx, registrar, anID, vcb))
	var wg sync.WaitGroup
	methods := []registry.PaymentMethod{registry.Cash, registry.BankTransfer}
	var appended atomic.Int64
	for g := range 8 {
		l := []*Ledger{a, b}[g%2]
		wg.Go(func() {
			for i := range 10 {
				res, err := l.Beneficiary(ctx, registrar, anID, registry.ChoosePaymentMethod{Method: methods[(g+i)%2]})
				if err != nil {
					t.Error(err)
					return
				}
				appended.Add(int64(len(res.Events)))
			}
		})
	}
	wg.Wait()
	ld, err := a.LoadBeneficiary(ctx, anID)
	if err != nil {
		t.Fatal(err)
	}
	if got := ld.Revision - 1; got != appended.Load() {
		t.Fatalf("stream has %d method changes, commands reported %d", got, appended.Load())
	}
}

// TestOnlyStatesThatCopyOnEvolveAreCached: a payout run's Evolve adds to
// maps it shares with the state before; a cached run handed to two
// commands at once would race on them.
func TestOnlyStatesThatCopyOnEvolveAreCached(t *testing.T) {
	if !cacheable(registry.Beneficiary{}) {
		t.Error("beneficiaries are not cached")
	}
	if cacheable(disbursement.Run{}) {
		t.Error("payout runs are cached")
	}
	a, _, _ := replicas(t)
	before := a.states.len()
	must(t)(a.Beneficiary(ctx, registrar, anID, vcb))
	if got := a.states.len(); got != before+1 && got != before {
		t.Errorf("%d cached states after a beneficiary command, %d before", got, before)
	}
	if _, ok := a.states.get(registry.Stream(anID), uuid.Nil); !ok {
		t.Error("the beneficiary just commanded is not cached")
	}
}
