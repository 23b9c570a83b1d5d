package registry

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// nameKeyCorpus: Vietnamese names in both Unicode forms and in capitals,
// the whole Vietnamese alphabet with every tone, spacing of every kind, and
// what the fast path must hand to the normalizer (other scripts, symbols
// outside its table, invalid UTF-8, marks outside the combining block).
var nameKeyCorpus = []string{
	"", " ", "Nguyễn Văn An", "  Đặng   thị  Hà ", "NGUYỄN THỊ MINH KHAI", "Trần\tVăn\nBình",
	"aăâbcdđeêghiklmnoôơpqrstuưvxy AĂÂBCDĐEÊGHIKLMNOÔƠPQRSTUƯVXY",
	"àảãáạ ằẳẵắặ ầẩẫấậ èẻẽéẹ ềểễếệ ìỉĩíị òỏõóọ ồổỗốộ ờởỡớợ ùủũúụ ừửữứự ỳỷỹýỵ",
	"ÀẢÃÁẠ ẰẲẴẮẶ ẦẨẪẤẬ ÈẺẼÉẸ ỀỂỄẾỆ ÌỈĨÍỊ ÒỎÕÓỌ ỒỔỖỐỘ ỜỞỠỚỢ ÙỦŨÚỤ ỪỬỮỨỰ ỲỶỸÝỴ",
	"O'Brien-Smith Jr.", "Lê 3", "x\u0301", "\u0301\u0300 A", "Æsir Ørsted ß ﬁ", "Ð ð Þ ſ ı",
	"Nguyễn\u00a0Văn\u2003An", "Nguyễn\u0085An", "中文 名字", "Иван", "bad \xff utf8", "e\u1dc0 z\u20d0",
	"A\u00a0", "\x00\x1f\x7f", "Ǆ ǅ ǆ Ǳ", "İstanbul",
}

func TestNameKeyFastAgreesWithNFD(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := NameKey(s), nameKeyNFD(s); got != want {
			t.Errorf("NameKey(%q) = %q, the normalizer's way %q", s, got, want)
		}
	}
	for _, s := range nameKeyCorpus {
		check(s)
		check(norm.NFD.String(s))
		check(norm.NFC.String(s))
	}
	// Every character of the fast path's table, alone and between letters.
	for r := rune(foldFirst); r <= foldLast; r++ {
		check(string(r))
		check("a" + string(r) + "\u0301b " + string(r))
	}
	// Random names from the Vietnamese alphabet, tones and spaces.
	letters := []rune(strings.Join(nameKeyCorpus[6:9], "") + "  \t\u0301\u0303")
	rng := rand.New(rand.NewPCG(7, 11))
	for range 5000 {
		var b strings.Builder
		for range rng.IntN(30) {
			b.WriteRune(letters[rng.IntN(len(letters))])
		}
		check(b.String())
	}
}

// The fast path takes the usual names itself (or it would save nothing)
// and hands over what its table does not hold.
func TestNameKeyFastTakesVietnameseNames(t *testing.T) {
	for _, s := range nameKeyCorpus[:9] {
		for _, form := range []string{s, norm.NFD.String(s)} {
			if _, ok := nameKeyFast(form); !ok {
				t.Errorf("nameKeyFast(%q) handed over a Vietnamese name", form)
			}
		}
	}
	for _, s := range []string{"Æsir", "中文", "Иван", "bad \xff", "A\u00a0B", "e\u1dc0"} {
		if _, ok := nameKeyFast(s); ok {
			t.Errorf("nameKeyFast(%q) answered; want it handed to the normalizer", s)
		}
	}
}

func FuzzNameKey(f *testing.F) {
	for _, s := range nameKeyCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := NameKey(s), nameKeyNFD(s)
		if got != want {
			t.Fatalf("NameKey(%q) = %q, the normalizer's way %q", s, got, want)
		}
		if utf8.ValidString(s) && got != NameKey(got) {
			t.Fatalf("NameKey(%q) = %q is not its own key (%q)", s, got, NameKey(got))
		}
	})
}

func BenchmarkNameKey(b *testing.B) {
	for _, c := range []struct {
		name string
		f    func(string) string
	}{{"fast", NameKey}, {"nfd", nameKeyNFD}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				c.f("Nguyễn Thị Minh Khai")
			}
		})
	}
}
