package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// CleanText normalizes text a client typed (a name, a reason, a document
// reference) into the one form the ledger stores: Unicode NFC (so "Nguyễn"
// typed with combining marks and precomposed compares equal), surrounding
// space trimmed and inner runs of white space collapsed to one space. It
// rejects control characters and a length outside minRunes..maxRunes,
// counted after cleaning. The error is a *RuleError naming field.
func CleanText(field, s string, minRunes, maxRunes int) (string, error) {
	// Bound the work before normalizing: NFC of a huge input is wasted effort.
	if len(s) > 4*maxRunes+64 {
		return "", Reject("too_long", field, "must be at most %d characters", maxRunes)
	}
	if !utf8.ValidString(s) {
		return "", Reject("invalid_text", field, "is not valid UTF-8 text")
	}
	s = norm.NFC.String(s)
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r) || r == utf8.RuneError:
			return "", Reject("invalid_text", field, "must not contain control characters")
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	n := utf8.RuneCountInString(out)
	if n < minRunes {
		if minRunes == 1 {
			return "", Reject("required", field, "is required")
		}
		return "", Reject("too_short", field, "must be at least %d characters", minRunes)
	}
	if n > maxRunes {
		return "", Reject("too_long", field, "must be at most %d characters", maxRunes)
	}
	return out, nil
}
