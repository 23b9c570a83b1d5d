package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// How often progress is shown. On a terminal the bar is redrawn in place,
// so it can be frequent; in a log (a pipe, a file, a CI job) every line is
// kept, so a line comes only every progressLogEvery or at each tenth of the
// work: a 300,000-line import writes a dozen lines, not thousands.
const (
	progressDrawEvery = 200 * time.Millisecond
	progressLogEvery  = 5 * time.Second
	progressTickEvery = time.Second // how often the log mode checks whether a line is due
	progressBarWidth  = 24
)

// progress reports long work (an import, an export) on stderr: a bar with
// the rate and the time left when stderr is a terminal, plain periodic lines
// otherwise. The work calls add as it goes; a ticker (run) shows it, so that
// a stall shows too: the rate falls while nothing completes. It is safe for
// concurrent use.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	tty   bool
	now   func() time.Time
	what  string // "import", "export": the first word of every line
	unit  string // "lines", "events"
	total int64  // units of work to do; 0 when unknown
	// itemsTotal is the number of items when it is known (an import knows
	// its lines; an export knows positions, not events).
	itemsTotal int64

	start      time.Time
	done       int64 // units of work done
	items      int64 // items done
	lastLog    time.Time
	lastTenth  int64
	barOnLine  bool // the terminal's current line holds the bar
	lastDrawn  string
	finishedAt time.Time
}

// newProgress starts counting now. total is the work in units (0: unknown);
// itemsTotal the items when known.
func newProgress(out io.Writer, tty bool, now func() time.Time, what, unit string, total, itemsTotal int64) *progress {
	t := now()
	return &progress{out: out, tty: tty, now: now, what: what, unit: unit, total: total, itemsTotal: itemsTotal, start: t, lastLog: t}
}

// add records units of work and items done.
func (p *progress) add(units, items int64) {
	p.mu.Lock()
	p.done += units
	p.items += items
	p.mu.Unlock()
}

// run shows the progress until ctx ends or the returned stop is called;
// stop waits for the ticker to end, so that nothing is drawn after it.
func (p *progress) run(ctx context.Context) (stop func()) {
	every := progressTickEvery
	if p.tty {
		every = progressDrawEvery
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.tick()
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// tick shows the progress if it is due: the bar on a terminal, a line in a
// log every progressLogEvery or when the work passed another tenth.
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.tty {
		p.draw(now)
		return
	}
	tenth := int64(-1)
	if p.total > 0 {
		tenth = min(p.done*10/p.total, 10)
	}
	if now.Sub(p.lastLog) < progressLogEvery && tenth <= p.lastTenth {
		return
	}
	p.lastLog = now
	p.lastTenth = max(p.lastTenth, tenth)
	fmt.Fprintln(p.out, p.what+": "+p.status(now))
}

// println writes a line (a rejected line of an import) without tearing the
// bar: the bar is cleared, the line written, and the bar drawn again below.
func (p *progress) println(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.barOnLine {
		io.WriteString(p.out, "\r\x1b[K")
		p.barOnLine, p.lastDrawn = false, ""
	}
	io.WriteString(p.out, s+"\n")
	if p.tty {
		p.draw(p.now())
	}
}

// finish ends the progress with one line: how much, how long, how fast.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finishedAt.IsZero() {
		return
	}
	now := p.now()
	p.finishedAt = now
	if p.tty && p.barOnLine {
		io.WriteString(p.out, "\r\x1b[K")
		p.barOnLine = false
	}
	elapsed := now.Sub(p.start)
	fmt.Fprintf(p.out, "%s: %d %s in %s (%s %s/s)\n", p.what, p.items, p.unit, roundDuration(elapsed), rate(p.items, elapsed), p.unit)
}

// draw redraws the bar in place; unchanged text is not written again.
func (p *progress) draw(now time.Time) {
	line := p.what + " " + p.bar() + " " + p.status(now)
	if line == p.lastDrawn {
		return
	}
	io.WriteString(p.out, "\r"+line+"\x1b[K")
	p.barOnLine, p.lastDrawn = true, line
}

func (p *progress) bar() string {
	if p.total <= 0 {
		return ""
	}
	filled := int(min(p.done, p.total) * progressBarWidth / p.total)
	return "[" + strings.Repeat("=", filled) + strings.Repeat(" ", progressBarWidth-filled) + "]"
}

// status is "45% 135000/300000 lines, 2100 lines/s, 1m18s left", with the
// parts that are known.
func (p *progress) status(now time.Time) string {
	elapsed := now.Sub(p.start)
	var b strings.Builder
	if p.total > 0 {
		fmt.Fprintf(&b, "%d%% ", min(p.done, p.total)*100/p.total)
	}
	if p.itemsTotal > 0 {
		fmt.Fprintf(&b, "%d/%d %s", p.items, p.itemsTotal, p.unit)
	} else {
		fmt.Fprintf(&b, "%d %s", p.items, p.unit)
	}
	fmt.Fprintf(&b, ", %s %s/s", rate(p.items, elapsed), p.unit)
	if p.total > 0 && p.done > 0 && p.done < p.total {
		left := time.Duration(float64(elapsed) * float64(p.total-p.done) / float64(p.done))
		fmt.Fprintf(&b, ", %s left", roundDuration(left))
	}
	return b.String()
}

// rate is items per second, whole: a progress display needs no decimals.
func rate(items int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(items)/elapsed.Seconds())
}

func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
