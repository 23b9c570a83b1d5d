package entitlement

import (
	"encoding/json"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/ansinh/ansinh/domain"
)

// genPeriod draws a period around the 2024 rate changes.
func genPeriod(t *rapid.T, label string) domain.Period {
	return per("2022-01").AddMonths(rapid.IntRange(0, 59).Draw(t, label))
}

func genCommand(t *rapid.T, b Book) Command {
	id := fmt.Sprintf("E%d", rapid.IntRange(1, len(b.Entitlements)+1).Draw(t, "id"))
	reason := rapid.SampledFrom([]string{"reason", ""}).Draw(t, "reason")
	switch rapid.IntRange(0, 4).Draw(t, "op") {
	case 0, 1: // grants twice as often, so books fill up
		g := Grant{
			Program: rapid.SampledFrom([]string{SocialMonthly, MeritMonthly, ResistanceOneTime, MartyrWorship, PresidentTetGift}).Draw(t, "program"),
			Start:   genPeriod(t, "start"),
		}
		if rapid.Bool().Draw(t, "hasEnd") {
			g.End = genPeriod(t, "end")
		}
		if rapid.Bool().Draw(t, "coef") {
			g.Coefficient = coef(rapid.SampledFrom([]string{"0.5", "1", "1.5", "2", "2.5", "3", "0", "11"}).Draw(t, "c"))
		} else {
			g.Amount = money(rapid.SampledFrom([]int64{300_000, 600_000, 1_400_000, 0, -1, 60_000_000}).Draw(t, "a"))
		}
		return g
	case 2:
		a := Adjust{EntitlementID: id, From: genPeriod(t, "from"), Reason: reason}
		if rapid.Bool().Draw(t, "coef") {
			a.Coefficient = coef(rapid.SampledFrom([]string{"1", "2", "3"}).Draw(t, "c"))
		} else {
			a.Amount = money(rapid.SampledFrom([]int64{300_000, 600_000, 1_400_000}).Draw(t, "a"))
		}
		return a
	case 3:
		if rapid.Bool().Draw(t, "suspend") {
			return Suspend{EntitlementID: id, From: genPeriod(t, "from"), Reason: reason}
		}
		return Resume{EntitlementID: id, From: genPeriod(t, "from"), Reason: reason}
	default:
		return End{EntitlementID: id, LastPeriod: genPeriod(t, "last"), Reason: reason}
	}
}

// TestEntitlementInvariants drives a book with random commands, and a death
// at a random step, and checks after every step that the rules hold.
func TestEntitlementInvariants(t *testing.T) {
	e := env(t)
	horizon := per("2027-12")
	rapid.Check(t, func(t *rapid.T) {
		e.Limits.AmountCap = vnd(rapid.SampledFrom([]int64{DefaultAmountCapDong, 1_500_000}).Draw(t, "cap"))
		var b Book
		h := Holder{CitizenID: cid}
		steps := rapid.IntRange(1, 40).Draw(t, "steps")
		deathAt := rapid.IntRange(0, 2*steps).Draw(t, "deathAt") // past steps: never dies
		for i := range steps {
			if i == deathAt {
				h.LastPeriod, h.ExitCause = genPeriod(t, "death"), EndedByDeath
				for _, ev := range EndForExit(b, cid, h.LastPeriod, EndedByDeath) {
					b = b.Evolve(ev)
				}
			}
			cmd := genCommand(t, b)
			evs, err := Decide(b, h, e, cmd)
			if err != nil {
				re, ok := domain.AsRuleError(err)
				if !ok || re.Message == "" || re.Code == "" {
					t.Fatalf("%T rejected without a rule error: %v", cmd, err)
				}
				if len(evs) != 0 {
					t.Fatalf("%T rejected but decided %v", cmd, evs)
				}
				continue
			}
			for _, ev := range evs {
				b = b.Evolve(ev)
			}
			checkBook(t, b, h, e, horizon)
		}
	})
}

func checkBook(t *rapid.T, b Book, h Holder, e Env, horizon domain.Period) {
	// No two live entitlements of one program may overlap (one-time: at
	// most one ever; gift: at most one a year).
	for i, x := range b.Entitlements {
		for _, y := range b.Entitlements[:i] {
			if x.Program != y.Program || x.Cancelled() || y.Cancelled() {
				continue
			}
			switch x.Kind {
			case OneTime:
				t.Fatalf("two one-time entitlements %s and %s of %s", y.ID, x.ID, x.Program)
			case Gift:
				if x.Start.Year == y.Start.Year {
					t.Fatalf("two gifts %s and %s of %s in %d", y.ID, x.ID, x.Program, x.Start.Year)
				}
			default:
				if overlaps(x.Start, x.End, y.Start, y.End) {
					t.Fatalf("%s and %s of %s overlap: %+v %+v", y.ID, x.ID, x.Program, y, x)
				}
			}
		}
		if !h.LastPeriod.IsZero() && (!x.Ended() || x.End.After(h.LastPeriod)) {
			t.Fatalf("%s runs past death in %s: end %s", x.ID, h.LastPeriod, x.End)
		}
	}
	lines, err := OwedThrough(b, h, e.Catalogue, horizon, e.Limits)
	if err != nil {
		t.Fatalf("owed: %v", err)
	}
	perProgram := map[string]bool{}
	onceLines := map[string]int{}
	sum := map[domain.Period]domain.Money{}
	for _, l := range lines {
		if !l.Amount.IsPositive() || !l.Amount.IsWhole() || l.Amount.Cmp(e.Limits.AmountCap) > 0 {
			t.Fatalf("line %+v: amount not positive whole dong under the cap %s", l, e.Limits.AmountCap)
		}
		if !h.LastPeriod.IsZero() && l.Period.After(h.LastPeriod) {
			t.Fatalf("owed %s after death in %s", l.Period, h.LastPeriod)
		}
		key := l.Program + "@" + l.Period.String()
		if perProgram[key] {
			t.Fatalf("two lines of %s in %s", l.Program, l.Period)
		}
		perProgram[key] = true
		if l.Kind.Once() {
			if onceLines[l.EntitlementID]++; onceLines[l.EntitlementID] > 1 {
				t.Fatalf("once-owed %s owed twice", l.EntitlementID)
			}
		}
		if s, ok := sum[l.Period]; ok {
			sum[l.Period] = s.Add(l.Amount)
		} else {
			sum[l.Period] = l.Amount
		}
	}
	// The total up to P is the sum of what is owed in each period up to P.
	total := domain.ZeroVND()
	for p := per("2021-01"); !p.After(horizon); p = p.Next() {
		in, err := OwedIn(b, h, e.Catalogue, p, e.Limits)
		if err != nil {
			t.Fatalf("owed in %s: %v", p, err)
		}
		pt := Total(in)
		if s, ok := sum[p]; ok && !s.Equal(pt) || !ok && !pt.IsZero() {
			t.Fatalf("%s: OwedIn total %s, OwedThrough lines %s", p, pt, s)
		}
		total = total.Add(pt)
	}
	if !total.Equal(Total(lines)) {
		t.Fatalf("total through %s: %s, sum of periods %s", horizon, Total(lines), total)
	}
	// Line for line, trace included: OwedThrough reuses the line of the
	// period before when terms and rate are unchanged, and must give
	// exactly what OwedIn computes for each period.
	var each []Line
	for p := per("2021-01"); !p.After(horizon); p = p.Next() {
		in, _ := OwedIn(b, h, e.Catalogue, p, e.Limits)
		each = append(each, in...)
	}
	if a, b := jsonOf(t, append([]Line{}, lines...)), jsonOf(t, append([]Line{}, each...)); a != b {
		t.Fatalf("OwedThrough\n%s\nOwedIn period by period\n%s", a, b)
	}
}

// TestEvolveKeepsEarlierStates checks that Decide leaves the state it is
// given alone and that Evolve copies what it changes: a decider may hold
// an earlier state while the ledger folds new events, and the ledger hands
// one cached state to concurrent commands (ledger/statecache.go).
func TestEvolveKeepsEarlierStates(t *testing.T) {
	e := env(t)
	rapid.Check(t, func(t *rapid.T) {
		var b Book
		for range rapid.IntRange(1, 20).Draw(t, "steps") {
			before := fmt.Sprintf("%+v", b)
			evs, err := Decide(b, alive, e, genCommand(t, b))
			if after := fmt.Sprintf("%+v", b); after != before {
				t.Fatalf("Decide changed the state it was given:\n%s\n%s", before, after)
			}
			if err != nil {
				continue
			}
			next := b
			for _, ev := range evs {
				next = next.Evolve(ev)
			}
			if after := fmt.Sprintf("%+v", b); after != before {
				t.Fatalf("Evolve changed the earlier state:\n%s\n%s", before, after)
			}
			b = next
		}
	})
}

// jsonOf compares values by their JSON: decimals by value, pointers by
// what they point to.
func jsonOf(t *rapid.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
