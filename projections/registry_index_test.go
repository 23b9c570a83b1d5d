package projections

import (
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/registry"
)

// TestRegistryIndexFollowsRecord: after any sequence of registry events,
// the index entries a person has in the Tx are exactly those their record
// calls for, computed from scratch (applyBeneficiary only rewrites what
// changed, and skips the index when nothing it holds changed).
func TestRegistryIndexFollowsRecord(t *testing.T) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"Nguyễn Văn An", "Trần Thị Bình", "Lê  Văn   Chi", "Đặng Đức Dũng", "An"}
	addrs := []registry.Address{
		{DistrictCode: "004", DistrictName: "Long Biên", WardCode: "00118", WardName: "Bồ Đề"},
		{DistrictCode: "001", DistrictName: "Ba Đình", WardCode: "00001", WardName: "Phúc Xá"},
	}
	cats := []registry.Category{registry.Categories[0], registry.Categories[1]}
	for person := range 50 {
		tx := newTx(db.pdb, []byte("registry-test/"))
		tx.complete = true // nothing stored: answer misses from memory
		cid := registry.MakeCitizenID("001", registry.Male, 1950, person)
		events := []any{registry.BeneficiaryRegistered{CitizenID: cid, FullName: names[person%len(names)],
			DateOfBirth: domain.MustDate("1950-05-01"), Sex: registry.Male, Address: addrs[0], Category: cats[0]}}
		for range 1 + rng.IntN(8) {
			switch rng.IntN(7) {
			case 0:
				n := names[rng.IntN(len(names))]
				events = append(events, registry.BeneficiaryDetailsCorrected{CitizenID: cid, FullName: &n, Reason: "typo"})
			case 1:
				a, c := addrs[rng.IntN(len(addrs))], cats[rng.IntN(len(cats))]
				events = append(events, registry.BeneficiaryDetailsCorrected{CitizenID: cid, Address: &a, Category: &c, Reason: "moved"})
			case 2:
				events = append(events, registry.BankAccountLinked{CitizenID: cid, BankAccount: registry.BankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "X", Holder: registry.HolderBeneficiary}})
			case 3:
				events = append(events, registry.BankAccountUnlinked{CitizenID: cid, Reason: "closed"})
			case 4:
				events = append(events, registry.PaymentMethodChosen{CitizenID: cid, Method: registry.BankTransfer})
			case 5:
				events = append(events, registry.BeneficiaryDied{CitizenID: cid, DateOfDeath: domain.MustDate("2024-02-03"), LastPeriod: domain.MustPeriod("2024-02")})
			default:
				events = append(events, registry.BeneficiaryMovedAway{CitizenID: cid, MovedOn: domain.MustDate("2024-03-01"), LastPeriod: domain.MustPeriod("2024-03"), Destination: "Huế"})
			}
		}
		for _, e := range events {
			if err := applyBeneficiary(tx, cid, e.(interface{ EventType() string })); err != nil {
				t.Fatal(err)
			}
		}
		rec, found, err := Load[regRecord](tx, []byte("b/"+cid))
		if err != nil || !found {
			t.Fatal(found, err)
		}
		entries, _ := shapeOf(&rec.Beneficiary).entries(nil)
		want := map[string]string{}
		for _, e := range entries {
			if _, dup := want[e.key]; dup {
				t.Fatalf("person %d: index key %q listed twice", person, e.key)
			}
			want[e.key] = e.value
		}
		got := map[string]string{}
		for k, e := range tx.entries {
			if e.exists && !strings.HasPrefix(k, "b/") {
				got[k] = string(e.raw)
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("person %d after %d events:\n got %q\nwant %q", person, len(events), got, want)
		}
	}
}
