package projections

import (
	"runtime/debug"
	"sync"
)

// ReplayGCPercent is the garbage collector's target (GOGC) while Replay
// runs. A replay allocates a decoded event and its projections' values for
// every event of the log and keeps little of it; at the default GOGC of 100
// the collector runs so often that it costs about a sixth of the replay's
// CPU. At 400 the heap may grow to five times the live data between
// collections instead of twice: the live data of a replay is bounded by the
// caches (Options.CacheKeys) and one batch, a few hundred MB at most, and a
// GOMEMLIMIT set for the process still caps the heap whatever GOGC says.
// A process that runs with a higher GOGC (or none) keeps it.
const ReplayGCPercent = 400

// gcRaise counts the replays running, so that concurrent replays (as-of
// queries) restore the process's own setting only when the last one ends.
var gcRaise struct {
	sync.Mutex
	active int
	saved  int
}

// raiseGCPercent raises GOGC to percent for as long as the returned
// function has not been called.
func raiseGCPercent(percent int) (restore func()) {
	gcRaise.Lock()
	defer gcRaise.Unlock()
	if gcRaise.active == 0 {
		gcRaise.saved = debug.SetGCPercent(percent)
		if gcRaise.saved < 0 || gcRaise.saved >= percent {
			// Off, or already higher: leave it as it was.
			debug.SetGCPercent(gcRaise.saved)
		}
	}
	gcRaise.active++
	var once sync.Once
	return func() {
		once.Do(func() {
			gcRaise.Lock()
			defer gcRaise.Unlock()
			gcRaise.active--
			if gcRaise.active == 0 {
				debug.SetGCPercent(gcRaise.saved)
			}
		})
	}
}
