package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
)

var (
	ctx = context.Background()
	// now is 10:00 on 15 June 2024 in Hanoi.
	now       = time.Date(2024, 6, 15, 3, 0, 0, 0, time.UTC)
	registrar = Request{Actor: domain.Actor{UserID: "lan.registrar", Role: domain.RoleRegistrar}}
	admin     = Request{Actor: domain.Actor{UserID: "minh.admin", Role: domain.RoleAdmin}}
	per       = domain.MustPeriod
	date      = domain.MustDate
	anID      = registry.MakeCitizenID("001", registry.Female, 1945, 12345)
)

// newLedger returns a ledger over a fresh in-memory pebble store, with the
// clock fixed at now.
func newLedger(t testing.TB) (*Ledger, eventstore.Store) {
	t.Helper()
	store, err := pebble.Open(t.Name(), pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := DefaultConfig()
	cfg.Clock = func() time.Time { return now }
	return New(store, cfg), store
}

func registerAn() registry.Register {
	return registry.Register{
		CitizenID: anID, FullName: "Nguyễn Thị An", DateOfBirth: date("1945-03-02"), Sex: registry.Female,
		Address:  registry.AddressInput{Street: "12 ngõ 5 Hà Cầu", DistrictCode: "268", WardCode: "09556"},
		Category: registry.SocialProtection,
	}
}

func coef(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }

// must(t)(l.Handler(...)) fails the test on an error.
func must(t testing.TB) func(Result, error) Result {
	return func(res Result, err error) Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
}

// seeded returns a ledger with the starter catalogue and An registered.
func seeded(t testing.TB) (*Ledger, eventstore.Store) {
	t.Helper()
	l, store := newLedger(t)
	if _, err := l.SeedCatalogue(ctx); err != nil {
		t.Fatal(err)
	}
	must(t)(l.Register(ctx, registrar, registerAn()))
	return l, store
}

func head(t testing.TB, s eventstore.Store) eventstore.Position {
	t.Helper()
	p, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantRule(t testing.TB, err error, kind domain.Kind, code string) {
	t.Helper()
	re, ok := domain.AsRuleError(err)
	if !ok {
		t.Fatalf("want RuleError %s/%s, got %v", kind, code, err)
	}
	if re.Kind != kind || re.Code != code || re.Message == "" {
		t.Fatalf("want RuleError %s/%s, got %s/%s: %q", kind, code, re.Kind, re.Code, re.Message)
	}
}

func isRule(err error) bool { _, ok := domain.AsRuleError(err); return ok }
