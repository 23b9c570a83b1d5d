package ledger

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
)

// Roster lists the beneficiaries a calculation visits, a page at a time. A
// projection of the registry implements it in production; the calculation
// loads each beneficiary itself and re-checks the district, so a roster may
// list more than the run's districts, but never fewer.
type Roster interface {
	// CitizenIDs returns up to limit citizen IDs greater than after, in
	// ascending order, of the beneficiaries living in one of districts (any
	// district when empty). An empty result means the roster is exhausted.
	CitizenIDs(ctx context.Context, districts []string, after string, limit int) ([]string, error)
}

// StaticRoster is a roster held in memory: sorted citizen IDs, district
// blind.
type StaticRoster []string

// NewStaticRoster sorts and de-duplicates ids.
func NewStaticRoster(ids ...string) StaticRoster {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// CitizenIDs implements Roster.
func (r StaticRoster) CitizenIDs(_ context.Context, _ []string, after string, limit int) ([]string, error) {
	i := sort.SearchStrings(r, after)
	if i < len(r) && r[i] == after {
		i++
	}
	return slices.Clone(r[i:min(len(r), i+limit)]), nil
}

// ScanRoster builds a StaticRoster by reading the whole global log for
// registrations. It is linear in the log and meant for tests and small
// installations until a registry projection serves the roster.
func (l *Ledger) ScanRoster(ctx context.Context) (StaticRoster, error) {
	var ids []string
	// Any version of the registration event: older ones are upcast on read.
	registered, _, _ := strings.Cut(registry.BeneficiaryRegistered{}.EventType(), ".v")
	for after := eventstore.Start; ; {
		recs, err := l.store.ReadAll(ctx, after, eventstore.MaxReadLimit)
		if err != nil {
			return nil, fmt.Errorf("ledger: scan roster: %w", err)
		}
		if len(recs) == 0 {
			return NewStaticRoster(ids...), nil
		}
		for _, rec := range recs {
			if strings.HasPrefix(rec.Type, registered+".v") && strings.HasPrefix(rec.StreamID, registry.StreamPrefix) {
				ids = append(ids, strings.TrimPrefix(rec.StreamID, registry.StreamPrefix))
			}
		}
		after = recs[len(recs)-1].Position
	}
}
