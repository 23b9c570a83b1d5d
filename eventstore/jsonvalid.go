package eventstore

import (
	"encoding/binary"
	"math/bits"
)

// validJSON reports whether b is one JSON value (RFC 8259) surrounded only by
// whitespace. It accepts exactly what encoding/json.Valid accepts, including
// its two choices the RFC leaves open: invalid UTF-8 inside strings is
// accepted (json.Valid checks syntax, not encoding), and nesting deeper than
// maxJSONDepth is rejected.
//
// It exists because ValidateAppend checks every event of every append, and
// json.Valid, which calls a function pointer per input byte, was about a
// quarter of the embedded store's batched-append time. This checker is one
// loop over the bytes with no allocation; FuzzValidJSON compares it with
// json.Valid.
func validJSON(b []byte) bool {
	// Event documents are shallow: a two-word bit stack (128 levels) lives
	// in this frame. Deeper documents are checked again, from the start,
	// with a stack big enough for maxJSONDepth; that path is only for
	// unusual input, so its cost does not matter.
	var small [2]uint64
	valid, tooDeep := scanJSON(b, small[:])
	if tooDeep {
		return validJSONDeep(b)
	}
	return valid
}

// validJSONDeep is apart from validJSON so that the common case does not pay
// for zeroing a 1.25 KiB stack.
//
//go:noinline
func validJSONDeep(b []byte) bool {
	var big [(maxJSONDepth + 63) / 64]uint64
	valid, _ := scanJSON(b, big[:])
	return valid
}

// maxJSONDepth is encoding/json's nesting limit (its maxNestingDepth): a
// document of 10000 nested arrays or objects is valid, one of 10001 is not.
const maxJSONDepth = 10000

// Byte classes, one bit each, looked up in jsonClass.
const (
	classPlain = 1 << iota // may appear unescaped in a string: >= 0x20, not '"' or '\\'
	classSpace             // JSON whitespace: ' ', '\t', '\n', '\r'
	classDigit             // '0'..'9'
	classHex               // '0'..'9', 'a'..'f', 'A'..'F'
)

var jsonClass = func() (t [256]uint8) {
	for c := 0x20; c < 256; c++ {
		if c != '"' && c != '\\' {
			t[c] |= classPlain
		}
	}
	for _, c := range []byte{' ', '\t', '\n', '\r'} {
		t[c] |= classSpace
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= classDigit | classHex
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= classHex
		t[c-'a'+'A'] |= classHex
	}
	return t
}()

// scanJSON checks b with stack as the bit stack of open containers (bit set:
// object, clear: array). tooDeep reports that the nesting outgrew stack
// before the input was decided; valid is then meaningless.
//
// The loop alternates two steps: read one value (opening a container counts
// as reading its first element's start), then consume what may follow a
// complete value: whitespace, a closing bracket, or a comma and, in an
// object, the next key and its colon.
func scanJSON(b []byte, stack []uint64) (valid, tooDeep bool) {
	n := len(b)
	i := 0
	depth := 0
	for {
		// A value is expected at b[i:], after optional whitespace.
		i = skipSpace(b, i)
		if i >= n {
			return false, false
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth == maxJSONDepth {
				return false, false
			}
			w, bit := depth>>6, uint64(1)<<(depth&63)
			if w >= len(stack) {
				return false, true
			}
			depth++
			i = skipSpace(b, i+1)
			if c == '{' {
				stack[w] |= bit
				if i < n && b[i] == '}' {
					depth--
					i++
					break // the empty object is a complete value
				}
				if i = scanKey(b, i); i < 0 {
					return false, false
				}
			} else {
				stack[w] &^= bit
				if i < n && b[i] == ']' {
					depth--
					i++
					break // the empty array is a complete value
				}
			}
			continue // read the container's first value
		case '"':
			i = scanString(b, i+1)
		case 't':
			i = scanLiteral(b, i, "true")
		case 'f':
			i = scanLiteral(b, i, "false")
		case 'n':
			i = scanLiteral(b, i, "null")
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			i = scanNumber(b, i)
		default:
			return false, false
		}
		if i < 0 {
			return false, false
		}

		// A value ended at b[i]: close containers until a comma asks for
		// the next value.
		for {
			i = skipSpace(b, i)
			if depth == 0 {
				return i == n, false
			}
			if i >= n {
				return false, false
			}
			c := b[i]
			i++
			top := depth - 1
			inObject := stack[top>>6]&(1<<(top&63)) != 0
			switch {
			case c == ',' && inObject:
				if i = scanKey(b, skipSpace(b, i)); i < 0 {
					return false, false
				}
			case c == ',': // an array's next value follows directly
			case c == '}' && inObject, c == ']' && !inObject:
				depth--
				continue
			default:
				return false, false
			}
			break
		}
	}
}

// skipSpace returns the index of the first non-whitespace byte at or after i
// (or len(b)). Compact JSON has none: the inlined first test usually ends
// it.
func skipSpace(b []byte, i int) int {
	// uint(i) also tells the compiler i >= 0, so b[i] needs no bounds check.
	if uint(i) < uint(len(b)) && b[i] > ' ' {
		return i
	}
	return skipSpaceLoop(b, i)
}

func skipSpaceLoop(b []byte, i int) int {
	for ; i < len(b); i++ {
		if jsonClass[b[i]]&classSpace == 0 {
			return i
		}
	}
	return i
}

// scanKey reads an object key and the colon after it, starting at b[i] (no
// leading whitespace), and returns the index after the colon, or -1.
func scanKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanString(b, i+1); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

// scanLiteral checks that b[i:] starts with lit and returns the index after
// it, or -1. What follows is checked by the caller like after any value, so
// "truex" fails there.
func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanString reads a string's body from b[i], just after the opening quote,
// and returns the index after the closing quote, or -1. Bytes >= 0x80 pass
// unchecked, as in json.Valid.
func scanString(b []byte, i int) int {
	for {
		// Most string bytes need no attention: skip them eight at a
		// time up to the first quote, backslash or control character.
		for len(b)-i >= 8 {
			if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
			i += 8
		}
		for i < len(b) && jsonClass[b[i]]&classPlain != 0 {
			i++
		}
	special:
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 ||
					jsonClass[b[i+1]]&jsonClass[b[i+2]]&jsonClass[b[i+3]]&jsonClass[b[i+4]]&classHex == 0 {
					return -1
				}
				i += 5
			default:
				return -1
			}
		default:
			return -1 // a control character
		}
	}
}

// specialBytes returns a word whose lowest set bit is the high bit of the
// first byte in x (little-endian) that is '"', '\\' or below 0x20, or zero
// if there is none. It uses the "has a byte less than n" bit trick, exact
// for n <= 0x80, with "has a zero byte" (n = 1) applied to x with the quote
// or backslash XORed away. Bits above the first hit may be spurious (a
// borrow runs upwards), so only the lowest one is meaningful.
func specialBytes(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	control := (x - ones*0x20) &^ x
	return (control | (quote-ones)&^quote | (backslash-ones)&^backslash) & highs
}

// scanNumber reads a number at b[i] and returns the index after it, or -1:
// '-'? ('0' | [1-9][0-9]*) ('.' [0-9]+)? ([eE] [+-]? [0-9]+)?
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
		if i >= len(b) {
			return -1
		}
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || jsonClass[b[i]]&classDigit == 0 {
			return -1
		}
		i = skipDigits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || jsonClass[b[i]]&classDigit == 0 {
			return -1
		}
		i = skipDigits(b, i)
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && jsonClass[b[i]]&classDigit != 0 {
		i++
	}
	return i
}
