package ledger

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// TestLedgerAgreesWithTheDomain sends random commands through the ledger and
// through the pure deciders side by side: the ledger must accept and refuse
// exactly what the domain does, append exactly the decided events (nothing
// for a refusal), and load back the state the domain folded.
func TestLedgerAgreesWithTheDomain(t *testing.T) {
	l, _ := newLedger(t)
	if _, err := l.SeedCatalogue(ctx); err != nil {
		t.Fatal(err)
	}
	cat, _, _ := l.Catalogue(ctx)
	renv := registry.Env{Today: l.Today()}
	eenv := entitlement.Env{Catalogue: cat, Limits: l.Limits()}
	serial := 0
	rapid.Check(t, func(t *rapid.T) {
		serial++
		reg := registerAn()
		reg.CitizenID = registry.MakeCitizenID("001", registry.Female, 1945, serial)
		id := reg.CitizenID
		if _, err := l.Register(ctx, registrar, reg); err != nil {
			t.Fatal(err)
		}
		model := registry.Beneficiary{}
		evs, _ := registry.Decide(model, renv, reg)
		model = model.Evolve(evs[0])

		for range rapid.IntRange(1, 12).Draw(t, "steps") {
			var (
				res      Result
				err      error
				decided  []domain.Event
				modelErr error
			)
			if rapid.IntRange(0, 5).Draw(t, "kind") == 0 {
				cmd := rapid.SampledFrom([]registry.Command{
					registry.RecordDeath{DateOfDeath: domain.MustDate("2024-03-05"), DocumentRef: "GCT-1"},
					registry.RecordMoveAway{MovedOn: domain.MustDate("2024-05-01"), Destination: "Huế"},
					registry.ChoosePaymentMethod{Method: registry.BankTransfer},
				}).Draw(t, "registryCmd")
				decided, modelErr = registry.Decide(model, renv, cmd)
				res, err = l.Beneficiary(ctx, registrar, id, cmd)
			} else {
				cmd := drawEntitlementCommand(t, len(model.Entitlements.Entitlements))
				decided, modelErr = registry.DecideEntitlement(model, eenv, cmd)
				res, err = l.Entitlement(ctx, registrar, id, cmd)
			}
			if (err == nil) != (modelErr == nil) {
				t.Fatalf("ledger said %v, domain said %v", err, modelErr)
			}
			if err != nil {
				got, _ := domain.AsRuleError(err)
				want, _ := domain.AsRuleError(modelErr)
				if got == nil || want == nil || got.Code != want.Code {
					t.Fatalf("ledger refused with %v, domain with %v", err, modelErr)
				}
				if len(res.Events) != 0 {
					t.Fatalf("refused command appended %v", res.Events)
				}
				continue
			}
			if len(res.Events) != len(decided) {
				t.Fatalf("appended %d events, domain decided %d", len(res.Events), len(decided))
			}
			for i, e := range decided {
				if res.Events[i].Type != e.EventType() {
					t.Fatalf("event %d: %s, want %s", i, res.Events[i].Type, e.EventType())
				}
				model = model.Evolve(e)
			}
		}
		ld, err := l.LoadBeneficiary(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err1 := ld.State.OwedThrough(cat, per("2026-12"), l.Limits())
		want, err2 := model.OwedThrough(cat, per("2026-12"), l.Limits())
		if err1 != nil || err2 != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("loaded state owes %v (%v), model %v (%v)", got, err1, want, err2)
		}
	})
}

func drawEntitlementCommand(t *rapid.T, n int) entitlement.Command {
	p := func(label string) domain.Period {
		return per("2023-01").AddMonths(rapid.IntRange(0, 35).Draw(t, label))
	}
	id := fmt.Sprintf("E%d", rapid.IntRange(1, n+1).Draw(t, "id"))
	switch rapid.IntRange(0, 4).Draw(t, "op") {
	case 0, 1:
		prog := rapid.SampledFrom([]string{entitlement.SocialMonthly, entitlement.MeritMonthly, entitlement.PresidentTetGift}).Draw(t, "program")
		g := entitlement.Grant{Program: prog, Start: p("start")}
		if prog == entitlement.PresidentTetGift {
			g.Amount = ptr(domain.VNDAmount(rapid.SampledFrom([]int64{300_000, 600_000}).Draw(t, "tier")))
		} else {
			g.Coefficient = coef(rapid.SampledFrom([]string{"1", "1.5", "2", "12"}).Draw(t, "coef"))
		}
		return g
	case 2:
		return entitlement.Suspend{EntitlementID: id, From: p("from"), Reason: "r"}
	case 3:
		return entitlement.Resume{EntitlementID: id, From: p("from"), Reason: "r"}
	default:
		return entitlement.End{EntitlementID: id, LastPeriod: p("last"), Reason: "r"}
	}
}
