package domain

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// slowMoney is the reference: the strict encoding/json path alone.
func slowMoney(b []byte) (Money, error) {
	var m Money
	err := m.unmarshalJSONSlow(b)
	return m, err
}

func fastOrSlowMoney(b []byte) (Money, error) {
	var m Money
	err := m.UnmarshalJSON(b)
	return m, err
}

// checkSame fails unless UnmarshalJSON (fast path first) and the slow path
// agree on acceptance and, when both accept, on the exact value.
func checkSame(t *testing.T, in string) {
	t.Helper()
	got, gotErr := fastOrSlowMoney([]byte(in))
	want, wantErr := slowMoney([]byte(in))
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: UnmarshalJSON error %v, slow path error %v", in, gotErr, wantErr)
	}
	if gotErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("%q: error %q, slow path %q", in, gotErr, wantErr)
		}
		return
	}
	if !got.Equal(want) || got.Amount.String() != want.Amount.String() || got.Amount.Exponent() != want.Amount.Exponent() {
		t.Fatalf("%q: got %v (exp %d), slow path %v (exp %d)", in, got, got.Amount.Exponent(), want, want.Amount.Exponent())
	}
	if !reflect.DeepEqual(got.Amount.BigInt(), want.Amount.BigInt()) {
		t.Fatalf("%q: big ints differ: %v vs %v", in, got.Amount.BigInt(), want.Amount.BigInt())
	}
}

func TestMoneyUnmarshalFastMatchesSlow(t *testing.T) {
	tests := []struct {
		in   string
		fast bool // the fast path takes it (the rest is the slow path's)
		ok   bool
	}{
		{`{"amount":"540000","currency":"VND"}`, true, true},
		{`{"amount":"0","currency":"VND"}`, true, true},
		{`{"amount":"-0","currency":"VND"}`, true, true},
		{`{"amount":"-540000","currency":"VND"}`, true, true},
		{`{"amount":"007","currency":"VND"}`, true, true},
		{`{"amount":"999999999999999","currency":"VND"}`, true, true},
		{`{"amount":"-999999999999999","currency":"VND"}`, true, true},
		{`{"amount":"1000000000000000","currency":"VND"}`, false, false}, // 16 digits
		{`{"amount":"","currency":"VND"}`, false, false},
		{`{"amount":"-","currency":"VND"}`, false, false},
		{`{"amount":"--5","currency":"VND"}`, false, false},
		{`{"amount":"+5","currency":"VND"}`, false, false},
		{`{"amount":"1.5","currency":"VND"}`, false, false},
		{`{"amount":"1e3","currency":"VND"}`, false, false},
		{`{"amount":"1,000","currency":"VND"}`, false, false},
		{`{"amount":"\u0031","currency":"VND"}`, false, true}, // an escaped digit: valid JSON
		{`{"amount":"5","currency":"USD"}`, false, false},
		{`{"amount":"5","currency":"vnd"}`, false, false},
		{`{"amount":"5"}`, false, false},
		{`{"amount":5,"currency":"VND"}`, false, false},
		{`{"currency":"VND","amount":"5"}`, false, true},
		{` {"amount":"5","currency":"VND"}`, false, true},
		{`{ "amount": "5", "currency": "VND" }`, false, true},
		{`{"AMOUNT":"5","currency":"VND"}`, false, true}, // encoding/json matches keys case-insensitively
		{`{"amount":"5","currency":"VND","x":1}`, false, true},
		{`{"amount":"5","amount":"6","currency":"VND"}`, false, true},
		{`{"amount":"5","currency":"VND"}x`, false, false},
		{`{"amount":"5","currency":"VND"`, false, false},
		{`{"amount":"5","currency":"VND"}}`, false, false},
		{`{"amount":"5\","currency":"VND"}`, false, false},
		{`{"amount":"5","currency":"VND\u0000"}`, false, false},
		{`{"amount":null,"currency":"VND"}`, false, false},
		{`null`, false, false},
		{``, false, false},
		{`{}`, false, false},
		{`[]`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if _, fast := parseMoneyFast([]byte(tt.in)); fast != tt.fast {
				t.Errorf("fast path took it: %v, want %v", fast, tt.fast)
			}
			if _, err := fastOrSlowMoney([]byte(tt.in)); (err == nil) != tt.ok {
				t.Errorf("accepted: %v (%v), want %v", err == nil, err, tt.ok)
			}
			checkSame(t, tt.in)
		})
	}
}

// TestMoneyUnmarshalFastMatchesSlowRandom mutates the common shape byte by
// byte (drops, duplicates, replacements from a JSON-ish alphabet) and checks
// that both paths always agree.
func TestMoneyUnmarshalFastMatchesSlowRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = `0123456789-+.eE ",:{}[]\uVNDamountcurrency`
	accepted := 0
	for i := range 20_000 {
		amount := fmt.Sprint(rng.Int64N(2_000_000_000_000_000) - 1_000_000_000_000_000)
		if i%3 == 0 {
			amount = strings.Repeat("9", 1+rng.IntN(17))
		}
		b := []byte(`{"amount":"` + amount + `","currency":"VND"}`)
		for range rng.IntN(3) {
			j := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b = append(b[:j:j], b[j+1:]...)
			case 1:
				b = append(b[:j+1:j+1], b[j:]...)
			default:
				b[j] = alphabet[rng.IntN(len(alphabet))]
			}
			if len(b) == 0 {
				break
			}
		}
		if _, err := slowMoney(b); err == nil {
			accepted++
		}
		checkSame(t, string(b))
	}
	// The mutations must leave both accepted and rejected inputs, or the
	// comparison proves little.
	if accepted < 1000 || accepted > 19_000 {
		t.Fatalf("%d of 20000 inputs accepted: the generator is off", accepted)
	}
}

func TestMoneyJSONRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 540_000, -540_000, MaxAmountDong, 999_999_999_999_999} {
		m := VNDAmount(n)
		b, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, fast := parseMoneyFast(b); !fast {
			t.Errorf("%s: MarshalJSON wrote %s, which the fast path does not take", m, b)
		}
		var back Money
		if err := back.UnmarshalJSON(b); err != nil || !back.Equal(m) {
			t.Errorf("%s: round trip gave %v, %v", m, back, err)
		}
	}
}

func BenchmarkMoneyUnmarshalJSON(b *testing.B) {
	in := []byte(`{"amount":"540000","currency":"VND"}`)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := fastOrSlowMoney(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("slow", func(b *testing.B) {
		for b.Loop() {
			if _, err := slowMoney(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPeriodDateStringMatchesSprintf: the hand-written String methods write
// exactly what fmt wrote before, in and out of their fast range.
func TestPeriodDateStringMatchesSprintf(t *testing.T) {
	years := []int{-10000, -1, 0, 1, 9, 10, 99, 100, 999, 1000, 2024, 2100, 9999, 10000, 123456}
	months := []int{-1, 0, 1, 9, 10, 12, 13, 99, 100, 1000}
	for _, y := range years {
		for _, m := range months {
			p := Period{Year: y, Month: time.Month(m)}
			if got, want := p.String(), fmt.Sprintf("%04d-%02d", y, m); got != want {
				t.Errorf("Period{%d, %d}.String() = %q, want %q", y, m, got, want)
			}
			for _, d := range []int{-1, 0, 1, 9, 10, 31, 99, 100} {
				dt := Date{Year: y, Month: time.Month(m), Day: d}
				if got, want := dt.String(), fmt.Sprintf("%04d-%02d-%02d", y, m, d); got != want {
					t.Errorf("Date{%d, %d, %d}.String() = %q, want %q", y, m, d, got, want)
				}
			}
		}
	}
}
