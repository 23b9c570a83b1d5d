package entitlement

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

var (
	per = domain.MustPeriod
	vnd = domain.VNDAmount
)

const cid = "001088012345"

func coef(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }
func money(n int64) *domain.Money    { m := vnd(n); return &m }

// starter is the starter catalogue, built the way the ledger builds it.
func starter(t testing.TB) Catalogue {
	t.Helper()
	var c Catalogue
	for _, cmd := range StarterCatalogue() {
		evs, err := DecideCatalogue(c, cmd, DefaultLimits())
		if err != nil {
			t.Fatalf("starter %T: %v", cmd, err)
		}
		for _, e := range evs {
			c = c.Evolve(e)
		}
	}
	return c
}

func env(t testing.TB) Env { return Env{Catalogue: starter(t), Limits: DefaultLimits()} }

// apply decides cmd and folds the events into b, failing the test on a
// rejection.
func apply(t testing.TB, b Book, h Holder, e Env, cmd Command) Book {
	t.Helper()
	evs, err := Decide(b, h, e, cmd)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	for _, ev := range evs {
		b = b.Evolve(ev)
	}
	return b
}

// wantRule checks that err is a RuleError of the given kind and code.
func wantRule(t testing.TB, err error, kind domain.Kind, code string) {
	t.Helper()
	re, ok := domain.AsRuleError(err)
	if !ok {
		t.Fatalf("want RuleError %s/%s, got %v", kind, code, err)
	}
	if re.Kind != kind || re.Code != code {
		t.Fatalf("want RuleError %s/%s, got %s/%s: %s", kind, code, re.Kind, re.Code, re.Message)
	}
	if re.Message == "" {
		t.Fatalf("RuleError %s has no message", code)
	}
}
