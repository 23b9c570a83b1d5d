package pebble

import (
	"testing"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/storetest"
)

// TestContract runs the shared contract suite against a fresh store per
// subtest, on disk (durable, as in production) and in memory.
func TestContract(t *testing.T) {
	t.Run("disk", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) eventstore.Store {
			return openDisk(t, t.TempDir())
		})
	})
	t.Run("memory", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) eventstore.Store {
			return openMemory(t)
		})
	})
}
