package ledger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// sampleEvents has one example of every registry and entitlement event
// type; the test below fails when a type is added without one.
func sampleEvents() []domain.Event {
	vnd := domain.VNDAmount
	m := func(n int64) *domain.Money { x := vnd(n); return &x }
	s := func(v string) *string { return &v }
	addr := registry.Address{Street: "12 ngõ 5 Hà Cầu", DistrictCode: "268", DistrictName: "Quận Hà Đông", WardCode: "09556", WardName: "Phường Hà Cầu", Catalogue: registry.AdminCatalogueVersion}
	acct := registry.BankAccount{BankCode: "VBA", AccountNumber: "1500205123456", HolderName: "TRAN VAN BINH", Holder: registry.HolderProxy, ProxyID: "P1"}
	return []domain.Event{
		registry.BeneficiaryRegistered{CitizenID: anID, FullName: "Nguyễn Thị An", DateOfBirth: date("1945-03-02"), Sex: registry.Female, Address: addr, Category: registry.NearPoor, HouseholdID: "HN-268-0042"},
		registry.BeneficiaryDetailsCorrected{CitizenID: anID, FullName: s("Nguyễn Thị Ân"), HouseholdID: s(""), Reason: "typo in the paper form"},
		registry.BeneficiaryDied{CitizenID: anID, DateOfDeath: date("2024-06-10"), LastPeriod: per("2024-06"), DocumentRef: "GCT-99"},
		registry.BeneficiaryMovedAway{CitizenID: anID, MovedOn: date("2024-02-10"), LastPeriod: per("2024-02"), Destination: "Thành phố Hải Phòng"},
		registry.BankAccountLinked{CitizenID: anID, BankAccount: acct},
		registry.BankAccountReplaced{CitizenID: anID, BankAccount: registry.BankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN THI AN", Holder: registry.HolderBeneficiary}, Reason: "VBA account closed"},
		registry.BankAccountUnlinked{CitizenID: anID, Reason: "account closed"},
		registry.PaymentMethodChosen{CitizenID: anID, Method: registry.BankTransfer},
		registry.ProxyAuthorized{CitizenID: anID, ProxyID: "P1", FullName: "Trần Văn Bình", ProxyCitizenID: "001070000777", Relationship: "con trai", Reason: registry.IllnessOrImmobility, ValidFrom: date("2024-01-01"), ValidTo: date("2024-12-31"), DocumentRef: "UQ-2024/015"},
		registry.ProxyRevoked{CitizenID: anID, ProxyID: "P1", RevokedFrom: date("2024-06-15"), Reason: "the son moved abroad"},
		entitlement.ProgramDefined{Program: entitlement.Program{Code: entitlement.PresidentTetGift, Name: "Quà Tết của Chủ tịch nước", Kind: entitlement.Gift, Rule: entitlement.AmountRule{Kind: entitlement.Fixed, Tiers: []domain.Money{vnd(600_000), vnd(300_000)}}}},
		entitlement.BaseLevelDefined{Code: entitlement.SocialAssistanceBase, Name: "Mức chuẩn trợ giúp xã hội"},
		entitlement.BaseLevelRateSet{Code: entitlement.SocialAssistanceBase, Rate: entitlement.Rate{From: per("2024-07"), Amount: vnd(500_000), DecreeRef: "Decree 76/2024/ND-CP"}},
		entitlement.EntitlementGranted{CitizenID: anID, EntitlementID: "E1", Program: entitlement.SocialMonthly, Kind: entitlement.Monthly, Start: per("2024-05"), Coefficient: coef("2.5"), Note: "elderly, severe disability"},
		entitlement.EntitlementAdjusted{CitizenID: anID, EntitlementID: "E2", From: per("2024-01"), Amount: m(600_000), Reason: "eligible for the higher tier"},
		entitlement.EntitlementSuspended{CitizenID: anID, EntitlementID: "E1", From: per("2024-08"), Reason: "hospitalised, cannot sign"},
		entitlement.EntitlementResumed{CitizenID: anID, EntitlementID: "E1", From: per("2024-10"), Reason: "back home"},
		entitlement.EntitlementEnded{CitizenID: anID, EntitlementID: "E1", LastPeriod: per("2024-06"), Cause: entitlement.EndedByDeath, Reason: "the beneficiary died in 2024-06"},
	}
}

func TestCodecRoundTripsEveryEvent(t *testing.T) {
	c := NewCodec()
	covered := map[string]bool{}
	for _, ev := range sampleEvents() {
		typ, data, err := c.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		covered[typ] = true
		back, err := c.Decode(typ, data)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if reflect.TypeOf(back) != reflect.TypeOf(ev) {
			t.Fatalf("%s decoded to %T", typ, back)
		}
		_, again, _ := c.Encode(back)
		if !bytes.Equal(data, again) {
			t.Errorf("%s changed in a round trip:\n%s\n%s", typ, data, again)
		}
		// Evolving with the decoded event gives the same state as with the
		// original: the wire form loses nothing the state needs.
		b1, b2 := registry.Beneficiary{}.Evolve(ev), registry.Beneficiary{}.Evolve(back)
		c1, c2 := entitlement.Catalogue{}.Evolve(ev), entitlement.Catalogue{}.Evolve(back)
		j1, _ := json.Marshal([]any{b1, c1})
		j2, _ := json.Marshal([]any{b2, c2})
		if !bytes.Equal(j1, j2) {
			t.Errorf("%s: states differ after a round trip", typ)
		}
	}
	// Disbursement events have their own samples; these are the registry's
	// and the catalogue's.
	mine := domain.NewCodec()
	registry.RegisterEvents(mine)
	entitlement.RegisterEvents(mine)
	types := mine.Types()
	sort.Strings(types)
	for _, typ := range types {
		if !covered[typ] {
			t.Errorf("no sample of %s", typ)
		}
	}
}

// TestPrintEventExamples writes every event's wire form with -v; the
// examples in ledger/doc.go and the API docs are copied from it.
func TestPrintEventExamples(t *testing.T) {
	c := NewCodec()
	for _, ev := range sampleEvents() {
		typ, data, _ := c.Encode(ev)
		var out bytes.Buffer
		json.Indent(&out, data, "", "  ")
		t.Logf("%s\n%s", typ, out.String())
	}
}
