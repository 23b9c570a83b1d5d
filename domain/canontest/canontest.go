// Package canontest checks a domain.CanonicalDecoder against
// encoding/json, for the differential tests and fuzz targets of the event
// packages: whenever the canonical decoder accepts an input, encoding/json
// must accept it too and decode the same value.
package canontest

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
)

// Agrees fails t if *E's canonical decoder accepts b while encoding/json
// refuses it or decodes another value. It reports whether the canonical
// decoder accepted b.
func Agrees[E any, P interface {
	*E
	domain.CanonicalDecoder
}](t testing.TB, b []byte) bool {
	t.Helper()
	var fast E
	if !P(&fast).DecodeCanonicalJSON(b) {
		return false
	}
	var slow E
	if err := json.Unmarshal(b, &slow); err != nil {
		t.Fatalf("%T: the canonical decoder accepted %q, encoding/json says %v", fast, b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%T: %q decodes to\n%#v\ncanonically, to\n%#v\nwith encoding/json", fast, b, fast, slow)
	}
	return true
}

// Alphabet is what Mangle writes into an input: JSON's punctuation,
// digits, letters of literals and escapes.
const Alphabet = `0123456789-+.eE ",:{}[]\untrlfaVND_`

// Mangle returns b with one random change: a byte dropped, doubled or
// replaced from Alphabet, or a change encoding/json may well accept (a
// space, a key in other case, a duplicated or unknown member, a null).
func Mangle(rng *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	j := rng.IntN(len(b))
	switch rng.IntN(4) {
	case 0:
		return append(b[:j:j], b[j+1:]...)
	case 1:
		return append(b[:j+1:j+1], b[j:]...)
	case 2:
		out := append([]byte(nil), b...)
		out[j] = Alphabet[rng.IntN(len(Alphabet))]
		return out
	}
	s := string(b)
	// A member to play with: the first key after the position.
	k := strings.Index(s[j:], `":`)
	q := -1
	if k >= 0 {
		q = strings.LastIndexByte(s[:j+k], '"')
	}
	if q < 0 {
		return []byte(strings.Replace(s, ":", ": ", 1))
	}
	key := s[q : j+k+2] // "name":
	switch rng.IntN(5) {
	case 0:
		s = s[:q] + key + " " + s[j+k+2:]
	case 1:
		s = s[:q] + strings.ToUpper(key) + s[j+k+2:]
	case 2:
		s = s[:q] + key + `"dup",` + s[q:]
	case 3:
		s = s[:q] + `"extra":1,` + s[q:]
	default:
		s = s[:q] + key + `null,` + s[q:]
	}
	return []byte(s)
}

// Str makes a random string; with plain false it may hold what
// encoding/json escapes or replaces (quotes, backslashes, control
// characters, <, invalid UTF-8, U+2028).
func Str(rng *rand.Rand, plain bool) string {
	plainParts := []string{"a", "Z", "0", "9", " ", "-", "_", ".", "Nguyễn", "Văn", "đ", "Ư", "FT", "VCB", "/", "}", "]", ",", ":"}
	odd := []string{`"`, `\`, "<", ">", "&", "\x01", "\x7f", "\xff", "\u2028", "\t", "\u00e9"}
	var sb strings.Builder
	for range rng.IntN(6) {
		if !plain && rng.IntN(4) == 0 {
			sb.WriteString(odd[rng.IntN(len(odd))])
		} else {
			sb.WriteString(plainParts[rng.IntN(len(plainParts))])
		}
	}
	return sb.String()
}

// BenchDecode runs two benchmarks of decoding e as codec encodes it:
// "<type>/codec" (the codec, so the canonical decoder when it accepts) and
// "<type>/encoding-json" (encoding/json into a new value of e's type), so
// that the event packages' decode benchmarks compare the same two things.
func BenchDecode(b *testing.B, codec *domain.Codec, e domain.Event) {
	b.Helper()
	typ, data, err := codec.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	b.Run(typ+"/codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Decode(typ, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(typ+"/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		v := reflect.New(reflect.TypeOf(e)).Interface()
		for b.Loop() {
			if err := json.Unmarshal(data, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
