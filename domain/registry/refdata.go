package registry

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ansinh/ansinh/domain"
)

// The reference data ships inside the binary: embedding is done by the
// compiler, so reading it is not I/O and the domain stays pure.
var (
	//go:embed refdata/hanoi-admin-units-2025-03.json
	hanoiAdminUnitsJSON []byte
	//go:embed refdata/banks-2025.json
	banksJSON []byte
)

// AdminCatalogueVersion names the administrative-units catalogue addresses
// are validated against; an address records it, because units change (wards
// were merged in 2025, districts abolished on 2025-07-01), and an address
// keeps the codes that were valid when it was recorded.
const AdminCatalogueVersion = "hanoi-admin-units-2025-03"

// AdminCatalogueEffective is the publication date of that catalogue.
var AdminCatalogueEffective = domain.MustDate("2025-03-01")

// District is a district-level unit (quận, huyện, thị xã) with its wards and
// communes.
type District struct {
	Code  string `json:"id"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	Wards []Ward `json:"wards"`
}

// Ward is a ward, commune or township (phường, xã, thị trấn).
type Ward struct {
	Code string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// AdminUnits is one version of the catalogue of Hanoi's administrative units.
type AdminUnits struct {
	Version   string
	Effective domain.Date
	Source    string
	Districts []District

	districts map[string]int            // code -> index in Districts
	wards     map[string]map[string]int // district code -> ward code -> index
}

// District returns the district with the given code.
func (a *AdminUnits) District(code string) (District, bool) {
	i, ok := a.districts[code]
	if !ok {
		return District{}, false
	}
	return a.Districts[i], true
}

// Ward returns the ward with the given code in the given district.
func (a *AdminUnits) Ward(districtCode, wardCode string) (Ward, bool) {
	i, ok := a.wards[districtCode][wardCode]
	if !ok {
		return Ward{}, false
	}
	d, _ := a.District(districtCode)
	return d.Wards[i], true
}

// HanoiAdminUnits returns the embedded catalogue (30 district-level units,
// 526 wards and communes). It is parsed once, on first use.
var HanoiAdminUnits = sync.OnceValue(func() *AdminUnits {
	a, err := parseAdminUnits(hanoiAdminUnitsJSON)
	if err != nil {
		panic(err) // the file is part of the source; a test parses it
	}
	a.Version, a.Effective = AdminCatalogueVersion, AdminCatalogueEffective
	return a
})

func parseAdminUnits(b []byte) (*AdminUnits, error) {
	var f struct {
		Source    string     `json:"source"`
		Districts []District `json:"districts"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("admin units: %w", err)
	}
	a := &AdminUnits{Source: f.Source, Districts: f.Districts, districts: map[string]int{}, wards: map[string]map[string]int{}}
	for i, d := range f.Districts {
		if _, dup := a.districts[d.Code]; dup {
			return nil, fmt.Errorf("admin units: district %s listed twice", d.Code)
		}
		a.districts[d.Code] = i
		a.wards[d.Code] = make(map[string]int, len(d.Wards))
		for j, w := range d.Wards {
			a.wards[d.Code][w.Code] = j
		}
	}
	return a, nil
}

// Bank is a bank that accounts can be linked at.
type Bank struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
}

// BankListVersion names the embedded bank list, a starter list of the main
// Vietnamese banks (not the State Bank's full register).
const BankListVersion = "banks-2025"

// Banks returns the embedded bank list, in its file's order.
var Banks = sync.OnceValue(func() []Bank {
	var f struct {
		Banks []Bank `json:"banks"`
	}
	if err := json.Unmarshal(banksJSON, &f); err != nil {
		panic(fmt.Errorf("bank list: %w", err)) // part of the source; a test parses it
	}
	return f.Banks
})

// BankByCode finds a bank by its short code, e.g. "VCB".
func BankByCode(code string) (Bank, bool) {
	for _, b := range Banks() {
		if b.Code == code {
			return b, true
		}
	}
	return Bank{}, false
}
