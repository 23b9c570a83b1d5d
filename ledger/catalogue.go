package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/eventstore"
)

// Only administrators (and the service itself, when seeding) change the
// catalogue: a rate change alters what thousands of people are owed.
var catalogueRoles = []domain.Role{domain.RoleAdmin, domain.RoleSystem}

// ChangeCatalogue runs a catalogue command (entitlement.DefineProgram,
// DefineBaseLevel, SetBaseLevelRate) against the catalogue stream.
func (l *Ledger) ChangeCatalogue(ctx context.Context, req Request, cmd entitlement.CatalogueCommand) (Result, error) {
	if err := authorize(req, "change programs or base levels", catalogueRoles...); err != nil {
		return Result{}, err
	}
	return Handle(ctx, l, entitlement.CatalogueStream, req, cmd, func(c entitlement.Catalogue) ([]domain.Event, error) {
		return entitlement.DecideCatalogue(c, cmd, l.cfg.Limits)
	})
}

// SeedCatalogue applies the starter catalogue (entitlement.StarterCatalogue)
// as the system user. What is already there is left alone, so the service
// calls it on every start; it returns how many events it appended.
func (l *Ledger) SeedCatalogue(ctx context.Context) (int, error) {
	req := Request{Actor: domain.Actor{UserID: "ansinh", Role: domain.RoleSystem}, Reason: "starter catalogue"}
	n := 0
	for i, cmd := range entitlement.StarterCatalogue() {
		res, err := l.ChangeCatalogue(ctx, req, cmd)
		if err != nil {
			return n, fmt.Errorf("ledger: seed catalogue, command %d (%T): %w", i, cmd, err)
		}
		n += len(res.Events)
	}
	return n, nil
}

// Catalogue returns the current catalogue and its revision (-1 when empty).
// The ledger keeps the last catalogue it read and reads only the events
// appended since, so that every entitlement command does not reload it. The
// returned catalogue shares its maps with that cache: treat it as read-only
// (Evolve copies before it changes anything).
func (l *Ledger) Catalogue(ctx context.Context) (entitlement.Catalogue, int64, error) {
	l.catMu.Lock()
	defer l.catMu.Unlock()
	for {
		page, err := l.store.ReadStream(ctx, entitlement.CatalogueStream,
			eventstore.ReadStreamOptions{Direction: eventstore.Forwards, From: uint64(l.catRev + 1), Limit: readPage})
		if errors.Is(err, eventstore.ErrStreamNotFound) || err == nil && len(page) == 0 {
			return l.cat, l.catRev, nil
		}
		if err != nil {
			return entitlement.Catalogue{}, 0, fmt.Errorf("ledger: load catalogue: %w", err)
		}
		cat := l.cat
		for _, rec := range page {
			ev, err := l.codec.Decode(rec.Type, rec.Data)
			if err != nil {
				return entitlement.Catalogue{}, 0, fmt.Errorf("ledger: load catalogue at revision %d: %w", rec.Revision, err)
			}
			cat = cat.Evolve(ev)
		}
		// Commit the page only when all of it decoded, so a failure leaves
		// the cache at a consistent revision.
		l.cat, l.catRev = cat, int64(page[len(page)-1].Revision)
		if l.catRev+1 > MaxStreamEvents {
			return entitlement.Catalogue{}, 0, fmt.Errorf("ledger: load catalogue: %w", ErrStreamTooLong)
		}
	}
}
