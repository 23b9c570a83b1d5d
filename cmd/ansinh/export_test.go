package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
)

// appendFixture writes events to the embedded store of data: several
// streams, Vietnamese text, characters JSON encoders like to escape
// (<, >, &, U+2028), an event without metadata, and more events than one
// export page, so that paging is crossed. It returns the events as the
// store recorded them.
func appendFixture(t *testing.T, data string) []eventstore.RecordedEvent {
	t.Helper()
	ctx := context.Background()
	s, err := pebble.Open(filepath.Join(data, "events"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	add := func(stream string, evs ...eventstore.EventData) {
		t.Helper()
		for i := range evs {
			evs[i].ID = uuid.New()
		}
		if _, err := s.Append(ctx, stream, eventstore.Any(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	add("beneficiary-001050000001",
		eventstore.EventData{Type: "BeneficiaryRegistered.v2", Data: json.RawMessage(`{"citizen_id":"001050000001","full_name":"Nguyễn Văn An","note":"<a & b>` + "\u2028" + `"}`), Metadata: json.RawMessage(`{"actor":{"user_id":"lan","role":"registrar"}}`)},
		eventstore.EventData{Type: "PaymentMethodChosen.v1", Data: json.RawMessage(`{"method":"cash"}`)},
	)
	add("catalogue", eventstore.EventData{Type: "ProgramDefined.v1", Data: json.RawMessage(`{"code":"SOCIAL_MONTHLY","n":1.50}`), Metadata: json.RawMessage(`{}`)})
	batch := make([]eventstore.EventData, exportPage+5)
	for i := range batch {
		batch[i] = eventstore.EventData{Type: "Tick.v1", Data: json.RawMessage(`{"i":` + strings.Repeat("1", 1+i%5) + `}`), Metadata: json.RawMessage(`{"k":"v"}`)}
	}
	add("ticks", batch[:exportPage/2]...)
	add("ticks", batch[exportPage/2:]...)
	add("beneficiary-001050000001", eventstore.EventData{Type: "BeneficiaryDied.v1", Data: json.RawMessage(`{"date_of_death":"2024-05-01"}`), Metadata: json.RawMessage(`{"reason":"giấy chứng tử"}`)})

	var all []eventstore.RecordedEvent
	for after := eventstore.Start; ; {
		page, err := s.ReadAll(ctx, after, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// readExport reads JSON Lines back, checking that each line is one object.
func readExport(t *testing.T, out string) []exportedEvent {
	t.Helper()
	var got []exportedEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e exportedEvent
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %d %q: %v", len(got)+1, sc.Text(), err)
		}
		got = append(got, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// sameEvent compares an exported event with the recorded one, data and
// metadata byte for byte.
func sameEvent(t *testing.T, i int, got exportedEvent, want eventstore.RecordedEvent) {
	t.Helper()
	wantMeta := string(want.Metadata)
	if wantMeta == "" {
		wantMeta = "null"
	}
	if got.Stream != want.StreamID || got.Revision != want.Revision || got.Position != want.Position || got.ID != want.ID ||
		got.Type != want.Type || !got.RecordedAt.Equal(want.RecordedAt) || got.RecordedAt.IsZero() ||
		string(got.Data) != string(want.Data) || string(got.Metadata) != wantMeta {
		t.Fatalf("event %d:\n got %+v\nwant %+v", i, got, want)
	}
}

func TestExportRoundTrip(t *testing.T) {
	data := t.TempDir()
	want := appendFixture(t, data)

	code, stdout, stderr := runCmd(t, nil, "export", "events", "--data", data)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := readExport(t, stdout)
	if len(got) != len(want) {
		t.Fatalf("exported %d events, want %d", len(got), len(want))
	}
	for i := range want {
		sameEvent(t, i, got[i], want[i])
	}
	if strings.Contains(stdout, `\u003c`) || strings.Contains(stdout, `\u0026`) {
		t.Fatal("data was HTML-escaped: its bytes are not the stored ones")
	}
	last := want[len(want)-1].Position
	if !strings.Contains(stderr, "exported 1009 events, positions 1/1 to "+last.String()) {
		t.Fatalf("stderr %q", stderr)
	}

	// A window of the log: after the 2nd event, up to the 4th.
	code, stdout, stderr = runCmd(t, nil, "export", "events", "--data", data, "--after", want[1].Position.String(), "--to", want[3].Position.String())
	if code != exitOK {
		t.Fatalf("window: exit %d: %s", code, stderr)
	}
	got = readExport(t, stdout)
	if len(got) != 2 {
		t.Fatalf("window exported %d events, want 2", len(got))
	}
	sameEvent(t, 0, got[0], want[2])
	sameEvent(t, 1, got[1], want[3])

	// One stream, in global order, and a window of it.
	code, stdout, _ = runCmd(t, nil, "export", "events", "--data", data, "--stream", "beneficiary-001050000001")
	got = readExport(t, stdout)
	if code != exitOK || len(got) != 3 {
		t.Fatalf("stream: exit %d, %d events, want 3", code, len(got))
	}
	for i, w := range []eventstore.RecordedEvent{want[0], want[1], want[len(want)-1]} {
		sameEvent(t, i, got[i], w)
	}
	code, stdout, _ = runCmd(t, nil, "export", "events", "--data", data, "--stream", "beneficiary-001050000001", "--after", want[0].Position.String(), "--to", want[5].Position.String())
	if got = readExport(t, stdout); code != exitOK || len(got) != 1 {
		t.Fatalf("stream window: exit %d, %d events, want 1", code, len(got))
	}
	sameEvent(t, 0, got[0], want[1])
}

func TestExportToFile(t *testing.T) {
	data := t.TempDir()
	want := appendFixture(t, data)
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	code, stdout, stderr := runCmd(t, nil, "export", "events", "--data", data, "--out", out)
	if code != exitOK || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := readExport(t, string(b)); len(got) != len(want) {
		t.Fatalf("file holds %d events, want %d", len(got), len(want))
	}
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil || len(entries) != 1 {
		t.Fatalf("the directory holds %v (%v); want only the export, no partial file", entries, err)
	}
	// An export never overwrites a file.
	code, _, stderr = runCmd(t, nil, "export", "events", "--data", data, "--out", out)
	if code != exitUsage || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second export to the same file: exit %d, %q", code, stderr)
	}
}

func TestExportErrors(t *testing.T) {
	data := t.TempDir()
	appendFixture(t, data)
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"export"}, exitUsage, "want what to export"},
		{[]string{"export", "users"}, exitUsage, `unknown kind "users"`},
		{[]string{"export", "events", "--after", "x"}, exitUsage, "--after: position"},
		{[]string{"export", "events", "--to", "1/x"}, exitUsage, "--to: position"},
		{[]string{"export", "events", "--after", "5", "--to", "5"}, exitUsage, "nothing to export"},
		{[]string{"export", "events", "--stream", "$all"}, exitUsage, "--stream"},
		{[]string{"export", "events", "--data", data, "--stream", "nobody"}, exitFailure, "stream nobody has no events"},
	}
	for _, tt := range tests {
		code, _, stderr := runCmd(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.err) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.err)
		}
	}
	// An empty store exports nothing, successfully.
	code, stdout, stderr := runCmd(t, nil, "export", "events", "--data", t.TempDir())
	if code != exitOK || stdout != "" || !strings.Contains(stderr, "exported 0 events") {
		t.Fatalf("empty store: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// With the embedded store, a store held by another (here: this process, as
// a running server would) makes import and export fail at once, in one
// line, before anything is written.
func TestImportAndExportWhileTheStoreIsHeld(t *testing.T) {
	data := t.TempDir()
	held, err := pebble.Open(filepath.Join(data, "events"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, args := range [][]string{
		{"import", "beneficiaries", "--file", sampleFile, "--data", data},
		{"export", "events", "--data", data},
	} {
		code, stdout, stderr := runCmd(t, nil, args...)
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, "already open") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args[:2], code, stdout, stderr)
		}
	}
	if h, err := held.Head(context.Background()); err != nil || !h.IsStart() {
		t.Fatalf("head %s, %v: something was written", h, err)
	}
}
