package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	espebble "github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

func openStore(t testing.TB) *espebble.Store {
	t.Helper()
	s, err := espebble.Open("", espebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// appendLedger appends n ledger events spread over a few streams, up to
// per events per append.
func appendLedger(t testing.TB, s eventstore.Store, first, n, per int) {
	t.Helper()
	if err := tryAppendLedger(s, first, n, per); err != nil {
		t.Fatal(err)
	}
}

func tryAppendLedger(s eventstore.Store, first, n, per int) error {
	for i := first; i < first+n; {
		k := min(per, first+n-i)
		stream := fmt.Sprintf("beneficiary-%d", (i/per)%5)
		evs := make([]eventstore.EventData, k)
		for j := range evs {
			evs[j] = eventstore.EventData{
				ID:       uuid.New(),
				Type:     "Something.v1",
				Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+j)),
				Metadata: json.RawMessage(`{"actor":{"user_id":"u1","role":"registrar"}}`),
			}
		}
		if _, err := s.Append(context.Background(), stream, eventstore.Any(), evs...); err != nil {
			return err
		}
		i += k
	}
	return nil
}

func readAll(t testing.TB, s eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	pos := eventstore.Start
	for {
		page, err := s.ReadAll(context.Background(), pos, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		pos = page[len(page)-1].Position
	}
}

func seals(t testing.TB, s eventstore.Store) []*Seal {
	t.Helper()
	var out []*Seal
	for _, ev := range readAll(t, s) {
		if ev.StreamID == SealStream {
			sl, err := DecodeSeal(ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sl)
		}
	}
	return out
}

// startSealer runs a sealer until the test ends.
func startSealer(t testing.TB, sl *Sealer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sl.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("sealer Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitUntil polls cond; the deadline is a hang guard, not an assertion
// about speed.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func headCount(t testing.TB, s eventstore.Store) uint64 {
	t.Helper()
	h, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Commit // the embedded store numbers events 1, 2, ...
}

func TestCanonicalEncodingAndChain(t *testing.T) {
	ev := eventstore.RecordedEvent{
		StreamID: "ab",
		Revision: 258,
		ID:       uuid.MustParse("00010203-0405-0607-0809-0a0b0c0d0e0f"),
		Type:     "T.v1",
		Data:     []byte(`{}`),
		Metadata: nil,
		// Neither the position nor the recorded time is hashed.
		Position:   eventstore.Position{Commit: 7, Prepare: 7},
		RecordedAt: time.Now(),
	}
	want := []byte("ansinh.event.v1\x00")
	want = append(want, 2, 'a', 'b')
	want = append(want, 0, 0, 0, 0, 0, 0, 1, 2) // revision 258
	want = append(want, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
	want = append(want, 4, 'T', '.', 'v', '1')
	want = append(want, 2, '{', '}')
	want = append(want, 0)
	if got := AppendCanonical(nil, &ev); !bytes.Equal(got, want) {
		t.Fatalf("canonical encoding\n got % x\nwant % x", got, want)
	}

	var c Chain
	d := c.Fold(&ev)
	if d != sha256.Sum256(want) {
		t.Error("digest is not the SHA-256 of the canonical encoding")
	}
	h1 := sha256.Sum256(append(append([]byte("ansinh.chain.v1\x00"), make([]byte, 32)...), d[:]...))
	if c.Count != 1 || c.Hash != h1 {
		t.Errorf("H(1) = %s, want %x", c.Hash, h1)
	}
	ev.Position, ev.RecordedAt = eventstore.Position{Commit: 99, Prepare: 99}, time.Time{}
	if d2 := (&Chain{}).Fold(&ev); d2 != d {
		t.Error("the digest depends on the position or the recorded time")
	}
}

func TestSealerSealsEveryNEventsAndVerifyAgrees(t *testing.T) {
	store := openStore(t)
	appendLedger(t, store, 0, 1000, 9)
	key := newKey(t)
	sl, err := NewSealer(store, openDB(t), []byte("x/sealer/"), key, SealerOptions{Every: 100, PageEvents: 64})
	if err != nil {
		t.Fatal(err)
	}
	stop := startSealer(t, sl)
	// Hand-computed: seals after events 100, 200, ..., 1000 (ten seals,
	// appended as events 1001..1010); folding those ten leaves ten events
	// unsealed, fewer than 100, so no more seals.
	waitUntil(t, "the sealer folded its own ten seals", func() bool { return sl.Status().Count == 1010 })
	stop()
	got := seals(t, store)
	if len(got) != 10 {
		t.Fatalf("%d seals, want 10", len(got))
	}
	for i, s := range got {
		if s.Count != uint64(100*(i+1)) || s.PrevCount != uint64(100*i) || len(s.Digests) != 100*ShortDigestBytes {
			t.Errorf("seal %d: count %d prev %d, %d digest bytes", i, s.Count, s.PrevCount, len(s.Digests))
		}
	}
	rep, err := Verify(context.Background(), store, []ed25519.PublicKey{pub(key)}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Seals != 10 || rep.Events != 1010 || rep.SealedThrough != 1000 || rep.Unsealed != 10 {
		t.Errorf("report %+v", rep)
	}
}

func TestSealerIntervalSealsLedgerEventsButNotSealsAlone(t *testing.T) {
	store := openStore(t)
	key := newKey(t)
	var now atomic.Int64
	now.Store(time.Date(2024, 1, 18, 9, 0, 0, 0, time.UTC).UnixNano())
	tick := make(chan time.Time) // unbuffered: a send returns once the sealer took it
	opts := SealerOptions{Every: 10_000, Interval: time.Minute, tick: tick,
		now: func() time.Time { return time.Unix(0, now.Load()).UTC() }}
	sl, err := NewSealer(store, openDB(t), []byte("x/sealer/"), key, opts)
	if err != nil {
		t.Fatal(err)
	}
	startSealer(t, sl)
	// tickTwice returns once the first tick has been handled entirely.
	tickTwice := func() { tick <- time.Time{}; tick <- time.Time{} }

	appendLedger(t, store, 0, 5, 5)
	waitUntil(t, "5 events folded", func() bool { return sl.Status().Count == 5 })
	tickTwice() // never sealed: due at once
	waitUntil(t, "the seal folded", func() bool { return sl.Status().Count == 6 })
	now.Add(int64(time.Hour))
	tickTwice() // only the seal itself is unsealed: nothing to do
	if n := len(seals(t, store)); n != 1 {
		t.Fatalf("%d seals after an idle interval, want 1", n)
	}
	appendLedger(t, store, 5, 1, 1)
	waitUntil(t, "7 events folded", func() bool { return sl.Status().Count == 7 })
	now.Store(sl.Status().LastSealAt.Add(30 * time.Second).UnixNano())
	tickTwice() // half an interval since the last seal: not yet
	if n := len(seals(t, store)); n != 1 {
		t.Fatalf("%d seals before the interval passed, want 1", n)
	}
	now.Add(int64(30 * time.Second))
	tickTwice()
	waitUntil(t, "the second seal folded", func() bool { return sl.Status().Count == 8 })
	got := seals(t, store)
	if len(got) != 2 || got[0].Count != 5 || got[1].PrevCount != 5 || got[1].Count != 7 {
		t.Fatalf("seals %+v", got)
	}
	rep, err := Verify(context.Background(), store, []ed25519.PublicKey{pub(key)}, VerifyOptions{})
	if err != nil || !rep.OK() || rep.Seals != 2 {
		t.Errorf("verify: %v %+v", err, rep)
	}
}

// flakyAppend fails seal appends on demand: before writing (the store was
// down) or after writing (the reply was lost).
type flakyAppend struct {
	eventstore.Store
	failBefore, failAfter atomic.Int32
}

var errInjected = errors.New("injected failure")

func (f *flakyAppend) Append(ctx context.Context, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	if stream == SealStream && f.failBefore.Add(-1) >= 0 {
		return eventstore.AppendResult{}, errInjected
	}
	res, err := f.Store.Append(ctx, stream, exp, evs...)
	if err == nil && stream == SealStream && f.failAfter.Add(-1) >= 0 {
		return eventstore.AppendResult{}, errInjected
	}
	return res, err
}

func TestSealerRetriesAPendingSealWithoutDuplicating(t *testing.T) {
	base := openStore(t)
	store := &flakyAppend{Store: base}
	store.failBefore.Store(1) // the first seal: the store is down
	store.failAfter.Store(2)  // the next two: written, but the reply is lost
	db := openDB(t)
	key := newKey(t)
	appendLedger(t, base, 0, 250, 10)
	opts := SealerOptions{Every: 50, RetryDelay: time.Millisecond}
	sl, err := NewSealer(store, db, []byte("x/sealer/"), key, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := startSealer(t, sl)
	// Seals after 50, 100, ..., 250, folded as events 251..255.
	waitUntil(t, "five seals folded", func() bool { return sl.Status().Count == 255 })
	stop()

	// A restart with more events continues the chain where it was.
	appendLedger(t, base, 250, 100, 10)
	sl2, err := NewSealer(store, db, []byte("x/sealer/"), key, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop = startSealer(t, sl2)
	// Events 256..355 are new; the seals 251..255 count like any event, so
	// the next seals come after 300 and 350, folded as 356 and 357.
	waitUntil(t, "seven seals folded", func() bool { return sl2.Status().Count == 357 })
	stop()

	var counts []uint64
	for _, s := range seals(t, base) {
		counts = append(counts, s.Count)
	}
	if fmt.Sprint(counts) != "[50 100 150 200 250 300 350]" {
		t.Errorf("seal counts %v", counts)
	}
	rep, err := Verify(context.Background(), base, []ed25519.PublicKey{pub(key)}, VerifyOptions{})
	if err != nil || !rep.OK() || rep.Seals != 7 {
		t.Errorf("verify: %v %+v", err, rep)
	}
}

func TestTwoSealersOnOneLogNeverInterleave(t *testing.T) {
	store := openStore(t)
	keyA, keyB := newKey(t), newKey(t)
	opts := SealerOptions{Every: 40, PageEvents: 16, RetryDelay: time.Millisecond}
	a, err := NewSealer(store, openDB(t), []byte("x/sealer/"), keyA, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSealer(store, openDB(t), []byte("x/sealer/"), keyB, opts)
	if err != nil {
		t.Fatal(err)
	}
	startSealer(t, a)
	startSealer(t, b)
	appendLedger(t, store, 0, 600, 7)
	settled := func() bool {
		h := headCount(t, store)
		sa, sb := a.Status(), b.Status()
		return sa.Count == h && sb.Count == h && !sa.Pending && !sb.Pending && headCount(t, store) == h
	}
	waitUntil(t, "both sealers folded the whole log", settled)

	rep, err := Verify(context.Background(), store, []ed25519.PublicKey{pub(keyA), pub(keyB)}, VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify with both keys: %v %+v", err, rep)
	}
	if rep.SealedThrough < 600 || rep.Unsealed >= 40 {
		t.Errorf("sealed through %d, %d unsealed", rep.SealedThrough, rep.Unsealed)
	}
	// Only A's key: B's seals are not trusted.
	rep, _ = Verify(context.Background(), store, []ed25519.PublicKey{pub(keyA)}, VerifyOptions{})
	if byB := countSealsBy(t, store, KeyID(pub(keyB))); byB > 0 && rep.OK() {
		t.Errorf("%d seals by an untrusted key passed", byB)
	}
}

func countSealsBy(t *testing.T, s eventstore.Store, keyID string) int {
	n := 0
	for _, sl := range seals(t, s) {
		if sl.KeyID == keyID {
			n++
		}
	}
	return n
}

// tampered serves ReadAll from an edited copy of the log, the way a direct
// edit of the store's files would look: positions stay in order (they are
// the store's keys), contents move, change or disappear.
type tampered struct {
	eventstore.Store
	events []eventstore.RecordedEvent
}

func (s *tampered) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Position.Compare(after) > 0 })
	return s.events[i:min(len(s.events), i+limit)], nil
}

func TestVerifyFindsTamperingAtItsPosition(t *testing.T) {
	store := openStore(t)
	key := newKey(t)
	appendLedger(t, store, 0, 600, 7)
	sl, err := NewSealer(store, openDB(t), []byte("x/sealer/"), key, SealerOptions{Every: 100})
	if err != nil {
		t.Fatal(err)
	}
	stop := startSealer(t, sl)
	waitUntil(t, "six seals folded", func() bool { return sl.Status().Count == 606 })
	stop()
	orig := readAll(t, store) // events #1..#606; #601..#606 are the seals
	at := func(count int) eventstore.RecordedEvent { return orig[count-1] }
	edit := func(f func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent) *tampered {
		cp := make([]eventstore.RecordedEvent, len(orig))
		copy(cp, orig)
		return &tampered{Store: store, events: f(cp)}
	}
	withContent := func(ev, from eventstore.RecordedEvent) eventstore.RecordedEvent {
		from.Position, from.RecordedAt = ev.Position, ev.RecordedAt
		return from
	}

	cases := []struct {
		name      string
		log       eventstore.Store
		keys      []ed25519.PublicKey
		opts      VerifyOptions
		wantPos   eventstore.Position // of the first problem
		wantCount uint64
	}{
		{name: "untouched", log: store},
		{name: "data altered", log: edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			evs[249].Data = json.RawMessage(`{"n":999999}`)
			return evs
		}), wantPos: at(250).Position, wantCount: 250},
		{name: "metadata altered", log: edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			evs[249].Metadata = json.RawMessage(`{"actor":{"user_id":"someone else","role":"registrar"}}`)
			return evs
		}), wantPos: at(250).Position, wantCount: 250},
		{name: "event removed", log: edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			return append(evs[:249], evs[250:]...)
		}), wantPos: at(251).Position, wantCount: 250},
		{name: "two events swapped", log: edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			a, b := evs[249], evs[252]
			evs[249], evs[252] = withContent(a, b), withContent(b, a)
			return evs
		}), wantPos: at(250).Position, wantCount: 250},
		{name: "event inserted", log: edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			forged := evs[250]
			forged.ID = uuid.New()
			forged.Position.Prepare++ // between #251 and #252 in the store's order
			return append(evs[:251], append([]eventstore.RecordedEvent{forged}, evs[251:]...)...)
		}), wantPos: eventstore.Position{Commit: at(251).Position.Commit, Prepare: at(251).Position.Prepare + 1}, wantCount: 252},
		{name: "seal altered", log: edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			evs[602].Data = bytes.Replace(evs[602].Data, []byte(`"count":300`), []byte(`"count":299`), 1)
			return evs
		}), wantPos: at(603).Position, wantCount: 603},
		{name: "seal removed", log: edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			return append(evs[:601], evs[602:]...)
		}), wantPos: at(603).Position, wantCount: 602},
		{name: "tail cut after a seal the auditor saw", opts: VerifyOptions{ExpectSealedThrough: 600},
			log:     edit(func(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent { return evs[:605] }),
			wantPos: at(605).Position, wantCount: 605},
		{name: "untrusted key", keys: []ed25519.PublicKey{pub(newKey(t))}, log: store,
			wantPos: at(601).Position, wantCount: 601},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := tc.keys
			if keys == nil {
				keys = []ed25519.PublicKey{pub(key)}
			}
			rep, err := Verify(context.Background(), tc.log, keys, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantCount == 0 {
				if !rep.OK() || rep.Seals != 6 {
					t.Fatalf("untouched log: %+v", rep)
				}
				return
			}
			first := rep.First()
			if first == nil {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			if first.Position != tc.wantPos || first.Count != tc.wantCount {
				t.Errorf("first problem %v, want event #%d at %s\nall: %v", first, tc.wantCount, tc.wantPos, rep.Problems)
			}
		})
	}
}

func TestKeyFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Error("the key changed between starts")
	}
	st, err := os.Stat(filepath.Join(dir, PrivateKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key file: %v, mode %v", err, st.Mode())
	}
	b, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublicKey(b)
	if err != nil || !p.Equal(k1.Public()) {
		t.Errorf("exported public key: %v", err)
	}
}
