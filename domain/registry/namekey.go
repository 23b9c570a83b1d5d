package registry

import (
	"strings"
	"unicode/utf8"
)

// nameKeyFast is NameKey without the Unicode normalizer, for names made of
// ASCII, Latin letters with diacritics and combining marks, which is every
// Vietnamese name: about 13 times cheaper than decomposing the whole name
// (BenchmarkNameKey: 76 – 80 ns and one allocation against 940 – 1,140 ns
// and seven; folding names was a fifth of the registry read model's cost in
// a rebuild, and every name search folds its text). It reports false for a name with
// any other character, and NameKey then takes the normalizer's way.
//
// Per character it gives what nameKeyNFD gives for that character alone
// (foldTable is computed from nameKeyNFD itself), and that is nameKeyNFD of
// the whole name: decomposing maps each character on its own and only
// reorders combining marks, which are dropped; a combining mark given as
// such is dropped too. TestNameKeyFastAgreesWithNFD and FuzzNameKey check
// it against nameKeyNFD.
func nameKeyFast(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		var out byte
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == ' ' || c >= '\t' && c <= '\r':
				space = true
				continue
			case c >= 'a' && c <= 'z':
				out = c - 'a' + 'A'
			default:
				out = c
			}
		} else {
			r, n := utf8.DecodeRuneInString(s[i:])
			i += n
			switch {
			case r >= combiningFirst && r <= combiningLast:
				continue // a mark: dropped, as after decomposing
			case r >= foldFirst && r <= foldLast && foldTable[r-foldFirst] != 0:
				out = foldTable[r-foldFirst]
			default:
				return "", false
			}
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(out)
	}
	return b.String(), true
}

// The combining diacritical marks: each is dropped by NameKey, alone or
// after a letter.
const (
	combiningFirst = 0x300
	combiningLast  = 0x36f
)

// foldTable maps the letters of Latin-1 Supplement to Latin Extended-B and
// of Latin Extended Additional (where ạ, ế, ữ, ... are) to the one ASCII
// letter nameKeyNFD folds each to; 0 for those it does not (×, æ, ...),
// which nameKeyFast leaves to the normalizer.
const (
	foldFirst = 0xc0
	foldLast  = 0x1eff
)

var foldTable = func() []byte {
	t := make([]byte, foldLast-foldFirst+1)
	for _, span := range [][2]rune{{0xc0, 0x24f}, {0x1e00, 0x1eff}} {
		for r := span[0]; r <= span[1]; r++ {
			k := nameKeyNFD(string(r))
			if len(k) == 1 && k[0] >= 'A' && k[0] <= 'Z' {
				t[r-foldFirst] = k[0]
			}
		}
	}
	return t
}()
