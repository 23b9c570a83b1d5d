package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2024, 1, 18, 9, 0, 0, 0, time.UTC)} }

// In a log, a line comes at each tenth of the work or every 5 s, and no
// more often, whatever the ticks.
func TestProgressLogLines(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, false, clock.now, "import", "lines", 1000, 1000)

	steps := []struct {
		advance time.Duration
		add     int64
		want    string // the line printed by this tick; "" for none
	}{
		{time.Second, 50, ""}, // 5%, 1 s: nothing due
		{time.Second, 60, "import: 11% 110/1000 lines, 55 lines/s, 16s left"}, // passed 10%
		{time.Second, 10, ""}, // 12%: same tenth, 1 s later
		{4 * time.Second, 0, "import: 12% 120/1000 lines, 17 lines/s, 51s left"}, // 5 s since the last line: a stall shows
		{time.Second, 880, "import: 100% 1000/1000 lines, 125 lines/s"},          // done: no time left to show
	}
	for i, s := range steps {
		out.Reset()
		clock.advance(s.advance)
		p.add(s.add, s.add)
		p.tick()
		got := strings.TrimSuffix(out.String(), "\n")
		if got != s.want {
			t.Fatalf("step %d: printed %q, want %q", i, got, s.want)
		}
	}
	out.Reset()
	p.finish()
	p.finish() // a second finish prints nothing
	if got, want := out.String(), "import: 1000 lines in 8s (125 lines/s)\n"; got != want {
		t.Fatalf("finish printed %q, want %q", got, want)
	}
}

// Without a known total (an export of one stream), the lines say how many
// and how fast, every 5 s.
func TestProgressUnknownTotal(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, false, clock.now, "export", "events", 0, 0)
	clock.advance(2 * time.Second)
	p.add(0, 400)
	p.tick()
	if out.Len() != 0 {
		t.Fatalf("printed before 5 s: %q", out.String())
	}
	clock.advance(3 * time.Second)
	p.tick()
	if got, want := out.String(), "export: 400 events, 80 events/s\n"; got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

// On a terminal the bar is redrawn in place, and a message printed meanwhile
// goes above it without tearing it.
func TestProgressTerminalBar(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, true, clock.now, "import", "lines", 100, 100)
	clock.advance(2 * time.Second)
	p.add(50, 50)
	p.tick()
	bar := "import [============            ] 50% 50/100 lines, 25 lines/s, 2s left"
	if got, want := out.String(), "\r"+bar+"\x1b[K"; got != want {
		t.Fatalf("bar %q, want %q", got, want)
	}
	out.Reset()
	p.tick()
	if out.Len() != 0 {
		t.Fatalf("an unchanged bar was drawn again: %q", out.String())
	}
	p.println("rejected line 7: full_name: is required")
	if got, want := out.String(), "\r\x1b[Krejected line 7: full_name: is required\n\r"+bar+"\x1b[K"; got != want {
		t.Fatalf("message over the bar: %q, want %q", got, want)
	}
	out.Reset()
	clock.advance(2 * time.Second)
	p.add(50, 50)
	p.finish()
	if got, want := out.String(), "\r\x1b[Kimport: 100 lines in 4s (25 lines/s)\n"; got != want {
		t.Fatalf("finish %q, want %q", got, want)
	}
}

func TestProgressRunStops(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, false, time.Now, "export", "events", 0, 0)
	stop := p.run(t.Context())
	stop() // returns only once the ticker has ended
	p.add(0, 1)
	p.finish()
	if !strings.HasPrefix(out.String(), "export: 1 events in ") {
		t.Fatalf("finish printed %q", out.String())
	}
}
