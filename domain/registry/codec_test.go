package registry

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ansinh/ansinh/domain"
)

func TestUpcastBeneficiaryRegisteredV1(t *testing.T) {
	c := domain.NewCodec()
	RegisterEvents(c)
	v1 := `{"citizen_id":"001145012345","full_name":"Nguyễn Thị An","date_of_birth":"1945-03-02","sex":"female",
		"street":"12 ngõ 5","district_code":"268","ward_code":"09556","category":"near_poor","household_id":"HH-1"}`
	ev, err := c.Decode("BeneficiaryRegistered.v1", json.RawMessage(v1))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ev.(BeneficiaryRegistered)
	if !ok {
		t.Fatalf("decoded to %T", ev)
	}
	want := BeneficiaryRegistered{
		CitizenID: "001145012345", FullName: "Nguyễn Thị An", DateOfBirth: date("1945-03-02"), Sex: Female,
		Address: Address{Street: "12 ngõ 5", DistrictCode: "268", DistrictName: "Quận Hà Đông", WardCode: "09556",
			WardName: got.Address.WardName, Catalogue: AdminCatalogueVersion},
		Category: NearPoor, HouseholdID: "HH-1",
	}
	if got != want || got.Address.WardName == "" {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// The upcast state is the state a v2 registration would have given.
	if b := (Beneficiary{}).Evolve(got); !b.Registered || b.Address.Catalogue != AdminCatalogueVersion {
		t.Errorf("state %+v", b)
	}
}

func TestDecodeErrors(t *testing.T) {
	c := domain.NewCodec()
	RegisterEvents(c)
	if _, err := c.Decode("BeneficiaryAbducted.v1", json.RawMessage(`{}`)); !errors.Is(err, domain.ErrUnknownEventType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := c.Decode("BeneficiaryRegistered.v2", json.RawMessage(`{"date_of_birth":"1945-02-30"}`)); err == nil {
		t.Error("a date that does not exist decoded")
	}
	if _, err := c.Decode("BeneficiaryRegistered.v1", json.RawMessage(`[1]`)); err == nil {
		t.Error("a v1 event that is not an object upcast")
	}
}
