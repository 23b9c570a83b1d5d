package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/eventstore"
)

func testRoundTrip(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	stream := f.stream("beneficiary")
	first := []eventstore.EventData{
		{
			ID:       uuid.New(),
			Type:     f.kind + "BeneficiaryRegistered.v1",
			Data:     json.RawMessage(`{"name":"Nguyễn Thị Hoa","district":"Hà Đông","householdSize":5}`),
			Metadata: json.RawMessage(`{"correlationId":"c-1","actor":"officer@ward-7"}`),
		},
		{
			// Whitespace and a non-object document must survive as written.
			ID:   uuid.New(),
			Type: f.kind + "Note.v1",
			Data: json.RawMessage(`[1, 2, {"nested": {"deep": true}}]`),
		},
		{
			ID:       uuid.New(),
			Type:     f.kind + "PaymentAuthorized.v1",
			Data:     json.RawMessage(`{"amount":"1500000","currency":"VND"}`),
			Metadata: json.RawMessage("\n {\"causationId\": \"x\"}"),
		},
	}
	res := f.append(t, stream, eventstore.NoStream(), first...)
	if res.NextRevision != 2 {
		t.Errorf("first Append of 3 events: NextRevision %d, want 2", res.NextRevision)
	}
	more := f.events(2)
	res2 := f.append(t, stream, eventstore.Exact(2), more...)
	if res2.NextRevision != 4 {
		t.Errorf("second Append of 2 events after revision 2: NextRevision %d, want 4", res2.NextRevision)
	}

	got := f.readStream(t, stream)
	proposed := append(first, more...)
	if len(got) != len(proposed) {
		t.Fatalf("ReadStream: %d events, want %d: %s", len(got), len(proposed), describeAll(got))
	}
	for i, ev := range got {
		checkRecorded(t, ev, stream, uint64(i), proposed[i])
	}
	if got[2].Position.Compare(res.Position) != 0 {
		t.Errorf("first AppendResult.Position %s; its last event is at %s", res.Position, got[2].Position)
	}
	if got[4].Position.Compare(res2.Position) != 0 {
		t.Errorf("second AppendResult.Position %s; its last event is at %s", res2.Position, got[4].Position)
	}
	// The global log holds the very same records.
	wantSameEvents(t, f.log(t, f.prefix), got, "ReadAll of this subtest's streams")
}

func testMultiEventAppendIsAtomic(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	stream := f.stream("run")
	batch := f.events(50)
	res := f.append(t, stream, eventstore.NoStream(), batch...)
	got := f.readStream(t, stream)
	wantIDs(t, got, batch, "stream after one Append of 50 events")
	for i, ev := range got {
		checkRecorded(t, ev, stream, uint64(i), batch[i])
	}
	if res.NextRevision != 49 || res.Position.Compare(got[49].Position) != 0 {
		t.Errorf("AppendResult %+v; want NextRevision 49 and the position of revision 49, %s", res, got[49].Position)
	}
	mark := f.head(t)

	// A batch whose last event is invalid writes none of the valid ones.
	bad := f.events(50)
	bad[49].Data = json.RawMessage(`{"truncated":`)
	_, err := s.Append(t.Context(), stream, eventstore.Exact(49), bad...)
	wantErr(t, err, eventstore.ErrInvalidJSON, "Append of 49 valid events and 1 invalid")
	// A batch with a wrong expectation writes none of them either.
	_, err = s.Append(t.Context(), stream, eventstore.Exact(10), f.events(50)...)
	wantWrongRevision(t, err, stream, eventstore.Exact(10), 49)

	wantSameEvents(t, f.readStream(t, stream), got, "stream after rejected batches")
	f.wantNothingSince(t, mark, f.prefix, "rejected batches")
}

// testReadersNeverSeeHalfAnAppend reads a stream while batches are appended
// to it: every read must end on a batch boundary.
func testReadersNeverSeeHalfAnAppend(t *testing.T, s eventstore.Store) {
	const batches, size = 20, 5
	f := newFixture(t, s)
	stream := f.stream("batches")
	done := make(chan struct{})
	var writeErr error
	go func() {
		defer close(done)
		expected := eventstore.NoStream()
		for range batches {
			res, err := s.Append(t.Context(), stream, expected, f.events(size)...)
			if err != nil {
				writeErr = err
				return
			}
			expected = eventstore.Exact(res.NextRevision)
		}
	}()
	reads := 0
	for finished := false; !finished; reads++ {
		select {
		case <-done:
			finished = true // one more read after the last batch
		default:
		}
		evs := f.readStream(t, stream)
		if len(evs)%size != 0 {
			<-done
			t.Fatalf("read %d: stream has %d events, not a whole number of %d-event appends: %s", reads, len(evs), size, describeAll(evs))
		}
		if reads > 100_000 {
			<-done
			t.Fatalf("writer of %d appends still running after %d reads", batches, reads)
		}
	}
	if writeErr != nil {
		t.Fatalf("writer: %v", writeErr)
	}
	if n := len(f.readStream(t, stream)); n != batches*size {
		t.Fatalf("stream has %d events after the writer finished, want %d", n, batches*size)
	}
}

func testExpectedRevision(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	cases := []struct {
		name     string
		existing int // events in the stream before the Append
		expected eventstore.ExpectedRevision
		actual   int64 // for a rejected Append: the revision the error must carry
		ok       bool
	}{
		{"Any/missing", 0, eventstore.Any(), 0, true},
		{"Any/existing", 3, eventstore.Any(), 0, true},
		{"NoStream/missing", 0, eventstore.NoStream(), 0, true},
		{"NoStream/existing", 3, eventstore.NoStream(), 2, false},
		{"StreamExists/missing", 0, eventstore.StreamExists(), -1, false},
		{"StreamExists/existing", 3, eventstore.StreamExists(), 0, true},
		{"Exact/right", 3, eventstore.Exact(2), 0, true},
		{"Exact/behind", 3, eventstore.Exact(1), 2, false},
		{"Exact/ahead", 3, eventstore.Exact(3), 2, false},
		{"Exact0/missing", 0, eventstore.Exact(0), -1, false},
		{"Exact5/missing", 0, eventstore.Exact(5), -1, false},
		{"Exact0/one", 1, eventstore.Exact(0), 0, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Equal-length names: no stream's name is a prefix of another's.
			stream := f.stream(fmt.Sprintf("er%02d", i))
			var setup []eventstore.EventData
			if c.existing > 0 {
				setup = f.events(c.existing)
				f.append(t, stream, eventstore.NoStream(), setup...)
			}
			mark := f.head(t)
			evs := f.events(2)
			res, err := s.Append(t.Context(), stream, c.expected, evs...)
			if !c.ok {
				wantWrongRevision(t, err, stream, c.expected, c.actual)
				got := f.readStream(t, stream)
				wantIDs(t, got, setup, "stream after the rejected Append")
				f.wantNothingSince(t, mark, stream, "the rejected Append")
				return
			}
			if err != nil {
				t.Fatalf("Append expecting %s to a stream of %d events: %v", c.expected, c.existing, err)
			}
			got := f.readStream(t, stream)
			wantIDs(t, got, append(setup, evs...), "stream after the Append")
			last := got[len(got)-1]
			if res.NextRevision != last.Revision || res.Position.Compare(last.Position) != 0 {
				t.Errorf("AppendResult %+v; want NextRevision %d and Position %s of the last event", res, last.Revision, last.Position)
			}
		})
	}
}

func testInvalidInputIsRejected(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	valid := func() eventstore.EventData { return f.event("Valid.v1", 0) }
	with := func(change func(*eventstore.EventData)) []eventstore.EventData {
		// A valid event first: the whole Append must be refused, not the tail.
		ev := valid()
		change(&ev)
		return []eventstore.EventData{valid(), ev}
	}
	oneID := uuid.New()
	bigData := json.RawMessage(`"` + strings.Repeat("x", eventstore.MaxEventBytes-len(`{}`)-len(`""`)+1) + `"`)
	// 33 events just under the per-event limit pass it but exceed the
	// per-append one; they share one buffer to keep the test light.
	nearMax := json.RawMessage(`"` + strings.Repeat("y", eventstore.MaxEventBytes-2) + `"`)
	tooMuch := make([]eventstore.EventData, eventstore.MaxAppendBytes/eventstore.MaxEventBytes+1)
	for i := range tooMuch {
		tooMuch[i] = eventstore.EventData{ID: uuid.New(), Type: f.kind + "Big.v1", Data: nearMax}
	}

	cases := []struct {
		name   string
		stream string // an invalid name; "" means the case's own valid streams
		events []eventstore.EventData
		want   error
	}{
		{"stream/empty", "", []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"stream/too long", f.prefix + strings.Repeat("s", eventstore.MaxStreamNameBytes-len(f.prefix)+1), []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"stream/space", f.prefix + "a b", []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"stream/slash", f.prefix + "a/b", []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"stream/non-ASCII", f.prefix + "hà-nội", []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"stream/NUL", f.prefix + "a\x00", []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"stream/dollar prefix", "$" + f.prefix + "sys", []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"stream/$all", "$all", []eventstore.EventData{valid()}, eventstore.ErrInvalidStreamName},
		{"append/empty", "", nil, eventstore.ErrEmptyAppend},
		{"append/too many events", "", f.events(eventstore.MaxAppendEvents + 1), eventstore.ErrTooManyEvents},
		{"append/too many bytes", "", tooMuch, eventstore.ErrEventTooLarge},
		{"id/nil", "", with(func(e *eventstore.EventData) { e.ID = uuid.Nil }), eventstore.ErrInvalidEventID},
		{"id/duplicate", "", []eventstore.EventData{
			{ID: oneID, Type: f.kind + "A.v1", Data: json.RawMessage(`{}`)},
			{ID: oneID, Type: f.kind + "B.v1", Data: json.RawMessage(`{}`)},
		}, eventstore.ErrDuplicateEventID},
		{"type/empty", "", with(func(e *eventstore.EventData) { e.Type = "" }), eventstore.ErrInvalidEventType},
		{"type/too long", "", with(func(e *eventstore.EventData) { e.Type = strings.Repeat("T", eventstore.MaxEventTypeBytes+1) }), eventstore.ErrInvalidEventType},
		{"type/space", "", with(func(e *eventstore.EventData) { e.Type = "Payment Settled" }), eventstore.ErrInvalidEventType},
		{"type/slash", "", with(func(e *eventstore.EventData) { e.Type = "Payment/v1" }), eventstore.ErrInvalidEventType},
		{"data/empty", "", with(func(e *eventstore.EventData) { e.Data = nil }), eventstore.ErrInvalidJSON},
		{"data/truncated", "", with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`{"a":`) }), eventstore.ErrInvalidJSON},
		{"data/text", "", with(func(e *eventstore.EventData) { e.Data = json.RawMessage(`not json`) }), eventstore.ErrInvalidJSON},
		{"metadata/array", "", with(func(e *eventstore.EventData) { e.Metadata = json.RawMessage(`[1]`) }), eventstore.ErrInvalidJSON},
		{"metadata/string", "", with(func(e *eventstore.EventData) { e.Metadata = json.RawMessage(`"x"`) }), eventstore.ErrInvalidJSON},
		{"metadata/null", "", with(func(e *eventstore.EventData) { e.Metadata = json.RawMessage(`null`) }), eventstore.ErrInvalidJSON},
		{"metadata/truncated", "", with(func(e *eventstore.EventData) { e.Metadata = json.RawMessage(`{"a":1`) }), eventstore.ErrInvalidJSON},
		{"event/too large", "", with(func(e *eventstore.EventData) {
			e.Data, e.Metadata = bigData, json.RawMessage(`{}`)
		}), eventstore.ErrEventTooLarge},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == eventstore.ErrInvalidStreamName {
				// Nothing can be read back by an invalid name, but the global
				// log must not change.
				mark := f.head(t)
				_, err := s.Append(t.Context(), c.stream, eventstore.Any(), c.events...)
				wantErr(t, err, c.want, fmt.Sprintf("Append to %q", clip(c.stream)))
				f.wantNothingSince(t, mark, f.prefix, "the rejected Append")
				return
			}
			// Each valid-stream case uses two streams of its own: a missing
			// one, which must stay missing, and one with an event, which must
			// keep exactly that event. Equal-length names, so no prefix clash.
			own := f.stream(fmt.Sprintf("%02d", i))
			missing, existing := own+"-new", own+"-old"
			seed := f.events(1)
			f.append(t, existing, eventstore.NoStream(), seed...)
			mark := f.head(t)

			_, err := s.Append(t.Context(), missing, eventstore.NoStream(), c.events...)
			wantErr(t, err, c.want, "Append to a new stream")
			_, err = s.Append(t.Context(), existing, eventstore.Exact(0), c.events...)
			wantErr(t, err, c.want, "Append to an existing stream")

			if evs := f.readStream(t, missing); evs != nil {
				t.Fatalf("rejected Append created %s: %s", missing, describeAll(evs))
			}
			wantIDs(t, f.readStream(t, existing), seed, "stream after the rejected Append")
			f.wantNothingSince(t, mark, own, "the rejected Appends")
		})
	}
}

// testLimitsAreInclusive appends at every limit exactly: the limits say "at
// most", so these must be accepted and read back intact.
func testLimitsAreInclusive(t *testing.T, s eventstore.Store) {
	f := newFixture(t, s)
	chars := "-_.:@09azAZ"
	longName := f.prefix + "long" + chars
	longName += strings.Repeat("n", eventstore.MaxStreamNameBytes-len(longName))
	longType := "T" + chars + strings.Repeat("t", eventstore.MaxEventTypeBytes-1-len(chars))
	meta := json.RawMessage(`{"m":1}`)
	fullData := json.RawMessage(`"` + strings.Repeat("z", eventstore.MaxEventBytes-len(meta)-2) + `"`)

	cases := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"stream name of MaxStreamNameBytes", longName, f.events(1)},
		{"event type of MaxEventTypeBytes", f.stream("type"), []eventstore.EventData{{ID: uuid.New(), Type: longType, Data: json.RawMessage(`{}`)}}},
		{"event of MaxEventBytes", f.stream("size"), []eventstore.EventData{{ID: uuid.New(), Type: f.kind + "Big.v1", Data: fullData, Metadata: meta}}},
		{"MaxAppendEvents events", f.stream("many"), f.events(eventstore.MaxAppendEvents)},
		{"JSON values as data", f.stream("json"), []eventstore.EventData{
			{ID: uuid.New(), Type: f.kind + "V.v1", Data: json.RawMessage(`"text"`)},
			{ID: uuid.New(), Type: f.kind + "V.v1", Data: json.RawMessage(`42`)},
			{ID: uuid.New(), Type: f.kind + "V.v1", Data: json.RawMessage(`true`)},
			{ID: uuid.New(), Type: f.kind + "V.v1", Data: json.RawMessage(`{}`), Metadata: json.RawMessage(` {} `)},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := eventstore.ValidateAppend(c.stream, c.events); err != nil {
				t.Fatalf("suite bug: the case is not valid: %v", err)
			}
			res, err := s.Append(t.Context(), c.stream, eventstore.NoStream(), c.events...)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			got := f.readStream(t, c.stream)
			if len(got) != len(c.events) {
				t.Fatalf("read back %d events, want %d", len(got), len(c.events))
			}
			for i, ev := range got {
				checkRecorded(t, ev, c.stream, uint64(i), c.events[i])
			}
			if res.NextRevision != uint64(len(c.events)-1) {
				t.Errorf("NextRevision %d, want %d", res.NextRevision, len(c.events)-1)
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
