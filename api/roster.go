package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
)

// rosterWaitMax bounds how long a calculation waits for the registry read
// model to reach the end of the log before it starts. A variable so that a
// test can shorten it.
var rosterWaitMax = 5 * time.Minute

// calculationRoster is the list of beneficiaries a payout calculation
// visits. With a registry read model (Deps.Roster) the calculation first
// waits until the read models have applied every event written before it
// started: a person registered a moment before "calculate" must not be
// left out because the projection had not caught up yet. Without one, the
// roster is a scan of the whole log (ledger.ScanRoster).
func (s *Server) calculationRoster(ctx context.Context) (ledger.Roster, error) {
	if s.deps.Roster == nil {
		return s.deps.Ledger.ScanRoster(ctx)
	}
	if p := s.deps.Projections; p != nil {
		head, err := s.deps.Store.Head(ctx)
		if err != nil {
			return nil, fmt.Errorf("roster: head: %w", err)
		}
		if err := waitFor(ctx, p, head, rosterWaitMax); err != nil {
			return nil, err
		}
	}
	return s.deps.Roster, nil
}

// waitFor waits until p has reached pos, for at most max. The projections'
// own WaitFor gives up sooner (projections.Options.MaxWait), so it is
// asked again until max has passed. A projection that stopped on an event
// will not get there: that is reported at once, as a rule error whose code
// the calculation shows.
func waitFor(ctx context.Context, p Projections, pos eventstore.Position, max time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	for {
		err := p.WaitFor(wctx, pos)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("roster: %w", ctx.Err())
		case wctx.Err() != nil:
			return domain.Reject("projections_behind", "",
				"the registry read model did not reach the end of the log within %s, so the roster would miss recent registrations; see GET /v1/projections, then calculate again", max)
		case errors.Is(err, context.DeadlineExceeded):
			continue // the projections' own bound, not ours
		case errors.Is(err, projections.ErrNotCaughtUp):
			return domain.Reject("projections_failed", "",
				"the registry read model stopped on an event, so the roster is incomplete; see GET /v1/projections (%v)", err)
		}
		return fmt.Errorf("roster: wait for the read models: %w", err)
	}
}
