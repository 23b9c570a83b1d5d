package projections

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// TestDongStoredLikeMoney: state kept in dong is written byte for byte as
// the domain.Money it replaced, and what was written as Money reads back
// as dong: the stored layout of the read models did not change.
func TestDongStoredLikeMoney(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 540_000, -1_860_000, domain.MaxAmountDong, 999_999_999_999_999, -999_999_999_999_999} {
		m := domain.VNDAmount(n)
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(dong(n))
		if err != nil || string(got) != string(want) {
			t.Errorf("%d: dong writes %s, Money %s (%v)", n, got, want, err)
		}
		var back dong
		if err := json.Unmarshal(want, &back); err != nil || back != dong(n) {
			t.Errorf("%s read as dong: %d, %v", want, back, err)
		}
		// The same through the values the read models store.
		mv, _ := (&moneyValue{m}).AppendBinary(nil)
		dv, _ := (&dongValue{dong(n)}).AppendBinary(nil)
		if string(mv) != string(dv) {
			t.Errorf("%d: books value %s, was %s", n, dv, mv)
		}
		pt := newPeriodTotals()
		pt.Paid = StatusTotal{Lines: 3, Gross: m, Net: m.Neg()}
		pv, _ := pt.AppendBinary(nil)
		var counts periodTotals
		if err := counts.UnmarshalBinary(pv); err != nil {
			t.Fatal(err)
		}
		if cv, _ := counts.AppendBinary(nil); string(cv) != string(pv) {
			t.Errorf("%d: district totals %s, were %s", n, cv, pv)
		}
		// obligationState's amounts are written as obligationBalance's.
		os, _ := (&obligationState{Gross: dong(n), Net: dong(n)}).AppendBinary(nil)
		old := binWriter{b: []byte{binFormatV1}}
		old.str("")
		old.period(domain.Period{})
		old.uvarint(0)
		old.str("")
		old.money(m)
		old.money(m)
		if string(os) != string(old.b) {
			t.Errorf("%d: obligation state %x, was %x", n, os, old.b)
		}
	}
	// A run's summary, its totals by status kept in dong, is stored as the
	// PayoutRun it was.
	run := PayoutRun{RunID: "R1", Status: disbursement.RunReleased, OpenedBy: "thu", Gross: domain.VNDAmount(1_080_000), Net: domain.VNDAmount(1_080_000),
		ByStatus: map[disbursement.Status]StatusTotal{
			disbursement.StatusSettled: {Lines: 1, Gross: domain.VNDAmount(540_000), Net: domain.VNDAmount(540_000)},
			disbursement.StatusFailed:  {Lines: 1, Gross: domain.VNDAmount(540_000), Net: domain.VNDAmount(360_000)},
		}}
	stored, _ := run.AppendBinary(nil)
	var state runState
	if err := state.UnmarshalBinary(stored); err != nil {
		t.Fatal(err)
	}
	if again, _ := state.AppendBinary(nil); string(again) != string(stored) {
		t.Errorf("run summary written as\n%s\nwas\n%s", again, stored)
	}
	// Anything that is not whole dong within range is refused.
	for _, s := range []string{
		`{"amount":"0.5","currency":"VND"}`, `{"amount":"1","currency":"USD"}`, `{"amount":"x","currency":"VND"}`,
	} {
		var d dong
		if err := json.Unmarshal([]byte(s), &d); err == nil {
			t.Errorf("%s read as %d dong", s, d)
		}
	}
}

func TestDongOfAndPlus(t *testing.T) {
	for _, tc := range []struct {
		m    domain.Money
		want dong
		ok   bool
	}{
		{domain.VNDAmount(540_000), 540_000, true},
		{domain.VNDAmount(-7), -7, true},
		{domain.Money{Amount: decimal.RequireFromString("5.00"), Currency: domain.VND}, 5, true},
		{domain.Money{Amount: decimal.New(5, 3), Currency: domain.VND}, 5000, true},
		{domain.Money{Amount: decimal.RequireFromString("0.5"), Currency: domain.VND}, 0, false},
		{domain.Money{Amount: decimal.NewFromInt(1), Currency: "USD"}, 0, false},
		{domain.Money{Amount: decimal.New(1, 19), Currency: domain.VND}, 0, false},
		{domain.Money{Amount: decimal.NewFromInt(math.MaxInt64), Currency: domain.VND}, 0, false},
	} {
		got, err := dongOf(tc.m)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("dongOf(%s) = %d, %v", tc.m, got, err)
		}
	}
	if s, err := dong(maxDongSum - 1).plus(1); err != nil || s != maxDongSum {
		t.Errorf("up to the bound: %d, %v", s, err)
	}
	if _, err := dong(maxDongSum).plus(1); err == nil {
		t.Error("past the bound was added")
	}
	if _, err := dong(-maxDongSum).plus(-1); err == nil {
		t.Error("past the lower bound was added")
	}
	if _, err := dong(math.MaxInt64).plus(math.MaxInt64); err == nil {
		t.Error("an overflow was added")
	}
}

// A posting of half a dong stops the books and the balances rather than
// being rounded.
func TestReadModelsRefuseFractionalAmount(t *testing.T) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := &Event{data: disbursement.RecoveryRaised{CitizenID: "001150000001", Program: "P", Correction: "C1",
		Amount: domain.Money{Amount: decimal.RequireFromString("0.5"), Currency: domain.VND}}}
	ev.derive()
	if err := (booksProjection{}).Apply(newTx(db.pdb, []byte("books/1/")), ev); err == nil {
		t.Error("half a dong was booked")
	}
	if err := (balancesProjection{}).Apply(newTx(db.pdb, []byte("balances/1/")), ev); err == nil {
		t.Error("half a dong was added to a balance")
	}
}

// TestAccountSumsStoredAsAccounts: the balances' per-person account sums,
// kept in dong while applying, are stored as the accounts the balance
// query reads, and read back from them.
func TestAccountSumsStoredAsAccounts(t *testing.T) {
	names := disbursement.Accounts
	for seed := range 200 {
		acc := accounts{}
		var sums accountSums
		for i := range seed % 9 {
			a := names[(seed*7+i*3)%len(names)]
			n := int64((seed+1)*(i+1)*1000) - 20_000
			acc[a] = add(acc[a], domain.VNDAmount(n))
			if err := sums.add(a, dong(n)); err != nil {
				t.Fatal(err)
			}
		}
		want, err := acc.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sums.AppendBinary(nil)
		if err != nil || string(got) != string(want) {
			t.Fatalf("seed %d: accountSums wrote %x, accounts %x (%v)", seed, got, want, err)
		}
		var back accountSums
		if err := back.UnmarshalBinary(want); err != nil {
			t.Fatal(err)
		}
		if again, _ := back.AppendBinary(nil); string(again) != string(want) {
			t.Fatalf("seed %d: read back and written as %x, was %x", seed, again, want)
		}
	}
	// Out of order (not something accounts writes) is corrupt.
	w := binWriter{b: []byte{binFormatV1}}
	w.uvarint(2)
	w.str("b")
	w.varint(1)
	w.str("a")
	w.varint(1)
	var back accountSums
	if err := back.UnmarshalBinary(w.b); err == nil {
		t.Error("unsorted accounts were read")
	}
}

// TestApplyKeepsKeyBuffersOnTheStack: the read models build keys in stack
// buffers (joinKey) and pass them to Load and Put, which copy what they
// keep; if anything on that path let the key escape, every call would
// allocate its buffer (160 bytes) on the heap, as a change once did for
// millions of events a rebuild. The books applying a posting to accounts
// already in the Tx's cache allocate nothing at all.
func TestApplyKeepsKeyBuffersOnTheStack(t *testing.T) {
	db := openMemDB(t)
	ev := &Event{data: disbursement.RecoveryRaised{CitizenID: "001150000001", Program: "P", Correction: "C1",
		Amount: domain.VNDAmount(150_000)}}
	ev.derive()
	tx := newTx(db.pdb, []byte("books/1/"))
	tx.keep = func(string) bool { return false } // the Keeper path too
	if err := (booksProjection{}).Apply(tx, ev); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := (booksProjection{}).Apply(tx, ev); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("books.Apply allocates %v times a posting already cached, want 0", n)
	}
}

// TestAccountNamesSharedWhenRead: account sums read back from disk share
// the names of the known accounts rather than allocating each, and keep an
// unknown one as written.
func TestAccountNamesSharedWhenRead(t *testing.T) {
	sums := accountSums{}
	for _, a := range append(slices.Clone(disbursement.Accounts), "some_future_account") {
		if err := sums.add(a, 1000); err != nil {
			t.Fatal(err)
		}
	}
	b, err := sums.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back accountSums
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, sums) {
		t.Fatalf("read back %v, want %v", back, sums)
	}
	var acc accounts
	if err := acc.UnmarshalBinary(b); err != nil || len(acc) != len(sums) || acc["some_future_account"].IsZero() {
		t.Fatalf("as accounts: %v, %v", acc, err)
	}
	// One allocation: the slice. None per known name; one for the unknown.
	if n := testing.AllocsPerRun(50, func() { _ = back.UnmarshalBinary(b) }); n != 2 {
		t.Errorf("UnmarshalBinary allocates %v times, want 2 (the slice and the unknown name)", n)
	}
}
