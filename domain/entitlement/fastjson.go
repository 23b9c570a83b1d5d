package entitlement

import (
	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

// DecodeCanonicalJSON implements domain.CanonicalDecoder: every
// registration grants an entitlement, so a rebuild of the read models
// decodes one for every person. It reads the exact JSON the codec writes
// without encoding/json's reflection; anything else reports false and the
// codec takes encoding/json as before.
// TestEntitlementGrantedCanonicalMatchesJSON keeps both in agreement.
func (e *EntitlementGranted) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	r.Key("citizen_id")
	e.CitizenID = r.String()
	r.Key("entitlement_id")
	e.EntitlementID = r.String()
	r.Key("program")
	e.Program = r.String()
	r.Key("kind")
	e.Kind = Kind(r.String())
	r.Key("start_period")
	e.Start = r.Period()
	if r.OptionalKey("end_period") {
		e.End = r.Period()
	}
	if r.OptionalKey("coefficient") {
		// decimal reads the quoted string it writes, as encoding/json
		// would hand it over.
		var d decimal.Decimal
		if q := r.Quoted(); q == nil || d.UnmarshalJSON(q) != nil {
			r.Fail()
		}
		e.Coefficient = &d
	}
	if r.OptionalKey("amount") {
		m := r.Money()
		e.Amount = &m
	}
	if r.OptionalKey("note") {
		e.Note = r.String()
	}
	r.Close()
	return r.Done()
}
