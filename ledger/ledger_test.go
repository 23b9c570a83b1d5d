package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
)

func TestRegisterRecordsEventWithMetadata(t *testing.T) {
	l, store := newLedger(t)
	req := registrar
	req.Reason = "new applicant at the ward office"
	req.CorrelationID = "req-42"
	res := must(t)(l.Register(ctx, req, registerAn()))
	if res.Stream != "beneficiary-"+anID || res.Revision != 0 || len(res.Events) != 1 || res.Replayed {
		t.Fatalf("result %+v", res)
	}
	if res.Position != head(t, store) {
		t.Errorf("position %v, head %v", res.Position, head(t, store))
	}
	recs, err := store.ReadStream(ctx, res.Stream, eventstore.ReadStreamOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Type != "BeneficiaryRegistered.v2" || recs[0].ID != res.Events[0].ID {
		t.Fatalf("recorded %+v", recs)
	}
	var m domain.Metadata
	if err := json.Unmarshal(recs[0].Metadata, &m); err != nil {
		t.Fatal(err)
	}
	if m.Actor != registrar.Actor || !m.RecordedAt.Equal(now) || m.SchemaVersion != 2 || m.Reason != req.Reason ||
		m.CorrelationID != "req-42" || m.CommandID != "" {
		t.Errorf("metadata %+v", m)
	}
	ld, err := l.LoadBeneficiary(ctx, anID)
	if err != nil {
		t.Fatal(err)
	}
	if ld.State.FullName != "Nguyễn Thị An" || ld.Revision != 0 || ld.Position != res.Position {
		t.Errorf("loaded %+v", ld)
	}
}

func TestSecondRegistrationOfACitizenIDFails(t *testing.T) {
	l, store := seeded(t)
	before := head(t, store)
	other := registerAn()
	other.FullName = "Nguyễn Thị Ánh"
	_, err := l.Register(ctx, registrar, other)
	wantRule(t, err, domain.Conflict, "citizen_id_taken")
	if head(t, store) != before {
		t.Error("a rejected registration appended")
	}
}

// TestRejectedCommandsAppendNothing sends commands that break rules, and
// checks the log did not move.
func TestRejectedCommandsAppendNothing(t *testing.T) {
	l, store := seeded(t)
	auditor := Request{Actor: domain.Actor{UserID: "kiem.toan", Role: domain.RoleAuditor}}
	unknown := registry.MakeCitizenID("001", registry.Male, 1950, 1)
	cases := []struct {
		name string
		run  func() (Result, error)
		kind domain.Kind
		code string
	}{
		{"invalid district", func() (Result, error) {
			c := registerAn()
			c.CitizenID, c.Sex, c.Address.DistrictCode = registry.MakeCitizenID("001", registry.Female, 1945, 2), registry.Female, "999"
			return l.Register(ctx, registrar, c)
		}, domain.Invalid, "unknown_district"},
		{"unknown beneficiary", func() (Result, error) {
			return l.Beneficiary(ctx, registrar, unknown, registry.ChoosePaymentMethod{Method: registry.Cash})
		}, domain.NotFound, "beneficiary_not_found"},
		{"bad citizen ID in the path", func() (Result, error) {
			return l.Beneficiary(ctx, registrar, "../etc", registry.ChoosePaymentMethod{Method: registry.Cash})
		}, domain.Invalid, "invalid_citizen_id"},
		{"auditor registers", func() (Result, error) { return l.Register(ctx, auditor, registerAn()) }, domain.Forbidden, "role_not_allowed"},
		{"registrar changes a rate", func() (Result, error) {
			return l.ChangeCatalogue(ctx, registrar, entitlement.SetBaseLevelRate{Code: entitlement.SocialAssistanceBase, EffectiveFrom: per("2026-01"), Amount: domain.VNDAmount(1), DecreeRef: "x"})
		}, domain.Forbidden, "role_not_allowed"},
		{"no user", func() (Result, error) { return l.Register(ctx, Request{}, registerAn()) }, domain.Forbidden, "unauthenticated"},
		{"bad command ID", func() (Result, error) {
			r := registrar
			r.CommandID = "not allowed/slash"
			return l.Register(ctx, r, registerAn())
		}, domain.Invalid, "invalid_id"},
		{"grant of an unknown program", func() (Result, error) {
			return l.Entitlement(ctx, registrar, anID, entitlement.Grant{Program: "NOPE", Start: per("2024-01")})
		}, domain.NotFound, "program_not_found"},
		{"grant above the cap", func() (Result, error) {
			return l.Entitlement(ctx, registrar, anID, entitlement.Grant{Program: entitlement.SocialMonthly, Start: per("2024-01"), Coefficient: coef("10.5")})
		}, domain.Invalid, "invalid_coefficient"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := head(t, store)
			res, err := tc.run()
			wantRule(t, err, tc.kind, tc.code)
			if len(res.Events) != 0 || head(t, store) != before {
				t.Fatalf("rejected command appended: %+v", res)
			}
		})
	}
	ld, err := l.LoadBeneficiary(ctx, anID)
	if err != nil || ld.Revision != 0 {
		t.Errorf("An's stream moved: %+v %v", ld.Revision, err)
	}
}

func TestCommandIDMakesRetriesIdempotent(t *testing.T) {
	l, store := seeded(t)
	req := registrar
	req.CommandID = "grant-7f3a"
	grant := entitlement.Grant{Program: entitlement.SocialMonthly, Start: per("2024-01"), Coefficient: coef("1.5")}
	first := must(t)(l.Entitlement(ctx, req, anID, grant))
	h := head(t, store)

	again := must(t)(l.Entitlement(ctx, req, anID, grant))
	if !again.Replayed || again.Revision != first.Revision || again.Position != first.Position ||
		len(again.Events) != 1 || again.Events[0].ID != first.Events[0].ID || again.Events[0].Revision != first.Events[0].Revision {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	if head(t, store) != h {
		t.Error("a replay appended")
	}
	// Other commands in between do not hide the first result.
	must(t)(l.Beneficiary(ctx, registrar, anID, registry.AuthorizeProxy{
		FullName: "Trần Văn Bình", CitizenID: registry.MakeCitizenID("001", registry.Male, 1970, 7), Relationship: "con",
		Reason: registry.IllnessOrImmobility, ValidFrom: date("2024-06-01"), ValidTo: date("2025-05-31"), DocumentRef: "UQ-1",
	}))
	if r := must(t)(l.Entitlement(ctx, req, anID, grant)); !r.Replayed || r.Revision != first.Revision {
		t.Errorf("replay after other writes %+v", r)
	}
	// The same ID with other content is refused.
	other := grant
	other.Coefficient = coef("2")
	_, err := l.Entitlement(ctx, req, anID, other)
	wantRule(t, err, domain.Conflict, "command_id_reused")

	// The metadata keeps the command ID and hash.
	recs, _ := store.ReadStream(ctx, first.Stream, eventstore.ReadStreamOptions{From: uint64(first.Revision), Limit: 1})
	var m domain.Metadata
	json.Unmarshal(recs[0].Metadata, &m)
	if m.CommandID != "grant-7f3a" || m.CommandHash == "" || m.CausationID != "grant-7f3a" {
		t.Errorf("metadata %+v", m)
	}
}

func TestExpectedRevision(t *testing.T) {
	l, store := seeded(t)
	rev := uint64(0)
	req := registrar
	req.ExpectedRevision = &rev
	must(t)(l.Beneficiary(ctx, req, anID, registry.ChoosePaymentMethod{Method: registry.Cash})) // no-op, allowed
	res := must(t)(l.Beneficiary(ctx, req, anID, registry.LinkBankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN THI AN"}))
	if res.Revision != 1 {
		t.Fatalf("revision %d", res.Revision)
	}
	before := head(t, store)
	_, err := l.Beneficiary(ctx, req, anID, registry.ChoosePaymentMethod{Method: registry.BankTransfer})
	var mismatch *RevisionMismatchError
	if !errors.As(err, &mismatch) || !errors.Is(err, ErrRevisionMismatch) || mismatch.Expected != 0 || mismatch.Actual != 1 {
		t.Fatalf("want a revision mismatch, got %v", err)
	}
	if head(t, store) != before {
		t.Error("a mismatched command appended")
	}
}

func TestNoOpReturnsCurrentRevision(t *testing.T) {
	l, store := seeded(t)
	before := head(t, store)
	res := must(t)(l.Beneficiary(ctx, registrar, anID, registry.ChoosePaymentMethod{Method: registry.Cash}))
	if len(res.Events) != 0 || res.Revision != 0 || head(t, store) != before {
		t.Errorf("no-op %+v", res)
	}
}

func TestSeedCatalogueIsIdempotent(t *testing.T) {
	l, store := newLedger(t)
	n, err := l.SeedCatalogue(ctx)
	if err != nil || n != len(entitlement.StarterCatalogue()) {
		t.Fatalf("first seed: %d %v", n, err)
	}
	h := head(t, store)
	if n, err := l.SeedCatalogue(ctx); err != nil || n != 0 || head(t, store) != h {
		t.Fatalf("second seed: %d %v", n, err)
	}
	cat, rev, err := l.Catalogue(ctx)
	if err != nil || rev != int64(n0(entitlement.StarterCatalogue()))-1 || len(cat.Programs) != 5 {
		t.Fatalf("catalogue rev %d, %d programs, %v", rev, len(cat.Programs), err)
	}
	// A rate change through the ledger is seen by the cached catalogue.
	must(t)(l.ChangeCatalogue(ctx, admin, entitlement.SetBaseLevelRate{
		Code: entitlement.SocialAssistanceBase, EffectiveFrom: per("2026-01"), Amount: domain.VNDAmount(600_000), DecreeRef: "Resolution 9/2025/NQ-HĐND"}))
	cat, _, _ = l.Catalogue(ctx)
	if r, _ := cat.BaseLevels[entitlement.SocialAssistanceBase].RateAt(per("2026-02")); !r.Amount.Equal(domain.VNDAmount(600_000)) {
		t.Errorf("new rate not seen: %+v", r)
	}
	// A second ledger over the same store reads the same catalogue.
	cat2, _, err := New(store, l.cfg).Catalogue(ctx)
	if err != nil || len(cat2.BaseLevels[entitlement.SocialAssistanceBase].Rates) != 3 {
		t.Errorf("fresh ledger: %+v %v", cat2.BaseLevels, err)
	}
}

func n0[T any](s []T) int { return len(s) }

func TestEntitlementsAndOwedThroughTheLedger(t *testing.T) {
	l, _ := seeded(t)
	must(t)(l.Entitlement(ctx, registrar, anID, entitlement.Grant{Program: entitlement.SocialMonthly, Start: per("2024-05"), Coefficient: coef("2.5")}))
	must(t)(l.Entitlement(ctx, registrar, anID, entitlement.Grant{Program: entitlement.PresidentTetGift, Start: per("2024-01"), Amount: ptr(domain.VNDAmount(300_000))}))
	// Eligible for the higher tier too: the first gift is raised, not doubled.
	res := must(t)(l.Entitlement(ctx, registrar, anID, entitlement.Grant{Program: entitlement.PresidentTetGift, Start: per("2024-01"), Amount: ptr(domain.VNDAmount(600_000))}))
	if res.Events[0].Type != "EntitlementAdjusted.v1" {
		t.Errorf("higher tier: %s", res.Events[0].Type)
	}
	lines, err := l.OwedThrough(ctx, anID, per("2024-07"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ln := range lines {
		got = append(got, fmt.Sprintf("%s %s %s %s", ln.Period, ln.EntitlementID, ln.Amount.Amount, ln.Trace.BaseDecreeRef))
	}
	want := []string{
		"2024-01 E2 600000 ",
		"2024-05 E1 900000 Decree 20/2021/ND-CP",
		"2024-06 E1 900000 Decree 20/2021/ND-CP",
		"2024-07 E1 1250000 Decree 76/2024/ND-CP",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("owed\n got %q\nwant %q", got, want)
	}
	// Death in July ends E1: nothing from August.
	must(t)(l.Beneficiary(ctx, registrar, anID, registry.RecordDeath{DateOfDeath: date("2024-06-10"), DocumentRef: "GCT-99"}))
	if in, err := l.Owed(ctx, anID, per("2024-07")); err != nil || len(in) != 0 {
		t.Errorf("owed after death: %+v %v", in, err)
	}
	if in, err := l.Owed(ctx, anID, per("2024-06")); err != nil || len(in) != 1 {
		t.Errorf("owed in the month of death: %+v %v", in, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUpcastOnRead(t *testing.T) {
	l, store := newLedger(t)
	id := registry.MakeCitizenID("001", registry.Male, 1940, 5)
	v1 := fmt.Sprintf(`{"citizen_id":%q,"full_name":"Lê Văn Cường","date_of_birth":"1940-01-01","sex":"male","district_code":"004","ward_code":"%s","category":"meritorious"}`,
		id, registry.HanoiAdminUnits().Districts[3].Wards[0].Code)
	_, err := store.Append(ctx, registry.Stream(id), eventstore.NoStream(), eventstore.EventData{
		ID: eventID("x", "y", 0), Type: "BeneficiaryRegistered.v1", Data: []byte(v1), Metadata: []byte(`{"schema_version":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	ld, err := l.LoadBeneficiary(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a := ld.State.Address; a.Catalogue != registry.AdminCatalogueVersion || a.DistrictName != "Quận Long Biên" || a.WardName == "" {
		t.Errorf("upcast address %+v", a)
	}
	// And the upcast state takes new commands.
	must(t)(l.Beneficiary(ctx, registrar, id, registry.ChoosePaymentMethod{Method: registry.Cash}))
}

// TestConcurrentCommandsOnOneBeneficiary has clerks correct the same record
// at once. Each conflict means another clerk's command landed, so with as
// many attempts as clerks every command lands exactly once.
func TestConcurrentCommandsOnOneBeneficiary(t *testing.T) {
	const clerks = 8
	l, store := seeded(t)
	l.cfg.MaxAttempts = clerks
	errs := runClerks(l, clerks, func(i int) (Result, error) {
		street := fmt.Sprintf("số %d phố Quang Trung", i+1)
		return l.Beneficiary(ctx, registrar, anID, registry.CorrectDetails{
			Address: &registry.AddressInput{Street: street, DistrictCode: "268", WardCode: "09556"}, Reason: "house number"})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("clerk %d: %v", i, err)
		}
	}
	recs, err := store.ReadStream(ctx, registry.Stream(anID), eventstore.ReadStreamOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+clerks {
		t.Fatalf("%d events, want %d", len(recs), 1+clerks)
	}
	streets := map[string]bool{}
	for _, r := range recs[1:] {
		var e registry.BeneficiaryDetailsCorrected
		json.Unmarshal(r.Data, &e)
		streets[e.Address.Street] = true
	}
	if len(streets) != clerks {
		t.Errorf("each correction once, got %v", streets)
	}
}

// TestConcurrentGrantsKeepOneActive has clerks grant the same program at
// once: the rule holds across the race, exactly one grant lands, and the
// others are told why.
func TestConcurrentGrantsKeepOneActive(t *testing.T) {
	const clerks = 6
	l, _ := seeded(t)
	l.cfg.MaxAttempts = 2 // bounded: a clerk may also give up on conflicts
	errs := runClerks(l, clerks, func(i int) (Result, error) {
		return l.Entitlement(ctx, registrar, anID, entitlement.Grant{Program: entitlement.SocialMonthly, Start: per("2024-01").AddMonths(i), Coefficient: coef("1")})
	})
	ok := 0
	for _, err := range errs {
		switch re, isRule := domain.AsRuleError(err); {
		case err == nil:
			ok++
		case isRule && re.Code == "overlapping_entitlement", errors.Is(err, ErrTooManyConflicts):
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	ld, err := l.LoadBeneficiary(ctx, anID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != 1 || len(ld.State.Entitlements.Entitlements) != 1 {
		t.Fatalf("%d grants landed, %d recorded; want 1", ok, len(ld.State.Entitlements.Entitlements))
	}
}

func runClerks(l *Ledger, n int, f func(i int) (Result, error)) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// TestResultCarriesTheStateAfterTheCommand: handlers answer from
// Result.State instead of reading the stream again, so it must be exactly
// what a fresh load gives, at the revision it claims: after an append, a
// no-op, and a replayed command (then: the state as it is now).
func TestResultCarriesTheStateAfterTheCommand(t *testing.T) {
	l, _ := seeded(t)
	check := func(what string, res Result) {
		t.Helper()
		got, ok := res.State.(registry.Beneficiary)
		if !ok {
			t.Fatalf("%s: state %T", what, res.State)
		}
		ld, err := l.LoadBeneficiary(ctx, anID)
		if err != nil {
			t.Fatal(err)
		}
		if res.StateRevision != ld.Revision {
			t.Errorf("%s: state revision %d, stream at %d", what, res.StateRevision, ld.Revision)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(ld.State)
		if string(a) != string(b) {
			t.Errorf("%s: result state\n%s\nfresh load\n%s", what, a, b)
		}
	}
	req := registrar
	req.CommandID = "proxy-1"
	proxy := registry.AuthorizeProxy{
		FullName: "Trần Văn Bình", CitizenID: registry.MakeCitizenID("001", registry.Male, 1970, 7), Relationship: "con",
		Reason: registry.IllnessOrImmobility, ValidFrom: date("2024-06-01"), ValidTo: date("2025-05-31"), DocumentRef: "UQ-1",
	}
	res := must(t)(l.Beneficiary(ctx, req, anID, proxy))
	if len(res.State.(registry.Beneficiary).Proxies) != 1 {
		t.Fatalf("proxy not in the result's state: %+v", res.State)
	}
	check("append", res)
	grant := entitlement.Grant{Program: entitlement.SocialMonthly, Start: per("2024-01"), Coefficient: coef("1.5")}
	res = must(t)(l.Entitlement(ctx, registrar, anID, grant))
	if len(res.State.(registry.Beneficiary).Entitlements.Entitlements) != 1 {
		t.Fatalf("grant not in the result's state: %+v", res.State)
	}
	check("entitlement", res)
	again := must(t)(l.Beneficiary(ctx, req, anID, proxy))
	if !again.Replayed || again.Revision == again.StateRevision {
		t.Fatalf("replay %+v: want the first run's revision and the current state's", again)
	}
	check("replay", again)
	noop := must(t)(l.Beneficiary(ctx, registrar, anID, registry.ChoosePaymentMethod{Method: registry.Cash}))
	if len(noop.Events) != 0 {
		t.Fatalf("choosing cash, the method a new record has, appended %d events", len(noop.Events))
	}
	check("no-op", noop)
}
