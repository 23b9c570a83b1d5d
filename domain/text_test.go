package domain

import (
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in, want, code string
		min, max       int
	}{
		{in: "  Nguyễn \t Văn\nAn ", want: "Nguyễn Văn An", min: 1, max: 50},
		{in: norm.NFD.String("Nguyễn"), want: "Nguyễn", min: 1, max: 50},
		{in: "   ", code: "required", min: 1, max: 50},
		{in: "", want: "", min: 0, max: 50},
		{in: "abc", code: "too_long", min: 1, max: 2},
		{in: "ab", code: "too_short", min: 3, max: 5},
		{in: "a\x07b", code: "invalid_text", min: 1, max: 5},
		{in: "a\xffb", code: "invalid_text", min: 1, max: 5},
		{in: strings.Repeat("x", 10_000), code: "too_long", min: 1, max: 200},
	} {
		got, err := CleanText("f", tc.in, tc.min, tc.max)
		if tc.code != "" {
			re, ok := AsRuleError(err)
			if !ok || re.Code != tc.code || re.Field != "f" {
				t.Errorf("CleanText(%q): want %s, got %q %v", tc.in, tc.code, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CleanText(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !norm.NFC.IsNormalString(got) {
			t.Errorf("%q is not NFC", got)
		}
	}
}
