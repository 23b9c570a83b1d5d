package pebble

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/google/uuid"
)

// The crash test kills a child process that appends under load, at several
// points, and checks after each kill that the store on disk kept every
// acknowledged append, holds no half append, and is consistent: streams
// contiguous, the log strictly ordered, log and stream index in agreement.
//
// The child prints a "try" line before each append and an "ack" line after
// it returns, so the parent knows every event that may exist and every event
// that must. Each line ends with "end" so that a line cut by the kill is
// recognised and ignored.

const (
	crashWriters        = 6
	crashStreamsPerGoer = 3
	crashSharedStream   = "crash-shared"
	crashChildLifetime  = 2 * time.Minute // a child left behind (parent died) stops on its own
)

// crashKillAfter is, per round, how many acks the parent waits for before it
// kills the child: right after start, and at several loads.
var crashKillAfter = []int{1, 40, 250, 900, 2000}

func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	tried := map[uuid.UUID]*crashAppend{} // every append the children attempted, by event ID
	var acked []*crashAppend
	for round, killAfter := range crashKillAfter {
		tries, acks := runCrashChild(t, dir, round, killAfter)
		for _, a := range tries {
			for _, id := range a.ids {
				tried[id] = a
			}
		}
		acked = append(acked, acks...)
		after := verifyAfterCrash(t, dir, round, tried, acked)
		tried[after.ids[0]] = after
		acked = append(acked, after)
	}
}

// crashAppend is one append as the child reported it.
type crashAppend struct {
	stream   string
	ids      []uuid.UUID
	firstRev uint64              // ack only
	position eventstore.Position // ack only: of the last event
}

func runCrashChild(t *testing.T, dir string, round, killAfter int) (tries, acks []*crashAppend) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=crash", childDirEnv+"="+dir, "ANSINH_PEBBLE_TEST_ROUND="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		a, kind, ok := parseCrashLine(lines.Text())
		if !ok {
			continue
		}
		if kind == "try" {
			tries = append(tries, a)
			continue
		}
		acks = append(acks, a)
		if !killed && len(acks) >= killAfter {
			// Keep reading after the kill: acks already in the pipe were
			// acknowledged before it and must survive it.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("round %d: child ended after %d acks, before the kill at %d: %v", round, len(acks), killAfter, err)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child did not die of SIGKILL: %v", round, err)
	}
	return tries, acks
}

// parseCrashLine reads "try <stream> <id,...> end" or
// "ack <stream> <first rev> <position> <id,...> end".
func parseCrashLine(line string) (a *crashAppend, kind string, ok bool) {
	f := strings.Fields(line)
	if len(f) < 4 || f[len(f)-1] != "end" {
		return nil, "", false
	}
	kind = f[0]
	a = &crashAppend{stream: f[1]}
	idField := f[2]
	switch {
	case kind == "try" && len(f) == 4:
	case kind == "ack" && len(f) == 6:
		rev, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, "", false
		}
		pos, err := eventstore.ParsePosition(f[3])
		if err != nil {
			return nil, "", false
		}
		a.firstRev, a.position, idField = rev, pos, f[4]
	default:
		return nil, "", false
	}
	for _, s := range strings.Split(idField, ",") {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, "", false
		}
		a.ids = append(a.ids, id)
	}
	return a, kind, true
}

// verifyAfterCrash checks the store and returns the append it made to show
// the store takes writes again.
func verifyAfterCrash(t *testing.T, dir string, round int, tried map[uuid.UUID]*crashAppend, acked []*crashAppend) *crashAppend {
	t.Helper()
	ctx := context.Background()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	defer s.Close()

	// The log: strictly increasing positions, every event one that a child
	// tried, every append all or nothing.
	log := readAllEvents(t, s)
	type place struct {
		stream string
		rev    uint64
	}
	inLog := map[place]eventstore.RecordedEvent{}
	present := map[*crashAppend]int{}
	for i, ev := range log {
		if i > 0 && ev.Position.Compare(log[i-1].Position) <= 0 {
			t.Fatalf("round %d: log position %v after %v", round, ev.Position, log[i-1].Position)
		}
		a, ok := tried[ev.ID]
		if !ok || a.stream != ev.StreamID {
			t.Fatalf("round %d: log holds event %s in %q that no child tried", round, ev.ID, ev.StreamID)
		}
		present[a]++
		inLog[place{ev.StreamID, ev.Revision}] = ev
	}
	for a, n := range present {
		if n != len(a.ids) {
			t.Fatalf("round %d: %d of the %d events of one append to %q survived: half an append", round, n, len(a.ids), a.stream)
		}
	}

	// Every stream contiguous from 0 and in agreement with the log.
	streams := map[string]uint64{} // stream -> last revision
	for p := range inLog {
		streams[p.stream] = max(streams[p.stream], p.rev)
	}
	indexed := 0
	for stream, last := range streams {
		evs := readWholeStream(t, s, stream)
		if uint64(len(evs)) != last+1 {
			t.Fatalf("round %d: stream %q has %d events, its last revision in the log is %d", round, stream, len(evs), last)
		}
		for i, ev := range evs {
			if ev.Revision != uint64(i) {
				t.Fatalf("round %d: stream %q event %d has revision %d: not contiguous", round, stream, i, ev.Revision)
			}
			want, ok := inLog[place{stream, ev.Revision}]
			if !ok || want.ID != ev.ID || want.Position != ev.Position {
				t.Fatalf("round %d: %q@%d is %s at %v in the stream, %s at %v in the log", round, stream, i, ev.ID, ev.Position, want.ID, want.Position)
			}
		}
		indexed += len(evs)
	}
	if indexed != len(log) {
		t.Fatalf("round %d: streams index %d events, the log holds %d", round, indexed, len(log))
	}

	// Every acknowledged append is there, where the ack said.
	for _, a := range acked {
		for k, id := range a.ids {
			ev, ok := inLog[place{a.stream, a.firstRev + uint64(k)}]
			if !ok || ev.ID != id {
				t.Fatalf("round %d: acknowledged event %s of %q at revision %d is missing", round, id, a.stream, a.firstRev+uint64(k))
			}
			if k == len(a.ids)-1 && ev.Position != a.position {
				t.Fatalf("round %d: acknowledged append to %q ends at %v, the ack said %v", round, a.stream, ev.Position, a.position)
			}
		}
	}

	// And the store takes new appends where it left off.
	// A child killed early may not have written to the shared stream yet.
	ev := newEvents(1, "AfterCrash")
	expected, next := eventstore.NoStream(), uint64(0)
	if last, ok := streams[crashSharedStream]; ok {
		expected, next = eventstore.Exact(last), last+1
	}
	res, err := s.Append(ctx, crashSharedStream, expected, ev...)
	if err != nil {
		t.Fatalf("round %d: append after recovery: %v", round, err)
	}
	if res.NextRevision != next || len(log) > 0 && res.Position.Compare(log[len(log)-1].Position) <= 0 {
		t.Fatalf("round %d: append after recovery = %+v, log ended at %v", round, res, log[len(log)-1].Position)
	}
	t.Logf("round %d: %d events in %d streams, %d acked appends so far", round, len(log)+1, len(streams), len(acked))
	return &crashAppend{stream: crashSharedStream, ids: []uuid.UUID{ev[0].ID}, firstRev: res.NextRevision, position: res.Position}
}

func readWholeStream(t *testing.T, s *Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	for from := uint64(0); ; {
		evs, err := s.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{From: from, Limit: eventstore.MaxReadLimit})
		if err != nil {
			t.Fatalf("ReadStream %q: %v", stream, err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		from = evs[len(evs)-1].Revision + 1
	}
}

// TestCrashChild is the child of TestCrashRecovery; run alone it does
// nothing. It appends until killed.
func TestCrashChild(t *testing.T) {
	if os.Getenv(childEnv) != "crash" {
		t.Skip("child process of TestCrashRecovery")
	}
	s, err := Open(os.Getenv(childDirEnv), Options{})
	if err != nil {
		t.Fatalf("child Open: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), crashChildLifetime)
	defer cancel()
	round, _ := strconv.Atoi(os.Getenv("ANSINH_PEBBLE_TEST_ROUND"))
	var out sync.Mutex
	emit := func(line string) {
		out.Lock()
		defer out.Unlock()
		_, _ = os.Stdout.WriteString(line)
	}
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			if err := crashWriter(ctx, s, w, rand.New(rand.NewPCG(uint64(round), uint64(w))), emit); err != nil && ctx.Err() == nil {
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
}

// crashWriter appends to its own streams with Exact expectations (it is their
// only writer, so it knows their revisions) and now and then to the shared
// stream with Any. Sizes vary from 1 to 50 events.
func crashWriter(ctx context.Context, s *Store, w int, rng *rand.Rand, emit func(string)) error {
	heads := make([]int64, crashStreamsPerGoer)
	for i := range heads {
		last, err := s.ReadStream(ctx, crashStream(w, i), eventstore.ReadStreamOptions{Direction: eventstore.Backwards, From: eventstore.End, Limit: 1})
		switch {
		case errors.Is(err, eventstore.ErrStreamNotFound):
			heads[i] = -1
		case err != nil:
			return err
		default:
			heads[i] = int64(last[0].Revision)
		}
	}
	for ctx.Err() == nil {
		n := 1 + rng.IntN(4)
		if rng.IntN(10) == 0 {
			n = 50
		}
		evs := make([]eventstore.EventData, n)
		ids := make([]string, n)
		for k := range evs {
			evs[k] = eventstore.EventData{ID: uuid.New(), Type: "Crash.v1", Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"k":%d}`, w, k))}
			ids[k] = evs[k].ID.String()
		}
		i := rng.IntN(crashStreamsPerGoer + 1)
		stream, exp := crashSharedStream, eventstore.Any()
		if i < crashStreamsPerGoer {
			stream = crashStream(w, i)
			exp = expectAfter(heads[i])
		}
		idList := strings.Join(ids, ",")
		emit(fmt.Sprintf("try %s %s end\n", stream, idList))
		res, err := s.Append(ctx, stream, exp, evs...)
		if err != nil {
			return err
		}
		if i < crashStreamsPerGoer {
			heads[i] = int64(res.NextRevision)
		}
		first := res.NextRevision + 1 - uint64(n)
		emit(fmt.Sprintf("ack %s %d %s %s end\n", stream, first, res.Position, idList))
	}
	return nil
}

func crashStream(w, i int) string { return fmt.Sprintf("crash-%d-%d", w, i) }

func expectAfter(head int64) eventstore.ExpectedRevision {
	if head < 0 {
		return eventstore.NoStream()
	}
	return eventstore.Exact(uint64(head))
}
