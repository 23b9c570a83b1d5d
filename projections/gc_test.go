package projections

import (
	"runtime/debug"
	"testing"
)

// TestRaiseGCPercent: nested raises (concurrent replays) restore the
// process's setting only when the last ends, and never lower a higher one.
func TestRaiseGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	current := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }

	tests := []struct {
		name          string
		start, raise  int
		during, after int
	}{
		{"default raised", 100, 400, 400, 100},
		{"higher kept", 800, 400, 800, 800},
		{"off kept", -1, 400, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(tt.start)
			a := raiseGCPercent(tt.raise)
			b := raiseGCPercent(tt.raise)
			if got := current(); got != tt.during {
				t.Fatalf("during two replays: GOGC %d, want %d", got, tt.during)
			}
			a()
			a() // a second call does nothing
			if got := current(); got != tt.during {
				t.Fatalf("after the first replay ended: GOGC %d, want %d", got, tt.during)
			}
			b()
			if got := current(); got != tt.after {
				t.Fatalf("after both: GOGC %d, want %d", got, tt.after)
			}
		})
	}
}
