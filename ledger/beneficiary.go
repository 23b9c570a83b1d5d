package ledger

import (
	"context"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// Roles that keep the registry and entitlements. Approvers, finance officers
// and auditors read it but do not change it.
var registryRoles = []domain.Role{domain.RoleRegistrar, domain.RoleAdmin, domain.RoleSystem}

// Register registers a beneficiary in the stream of its citizen ID. A second
// registration of the same ID is refused (RuleError code "citizen_id_taken").
func (l *Ledger) Register(ctx context.Context, req Request, cmd registry.Register) (Result, error) {
	return l.Beneficiary(ctx, req, cmd.CitizenID, cmd)
}

// Beneficiary runs a registry command (registry.Register, CorrectDetails,
// RecordDeath, RecordMoveAway, LinkBankAccount, ReplaceBankAccount,
// UnlinkBankAccount, ChoosePaymentMethod, AuthorizeProxy, RevokeProxy)
// against the beneficiary with the given citizen ID.
func (l *Ledger) Beneficiary(ctx context.Context, req Request, citizenID string, cmd registry.Command) (Result, error) {
	if err := authorize(req, "change the beneficiary registry", registryRoles...); err != nil {
		return Result{}, err
	}
	if err := registry.ValidateCitizenID("citizen_id", citizenID); err != nil {
		return Result{}, err
	}
	if r, ok := cmd.(registry.Register); ok && r.CitizenID != citizenID {
		return Result{}, domain.Reject("citizen_id_mismatch", "citizen_id", "the registration is for %s, not %s", r.CitizenID, citizenID)
	}
	env := registry.Env{Today: l.Today()}
	return Handle(ctx, l, registry.Stream(citizenID), req, cmd, func(b registry.Beneficiary) ([]domain.Event, error) {
		return registry.Decide(b, env, cmd)
	})
}

// Entitlement runs an entitlement command (entitlement.Grant, Adjust,
// Suspend, Resume, End) against the beneficiary with the given citizen ID,
// with the current catalogue and the configured limits.
func (l *Ledger) Entitlement(ctx context.Context, req Request, citizenID string, cmd entitlement.Command) (Result, error) {
	if err := authorize(req, "change entitlements", registryRoles...); err != nil {
		return Result{}, err
	}
	if err := registry.ValidateCitizenID("citizen_id", citizenID); err != nil {
		return Result{}, err
	}
	cat, _, err := l.Catalogue(ctx)
	if err != nil {
		return Result{}, err
	}
	env := entitlement.Env{Catalogue: cat, Limits: l.cfg.Limits}
	return Handle(ctx, l, registry.Stream(citizenID), req, cmd, func(b registry.Beneficiary) ([]domain.Event, error) {
		return registry.DecideEntitlement(b, env, cmd)
	})
}

// LoadBeneficiary reads a beneficiary's current state, with its revision
// (the ETag) and position. An unknown citizen ID is a NotFound RuleError.
func (l *Ledger) LoadBeneficiary(ctx context.Context, citizenID string) (Loaded[registry.Beneficiary], error) {
	if err := registry.ValidateCitizenID("citizen_id", citizenID); err != nil {
		return Loaded[registry.Beneficiary]{}, err
	}
	ld, err := Load[registry.Beneficiary](ctx, l, registry.Stream(citizenID))
	if err != nil {
		return ld, err
	}
	if !ld.State.Registered {
		return ld, domain.Rejectf(domain.NotFound, "beneficiary_not_found", "citizen_id", "no beneficiary is registered with citizen ID %s", citizenID)
	}
	return ld, nil
}

// Owed is what is owed to a beneficiary for period p, each line traced to
// its rule and rate.
func (l *Ledger) Owed(ctx context.Context, citizenID string, p domain.Period) ([]entitlement.Line, error) {
	ld, err := l.LoadBeneficiary(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	cat, _, err := l.Catalogue(ctx)
	if err != nil {
		return nil, err
	}
	return ld.State.Owed(cat, p, l.cfg.Limits)
}

// OwedThrough is what is owed to a beneficiary for every period up to p.
func (l *Ledger) OwedThrough(ctx context.Context, citizenID string, p domain.Period) ([]entitlement.Line, error) {
	ld, err := l.LoadBeneficiary(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	cat, _, err := l.Catalogue(ctx)
	if err != nil {
		return nil, err
	}
	return ld.State.OwedThrough(cat, p, l.cfg.Limits)
}
