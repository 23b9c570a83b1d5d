package projections

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/ledger"
)

// TestTxKeepsWhatItsKeeperKeeps: when the cache is over its bound, a Tx
// drops the values of the keys its Keeper does not keep (read back from
// Pebble when next used) and keeps the others (no read), unless they are
// more than keptMax, in which case it drops them all; dirty values always
// stay until written.
func TestTxKeepsWhatItsKeeperKeeps(t *testing.T) {
	db := openMemDB(t)
	rd := &countingReader{Reader: db.pdb}
	keep := func(key string) bool { return key[0] == 'k' }
	tx := newTx(rd, []byte("test/1/"))
	tx.keep = keep
	commit := func(cacheMax, keptMax int) { t.Helper(); commitTx(t, db, tx, cacheMax, keptMax) }
	get := func(key, want string) {
		t.Helper()
		v, found, err := tx.Get([]byte(key))
		if err != nil || !found || string(v) != want {
			t.Fatalf("Get(%s) = %q, %v, %v; want %q", key, v, found, err, want)
		}
	}
	for i := range 10 {
		tx.Set(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "kept %d", i))
		tx.Set(fmt.Appendf(nil, "t%d", i), fmt.Appendf(nil, "transient %d", i))
	}
	commit(5, 100) // 10 transient > 5: they go, the 10 kept stay
	if tx.kept != 10 || len(tx.entries) != 10 || len(tx.transient) != 0 {
		t.Fatalf("after eviction: %d kept, %d entries, %d transient; want 10, 10, 0", tx.kept, len(tx.entries), len(tx.transient))
	}
	for i := range 10 {
		get(fmt.Sprintf("k%d", i), fmt.Sprintf("kept %d", i))
	}
	if rd.gets != 0 {
		t.Fatalf("%d Pebble reads for kept keys, want 0", rd.gets)
	}
	for i := range 10 {
		get(fmt.Sprintf("t%d", i), fmt.Sprintf("transient %d", i))
	}
	if rd.gets != 10 {
		t.Fatalf("%d Pebble reads for dropped keys, want 10", rd.gets)
	}

	// evict between commits (a commit in flight is not there to care for) keeps what
	// is dirty, kept or not.
	tx.markClean()
	tx.Set([]byte("t0"), []byte("transient 0, changed"))
	tx.Set([]byte("k0"), []byte("kept 0, changed"))
	tx.evict(0, 100)
	if len(tx.entries) != 11 {
		t.Fatalf("%d entries after evict, want the 10 kept and 1 dirty transient", len(tx.entries))
	}
	commit(100, 100)
	gets := rd.gets
	get("t0", "transient 0, changed")
	get("k0", "kept 0, changed")
	if rd.gets != gets {
		t.Fatal("a dirty value was dropped before it was written")
	}

	// More kept keys than keptMax: everything goes.
	commit(0, 5)
	if tx.kept != 0 || len(tx.entries) != 0 {
		t.Fatalf("%d kept, %d entries after an eviction past keptMax; want none", tx.kept, len(tx.entries))
	}
	get("k3", "kept 3")
	if rd.gets != gets+1 {
		t.Fatalf("%d Pebble reads, want %d", rd.gets, gets+1)
	}
}

func TestBalancesKeepOnlyAccountSums(t *testing.T) {
	for key, want := range map[string]bool{
		"p/001085012345/a": true,
		"p/001085012345/o/payment-001085012345-SOCIAL-2024-01": false,
		"p/001085012345/r/corr-1":                              false,
		"p/001085012345/ab":                                    false,
		"p/a":                                                  false,
		"x/001085012345/a":                                     false,
	} {
		if got := (balancesProjection{}).Keep(key); got != want {
			t.Errorf("Keep(%s) = %v, want %v", key, got, want)
		}
	}
}

// TestReadModelsAgreeWhateverTheCache: the read models come out byte for
// byte the same from a ledger's log whether their values stay in memory
// across commits, are dropped at every commit of a few events, or are
// dropped but for the kept ones (Keeper); and whether the feed's pages are
// new or reused (feed.recycle: under -race, a page reused while a read model
// still read it would be reported).
func TestReadModelsAgreeWhateverTheCache(t *testing.T) {
	store, n := buildLedgerLog(t, 40, 3)
	defer store.Close()
	stateOf := func(opts Options) (map[string]map[string]string, int) {
		t.Helper()
		opts.Decoder = NewDecoder(ledger.NewCodec())
		r, err := Replay(context.Background(), store, openMemDB(t), ReadModels(), opts, Until{})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Position().Commit; got != uint64(n) {
			t.Fatalf("replayed to %d, want %d", got, n)
		}
		kept := 0
		for _, m := range r.liveMembers() {
			kept += m.tx.kept
		}
		out := map[string]map[string]string{}
		v := r.View()
		defer v.Close()
		for _, p := range ReadModels() {
			out[p.Name()] = dump(t, v, p.Name())
		}
		return out, kept
	}
	want, _ := stateOf(Options{})
	for _, c := range []struct {
		name     string
		opts     Options
		keptSome bool
	}{
		{"dropped at every commit", Options{BatchEvents: 37, CacheKeys: 1, KeptKeys: 1}, false},
		{"dropped but for the kept", Options{BatchEvents: 37, CacheKeys: 1}, true},
		{"kept ones over their bound now and then", Options{BatchEvents: 37, CacheKeys: 3, KeptKeys: 30}, false},
		{"pages of five events, reused after each commit", Options{PageEvents: 5, BatchEvents: 37}, false},
	} {
		got, kept := stateOf(c.opts)
		if c.keptSome && kept == 0 {
			t.Errorf("%s: nothing kept", c.name)
		}
		for name, w := range want {
			if !maps.Equal(got[name], w) {
				t.Errorf("%s: %s differs from the replay with the default cache (%d keys, want %d)", c.name, name, len(got[name]), len(w))
			}
		}
	}
}

// TestObligationStreamIsTheStreamName: the stream an attempt's events are
// read from stands for the obligation's stream name only when it is that
// name, top-up or not; anything else gets the name built from the key.
func TestObligationStreamIsTheStreamName(t *testing.T) {
	k := disbursement.ObligationKey{CitizenID: "001085012345", Program: "SOCIAL_MONTHLY", Period: domain.Period{Year: 2024, Month: 1}}
	topUp := k
	topUp.TopUp = "corr-7"
	for _, c := range []struct {
		stream string
		key    disbursement.ObligationKey
	}{
		{k.Stream(), k},
		{topUp.Stream(), topUp},
		{k.Stream(), topUp},
		{topUp.Stream(), k},
		{k.Stream() + "-", k},
		{"payment-001085012345-SOCIAL_MONTHLY-2024-02", k},
		{"payment-001085012346-SOCIAL_MONTHLY-2024-01", k},
		{"payout-run-1", k},
		{"", k},
	} {
		got := obligationStream(c.stream, c.key)
		if got != c.key.Stream() {
			t.Errorf("obligationStream(%q, %v) = %q, want %q", c.stream, c.key, got, c.key.Stream())
		}
		if n := testing.AllocsPerRun(10, func() { obligationStream(c.stream, c.key) }); c.stream == c.key.Stream() && n != 0 {
			t.Errorf("obligationStream(%q) allocates %v times, want 0", c.stream, n)
		}
	}
}

// TestFeedReusesRecycledPages: a page handed back is cleared and decoded
// into again when it is large enough; a smaller one is not used, and the
// free list takes no more than its bound.
func TestFeedReusesRecycledPages(t *testing.T) {
	f := &feed{free: make(chan []Event, 2)}
	a := f.page(8)
	a[3].Type, a[3].data = "PaymentIssued", "decoded"
	f.recycle([][]Event{a, make([]Event, 2), make([]Event, 8)}) // the third does not fit
	if got := f.page(5); &got[0] != &a[0] || len(got) != 5 {
		t.Errorf("page(5) after recycling a page of 8: a new page, want the recycled one")
	} else if got[3].Type != "" || got[3].data != nil {
		t.Errorf("a recycled page still holds its events (%q, %v): it keeps their data alive", got[3].Type, got[3].data)
	}
	if got := f.page(5); cap(got) < 5 {
		t.Errorf("page(5) with a recycled page of 2: cap %d", cap(got))
	}
	if len(f.free) != 0 {
		t.Errorf("%d pages left in the free list, want 0", len(f.free))
	}
}
