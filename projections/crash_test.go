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
			dir := t.TempDir()
			store, err := espebble.Open(filepath.Join(dir, "events"), espebble.Options{})
			if err != nil {
				t.Fatal(err)
			}
			head := appendEvents(t, store, threeStreams, 0, crashEvents, 13)
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}

			runChildUntil(t, dir, tc.mode, tc.killWhen)

			store, err = espebble.Open(filepath.Join(dir, "events"), espebble.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			db, err := OpenDB(filepath.Join(dir, "projections"), DBOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
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
	p := &reporting{counter: newCounter("c"), block: os.Getenv(crashModeEnv) == "block"}
	r, err := NewRunner(db, store, []Projection{p}, crashOptions())
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	err = r.Run(context.Background())
	fmt.Println("ERROR Run returned", err)
	os.Exit(2)
}

// reporting tells the parent how far it got, and in block mode stops for
// good inside Apply of one event.
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
