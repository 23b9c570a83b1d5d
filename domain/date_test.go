package domain

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2024-02-29", true}, {"2023-02-29", false}, {"2024-2-09", false}, {"1899-12-31", false},
		{"2101-01-01", false}, {"20240101", false}, {"", false}, {"1945-09-02", true},
	} {
		d, err := ParseDate(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDate(%q) = %v, %v", tc.in, d, err)
		}
		if tc.ok && d.String() != tc.in {
			t.Errorf("round trip %q -> %q", tc.in, d)
		}
	}
}

func TestDateOfUsesVietnamTime(t *testing.T) {
	// 18:00 UTC on 31 Jan is already 1 Feb in Hanoi.
	if d := DateOf(time.Date(2024, 1, 31, 18, 0, 0, 0, time.UTC)); d != MustDate("2024-02-01") {
		t.Errorf("got %s", d)
	}
	if d := MustDate("2024-03-01").AddDays(-1); d != MustDate("2024-02-29") {
		t.Errorf("AddDays: %s", d)
	}
}

func TestDateJSON(t *testing.T) {
	var v struct {
		D Date `json:"d"`
		E Date `json:"e,omitzero"`
	}
	v.D = MustDate("2024-01-10")
	b, _ := json.Marshal(v)
	if string(b) != `{"d":"2024-01-10"}` {
		t.Fatalf("got %s", b)
	}
	if err := json.Unmarshal([]byte(`{"d":"2024-13-01"}`), &v); err == nil {
		t.Error("month 13 accepted")
	}
}
