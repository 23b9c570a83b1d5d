package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/ansinh/ansinh/domain"
	"github.com/labstack/echo/v4"
)

// jsonSerializer writes every JSON answer in one piece: it encodes into a
// pooled buffer, sets Content-Length and writes once. Echo's default
// encodes straight into the connection, which for a 12 KB balance meant a
// chunked answer in several write calls (8 % of a balance query's CPU was
// in write system calls). A value that can write itself (jsonAppender) is
// not passed through reflection at all.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

// jsonAppender is an answer that encodes itself. Its output must be the
// same JSON, value for value, as encoding/json gives for the reference type
// it stands for; each implementation has a differential test.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// maxPooledBuffer: a buffer grown by an exceptionally large answer (a big
// report) is left to the GC rather than kept in the pool.
const maxPooledBuffer = 1 << 20

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s jsonSerializer) Serialize(c echo.Context, v any, indent string) error {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	if a, ok := v.(jsonAppender); ok {
		b := a.appendJSON(buf.AvailableBuffer())
		if indent != "" { // ?pretty: rare, and worth no fast path
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", indent); err != nil {
				return err
			}
			b = pretty.Bytes()
		}
		buf.Write(b)
		buf.WriteByte('\n') // as json.Encoder ends a value
	} else {
		enc := json.NewEncoder(buf)
		if indent != "" {
			enc.SetIndent("", indent)
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	resp := c.Response()
	resp.Header().Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	_, err := resp.Write(buf.Bytes())
	return err
}

// JSON writing helpers for jsonAppender implementations. Strings are
// escaped as encoding/json escapes them (HTML-safe, invalid UTF-8 replaced
// by U+FFFD), so that the two encodings agree byte for byte on strings.

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendAmount writes a money amount as toMoneyJSON does (the decimal's
// String), without allocating for the usual whole-dong amount that fits
// an int64.
func appendAmount(b []byte, m domain.Money) []byte {
	b = append(b, `{"amount":"`...)
	if d := m.Amount; d.Exponent() == 0 && d.NumDigits() <= 18 {
		b = strconv.AppendInt(b, d.CoefficientInt64(), 10)
	} else {
		b = append(b, d.String()...)
	}
	b = append(b, `","currency":`...)
	b = appendJSONString(b, string(m.Currency))
	return append(b, '}')
}

// appendKey writes ,"key": (without the comma for the first field).
func appendKey(b []byte, key string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}
