package api

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReadModelMetrics: one line per read model and figure, the stopped
// one flagged, a rebuild's distance only while one runs; nothing when the
// lag cannot be read.
func TestReadModelMetrics(t *testing.T) {
	lag := projections.Lag{Projections: []projections.Status{
		{Name: "registry", Generation: 3, Applied: 900, EventsBehind: 100,
			Rebuild: &projections.RebuildStatus{Generation: 4, Applied: 400, EventsBehind: 600}},
		{Name: "books", Generation: 1, Applied: 700, EventsBehind: 300,
			Failure: &projections.Failure{Projection: "books", Position: eventstore.Position{Commit: 701, Prepare: 701}, Err: errors.New("boom")}},
	}}
	c := readModelCollector{lag: func(context.Context) (projections.Lag, error) { return lag, nil },
		statuses: func() []projections.Status { t.Error("statuses asked while the lag answered"); return nil }}
	want := `
# HELP ansinh_projection_applied_events Events a read model's serving generation has applied and committed.
# TYPE ansinh_projection_applied_events gauge
ansinh_projection_applied_events{projection="books"} 700
ansinh_projection_applied_events{projection="registry"} 900
# HELP ansinh_projection_events_behind Events of the log a read model has not applied (-1 when the store's positions do not count events: EventStoreDB).
# TYPE ansinh_projection_events_behind gauge
ansinh_projection_events_behind{projection="books"} 300
ansinh_projection_events_behind{projection="registry"} 100
# HELP ansinh_projection_failed 1 when a read model stopped on an event (GET /v1/projections names it), else 0.
# TYPE ansinh_projection_failed gauge
ansinh_projection_failed{projection="books"} 1
ansinh_projection_failed{projection="registry"} 0
# HELP ansinh_projection_generation The generation serving a read model; it grows by one at each rebuild's switch.
# TYPE ansinh_projection_generation gauge
ansinh_projection_generation{projection="books"} 1
ansinh_projection_generation{projection="registry"} 3
# HELP ansinh_projection_rebuild_events_behind Events a rebuild in progress has still to apply before its switch (-1 with EventStoreDB); absent when none runs.
# TYPE ansinh_projection_rebuild_events_behind gauge
ansinh_projection_rebuild_events_behind{projection="registry"} 600
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// The store is down: no distances, the rest from the runner's state,
	// so that the alert on a stopped read model keeps firing.
	broken := readModelCollector{lag: func(context.Context) (projections.Lag, error) { return projections.Lag{}, errors.New("store down") },
		statuses: func() []projections.Status { return lag.Projections }}
	wantBroken := `
# HELP ansinh_projection_failed 1 when a read model stopped on an event (GET /v1/projections names it), else 0.
# TYPE ansinh_projection_failed gauge
ansinh_projection_failed{projection="books"} 1
ansinh_projection_failed{projection="registry"} 0
`
	if err := testutil.CollectAndCompare(broken, strings.NewReader(wantBroken), "ansinh_projection_failed"); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"ansinh_projection_events_behind", "ansinh_projection_rebuild_events_behind"} {
		if n := testutil.CollectAndCount(broken, name); n != 0 {
			t.Errorf("%d series of %s while the head cannot be read, want none", n, name)
		}
	}
	if n := testutil.CollectAndCount(broken, "ansinh_projection_generation"); n != 2 {
		t.Errorf("%d generation series while the head cannot be read, want 2", n)
	}
}
