package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
)

func testReadStreamWindows(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	stream := f.stream("window")
	// Two appends, so that windows cross an append boundary.
	f.append(t, stream, eventstore.NoStream(), f.events(4)...)
	f.append(t, stream, eventstore.Exact(3), f.events(6)...)
	all := f.readStream(t, stream)
	if len(all) != 10 {
		t.Fatalf("stream has %d events, want 10", len(all))
	}

	fw, bw := eventstore.Forwards, eventstore.Backwards
	cases := []struct {
		dir   eventstore.Direction
		from  uint64
		limit int
		want  []uint64 // revisions, in the order returned
	}{
		{fw, 0, 10, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{fw, 0, eventstore.MaxReadLimit, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{fw, 0, 1, []uint64{0}},
		{fw, 3, 4, []uint64{3, 4, 5, 6}},
		{fw, 8, 5, []uint64{8, 9}},
		{fw, 9, 1, []uint64{9}},
		{fw, eventstore.End, 5, []uint64{9}}, // End is the last event, forwards too
		{bw, eventstore.End, 3, []uint64{9, 8, 7}},
		{bw, eventstore.End, 100, []uint64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{bw, 5, 3, []uint64{5, 4, 3}},
		{bw, 2, 10, []uint64{2, 1, 0}},
		{bw, 0, 1, []uint64{0}},
		{bw, 9, 2, []uint64{9, 8}},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s from %s limit %d", dirName(c.dir), revName(c.from), c.limit)
		t.Run(name, func(t *testing.T) {
			got, err := s.ReadStream(t.Context(), stream, eventstore.ReadStreamOptions{Direction: c.dir, From: c.from, Limit: c.limit})
			if err != nil {
				t.Fatalf("ReadStream: %v", err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d events %s, want revisions %v", len(got), describeAll(got), c.want)
			}
			for i, rev := range c.want {
				if d := diffRecord(got[i], all[rev]); d != "" {
					t.Fatalf("event %d is %s, want revision %d: %s", i, describe(got[i]), rev, d)
				}
			}
		})
	}
}

func testReadStreamErrors(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	existing := f.stream("here")
	f.append(t, existing, eventstore.NoStream(), f.events(3)...)
	missing := f.stream("gone")

	cases := []struct {
		name   string
		stream string
		opts   eventstore.ReadStreamOptions
		want   error
	}{
		{"missing/forwards", missing, eventstore.ReadStreamOptions{Direction: eventstore.Forwards, From: 0, Limit: 10}, eventstore.ErrStreamNotFound},
		{"missing/backwards from End", missing, eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 10}, eventstore.ErrStreamNotFound},
		{"limit/zero", existing, eventstore.ReadStreamOptions{From: 0, Limit: 0}, eventstore.ErrInvalidLimit},
		{"limit/negative", existing, eventstore.ReadStreamOptions{From: 0, Limit: -1}, eventstore.ErrInvalidLimit},
		{"limit/above MaxReadLimit", existing, eventstore.ReadStreamOptions{From: 0, Limit: eventstore.MaxReadLimit + 1}, eventstore.ErrInvalidLimit},
		{"limit/zero backwards", existing, eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 0}, eventstore.ErrInvalidLimit},
		{"name/empty", "", eventstore.ReadStreamOptions{Limit: 10}, eventstore.ErrInvalidStreamName},
		{"name/$all", "$all", eventstore.ReadStreamOptions{Limit: 10}, eventstore.ErrInvalidStreamName},
		{"name/space", f.prefix + "a b", eventstore.ReadStreamOptions{Limit: 10}, eventstore.ErrInvalidStreamName},
		{"name/too long", f.prefix + strings.Repeat("s", eventstore.MaxStreamNameBytes), eventstore.ReadStreamOptions{Limit: 10}, eventstore.ErrInvalidStreamName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := s.ReadStream(t.Context(), c.stream, c.opts)
			wantErr(t, err, c.want, fmt.Sprintf("ReadStream %q %+v", clip(c.stream), c.opts))
			if len(evs) != 0 {
				t.Fatalf("ReadStream returned %d events with its error", len(evs))
			}
		})
	}
}

func dirName(d eventstore.Direction) string {
	if d == eventstore.Backwards {
		return "backwards"
	}
	return "forwards"
}

func revName(r uint64) string {
	if r == eventstore.End {
		return "End"
	}
	return fmt.Sprint(r)
}
