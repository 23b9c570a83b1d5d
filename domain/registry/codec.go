package registry

import (
	"encoding/json"
	"fmt"

	"github.com/ansinh/ansinh/domain"
)

// RegisterEvents adds this package's events, and the upcasters of their
// older versions, to a codec.
func RegisterEvents(c *domain.Codec) {
	domain.Register[BeneficiaryRegistered](c)
	domain.Register[BeneficiaryDetailsCorrected](c)
	domain.Register[BeneficiaryDied](c)
	domain.Register[BeneficiaryMovedAway](c)
	domain.Register[BankAccountLinked](c)
	domain.Register[BankAccountReplaced](c)
	domain.Register[BankAccountUnlinked](c)
	domain.Register[PaymentMethodChosen](c)
	domain.Register[ProxyAuthorized](c)
	domain.Register[ProxyRevoked](c)
	c.RegisterUpcaster("BeneficiaryRegistered.v1", upcastRegisteredV1)
}

// beneficiaryRegisteredV1 is the first shape of BeneficiaryRegistered: the
// address was flat and did not say which catalogue its codes came from.
// Every v1 event was validated against the 2025-03 catalogue, the only one
// the service had then.
type beneficiaryRegisteredV1 struct {
	CitizenID    string      `json:"citizen_id"`
	FullName     string      `json:"full_name"`
	DateOfBirth  domain.Date `json:"date_of_birth"`
	Sex          Sex         `json:"sex"`
	Street       string      `json:"street,omitempty"`
	DistrictCode string      `json:"district_code"`
	WardCode     string      `json:"ward_code"`
	Category     Category    `json:"category"`
	HouseholdID  string      `json:"household_id,omitempty"`
}

func upcastRegisteredV1(data json.RawMessage) (string, json.RawMessage, error) {
	var v1 beneficiaryRegisteredV1
	if err := json.Unmarshal(data, &v1); err != nil {
		return "", nil, fmt.Errorf("BeneficiaryRegistered.v1: %w", err)
	}
	addr := Address{Street: v1.Street, DistrictCode: v1.DistrictCode, WardCode: v1.WardCode, Catalogue: AdminCatalogueVersion}
	units := HanoiAdminUnits()
	if d, ok := units.District(v1.DistrictCode); ok {
		addr.DistrictName = d.Name
	}
	if w, ok := units.Ward(v1.DistrictCode, v1.WardCode); ok {
		addr.WardName = w.Name
	}
	v2 := BeneficiaryRegistered{
		CitizenID: v1.CitizenID, FullName: v1.FullName, DateOfBirth: v1.DateOfBirth, Sex: v1.Sex,
		Address: addr, Category: v1.Category, HouseholdID: v1.HouseholdID,
	}
	out, err := json.Marshal(v2)
	if err != nil {
		return "", nil, err
	}
	return v2.EventType(), out, nil
}
