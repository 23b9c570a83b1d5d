package projections

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections/audit"
)

func TestStoredBeneficiaryRoundTrip(t *testing.T) {
	// The mirror types must carry every field of the domain's: when one of
	// these counts changes, add the new field to stored.go (and here).
	for typ, want := range map[reflect.Type]int{
		reflect.TypeOf(registry.Beneficiary{}):    13,
		reflect.TypeOf(registry.Exit{}):           5,
		reflect.TypeOf(registry.Proxy{}):          11,
		reflect.TypeOf(entitlement.Entitlement{}): 8,
		reflect.TypeOf(entitlement.Terms{}):       3,
		reflect.TypeOf(entitlement.Suspension{}):  3,
		reflect.TypeOf(entitlement.Catalogue{}):   2,
		reflect.TypeOf(entitlement.BaseLevel{}):   4,
	} {
		if typ.NumField() != want {
			t.Errorf("%s has %d fields, stored.go mirrors %d", typ, typ.NumField(), want)
		}
	}
	c := decimal.RequireFromString("2.5")
	amt := domain.VNDAmount(600_000)
	b := registry.Beneficiary{
		CitizenID: "001050000001", Registered: true, FullName: "Nguyễn Văn An", DateOfBirth: domain.MustDate("1950-05-01"),
		Sex: registry.Male, Address: registry.Address{Street: "12 Ngõ 5", DistrictCode: "004", DistrictName: "Quận Long Biên",
			WardCode: "00118", WardName: "Phường Ngọc Thụy", Catalogue: registry.AdminCatalogueVersion},
		Category: registry.NearPoor, HouseholdID: "HH-1",
		Exit: &registry.Exit{Cause: entitlement.EndedByMove, Date: domain.MustDate("2024-03-02"), LastPeriod: mar24, DocumentRef: "CT-1", Destination: "Hải Phòng"},
		BankAccount: &registry.BankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN VAN AN",
			Holder: registry.HolderProxy, ProxyID: "P1"},
		PaymentMethod: registry.BankTransfer,
		Proxies: []registry.Proxy{
			{ID: "P1", FullName: "Lê Thị Dung", CitizenID: "001168000005", Relationship: "con gái", Reason: registry.OtherReason,
				ReasonNote: "note", ValidFrom: domain.MustDate("2024-01-01"), ValidTo: domain.MustDate("2024-12-31"), DocumentRef: "UQ-1"},
			{ID: "P2", FullName: "Lê Văn Út", CitizenID: "001070000009", Relationship: "con trai", Reason: registry.IllnessOrImmobility,
				ValidFrom: domain.MustDate("2025-01-01"), ValidTo: domain.MustDate("2025-06-30"), DocumentRef: "UQ-2",
				RevokedFrom: domain.MustDate("2025-02-01"), RevokeReason: "moved"},
		},
		Entitlements: entitlement.Book{Entitlements: []entitlement.Entitlement{
			{ID: "E1", Program: monthly, Kind: entitlement.Monthly, Start: nov23, // open-ended: End is zero
				Terms:       []entitlement.Terms{{From: nov23, Coefficient: &c}},
				Suspensions: []entitlement.Suspension{{From: jan24, Until: feb24, Reason: "r1"}, {From: mar24, Reason: "open"}}},
			{ID: "E2", Program: tetGift, Kind: entitlement.Gift, Start: jan24, End: jan24, EndCause: entitlement.EndedByDecision,
				Terms: []entitlement.Terms{{From: jan24, Amount: &amt}}},
		}},
	}
	rec := regRecord{storeBeneficiary(b)}
	enc, err := rec.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back regRecord
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	if got := back.Domain(); !reflect.DeepEqual(got, b) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
	}
}

func TestPercent(t *testing.T) {
	cases := []struct {
		part, whole int
		want        string
	}{
		{256_429, 293_256, "87.44"}, // Hanoi, 18 January 2024
		{4, 4, "100.00"},            // Long Bien
		{1, 3, "33.33"},
		{2, 3, "66.67"}, // half away from zero
		{1, 8, "12.50"},
		{0, 5, "0.00"},
		{3, 0, ""}, // nothing to divide by: no figure
	}
	for _, c := range cases {
		if got := percent(c.part, c.whole); got != c.want {
			t.Errorf("percent(%d, %d) = %q, want %q", c.part, c.whole, got, c.want)
		}
	}
}

func TestMaskAccount(t *testing.T) {
	for in, want := range map[string]string{
		"0011001234567": "*********4567",
		"1234":          "**34",
		"12345":         "*2345",
		"":              "",
	} {
		if got := MaskAccount(in); got != want {
			t.Errorf("MaskAccount(%q) = %q, want %q", in, got, want)
		}
	}
}

// smallScenario registers people and pays them once, enough for the audit
// tests.
func smallScenario(t *testing.T, people int) (*scenario, []string) {
	s := newScenario(t)
	var ids []string
	for i := range people {
		cid := s.person(100+i, "Nguyễn Thị Hoa", registry.Female, 1940+i%30, longBien, ngocThuy, registry.SocialProtection)
		s.allowance(cid, jan24, "1.5")
		ids = append(ids, cid)
	}
	s.run("LB-AUDIT", []domain.Period{jan24}, monthly)
	s.sync()
	return s, ids
}

func TestVerifyFindsAReadModelThatDiffersFromAReplay(t *testing.T) {
	s, ids := smallScenario(t, 3)
	head := s.sync()
	waitUntilSealed(t, s.sealer, head)
	trusted := []ed25519.PublicKey{s.key.Public().(ed25519.PublicKey)}
	rep, err := s.set.Verify(s.ctx, s.store, s.codec, trusted, audit.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("before the damage: %+v %v", rep, err)
	}
	// Damage the live balances read model behind the runner's back.
	v := s.set.Runner().View()
	prefix := v.Reader(balancesName).prefix
	_ = v.Close()
	key := append(append([]byte(nil), prefix...), "b/"+ids[1]...)
	if err := s.set.db.pdb.Set(key, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	rep, err = s.set.Verify(s.ctx, s.store, s.codec, trusted, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !rep.Chain.OK() || !rep.TrialBalance.Balanced {
		t.Fatalf("after the damage: %+v", rep)
	}
	for _, c := range rep.Projections {
		wantMatch := c.Name != balancesName
		if c.Matches != wantMatch || (!wantMatch && !strings.Contains(c.Difference, `b/`+ids[1])) {
			t.Errorf("%s: matches %v, difference %q", c.Name, c.Matches, c.Difference)
		}
	}
}

// alteredLog serves ReadAll from a copy of the log with one event's data
// changed, as an edit of the store's files would.
type alteredLog struct {
	eventstore.Store
	events []eventstore.RecordedEvent
}

func (s *alteredLog) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].Position.Compare(after) > 0 })
	return s.events[i:min(len(s.events), i+limit)], nil
}

func TestVerifyFindsATamperedLog(t *testing.T) {
	s, _ := smallScenario(t, 3)
	head := s.sync()
	waitUntilSealed(t, s.sealer, head)
	// Wait for a seal that covers every ledger event (the sealer seals
	// every 50 events; append until one does).
	for i := 0; ; i++ {
		if s.sealer.Status().LastSeal >= head.Commit {
			break
		}
		if i > 100 {
			t.Fatal("no seal covers the ledger events")
		}
		appendEvents(t, s.store, []string{"filler"}, i*10, 10, 10)
		waitUntilSealed(t, s.sealer, s.sync())
	}
	all := allEvents(t, s.store)
	// Change the amount of the first PaymentIssued.
	victim := slices.IndexFunc(all, func(ev eventstore.RecordedEvent) bool { return ev.Type == "PaymentIssued.v1" })
	tampered := slices.Clone(all)
	tampered[victim].Data = []byte(strings.Replace(string(all[victim].Data), `"540000"`, `"5400000"`, 1))
	if string(tampered[victim].Data) == string(all[victim].Data) {
		t.Fatal("the test did not change the event")
	}
	log := &alteredLog{Store: s.store, events: tampered}
	rep, err := s.set.Verify(s.ctx, log, s.codec, []ed25519.PublicKey{s.key.Public().(ed25519.PublicKey)}, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := rep.Chain.First()
	if first == nil || first.Position != all[victim].Position {
		t.Fatalf("first problem %v, want the event at %s", first, all[victim].Position)
	}
	// The live read models, built from the true log, no longer match a
	// replay of the altered one: the books cannot even replay it, because
	// the altered entry does not balance.
	for _, c := range rep.Projections {
		switch c.Name {
		case booksName, balancesName:
			if c.Matches || !strings.Contains(c.Difference, "do not balance") {
				t.Errorf("%s: %+v", c.Name, c)
			}
		case payoutsName, districtsName:
			if c.Matches {
				t.Errorf("%s matches a replay of the altered log", c.Name)
			}
		}
	}
}

// A money event whose postings do not balance stops the read models that
// post it, reports the event, and does not hold back the others.
func TestUnbalancedEventStopsTheBooks(t *testing.T) {
	s, _ := smallScenario(t, 1)
	bad := disbursement.PaymentIssued{
		AttemptRef: disbursement.AttemptRef{Obligation: disbursement.ObligationKey{CitizenID: "001050000999", Program: monthly, Period: jan24},
			Attempt: 1, RunID: "X", PaymentID: "X-001050000999-b0000000"},
		Payee:   disbursement.Payee{CitizenID: "001050000999", Name: "X", Method: disbursement.MethodCash, District: longBien, Ward: ngocThuy},
		Amounts: disbursement.Amounts{Gross: vndOf(100), Net: vndOf(90)}, // 10 dong vanish
	}
	data, err := json.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.store.Append(s.ctx, bad.Obligation.Stream(), eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: bad.EventType(), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	err = s.set.WaitFor(s.ctx, res.Position)
	var f *Failure
	if !errors.As(err, &f) || !errors.Is(err, disbursement.ErrUnbalanced) || f.Position != res.Position {
		t.Fatalf("WaitFor: %v, want the unbalanced event at %s", err, res.Position)
	}
	// WaitFor answers at the first failure; the other read models finish
	// the same batch (and the other failure is recorded) before they commit.
	waitForProjection(t, s.set.Runner(), registryName, res.Position)
	lag, err := s.set.Lag(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lag.Failed)
	if !slices.Equal(lag.Failed, []string{balancesName, booksName}) {
		t.Errorf("failed: %v", lag.Failed)
	}
	for _, st := range lag.Projections {
		failed := st.Name == balancesName || st.Name == booksName
		if failed != (st.Failure != nil) || (!failed && st.Position.Compare(res.Position) < 0) || (failed && st.Position.Compare(res.Position) >= 0) {
			t.Errorf("%s: %+v", st.Name, st)
		}
	}
}

func TestRebuildOfAReadModelWhileCommandsRun(t *testing.T) {
	s := newScenario(t)
	// Caught up first: a registry that still holds nothing would be
	// rebuilt by the Run loop's catch-up, in its own generation.
	s.sync()
	var wg sync.WaitGroup
	wg.Add(1)
	var ids []string
	var mu sync.Mutex
	// Registrations go on during the rebuild.
	go func() {
		defer wg.Done()
		for i := range 40 {
			cid := registry.MakeCitizenID("001", registry.Male, 1950, 500+i)
			_, err := s.l.Register(s.ctx, registrar, registry.Register{CitizenID: cid, FullName: "Trần Văn Bảo",
				DateOfBirth: domain.MustDate("1950-05-01"), Sex: registry.Male,
				Address: registry.AddressInput{DistrictCode: longBien, WardCode: giangBien}, Category: registry.SocialProtection})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids = append(ids, cid)
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if err := s.set.Runner().Rebuild(ctx, registryName); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	head := s.sync()
	res, err := s.set.Search(s.ctx, SearchQuery{Text: "tran van bao", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := hitIDs(res.Items); !slices.Equal(got, sorted(ids...)) || res.Position.Compare(head) < 0 {
		t.Errorf("after the rebuild: %d found at %s, want %d at %s", len(got), res.Position, len(ids), head)
	}
	lag, _ := s.set.Lag(s.ctx)
	if st := lag.Projections[0]; st.Name != registryName || st.Generation != 2 {
		t.Errorf("registry: %+v", st)
	}
	waitUntilSealed(t, s.sealer, head)
	rep, err := s.set.Verify(s.ctx, s.store, s.codec, []ed25519.PublicKey{s.key.Public().(ed25519.PublicKey)}, audit.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Errorf("verify after the rebuild: %+v %v", rep, err)
	}
}

func TestBinaryValuesRoundTrip(t *testing.T) {
	// When a field is added to one of these, bincodec.go must write it.
	for typ, want := range map[reflect.Type]int{
		reflect.TypeOf(PaymentRow{}):                 16,
		reflect.TypeOf(PaymentPayee{}):               8,
		reflect.TypeOf(disbursement.Trace{}):         4,
		reflect.TypeOf(disbursement.ObligationKey{}): 4,
		reflect.TypeOf(obligationBalance{}):          7,
		reflect.TypeOf(obligationState{}):            6,
	} {
		if typ.NumField() != want {
			t.Errorf("%s has %d fields, bincodec.go writes %d", typ, typ.NumField(), want)
		}
	}
	rate := vndOf(360_000)
	at := time.Date(2024, 1, 20, 2, 30, 0, 123, time.UTC)
	key := disbursement.ObligationKey{CitizenID: "001050000001", Program: monthly, Period: feb24, TopUp: "CORR-1"}
	values := []interface {
		Value
		UnmarshalBinary([]byte) error
	}{
		&PaymentRow{Obligation: key, Attempt: 2, RunID: "R1", PaymentID: "R1-001050000001-b123456",
			Payee: PaymentPayee{CitizenID: "001168000005", Name: "Lê Thị Dung", Proxy: true, Method: disbursement.MethodBank,
				BankCode: "VCB", AccountMasked: "*********4567", District: "004", Ward: "00121"},
			Gross: vndOf(540_000), Net: vndOf(360_000), Offsets: []disbursement.Offset{{Correction: "C1", Amount: vndOf(180_000)}},
			Status: disbursement.StatusReturned, Reference: "FT1", Reason: "account_closed", Detail: "closed",
			IssuedAt: at, UpdatedAt: at.Add(time.Hour), AnsweredAt: at.Add(2 * time.Hour),
			Trace: disbursement.Trace{Entitlement: "E1", Rule: "rule", Rate: &rate, Decree: "Decree 20/2021/ND-CP"}},
		&PaymentRow{Obligation: key, Gross: vndOf(1), Net: vndOf(0)}, // zero times, no rate, no offsets
		&obligationBalance{Key: key, Attempt: 1, Status: disbursement.StatusSettled, Gross: vndOf(540_000), Net: vndOf(540_000), RunID: "R", PaymentID: "P"},
		&obligationState{District: "004", Period: jan24, Attempt: 3, Status: disbursement.StatusFailed, Gross: -5, Net: 7},
		&accounts{disbursement.BankDisbursed: vndOf(-1_860_000), disbursement.BeneficiaryReceivable: vndOf(0)},
	}
	for _, v := range values {
		enc, err := v.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		back := reflect.New(reflect.TypeOf(v).Elem()).Interface().(interface{ UnmarshalBinary([]byte) error })
		if err := back.UnmarshalBinary(enc); err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Errorf("%T round trip:\n got %+v\nwant %+v", v, back, v)
		}
		if err := back.UnmarshalBinary(enc[:len(enc)-1]); err == nil {
			t.Errorf("%T: a truncated value decoded", v)
		}
	}
	// An amount that is not whole dong is refused, never rounded.
	if _, err := (&obligationBalance{Gross: domain.Money{Amount: decimal.RequireFromString("0.5"), Currency: domain.VND}}).AppendBinary(nil); err == nil {
		t.Error("half a dong was encoded")
	}
}
