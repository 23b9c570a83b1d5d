package domain

import (
	"strings"
	"time"
	"unicode/utf8"
)

// CanonicalDecoder is implemented (on the pointer) by event types that can
// read the exact JSON that Codec.Encode writes for them without
// encoding/json's reflection. A rebuild of the read models decodes millions
// of events, and reflection was a quarter of its CPU.
//
// DecodeCanonicalJSON reports false for anything but that one spelling
// (fields in struct order, no spaces, no escapes, nothing unknown,
// duplicated or null): the codec then decodes the data with encoding/json
// exactly as before, so what is accepted or rejected, and every error
// message, is unchanged. It reports true only when encoding/json would
// have decoded the same bytes into the same value without error; each
// implementation has a differential test against encoding/json that keeps
// it so. The receiver may be partly written when it reports false.
type CanonicalDecoder interface {
	DecodeCanonicalJSON(data []byte) bool
}

// CanonicalReader reads an object written by encoding/json.Marshal field by
// field, in the order the struct declares them. Any surprise (a missing,
// unknown or reordered key, a space, an escape, a type other than the one
// expected) makes it fail for good: Ok then reports false and every read
// returns a zero value. It never errs in the other direction: what it
// returns is what encoding/json returns for the same bytes. Once reading
// has begun, use it through a pointer: a copy would share its string
// buffer (strings.Builder panics on that).
type CanonicalReader struct {
	b         []byte
	strs      strings.Builder // the strings read so far; see String
	failed    bool
	needComma bool // a value was read in the current object
}

// NewCanonicalReader starts reading b.
func NewCanonicalReader(b []byte) CanonicalReader { return CanonicalReader{b: b} }

func (r *CanonicalReader) fail() { r.failed, r.b = true, nil }

// Ok reports whether everything read so far was canonical.
func (r *CanonicalReader) Ok() bool { return !r.failed }

// Done reports whether everything was canonical and nothing follows.
func (r *CanonicalReader) Done() bool { return !r.failed && len(r.b) == 0 }

func (r *CanonicalReader) byte1(c byte) {
	if len(r.b) == 0 || r.b[0] != c {
		r.fail()
		return
	}
	r.b = r.b[1:]
}

// Open reads the '{' of an object; Close its '}'.
func (r *CanonicalReader) Open() {
	r.byte1('{')
	r.needComma = false
}

func (r *CanonicalReader) Close() {
	r.byte1('}')
	r.needComma = true
}

// Key reads the key name (with the comma before it unless it is the first
// of its object). name must need no escaping in JSON.
func (r *CanonicalReader) Key(name string) {
	if !r.OptionalKey(name) {
		r.fail()
	}
}

// OptionalKey reads key name if it comes next (an omitempty field that was
// written) and reports whether it did.
func (r *CanonicalReader) OptionalKey(name string) bool {
	b := r.b
	if r.needComma {
		if len(b) == 0 || b[0] != ',' {
			return false
		}
		b = b[1:]
	}
	if len(b) < len(name)+3 || b[0] != '"' || string(b[1:1+len(name)]) != name || b[1+len(name)] != '"' || b[2+len(name)] != ':' {
		return false
	}
	r.b = b[3+len(name):]
	r.needComma = true // the value read next completes the member
	return true
}

// rawString returns the bytes of a string without escapes and of valid
// UTF-8, which encoding/json reads as they are. Anything else (escapes,
// control characters, invalid UTF-8, which encoding/json replaces) fails.
func (r *CanonicalReader) rawString() []byte {
	b := r.b
	if len(b) == 0 || b[0] != '"' {
		r.fail()
		return nil
	}
	// Most strings are printable ASCII throughout: skip those bytes with
	// one table look-up each before the full check below.
	i := 1
	for i < len(b) && plainASCII[b[i]] {
		i++
	}
	ascii := true
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s := b[1:i]
			if !ascii && !utf8.Valid(s) {
				r.fail()
				return nil
			}
			r.b = b[i+1:]
			return s
		case c == '\\' || c < 0x20:
			r.fail()
			return nil
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	r.fail()
	return nil
}

// plainASCII[c] is whether c is a byte a canonical string holds as it is,
// as ASCII: printable, not a quote and not a backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// String reads a string value.
//
// The strings of one reader share a few allocations instead of one each
// (they were a third of all the objects a rebuild of the read models
// allocated): each is copied to the end of a buffer, strs, and cut from
// it. The copy is what makes them safe to keep: nothing in the codec's
// contract stops a caller from reusing its bytes once Decode returns. A
// strings.Builder never writes over what it has handed out, and when a
// string does not fit the buffer, a new one is started, leaving the old
// one to the strings cut from it. The price is retention: one string
// kept alive keeps its whole buffer (a hundred bytes or so for an event)
// alive with it.
func (r *CanonicalReader) String() string {
	s := r.rawString()
	if len(s) == 0 {
		return ""
	}
	if r.strs.Cap()-r.strs.Len() < len(s) {
		r.strs = strings.Builder{}
		r.strs.Grow(len(s) + len(r.b)*stringsPercent/100)
	}
	r.strs.Write(s)
	all := r.strs.String()
	return all[len(all)-len(s):]
}

// stringsPercent sizes a new buffer for String: in the events read
// canonically, string values are 25 to 40% of what follows the first one
// (keys, punctuation, amounts and times are the rest), so a buffer of 40%
// of what is left to read holds the remaining strings of most events in
// one allocation without wasting much.
const stringsPercent = 40

// Int reads an integer of at most 18 digits (so it cannot overflow),
// written as encoding/json writes it: no leading zeros, no fraction or
// exponent (which encoding/json refuses for an int).
func (r *CanonicalReader) Int() int {
	b := r.b
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n, i := 0, 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i == 0 || i > 18 || (b[0] == '0' && i > 1) || (i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E')) {
		r.fail()
		return 0
	}
	r.b = b[i:]
	if neg {
		n = -n
	}
	return n
}

// Bool reads true or false.
func (r *CanonicalReader) Bool() bool {
	switch {
	case len(r.b) >= 4 && string(r.b[:4]) == "true":
		r.b = r.b[4:]
		return true
	case len(r.b) >= 5 && string(r.b[:5]) == "false":
		r.b = r.b[5:]
		return false
	}
	r.fail()
	return false
}

// Money reads money as Money.MarshalJSON writes it, with Money's own fast
// path (parseMoneyFast): the value is the one Money.UnmarshalJSON returns.
func (r *CanonicalReader) Money() Money {
	end := len(moneyFastHead)
	for end < len(r.b) && r.b[end] != '"' {
		end++
	}
	end += len(moneyFastTail)
	if end > len(r.b) {
		r.fail()
		return Money{}
	}
	n, ok := parseMoneyFast(r.b[:end])
	if !ok {
		r.fail()
		return Money{}
	}
	r.b = r.b[end:]
	return decodedVND(n)
}

// Period reads a period through Period.UnmarshalText, as encoding/json
// does.
func (r *CanonicalReader) Period() Period {
	var p Period
	if s := r.rawString(); s == nil || p.UnmarshalText(s) != nil {
		r.fail()
		return Period{}
	}
	return p
}

// Date reads a date through Date.UnmarshalText, as encoding/json does.
func (r *CanonicalReader) Date() Date {
	var d Date
	if s := r.rawString(); s == nil || d.UnmarshalText(s) != nil {
		r.fail()
		return Date{}
	}
	return d
}

// Quoted reads a string value and returns it with its quotes, for a type
// whose UnmarshalJSON reads it: encoding/json hands UnmarshalJSON the
// same bytes. Nil when the value is not a canonical string.
func (r *CanonicalReader) Quoted() []byte {
	b := r.b
	if r.rawString() == nil {
		return nil
	}
	return b[:len(b)-len(r.b)]
}

// Time reads a time through time.Time.UnmarshalJSON, as encoding/json
// does.
func (r *CanonicalReader) Time() time.Time {
	q := r.Quoted()
	if q == nil {
		return time.Time{}
	}
	var t time.Time
	if err := t.UnmarshalJSON(q); err != nil {
		r.fail()
		return time.Time{}
	}
	return t
}

// Fail makes the reader fail, for a value its caller could not take.
func (r *CanonicalReader) Fail() { r.fail() }

// Array reads a non-empty array, calling item for each element. An empty
// array fails: encoding/json makes it an empty, non-nil slice, which the
// canonical spelling (omitempty) never writes.
func (r *CanonicalReader) Array(item func()) {
	r.byte1('[')
	for !r.failed {
		item()
		if len(r.b) > 0 && r.b[0] == ',' {
			r.b = r.b[1:]
			continue
		}
		r.byte1(']')
		break
	}
	r.needComma = true
}
