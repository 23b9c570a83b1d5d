package registry

import "github.com/ansinh/ansinh/domain"

// Every registration writes these events (a rebuild of the read models
// decodes them for every person), so they have DecodeCanonicalJSON methods
// (domain.CanonicalDecoder) that read the exact JSON the codec writes
// without encoding/json's reflection; anything else reports false and the
// codec takes encoding/json as before. TestRegistryEventsCanonicalMatchesJSON
// keeps both paths in agreement.

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *BeneficiaryRegistered) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	r.Key("citizen_id")
	e.CitizenID = r.String()
	r.Key("full_name")
	e.FullName = r.String()
	r.Key("date_of_birth")
	e.DateOfBirth = r.Date()
	r.Key("sex")
	e.Sex = Sex(r.String())
	r.Key("address")
	r.Open()
	if r.OptionalKey("street") {
		e.Address.Street = r.String()
	}
	r.Key("district_code")
	e.Address.DistrictCode = r.String()
	r.Key("district_name")
	e.Address.DistrictName = r.String()
	r.Key("ward_code")
	e.Address.WardCode = r.String()
	r.Key("ward_name")
	e.Address.WardName = r.String()
	r.Key("catalogue")
	e.Address.Catalogue = r.String()
	r.Close()
	r.Key("category")
	e.Category = Category(r.String())
	if r.OptionalKey("household_id") {
		e.HouseholdID = r.String()
	}
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *BankAccountLinked) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	r.Key("citizen_id")
	e.CitizenID = r.String()
	r.Key("bank_code")
	e.BankCode = r.String()
	r.Key("account_number")
	e.AccountNumber = r.String()
	r.Key("holder_name")
	e.HolderName = r.String()
	r.Key("holder")
	e.Holder = HolderKind(r.String())
	if r.OptionalKey("proxy_id") {
		e.ProxyID = r.String()
	}
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentMethodChosen) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	r.Key("citizen_id")
	e.CitizenID = r.String()
	r.Key("method")
	e.Method = PaymentMethod(r.String())
	r.Close()
	return r.Done()
}
