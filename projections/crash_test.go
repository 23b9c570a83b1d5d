package projections

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
	espebble "github.com/ansinh/ansinh/eventstore/pebble"
)

// The crash test runs the runner in a child process (this test binary, run
// again) and kills it with SIGKILL in the middle of projecting: no deferred
// function, no Close, no flush runs. The parent then reopens the database
// and checks that what was committed is exactly the state of the committed
// checkpoint, and that resuming applies every remaining event exactly once.

const (
	crashDirEnv  = "ANSINH_PROJECTIONS_CRASH_DIR"
	crashModeEnv = "ANSINH_PROJECTIONS_CRASH_MODE"
	crashEvents  = 12_000
	crashBlockAt = 5_500 // data "n" of the event the blocking child stops in
)

func crashOptions() Options {
	o := testOptions()
	o.PageEvents, o.BatchEvents = 250, 1000
	return o
}

func TestCrashDuringProjectionAppliesEachEventExactlyOnce(t *testing.T) {
	cases := []struct {
		mode     string
		killWhen string // the child's line after which it is killed
	}{
		// Deterministic: the child is stopped inside Apply, with half a
		// batch applied in memory and not committed.
		{"block", "BLOCKED"},
		// Free-running: the kill lands wherever the child happens to be
		// (applying, encoding, committing).
		{"run", "APPLIED 3000"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			dir, head := crashLog(t)
			runChildUntil(t, dir, tc.mode, tc.killWhen)
			store, db := reopenAfterKill(t, dir)
			r, err := NewRunner(db, store, []Projection{newCounter("c")}, crashOptions())
			if err != nil {
				t.Fatal(err)
			}
			// What survived the kill is one whole committed batch boundary:
			// the state is exactly that of the checkpoint.
			crashed := r.Position()
			v := r.View()
			if got, want := readTally(t, v, "c"), wantTally(crashed.Commit); got != want {
				t.Errorf("after the kill at checkpoint %s: tally %+v, want %+v", crashed, got, want)
			}
			_ = v.Close()
			if tc.mode == "block" && (crashed.IsStart() || crashed.Commit >= crashBlockAt+1) {
				t.Errorf("checkpoint %s: want a commit before the blocked event %d and after the start", crashed, crashBlockAt+1)
			}
			t.Logf("killed at checkpoint %s of %s", crashed, head)

			defer runRunner(t, r)() // stop before the deferred Closes run
			waitFor(t, r, head)
			v = r.View()
			defer v.Close()
			if got, want := readTally(t, v, "c"), wantTally(crashEvents); got != want {
				t.Errorf("after recovery: tally %+v, want %+v", got, want)
			}
			if lag, _ := r.Lag(context.Background()); len(lag.Failed) > 0 {
				// The counter fails on an event applied twice or skipped.
				t.Errorf("after recovery: %v", lag.Projections[0].Failure)
			}
		})
	}
}

// TestCrashDuringRebuildKeepsTheServingGeneration: the process is killed in
// the middle of a rebuild, with batches of the new generation committed.
// At the next start the interrupted rebuild is dropped, keys and all; the
// serving generation is exactly as it was, and a new rebuild succeeds.
func TestCrashDuringRebuildKeepsTheServingGeneration(t *testing.T) {
	dir, head := crashLog(t)
	runChildUntil(t, dir, "rebuild", "BLOCKED")
	store, db := reopenAfterKill(t, dir)
	m, _, err := db.readMeta("c")
	if err != nil {
		t.Fatal(err)
	}
	if m.Building == nil || m.Active.Gen != 1 {
		t.Fatalf("meta after the kill %+v, want generation 1 serving and a rebuild under way", m)
	}
	partial := countKeys(t, db, statePrefix("c", m.Building.Gen))
	if partial == 0 {
		t.Fatal("the killed rebuild had committed nothing: the kill did not land in the middle of it")
	}
	r, err := NewRunner(db, store, []Projection{newCounter("c")}, crashOptions())
	if err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, db, statePrefix("c", m.Building.Gen)); n != 0 {
		t.Errorf("the interrupted rebuild left %d of its %d keys", n, partial)
	}
	lag, err := r.Lag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := lag.Projections[0]; st.Generation != 1 || st.Rebuild != nil || st.Position != head || st.Failure != nil {
		t.Errorf("after the kill: %+v, want generation 1 at %s and no rebuild", st, head)
	}
	v := r.View()
	if got, want := readTally(t, v, "c"), wantTally(crashEvents); got != want {
		t.Errorf("serving generation after the kill: %+v, want %+v", got, want)
	}
	_ = v.Close()

	defer runRunner(t, r)() // stop before the deferred Closes run
	if err := r.Rebuild(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	v = r.View()
	defer v.Close()
	if got, want := readTally(t, v, "c"), wantTally(crashEvents); got != want {
		t.Errorf("after a new rebuild: %+v, want %+v", got, want)
	}
	if lag, _ := r.Lag(context.Background()); lag.Projections[0].Generation != 2 {
		t.Errorf("after a new rebuild: %+v, want generation 2", lag.Projections[0])
	}
}

// crashLog is a data directory whose log holds crashEvents events, and
// the position of the last.
func crashLog(t *testing.T) (dir string, head eventstore.Position) {
	t.Helper()
	dir = t.TempDir()
	store, err := espebble.Open(filepath.Join(dir, "events"), espebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	head = appendEvents(t, store, threeStreams, 0, crashEvents, 13)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, head
}

// reopenAfterKill opens what the killed child left, closed at cleanup.
func reopenAfterKill(t *testing.T, dir string) (*espebble.Store, *DB) {
	t.Helper()
	store, err := espebble.Open(filepath.Join(dir, "events"), espebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	db, err := OpenDB(filepath.Join(dir, "projections"), DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return store, db
}

func runChildUntil(t *testing.T, dir, mode, killWhen string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	seen := false
	for lines.Scan() {
		if strings.TrimSpace(lines.Text()) == killWhen {
			seen = true
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !seen {
		t.Fatalf("the child ended without printing %q", killWhen)
	}
}

// TestCrashChild is the child process of the crash test; run directly it
// does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestCrashDuringProjectionAppliesEachEventExactlyOnce")
	}
	store, err := espebble.Open(filepath.Join(dir, "events"), espebble.Options{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	db, err := OpenDB(filepath.Join(dir, "projections"), DBOptions{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	mode := os.Getenv(crashModeEnv)
	p := &reporting{counter: newCounter("c"), block: mode == "block"}
	r, err := NewRunner(db, store, []Projection{p}, crashOptions())
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	if mode == "rebuild" {
		// Catch up, then rebuild, and stop for good inside the rebuild's
		// Apply of event crashBlockAt, after some of its batches committed.
		go func() {
			err := r.Run(context.Background())
			fmt.Println("ERROR Run returned", err)
			os.Exit(2)
		}()
		head, err := store.Head(context.Background())
		if err == nil {
			err = r.WaitFor(context.Background(), head)
		}
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(2)
		}
		p.block = true
		err = r.Rebuild(context.Background(), "c")
		fmt.Println("ERROR Rebuild returned", err)
		os.Exit(2)
	}
	err = r.Run(context.Background())
	fmt.Println("ERROR Run returned", err)
	os.Exit(2)
}

// reporting tells the parent how far it got, and in block mode stops for
// good inside Apply of one event. block is set before Apply runs (the
// rebuild mode sets it before the rebuild starts its workers).
type reporting struct {
	*counter
	block   bool
	applied int
}

func (p *reporting) Apply(tx *Tx, ev *Event) error {
	d, err := ev.Decoded()
	if err != nil {
		return err
	}
	if p.block && d.(counted).N == crashBlockAt {
		fmt.Println("BLOCKED")
		select {}
	}
	if err := p.counter.Apply(tx, ev); err != nil {
		return err
	}
	p.applied++
	if p.applied%1000 == 0 {
		fmt.Println("APPLIED " + strconv.Itoa(p.applied))
	}
	return nil
}
