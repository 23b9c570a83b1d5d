package eventstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// validJSON must agree with encoding/json.Valid on every input: the tests
// below state the expected answer where a human can, and compare with
// json.Valid everywhere.

var validJSONCases = []struct {
	in   string
	want bool
}{
	// Literals and whitespace.
	{`true`, true},
	{`false`, true},
	{`null`, true},
	{" \t\r\nnull \t\r\n", true},
	{``, false},
	{` `, false},
	{"\fnull", false}, // form feed is not JSON whitespace
	{"null\v", false},
	{"\u00a0null", false}, // nor is a no-break space
	{`tru`, false},
	{`truex`, false},
	{`True`, false},
	{`nul`, false},
	{`nulll`, false},
	{`fals`, false},
	{`falsefalse`, false},
	{`null null`, false},
	{`nan`, false},
	{`undefined`, false},

	// Numbers.
	{`0`, true},
	{`-0`, true},
	{`1`, true},
	{`-1`, true},
	{`1234567890`, true},
	{`0.5`, true},
	{`-0.0e-0`, true},
	{`1e5`, true},
	{`1E+5`, true},
	{`1e-5`, true},
	{`12.34e56`, true},
	{`123456789012345678901234567890e999999`, true}, // syntax only, not range
	{`01`, false},
	{`-01`, false},
	{`00`, false},
	{`+1`, false},
	{`-`, false},
	{`--1`, false},
	{`.5`, false},
	{`1.`, false},
	{`1.e5`, false},
	{`1e`, false},
	{`1e+`, false},
	{`1e+-1`, false},
	{`1ee1`, false},
	{`1.2.3`, false},
	{`0x1F`, false},
	{`1_000`, false},
	{`Infinity`, false},
	{`-Infinity`, false},
	{`1 2`, false},
	{`- 1`, false},

	// Strings.
	{`""`, true},
	{`"abc"`, true},
	{`" "`, true},   // short strings at the end of the input are checked
	{`"a b"`, true}, // byte by byte, not eight at a time
	{`"~"`, true},
	{`"\\"`, true},
	{`"Nguyễn Thị An"`, true},
	{`"\"\\\/\b\f\n\r\t"`, true},
	{`"\u0000\uFFFF\uabcd\uD800"`, true}, // lone surrogates are syntax-valid
	{"\"\x7f\"", true},                   // DEL is not a control character to JSON
	{"\"\xff\xfe\"", true},               // invalid UTF-8 passes, as in json.Valid
	{"\"\xc3\"", true},                   // truncated UTF-8 sequence
	{"\"\xed\xa0\x80\"", true},           // UTF-8-encoded surrogate
	{`"`, false},
	{`"abc`, false},
	{`"abc\"`, false},
	{`"\"`, false},
	{`"\`, false},
	{`"\a"`, false},
	{`"\x41"`, false},
	{`"\'"`, false},
	{`"\U0041"`, false},
	{`"\u"`, false},
	{`"\u12"`, false},
	{`"\u123"`, false},
	{`"\u123g"`, false},
	{`"\u12`, false},
	{"\"a\x00b\"", false},
	{"\"a\nb\"", false},
	{"\"\t\"", false},
	{"\"\x1f\"", false},
	{`'single'`, false},
	{`"a" "b"`, false},
	// Long strings exercise the eight-bytes-at-a-time skip with the
	// special byte at each position of a word.
	{`"` + strings.Repeat("x", 64) + `"`, true},
	{`"` + strings.Repeat("ễ", 40) + `"`, true},
	{`"` + strings.Repeat("x", 17) + `\n` + strings.Repeat("x", 9) + `"`, true},
	{`"` + strings.Repeat("x", 16) + "\x01" + strings.Repeat("x", 16) + `"`, false},
	{`"` + strings.Repeat("x", 15) + "\x1f" + strings.Repeat("x", 16) + `"`, false},
	{`"` + strings.Repeat("x", 23) + `"` + strings.Repeat("x", 8) + `"`, false},
	{`"` + strings.Repeat("x", 40), false},
	{`"` + strings.Repeat("x", 40) + `\`, false},
	{`"` + strings.Repeat("\x80", 40) + `"`, true}, // 0x80 bytes are not below 0x20
	{`"` + strings.Repeat("\xa2", 40) + `"`, true}, // 0xa2 ^ 0x80 == '"'
	{`"` + strings.Repeat("\xdc", 40) + `"`, true}, // 0xdc ^ 0x80 == '\\'

	// Arrays.
	{`[]`, true},
	{`[ ]`, true},
	{`[1]`, true},
	{`[1,2,3]`, true},
	{` [ 1 , "a" , [ ] , { } , null ] `, true},
	{`[[[[]]]]`, true},
	{`[`, false},
	{`]`, false},
	{`[1`, false},
	{`[1,`, false},
	{`[1,]`, false},
	{`[,1]`, false},
	{`[,]`, false},
	{`[1 2]`, false},
	{`[1;2]`, false},
	{`[1:2]`, false},
	{`[}`, false},
	{`[]]`, false},
	{`[][]`, false},
	{`[truefalse]`, false},
	{`[1]x`, false},

	// Objects.
	{`{}`, true},
	{`{ }`, true},
	{`{"a":1}`, true},
	{`{"a":1,"a":2}`, true}, // duplicate names are syntax-valid
	{` { "a" : [ { } ] , "b" : { "c" : null } } `, true},
	{`{"":""}`, true},
	{`{`, false},
	{`}`, false},
	{`{"a"}`, false},
	{`{"a":}`, false},
	{`{"a" 1}`, false},
	{`{"a"::1}`, false},
	{`{"a":1,}`, false},
	{`{,"a":1}`, false},
	{`{"a":1 "b":2}`, false},
	{`{"a":1;"b":2}`, false},
	{`{a:1}`, false},
	{`{'a':1}`, false},
	{`{1:1}`, false},
	{`{null:1}`, false},
	{`{"a":1]`, false},
	{`{"a":1}}`, false},
	{`{"a":[}`, false},
	{`{"a":{}`, false},
	{`{"a":1,"b"`, false},
	{`{"a":1,"b":`, false},
	{`{"a`, false},
	{`{"a\`, false},
	{`{"a"`, false},
}

func TestValidJSON(t *testing.T) {
	for _, tc := range validJSONCases {
		// The expectations above are hand-written; json.Valid checks them.
		if json.Valid([]byte(tc.in)) != tc.want {
			t.Fatalf("table is wrong: json.Valid(%q) = %v", tc.in, !tc.want)
		}
		if got := validJSON([]byte(tc.in)); got != tc.want {
			t.Errorf("validJSON(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestIsJSONObject(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{}`, true},
		{" \n{\"a\":[1]} ", true},
		{`{"a":1`, false},
		{`{}{}`, false},
		{`[]`, false},
		{`"{}"`, false},
		{`null`, false},
		{` `, false},
		{``, false},
	} {
		if got := isJSONObject([]byte(tc.in)); got != tc.want {
			t.Errorf("isJSONObject(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestValidJSONDepth checks encoding/json's nesting limit exactly, and the
// switch from the small in-frame stack (128 levels) to the full one.
func TestValidJSONDepth(t *testing.T) {
	arrays := func(d int) string { return strings.Repeat("[", d) + strings.Repeat("]", d) }
	objects := func(d int) string { return strings.Repeat(`{"k":`, d) + "0" + strings.Repeat("}", d) }
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"arrays 63", arrays(63), true},
		{"arrays 64", arrays(64), true},
		{"arrays 65", arrays(65), true},
		{"arrays 128", arrays(128), true},
		{"arrays 129", arrays(129), true},
		{"arrays 9999", arrays(9999), true},
		{"arrays 10000", arrays(maxJSONDepth), true},
		{"arrays 10001", arrays(maxJSONDepth + 1), false},
		{"objects 10000", objects(maxJSONDepth), true},
		{"objects 10001", objects(maxJSONDepth + 1), false},
		{"unclosed 10000", strings.Repeat("[", maxJSONDepth), false},
		{"unclosed 20000", strings.Repeat("[", 2*maxJSONDepth), false},
		{"deep then garbage", arrays(200) + "x", false},
		{"deep then mismatch", strings.Repeat("[", 300) + "}" + strings.Repeat("]", 299), false},
		{"error before the small stack is full", "[x" + strings.Repeat("[", 500), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if json.Valid([]byte(tc.in)) != tc.want {
				t.Fatalf("table is wrong: json.Valid = %v", !tc.want)
			}
			if got := validJSON([]byte(tc.in)); got != tc.want {
				t.Errorf("validJSON = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestValidJSONMixedNesting nests arrays and objects in random order across
// the bit stack's word boundaries and closes them correctly, or with one
// bracket of the wrong kind at a random level.
func TestValidJSONMixedNesting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		depth := 1 + rng.IntN(400)
		isObject := make([]bool, depth)
		var open, close strings.Builder
		for d := range depth {
			isObject[d] = rng.IntN(2) == 0
			if isObject[d] {
				open.WriteString(`{"k":`)
			} else {
				open.WriteString(`[`)
			}
		}
		swap := -1
		if rng.IntN(2) == 0 {
			swap = rng.IntN(depth)
		}
		for d := depth - 1; d >= 0; d-- {
			if isObject[d] != (d == swap) {
				close.WriteString("}")
			} else {
				close.WriteString("]")
			}
		}
		in := []byte(open.String() + "1" + close.String())
		want := swap < 0
		if json.Valid(in) != want {
			t.Fatalf("generator is wrong: json.Valid = %v for depth %d swap %d", !want, depth, swap)
		}
		if got := validJSON(in); got != want {
			t.Fatalf("validJSON = %v, want %v (depth %d, swapped level %d)", got, want, depth, swap)
		}
	}
}

// TestSpecialBytes compares the word-at-a-time test with a byte-by-byte one
// on words made of bytes around each boundary it must get right.
func TestSpecialBytes(t *testing.T) {
	edges := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, 0x5b, '\\', 0x5d,
		0x7f, 0x80, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xdb, 0xdc, 0xdd, 0xff}
	rng := rand.New(rand.NewPCG(3, 4))
	var w [8]byte
	for range 200_000 {
		special := false
		for k := range w {
			if rng.IntN(4) == 0 {
				w[k] = byte(rng.IntN(256))
			} else {
				w[k] = edges[rng.IntN(len(edges))]
			}
			if w[k] < 0x20 || w[k] == '"' || w[k] == '\\' {
				special = true
			}
		}
		if got := specialBytes(binary.LittleEndian.Uint64(w[:])) != 0; got != special {
			t.Fatalf("specialBytes(% x) != 0 is %v, want %v", w, got, special)
		}
	}
}

// TestValidJSONAllocatesNothing: ValidateAppend calls it for every event.
func TestValidJSONAllocatesNothing(t *testing.T) {
	deep := []byte(strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth))
	for name, doc := range map[string][]byte{"event": benchEventJSON, "deep": deep} {
		if n := testing.AllocsPerRun(10, func() { validJSON(doc) }); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

// TestValidJSONGenerated marshals random nested values, which must be
// valid, then cuts them short and mutates them, after which validJSON must
// still agree with json.Valid.
func TestValidJSONGenerated(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		doc, err := json.Marshal(drawJSONValue(t, 0))
		if err != nil {
			t.Fatal(err)
		}
		if rapid.Bool().Draw(t, "indent") {
			var buf bytes.Buffer
			ws := rapid.SampledFrom([]string{"", " ", "\t", "\r\n  "}).Draw(t, "whitespace")
			if err := json.Indent(&buf, doc, ws, ws); err != nil {
				t.Fatal(err)
			}
			doc = buf.Bytes()
		}
		if !validJSON(doc) {
			t.Fatalf("validJSON rejects marshalled %q", doc)
		}
		// Every proper prefix is invalid JSON or a shorter valid number
		// or document; json.Valid decides which.
		for k := range len(doc) {
			if got, want := validJSON(doc[:k]), json.Valid(doc[:k]); got != want {
				t.Fatalf("validJSON(%q) = %v, json.Valid = %v", doc[:k], got, want)
			}
		}
		for range rapid.IntRange(1, 4).Draw(t, "mutations") {
			doc = mutateJSON(t, doc)
			if got, want := validJSON(doc), json.Valid(doc); got != want {
				t.Fatalf("validJSON(%q) = %v, json.Valid = %v", doc, got, want)
			}
		}
	})
}

func drawJSONValue(t *rapid.T, depth int) any {
	lo, hi := 0, 6
	switch {
	case depth == 0:
		lo = 5 // a container, as events are, holding most of the cases
	case depth >= 4:
		hi = 4 // scalars only, to keep documents small
	}
	switch rapid.IntRange(lo, hi).Draw(t, "kind") {
	case 0:
		return nil
	case 1:
		return rapid.Bool().Draw(t, "bool")
	case 2:
		return rapid.Int64().Draw(t, "int")
	case 3:
		return rapid.Float64().Filter(finite).Draw(t, "float") // 1e+21, 5e-324, ...
	case 4:
		// Any runes, including control characters, quotes, backslashes and
		// "<>&", which Marshal escapes in its various ways.
		return rapid.String().Draw(t, "string")
	case 5:
		n := rapid.IntRange(0, 5).Draw(t, "len")
		a := make([]any, n)
		for k := range a {
			a[k] = drawJSONValue(t, depth+1)
		}
		return a
	default:
		n := rapid.IntRange(0, 5).Draw(t, "len")
		m := make(map[string]any, n)
		for range n {
			m[rapid.String().Draw(t, "key")] = drawJSONValue(t, depth+1)
		}
		return m
	}
}

func finite(f float64) bool { return f-f == 0 }

// mutationBytes are the bytes most likely to turn a valid document into an
// almost-valid one, or back.
var mutationBytes = []byte("{}[],:\"\\ \t\n0123456789-+.eEtrufalsn\x00\x1f\x7f\x80\xff")

func mutateJSON(t *rapid.T, doc []byte) []byte {
	if len(doc) == 0 {
		return []byte{rapid.SampledFrom(mutationBytes).Draw(t, "byte")}
	}
	out := bytes.Clone(doc)
	at := rapid.IntRange(0, len(doc)-1).Draw(t, "at")
	b := rapid.OneOf(rapid.SampledFrom(mutationBytes), rapid.Byte()).Draw(t, "byte")
	switch rapid.IntRange(0, 4).Draw(t, "op") {
	case 0:
		out[at] = b
	case 1:
		out = append(out[:at], out[at+1:]...)
	case 2:
		out = append(out[:at], append([]byte{b}, doc[at:]...)...)
	case 3:
		out = out[:at]
	default:
		other := rapid.IntRange(0, len(doc)-1).Draw(t, "other")
		out[at], out[other] = out[other], out[at]
	}
	return out
}

// FuzzValidJSON compares validJSON, and isJSONObject built on it, with
// encoding/json on arbitrary bytes. Plain `go test` runs the seeds; explore
// with
//
//	go test -run '^$' -fuzz FuzzValidJSON -fuzztime 90s ./eventstore/
func FuzzValidJSON(f *testing.F) {
	for _, tc := range validJSONCases {
		f.Add([]byte(tc.in))
	}
	f.Add(benchEventJSON)
	f.Add([]byte(`{"correlationId":"c0ffee","causationId":"run-42"}`))
	f.Add([]byte(`[{"a":[{"b":[{"c":[]}]}]},{"d":{}}]`))
	f.Add([]byte(strings.Repeat("[", 130) + strings.Repeat("]", 130)))
	f.Add([]byte(strings.Repeat(`{"k":`, 70) + "1" + strings.Repeat("}", 70)))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := json.Valid(b)
		if got := validJSON(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		wantObject := want && len(trimmed) > 0 && trimmed[0] == '{'
		if got := isJSONObject(b); got != wantObject {
			t.Fatalf("isJSONObject(%q) = %v, want %v", b, got, wantObject)
		}
	})
}

// benchEventJSON is a ~300-byte event of the kind ansinh stores: compact,
// as json.Marshal writes it, with Vietnamese text and money as strings.
var benchEventJSON = []byte(`{"citizen_id":"001145012345","full_name":"Nguyễn Thị An",` +
	`"date_of_birth":"1945-03-08","address":{"province":"Hà Nội","district":"Hà Đông",` +
	`"ward":"Văn Quán","line":"Số 12, ngõ 34"},"programme":"monthly-social-allowance",` +
	`"period":"2024-02","amount":{"amount":"540000","currency":"VND"},"channel":"post-office",` +
	`"coefficient":1.5,"verified":true,"guardian":null}`)

// BenchmarkValidJSON compares validJSON with json.Valid on one event.
//
//	go test -run '^$' -bench ValidJSON ./eventstore/
func BenchmarkValidJSON(b *testing.B) {
	if !json.Valid(benchEventJSON) {
		b.Fatal("benchEventJSON is not valid JSON")
	}
	for _, bc := range []struct {
		name  string
		valid func([]byte) bool
	}{
		{"validJSON", validJSON},
		{"encoding-json", json.Valid},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(benchEventJSON)))
			b.ReportAllocs()
			for b.Loop() {
				if !bc.valid(benchEventJSON) {
					b.Fatal("rejected")
				}
			}
		})
	}
}
