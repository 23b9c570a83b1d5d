package entitlement

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/canontest"
)

// TestEntitlementGrantedCanonicalMatchesJSON: what the codec writes is
// taken by the canonical decoder (when its strings need no escaping), and
// any value, written or mangled, decodes as encoding/json decodes it.
func TestEntitlementGrantedCanonicalMatchesJSON(t *testing.T) {
	codec := domain.NewCodec()
	RegisterEvents(codec)
	rng := rand.New(rand.NewPCG(13, 14))
	period := func(plain bool) domain.Period {
		if !plain && rng.IntN(4) == 0 {
			return domain.Period{Year: 1990, Month: time.Month(rng.IntN(14))} // out of range
		}
		return domain.Period{Year: 2000 + rng.IntN(101), Month: time.Month(1 + rng.IntN(12))}
	}
	accepted, mangledValid := 0, 0
	for n := range 4000 {
		plain := n%2 == 0
		e := EntitlementGranted{CitizenID: canontest.Str(rng, plain), EntitlementID: canontest.Str(rng, plain),
			Program: canontest.Str(rng, plain), Kind: Kind(canontest.Str(rng, plain)), Start: period(plain)}
		if rng.IntN(2) == 0 {
			e.End = period(plain)
		}
		switch rng.IntN(3) {
		case 0:
			c := decimal.New(rng.Int64N(100_000)-50_000, -rng.Int32N(6))
			e.Coefficient = &c
		case 1:
			m := domain.VNDAmount(rng.Int64N(2_000_000_000) - 1_000_000)
			e.Amount = &m
		}
		if rng.IntN(2) == 0 {
			e.Note = canontest.Str(rng, plain)
		}
		typ, b, err := codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if canontest.Agrees[EntitlementGranted](t, b) {
			accepted++
		} else if plain {
			t.Fatalf("the codec wrote %s, which the canonical decoder declines", b)
		}
		got, err := codec.Decode(typ, b)
		var want EntitlementGranted
		if jerr := json.Unmarshal(b, &want); jerr != nil {
			if err == nil || err.Error() != "decode "+typ+": "+jerr.Error() {
				t.Fatalf("codec.Decode(%s) = %v, want the error of encoding/json: %v", b, err, jerr)
			}
		} else if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("codec.Decode(%s) = %#v, %v; want %#v", b, got, err, want)
		}
		for range 1 + rng.IntN(3) {
			b = canontest.Mangle(rng, b)
		}
		if json.Unmarshal(b, new(EntitlementGranted)) == nil {
			mangledValid++
		}
		canontest.Agrees[EntitlementGranted](t, b)
	}
	if accepted < 2000 || mangledValid < 40 {
		t.Errorf("%d encoded values taken canonically (want at least the 2000 plain ones), %d mangled ones valid (want some)", accepted, mangledValid)
	}
}

// FuzzEntitlementGrantedCanonical: go test -fuzz
// FuzzEntitlementGrantedCanonical ./domain/entitlement/ searches for an
// input on which the canonical decoder and encoding/json disagree.
func FuzzEntitlementGrantedCanonical(f *testing.F) {
	f.Add([]byte(`{"citizen_id":"001050000001","entitlement_id":"E1","program":"SOCIAL_MONTHLY","kind":"monthly","start_period":"2024-01","coefficient":"1.5"}`))
	f.Add([]byte(`{"citizen_id":"001050000001","entitlement_id":"E2","program":"P","kind":"one_off","start_period":"2024-01","end_period":"2024-03","amount":{"amount":"500000","currency":"VND"},"note":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) { canontest.Agrees[EntitlementGranted](t, b) })
}

// BenchmarkDecodeEntitlementGranted: one per person in a rebuild.
func BenchmarkDecodeEntitlementGranted(b *testing.B) {
	codec := domain.NewCodec()
	RegisterEvents(codec)
	c := decimal.RequireFromString("1.5")
	canontest.BenchDecode(b, codec, EntitlementGranted{CitizenID: "001050000001", EntitlementID: "E-001050000001-SOCIAL_MONTHLY",
		Program: "SOCIAL_MONTHLY", Kind: Monthly, Start: domain.MustPeriod("2024-01"), Coefficient: &c})
}
