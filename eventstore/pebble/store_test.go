package pebble

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
)

func TestRoundTripMemoryAndDisk(t *testing.T) {
	stores := map[string]func(t *testing.T) *Store{
		"memory": func(t *testing.T) *Store { return openMemory(t) },
		"disk":   func(t *testing.T) *Store { return openDisk(t, t.TempDir()) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			evs := newEvents(3, "Thing.v1")
			evs[1].Metadata = []byte(`{"by":"test"}`)
			res := mustAppend(t, s, "a-1", eventstore.NoStream(), evs...)
			if res.NextRevision != 2 || res.Position != (eventstore.Position{Commit: 3, Prepare: 3}) {
				t.Fatalf("result = %+v, want revision 2 at 3/3", res)
			}
			got, err := s.ReadStream(ctx, "a-1", eventstore.ReadStreamOptions{Limit: 10})
			if err != nil {
				t.Fatalf("ReadStream: %v", err)
			}
			if len(got) != 3 {
				t.Fatalf("ReadStream returned %d events, want 3", len(got))
			}
			for i, ev := range got {
				want := evs[i]
				if ev.ID != want.ID || ev.Type != want.Type || !bytes.Equal(ev.Data, want.Data) ||
					!bytes.Equal(ev.Metadata, want.Metadata) || ev.StreamID != "a-1" ||
					ev.Revision != uint64(i) || ev.Position.Commit != uint64(i+1) || ev.RecordedAt.IsZero() ||
					ev.RecordedAt.Location().String() != "UTC" {
					t.Errorf("event %d = %+v, want %+v at revision %d", i, ev, want, i)
				}
			}
			if got[0].Metadata != nil {
				t.Errorf("empty metadata read back as %q, want nil", got[0].Metadata)
			}
			head, err := s.Head(ctx)
			if err != nil || head != res.Position {
				t.Fatalf("Head = %v, %v; want %v", head, err, res.Position)
			}
		})
	}
}

func TestReopenRecoversHead(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "a-1", eventstore.NoStream(), newEvents(2, "T")...)
	mustAppend(t, s, "b-1", eventstore.NoStream(), newEvents(1, "T")...)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openDisk(t, dir)
	head, _ := s.Head(context.Background())
	if head.Commit != 3 {
		t.Fatalf("head after reopen = %v, want 3/3", head)
	}
	// The heads cache starts empty: the writer must find a-1's head on disk.
	_, err = s.Append(context.Background(), "a-1", eventstore.NoStream(), newEvents(1, "T")...)
	if !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Fatalf("NoStream on existing stream after reopen: err = %v, want wrong expected revision", err)
	}
	res := mustAppend(t, s, "a-1", eventstore.Exact(1), newEvents(1, "T")...)
	if res.NextRevision != 2 || res.Position.Commit != 4 {
		t.Fatalf("append after reopen = %+v, want revision 2 at 4", res)
	}
}

func TestExpectedRevision(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		existing int // events already in the stream
		expected eventstore.ExpectedRevision
		wantRev  uint64
		wantErr  error
		actual   int64
	}{
		{"no stream on empty", 0, eventstore.NoStream(), 0, nil, 0},
		{"no stream on existing", 2, eventstore.NoStream(), 0, eventstore.ErrWrongExpectedRevision, 1},
		{"any on empty", 0, eventstore.Any(), 0, nil, 0},
		{"any on existing", 2, eventstore.Any(), 2, nil, 0},
		{"exists on empty", 0, eventstore.StreamExists(), 0, eventstore.ErrWrongExpectedRevision, -1},
		{"exists on existing", 2, eventstore.StreamExists(), 2, nil, 0},
		{"exact match", 2, eventstore.Exact(1), 2, nil, 0},
		{"exact behind", 3, eventstore.Exact(1), 0, eventstore.ErrWrongExpectedRevision, 2},
		{"exact ahead", 2, eventstore.Exact(5), 0, eventstore.ErrWrongExpectedRevision, 1},
		{"exact on empty", 0, eventstore.Exact(0), 0, eventstore.ErrWrongExpectedRevision, -1},
		{"exact huge", 1, eventstore.Exact(eventstore.End), 0, eventstore.ErrWrongExpectedRevision, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openMemory(t)
			if tc.existing > 0 {
				mustAppend(t, s, "s-1", eventstore.NoStream(), newEvents(tc.existing, "T")...)
			}
			res, err := s.Append(ctx, "s-1", tc.expected, newEvents(1, "T")...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				var wrong *eventstore.WrongExpectedRevisionError
				if !errors.As(err, &wrong) || wrong.Actual != tc.actual || wrong.Stream != "s-1" {
					t.Fatalf("err = %#v, want actual %d", err, tc.actual)
				}
				if got := s.Stats().Head; got != uint64(tc.existing) {
					t.Fatalf("refused append wrote: head %d, want %d", got, tc.existing)
				}
				return
			}
			if res.NextRevision != tc.wantRev {
				t.Fatalf("NextRevision = %d, want %d", res.NextRevision, tc.wantRev)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	ctx := context.Background()
	first := newEvents(3, "T")
	other := newEvents(3, "T")
	mixed := []eventstore.EventData{first[0], first[1], other[2]}
	reordered := []eventstore.EventData{first[1], first[0], first[2]}
	tests := []struct {
		name     string
		expected eventstore.ExpectedRevision // of the first append and the retry
		retry    []eventstore.EventData
		wantErr  error // nil: the retry returns the first result
	}{
		{"no stream, same events", eventstore.NoStream(), first, nil},
		{"no stream, other events", eventstore.NoStream(), other, eventstore.ErrWrongExpectedRevision},
		{"no stream, partly same", eventstore.NoStream(), mixed, eventstore.ErrIdempotencyConflict},
		{"no stream, reordered", eventstore.NoStream(), reordered, eventstore.ErrIdempotencyConflict},
		{"no stream, prefix", eventstore.NoStream(), first[:2], nil},
		{"no stream, longer", eventstore.NoStream(), append(append([]eventstore.EventData{}, first...), other[0]), eventstore.ErrIdempotencyConflict},
		{"exact, same events", eventstore.Exact(0), first, nil},
		{"exact, other events", eventstore.Exact(0), other, eventstore.ErrWrongExpectedRevision},
		{"exact, partly same", eventstore.Exact(0), mixed, eventstore.ErrIdempotencyConflict},
		{"any, same events", eventstore.Any(), first, nil},
		{"any, other events are new", eventstore.Any(), other, nil},
		{"any, partly same", eventstore.Any(), mixed, eventstore.ErrIdempotencyConflict},
		{"any, reordered", eventstore.Any(), reordered, eventstore.ErrIdempotencyConflict},
		{"exists, same events", eventstore.StreamExists(), first, nil},
		{"exists, partly same", eventstore.StreamExists(), mixed, eventstore.ErrIdempotencyConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openMemory(t)
			// A seed event makes Exact(0) and StreamExists meaningful; for
			// NoStream the stream must not exist yet.
			if !tc.expected.IsNoStream() {
				mustAppend(t, s, "s-1", eventstore.NoStream(), newEvents(1, "Seed")...)
			}
			mustAppend(t, s, "s-0", eventstore.Any(), newEvents(1, "Noise")...)
			res1 := mustAppend(t, s, "s-1", tc.expected, first...)
			mustAppend(t, s, "s-0", eventstore.Any(), newEvents(1, "Noise")...)
			before := s.Stats().Head
			res2, err := s.Append(ctx, "s-1", tc.expected, tc.retry...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("retry err = %v, want %v", err, tc.wantErr)
			}
			after := s.Stats().Head
			if err != nil {
				if after != before {
					t.Fatalf("refused retry wrote %d events", after-before)
				}
				return
			}
			if tc.expected.IsAny() && tc.retry[0].ID != first[0].ID {
				if after != before+uint64(len(tc.retry)) || res2.NextRevision != res1.NextRevision+3 {
					t.Fatalf("new events under Any: result %+v, head %d -> %d", res2, before, after)
				}
				return
			}
			if after != before {
				t.Fatalf("retry wrote %d events, want none", after-before)
			}
			want := res1
			if len(tc.retry) < len(first) {
				// A prefix of the first append: the result of its last event.
				evs, err := s.ReadStream(ctx, "s-1", eventstore.ReadStreamOptions{From: res1.NextRevision - 1, Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				want = eventstore.AppendResult{NextRevision: evs[0].Revision, Position: evs[0].Position}
			}
			if res2 != want {
				t.Fatalf("retry result = %+v, want %+v", res2, want)
			}
		})
	}
}

func TestReadStreamWindows(t *testing.T) {
	s := openMemory(t)
	ctx := context.Background()
	for range 5 {
		mustAppend(t, s, "s-1", eventstore.Any(), newEvents(2, "T")...) // revisions 0..9
		mustAppend(t, s, "other", eventstore.Any(), newEvents(1, "T")...)
	}
	tests := []struct {
		name string
		opts eventstore.ReadStreamOptions
		want []uint64
	}{
		{"forwards from start", eventstore.ReadStreamOptions{From: 0, Limit: 3}, []uint64{0, 1, 2}},
		{"forwards from middle", eventstore.ReadStreamOptions{From: 7, Limit: 10}, []uint64{7, 8, 9}},
		{"forwards past end", eventstore.ReadStreamOptions{From: 10, Limit: 10}, nil},
		{"forwards from end", eventstore.ReadStreamOptions{From: eventstore.End, Limit: 10}, []uint64{9}},
		{"backwards from end", eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 3}, []uint64{9, 8, 7}},
		{"backwards from middle", eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: 2, Limit: 10}, []uint64{2, 1, 0}},
		{"forwards across runs", eventstore.ReadStreamOptions{From: 3, Limit: 4}, []uint64{3, 4, 5, 6}},
		{"backwards across runs", eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: 7, Limit: 4}, []uint64{7, 6, 5, 4}},
		{"backwards from run start", eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: 4, Limit: 2}, []uint64{4, 3}},
		{"backwards past end", eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: 100, Limit: 2}, []uint64{9, 8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := s.ReadStream(ctx, "s-1", tc.opts)
			if err != nil {
				t.Fatalf("ReadStream: %v", err)
			}
			var got []uint64
			for _, ev := range evs {
				got = append(got, ev.Revision)
			}
			if !equalUint64s(got, tc.want) {
				t.Fatalf("revisions = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	s := openMemory(t)
	ctx := context.Background()
	mustAppend(t, s, "s-1", eventstore.Any(), newEvents(1, "T")...)
	tests := []struct {
		name    string
		read    func() error
		wantErr error
	}{
		{"missing stream", func() error {
			_, err := s.ReadStream(ctx, "nope", eventstore.ReadStreamOptions{Limit: 1})
			return err
		}, eventstore.ErrStreamNotFound},
		{"prefix of a stream is not a stream", func() error {
			_, err := s.ReadStream(ctx, "s-", eventstore.ReadStreamOptions{Limit: 1})
			return err
		}, eventstore.ErrStreamNotFound},
		{"bad name", func() error {
			_, err := s.ReadStream(ctx, "a/b", eventstore.ReadStreamOptions{Limit: 1})
			return err
		}, eventstore.ErrInvalidStreamName},
		{"stream limit 0", func() error {
			_, err := s.ReadStream(ctx, "s-1", eventstore.ReadStreamOptions{Limit: 0})
			return err
		}, eventstore.ErrInvalidLimit},
		{"all limit too big", func() error {
			_, err := s.ReadAll(ctx, eventstore.Start, eventstore.MaxReadLimit+1)
			return err
		}, eventstore.ErrInvalidLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.read(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestReadAllAfterPosition(t *testing.T) {
	s := openMemory(t)
	ctx := context.Background()
	for i := range 5 {
		mustAppend(t, s, "s-"+string(rune('a'+i)), eventstore.Any(), newEvents(1, "T")...)
	}
	tests := []struct {
		after eventstore.Position
		limit int
		want  []uint64
	}{
		{eventstore.Start, 10, []uint64{1, 2, 3, 4, 5}},
		{eventstore.Start, 2, []uint64{1, 2}},
		{eventstore.Position{Commit: 2, Prepare: 2}, 10, []uint64{3, 4, 5}},
		{eventstore.Position{Commit: 2, Prepare: 1}, 1, []uint64{2}}, // {2,2} is after {2,1}
		{eventstore.Position{Commit: 5, Prepare: 5}, 10, nil},
		{eventstore.Position{Commit: 99, Prepare: 99}, 10, nil},
	}
	for _, tc := range tests {
		evs, err := s.ReadAll(ctx, tc.after, tc.limit)
		if err != nil {
			t.Fatalf("ReadAll(%v): %v", tc.after, err)
		}
		var got []uint64
		for _, ev := range evs {
			got = append(got, ev.Position.Commit)
		}
		if !equalUint64s(got, tc.want) {
			t.Errorf("ReadAll(%v, %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
}

func TestClose(t *testing.T) {
	s := openMemory(t)
	ctx := context.Background()
	mustAppend(t, s, "s-1", eventstore.Any(), newEvents(1, "T")...)
	sub, err := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Fatalf("Next: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx) // waits at the head until Close
		done <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("waiting Next after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Append"] = s.Append(ctx, "s-1", eventstore.Any(), newEvents(1, "T")...)
	_, checks["ReadStream"] = s.ReadStream(ctx, "s-1", eventstore.ReadStreamOptions{Limit: 1})
	_, checks["ReadAll"] = s.ReadAll(ctx, eventstore.Start, 1)
	_, checks["Head"] = s.Head(ctx)
	_, checks["Subscribe"] = s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	for op, err := range checks {
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", op, err)
		}
	}
}

func equalUint64s(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadsTablesOfEitherCompression: a store written by an earlier version
// (snappy tables) and appended to by this one (tableCompression) reads back
// every event, whichever table holds it.
func TestReadsTablesOfEitherCompression(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	current := tableCompression
	tableCompression = sstable.SnappyCompression
	s, err := Open(dir, Options{})
	tableCompression = current
	if err != nil {
		t.Fatal(err)
	}
	// Payment-sized JSON compresses, so the blocks really go through the
	// compressor (pebble stores a block as is if it shrinks by under 12%).
	var want []eventstore.EventData
	appendFlushed := func(s *Store, stream string) {
		t.Helper()
		evs := benchEvents(300)
		mustAppend(t, s, stream, eventstore.NoStream(), evs...)
		want = append(want, evs...)
		if err := s.db.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	appendFlushed(s, "old-1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir)
	appendFlushed(s, "new-1")

	stats := map[string]string{} // compression profile -> block stats
	levels, err := s.db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	for _, tables := range levels {
		for _, tbl := range tables {
			stats[tbl.Properties.CompressionName] += tbl.Properties.CompressionStats + " "
		}
	}
	if len(stats) != 2 || !strings.Contains(stats["Snappy"], "Snappy:") || stats[tableCompression.Name] == "" {
		t.Fatalf("tables by compression profile: %v, want Snappy and %s", stats, tableCompression.Name)
	}
	t.Logf("tables by compression profile: %v", stats)

	got := readAllEvents(t, s)
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || !bytes.Equal(got[i].Data, want[i].Data) || !bytes.Equal(got[i].Metadata, want[i].Metadata) {
			t.Fatalf("event %d: got %s %s, want %s %s", i, got[i].ID, got[i].Data, want[i].ID, want[i].Data)
		}
	}
	for _, stream := range []string{"old-1", "new-1"} {
		evs, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 1000})
		if err != nil || len(evs) != 300 {
			t.Fatalf("ReadStream %s backwards: %d events, err %v", stream, len(evs), err)
		}
	}
}
