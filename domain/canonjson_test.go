package domain

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// canonThing reads its data canonically, and scribbles on itself before it
// looks: what it wrote before declining must not leak into what the codec
// returns.
type canonThing struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func (canonThing) EventType() string { return "CanonThing.v1" }

func (c *canonThing) DecodeCanonicalJSON(b []byte) bool {
	c.Name, c.Count = "scribble", -1
	r := NewCanonicalReader(b)
	r.Open()
	r.Key("name")
	c.Name = r.String()
	r.Key("count")
	c.Count = r.Int()
	r.Close()
	return r.Done()
}

func TestCodecUsesCanonicalDecoderAndFallsBack(t *testing.T) {
	c := NewCodec()
	Register[canonThing](c)
	for _, tc := range []struct {
		data string
		want canonThing
		err  bool
	}{
		{`{"name":"a","count":2}`, canonThing{"a", 2}, false},
		{`{"name":"a", "count":2}`, canonThing{"a", 2}, false},       // a space: encoding/json
		{`{"name":"a","count":2,"x":1}`, canonThing{"a", 2}, false},  // unknown: encoding/json ignores it
		{`{"name":"a","count":"2"}`, canonThing{}, true},             // wrong type
		{`{"name":"x","count":1.5}`, canonThing{}, true},             // not an int
		{`{"count":3}`, canonThing{Count: 3}, false},                 // no scribbled name
		{`{"Name":"a"}`, canonThing{Name: "a"}, false},               // no scribbled count
		{`{"name":"a","count":2}x`, canonThing{}, true},              // trailing data
		{`{"name":"a\u0062","count":2}`, canonThing{"ab", 2}, false}, // an escape
	} {
		got, err := c.Decode("CanonThing.v1", json.RawMessage(tc.data))
		if tc.err {
			var want canonThing
			jerr := json.Unmarshal([]byte(tc.data), &want)
			if err == nil || jerr == nil || err.Error() != "decode CanonThing.v1: "+jerr.Error() {
				t.Errorf("%s: got %v, want the error of encoding/json (%v)", tc.data, err, jerr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %#v, %v; want %#v", tc.data, got, err, tc.want)
		}
	}
}

// TestCanonicalReaderScalarsMatchJSON: every scalar the reader accepts,
// encoding/json accepts into the same Go type with the same value.
func TestCanonicalReaderScalarsMatchJSON(t *testing.T) {
	ints := []string{"0", "-0", "7", "-7", "01", "00", "-", "", "1.5", "1e3", "1E3", "12a", "999999999999999999",
		"1000000000000000000", "9223372036854775807", "-999999999999999999", " 1", "+1", "true"}
	for _, s := range ints {
		r := NewCanonicalReader([]byte(s))
		got := r.Int()
		var want int
		err := json.Unmarshal([]byte(s), &want)
		if r.Done() && (err != nil || got != want) {
			t.Errorf("int %q: reader %d, encoding/json %d, %v", s, got, want, err)
		}
	}
	strs := []string{`""`, `"a"`, `"Nguyễn"`, `"a\"b"`, `"a\\b"`, "\"a\x01\"", "\"\xff\"", "\"a\u2028\"", `"<&>"`, `"a`, `a"`, `"\u0041"`, "\"\x7f\""}
	for _, s := range strs {
		r := NewCanonicalReader([]byte(s))
		got := r.String()
		var want string
		err := json.Unmarshal([]byte(s), &want)
		if r.Done() && (err != nil || got != want) {
			t.Errorf("string %q: reader %q, encoding/json %q, %v", s, got, want, err)
		}
	}
	times := []string{`"2024-01-20T09:00:00Z"`, `"2024-01-20T09:00:00.123456789+07:00"`, `"2024-01-20 09:00:00Z"`, `"2024-13-20T09:00:00Z"`, `null`, `"x"`}
	for _, s := range times {
		r := NewCanonicalReader([]byte(s))
		got := r.Time()
		var want time.Time
		err := json.Unmarshal([]byte(s), &want)
		if r.Done() && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("time %s: reader %v, encoding/json %v, %v", s, got, want, err)
		}
	}
	for _, s := range []string{`true`, `false`, `tru`, `null`, `1`} {
		r := NewCanonicalReader([]byte(s))
		got := r.Bool()
		var want bool
		err := json.Unmarshal([]byte(s), &want)
		if r.Done() && (err != nil || got != want) {
			t.Errorf("bool %s: reader %v, encoding/json %v, %v", s, got, want, err)
		}
	}
	// The canonical spellings are taken.
	for _, s := range []string{"0", "-7", "999999999999999999"} {
		r := NewCanonicalReader([]byte(s))
		if r.Int(); !r.Done() {
			t.Errorf("int %q declined", s)
		}
	}
	if r := NewCanonicalReader([]byte(`"Nguyễn <&>"`)); r.String() != "Nguyễn <&>" || !r.Done() {
		t.Error("a plain string was declined")
	}
}
