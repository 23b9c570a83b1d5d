// Package storetest is the contract suite every eventstore.Store adapter must
// pass. It checks the rules written in the eventstore package's documentation
// and nothing an adapter is free to choose: positions are only compared,
// never assumed to be 1, 2, 3; RecordedAt is only checked to be set, UTC and
// near now.
//
// An adapter runs it from a test in its own package:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) eventstore.Store {
//			s, err := pebble.Open(t.TempDir(), pebble.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// and runs it with the race detector: go test -race ./eventstore/...
//
// The factory is called once per subtest, and the subtests run in parallel.
// It may return a fresh store each time or a new handle on a shared one (a
// client of one long-lived server): every subtest names its streams and
// event types with a prefix of its own, only ever looks at those, and never
// assumes the log is empty or holds only its events. Two things are required
// of the factory:
//
//   - Each call returns a Store the subtest may Close without affecting other
//     subtests: one subtest closes its store to check that everything then
//     returns ErrClosed. A shared server therefore needs a client per call.
//   - The cleanup it registers must accept a Store that is already closed
//     (ignore the second Close's error), for the same reason.
//
// A subtest can be run alone by name, for example
// go test -race -run 'TestContract/Subscribe/SlowSubscriber' ./eventstore/pebble.
//
// The suite never uses sleeps to synchronise or timing to judge; a wait for
// an event is bounded (10 s) only so that a hang fails with a message saying
// what was awaited. Where it tests waking a blocked Next (live delivery,
// cancellation, Close) it lets Next run 20 ms before acting, so that Next is
// most likely blocked; a correct store passes whatever the scheduling.
package storetest
