package registry

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/canontest"
)

// TestRegistryEventsCanonicalMatchesJSON: what the codec writes is taken
// by the canonical decoders (when its strings need no escaping), and any
// value, written or mangled, decodes as encoding/json decodes it.
func TestRegistryEventsCanonicalMatchesJSON(t *testing.T) {
	codec := domain.NewCodec()
	RegisterEvents(codec)
	rng := rand.New(rand.NewPCG(11, 12))
	str := func(plain bool) string { return canontest.Str(rng, plain) }
	opt := func(plain bool) string {
		if rng.IntN(2) == 0 {
			return ""
		}
		return str(plain)
	}
	date := func(plain bool) domain.Date {
		if !plain && rng.IntN(4) == 0 {
			return domain.Date{Year: rng.IntN(3000), Month: 13, Day: 40} // out of range
		}
		return domain.MustDate("1950-05-01").AddDays(rng.IntN(20000))
	}
	gens := []struct {
		gen   func(plain bool) domain.Event
		agree func(t testing.TB, b []byte) bool
	}{
		{func(plain bool) domain.Event {
			return BeneficiaryRegistered{CitizenID: str(plain), FullName: str(plain), DateOfBirth: date(plain), Sex: Sex(str(plain)),
				Address: Address{Street: opt(plain), DistrictCode: str(plain), DistrictName: str(plain), WardCode: str(plain),
					WardName: str(plain), Catalogue: str(plain)}, Category: Category(str(plain)), HouseholdID: opt(plain)}
		}, canontest.Agrees[BeneficiaryRegistered]},
		{func(plain bool) domain.Event {
			return BankAccountLinked{CitizenID: str(plain), BankAccount: BankAccount{BankCode: str(plain), AccountNumber: str(plain),
				HolderName: str(plain), Holder: HolderKind(str(plain)), ProxyID: opt(plain)}}
		}, canontest.Agrees[BankAccountLinked]},
		{func(plain bool) domain.Event {
			return PaymentMethodChosen{CitizenID: str(plain), Method: PaymentMethod(str(plain))}
		}, canontest.Agrees[PaymentMethodChosen]},
	}
	for _, g := range gens {
		name := g.gen(true).EventType()
		t.Run(name, func(t *testing.T) {
			accepted, mangledValid := 0, 0
			for n := range 3000 {
				plain := n%2 == 0
				e := g.gen(plain)
				typ, b, err := codec.Encode(e)
				if err != nil {
					t.Fatal(err)
				}
				if g.agree(t, b) {
					accepted++
				} else if plain {
					t.Fatalf("the codec wrote %s, which the canonical decoder declines", b)
				}
				// The codec's Decode gives what encoding/json gives, or its
				// error.
				got, err := codec.Decode(typ, b)
				want := reflect.New(reflect.TypeOf(e))
				if jerr := json.Unmarshal(b, want.Interface()); jerr != nil {
					if err == nil || err.Error() != "decode "+typ+": "+jerr.Error() {
						t.Fatalf("codec.Decode(%s) = %v, want the error of encoding/json: %v", b, err, jerr)
					}
				} else if err != nil || !reflect.DeepEqual(got, want.Elem().Interface()) {
					t.Fatalf("codec.Decode(%s) = %#v, %v; want %#v", b, got, err, want.Elem().Interface())
				}
				for range 1 + rng.IntN(3) {
					b = canontest.Mangle(rng, b)
				}
				if json.Unmarshal(b, reflect.New(reflect.TypeOf(e)).Interface()) == nil {
					mangledValid++
				}
				g.agree(t, b)
			}
			if accepted < 1500 || mangledValid < 30 {
				t.Errorf("%d encoded values taken canonically (want at least the 1500 plain ones), %d mangled ones valid (want some)", accepted, mangledValid)
			}
		})
	}
}

// FuzzRegistryEventsCanonical: go test -fuzz FuzzRegistryEventsCanonical
// ./domain/registry/ searches for an input on which a canonical decoder
// and encoding/json disagree; plain go test runs the seeds.
func FuzzRegistryEventsCanonical(f *testing.F) {
	f.Add(uint8(0), []byte(`{"citizen_id":"001050000001","full_name":"Nguyễn Văn An","date_of_birth":"1950-05-01","sex":"male","address":{"district_code":"004","district_name":"Long Biên","ward_code":"00118","ward_name":"Bồ Đề","catalogue":"2025"},"category":"social_protection"}`))
	f.Add(uint8(1), []byte(`{"citizen_id":"001050000001","bank_code":"VCB","account_number":"0011001234567","holder_name":"NGUYEN VAN AN","holder":"beneficiary"}`))
	f.Add(uint8(2), []byte(`{"citizen_id":"001050000001","method":"bank_transfer"}`))
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		switch which % 3 {
		case 0:
			canontest.Agrees[BeneficiaryRegistered](t, b)
		case 1:
			canontest.Agrees[BankAccountLinked](t, b)
		default:
			canontest.Agrees[PaymentMethodChosen](t, b)
		}
	})
}

func BenchmarkDecodeRegistryEvents(b *testing.B) {
	codec := domain.NewCodec()
	RegisterEvents(codec)
	cid := "001050000001"
	for _, e := range []domain.Event{
		BeneficiaryRegistered{CitizenID: cid, FullName: "Nguyễn Văn An", DateOfBirth: domain.MustDate("1950-05-01"), Sex: Male,
			Address:  Address{DistrictCode: "004", DistrictName: "Long Biên", WardCode: "00118", WardName: "Bồ Đề", Catalogue: AdminCatalogueVersion},
			Category: Categories[0]},
		BankAccountLinked{CitizenID: cid, BankAccount: BankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN VAN AN", Holder: HolderBeneficiary}},
	} {
		canontest.BenchDecode(b, codec, e)
	}
}
