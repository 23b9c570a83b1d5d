package domain

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCanonicalReaderStringsOutliveInput: the strings String returns are
// cut from a copy, so they stay as they were when the caller reuses its
// bytes, however many buffers they took (a string that does not fit starts
// a new one).
func TestCanonicalReaderStringsOutliveInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		// Arrays of strings are mostly string bytes, far more than the
		// 40% String sizes a buffer for, so they overflow it often.
		words := make([]string, 1+rng.IntN(12))
		for i := range words {
			var sb strings.Builder
			for range rng.IntN(40) {
				sb.WriteByte("aZ09 -_.Nguyễn"[rng.IntN(14)])
			}
			words[i] = strings.ToValidUTF8(sb.String(), "x")
		}
		in, err := json.Marshal(words)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if err := json.Unmarshal(in, &want); err != nil {
			t.Fatal(err)
		}
		r := NewCanonicalReader(in)
		var got []string
		r.Array(func() { got = append(got, r.String()) })
		if !r.Done() {
			if strings.ContainsAny(string(in), `\`) {
				continue // an escape: not canonical, rightly declined
			}
			t.Fatalf("%d: %s declined", n, in)
		}
		for i := range in {
			in[i] = '#' // the caller reuses its buffer
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%d: read %q, encoding/json %q", n, got, want)
		}
	}
}

// TestDecodedVNDIsVNDAmount: an amount decoded, whether remembered or
// new, is the value VNDAmount makes, including after another amount took
// its slot, and from many goroutines at once (run with -race).
func TestDecodedVNDIsVNDAmount(t *testing.T) {
	// Two amounts that share a slot, found by search.
	slotOf := func(n int64) uint64 { return uint64(n) * 0x9E3779B97F4A7C15 >> (64 - decodedAmountsBits) }
	a := int64(540_000)
	b := a + 1
	for slotOf(b) != slotOf(a) {
		b++
	}
	amounts := []int64{0, 1, -1, a, b, a, b, b, a, 999_999_999_999_999, -999_999_999_999_999, 360_000, 540_000}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				n := amounts[(i+g)%len(amounts)]
				got, want := decodedVND(n), VNDAmount(n)
				if !reflect.DeepEqual(got, want) || got.String() != want.String() {
					t.Errorf("decodedVND(%d) = %#v, want %#v", n, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := decodedVND(a); got.Amount.IntPart() != a {
		t.Fatalf("decodedVND(%d) = %v", a, got)
	}
	// Arithmetic on a shared amount leaves it alone: decimal makes new
	// big.Ints for its results.
	m := decodedVND(a)
	_ = m.Add(VNDAmount(5)).Sub(VNDAmount(7)).Neg().Mul(3)
	if again := decodedVND(a); again.Amount.IntPart() != a || m.Amount.IntPart() != a {
		t.Fatalf("an amount changed under arithmetic: %v, %v", again, m)
	}
}

// TestPeriodOfMatchesParsePeriod: the copy-free path of
// Period.UnmarshalText takes every period ParsePeriod accepts, with the
// same value, and nothing it refuses.
func TestPeriodOfMatchesParsePeriod(t *testing.T) {
	var inputs []string
	for y := 1990; y <= 2110; y++ {
		for m := 0; m <= 13; m++ {
			inputs = append(inputs, fmt.Sprintf("%04d-%02d", y, m))
		}
	}
	inputs = append(inputs, "", "2024-1", "2024-001", "2024/01", "2024-0a", "+024-01", "-024-01", " 2024-01", "2024-01 ",
		"２０２４-01", "2024-\u0661", "2024-01\x00", "20x4-01", "0000-00", "9999-99")
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		b := []byte(inputs[rng.IntN(len(inputs))])
		if len(b) > 0 {
			b[rng.IntN(len(b))] = "0123456789-+ x/\xff"[rng.IntN(16)]
		}
		inputs = append(inputs, string(b))
	}
	taken := 0
	for _, s := range inputs {
		want, err := ParsePeriod(s)
		got, ok := periodOf([]byte(s))
		if ok != (err == nil) || got != want {
			t.Fatalf("%q: periodOf %v, %v; ParsePeriod %v, %v", s, got, ok, want, err)
		}
		var p Period
		uerr := p.UnmarshalText([]byte(s))
		if (uerr == nil) != (err == nil) || (err != nil && uerr.Error() != err.Error()) || p != want {
			t.Fatalf("%q: UnmarshalText %v, %v; ParsePeriod %v, %v", s, p, uerr, want, err)
		}
		if ok {
			taken++
		}
	}
	if taken < 101*12 {
		t.Fatalf("only %d valid periods among the inputs", taken)
	}
}

// TestDateOfMatchesParseDate: likewise for dates, against time.Parse's
// idea of which days exist (leap years included).
func TestDateOfMatchesParseDate(t *testing.T) {
	var inputs []string
	for d := time.Date(1898, 12, 25, 0, 0, 0, 0, time.UTC); d.Year() <= 2101; d = d.AddDate(0, 0, 1) {
		inputs = append(inputs, d.Format(time.DateOnly))
	}
	for _, y := range []int{1900, 1904, 2000, 2023, 2024, 2100} {
		for m := 0; m <= 13; m++ {
			for _, day := range []int{0, 28, 29, 30, 31, 32} {
				inputs = append(inputs, fmt.Sprintf("%04d-%02d-%02d", y, m, day))
			}
		}
	}
	inputs = append(inputs, "", "1950-7-27", "1950-07-7", "1950/07/27", "1950-07-27T", " 950-07-27", "+950-07-27", "1950-07-2a", "1950-07-+7")
	rng := rand.New(rand.NewPCG(7, 8))
	n := len(inputs)
	for range 20000 {
		b := []byte(inputs[rng.IntN(n)])
		b[rng.IntN(len(b))] = "0123456789-+ T/\xff"[rng.IntN(16)]
		inputs = append(inputs, string(b))
	}
	taken := 0
	for _, s := range inputs {
		want, err := ParseDate(s)
		got, ok := dateOf([]byte(s))
		if ok != (err == nil) || got != want {
			t.Fatalf("%q: dateOf %v, %v; ParseDate %v, %v", s, got, ok, want, err)
		}
		var d Date
		uerr := d.UnmarshalText([]byte(s))
		if (uerr == nil) != (err == nil) || (err != nil && uerr.Error() != err.Error()) || d != want {
			t.Fatalf("%q: UnmarshalText %v, %v; ParseDate %v, %v", s, d, uerr, want, err)
		}
		if ok {
			taken++
		}
	}
	if taken < 73000 {
		t.Fatalf("only %d valid dates among the inputs", taken)
	}
}

// TestDecodeScalarsAllocate: the canonical paths of money, periods and
// dates allocate nothing (an amount seen before is shared), and the
// strings of an event share one allocation. Counting allocations is
// exact, unlike timing.
func TestDecodeScalarsAllocate(t *testing.T) {
	money := []byte(`{"amount":"540000","currency":"VND"}`)
	period, date := []byte("2024-01"), []byte("1950-07-27")
	// An event's strings are 40% or less of it; here the numbers
	// stand in for keys, amounts and times.
	event := []byte(`{"a":"001150000001","b":"SOCIAL_MONTHLY","c":"RUN-2024-01","d":"P-0123456789abcdef","e":"bank",` +
		`"n":[100001,100002,100003,100004,100005,100006,100007,100008,100009,100010,100011,100012,100013,100014]}`)
	for _, c := range []struct {
		name string
		max  float64
		f    func() bool
	}{
		{"Money.UnmarshalJSON", 0, func() bool { var m Money; return m.UnmarshalJSON(money) == nil }},
		{"CanonicalReader.Money", 0, func() bool { r := NewCanonicalReader(money); r.Money(); return r.Done() }},
		{"Period.UnmarshalText", 0, func() bool { var p Period; return p.UnmarshalText(period) == nil }},
		{"Date.UnmarshalText", 0, func() bool { var d Date; return d.UnmarshalText(date) == nil }},
		{"CanonicalReader.String", 1, func() bool {
			r := NewCanonicalReader(event)
			r.Open()
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				r.Key(k)
				if r.String() == "" {
					return false
				}
			}
			r.Key("n")
			r.Array(func() { r.Int() })
			r.Close()
			return r.Done()
		}},
	} {
		if !c.f() {
			t.Fatalf("%s: declined", c.name)
		}
		if n := testing.AllocsPerRun(100, func() { c.f() }); n > c.max {
			t.Errorf("%s: %v allocations, want at most %v", c.name, n, c.max)
		}
	}
}

// TestPeriodStringOfEveryValidPeriod: the valid periods, which String
// cuts from periodText, are written as fmt writes them, and allocate
// nothing.
func TestPeriodStringOfEveryValidPeriod(t *testing.T) {
	for y := MinPeriodYear; y <= MaxPeriodYear; y++ {
		for m := time.January; m <= time.December; m++ {
			p := Period{Year: y, Month: m}
			if got, want := p.String(), fmt.Sprintf("%04d-%02d", y, int(m)); got != want {
				t.Fatalf("Period{%d, %d}.String() = %q, want %q", y, m, got, want)
			}
		}
	}
	p := MustPeriod("2024-01")
	var s string
	if n := testing.AllocsPerRun(100, func() { s = p.String() }); n != 0 || s != "2024-01" {
		t.Errorf("Period.String: %v allocations, want 0", n)
	}
}
