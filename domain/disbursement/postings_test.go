package disbursement

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/ansinh/ansinh/domain"
)

// journalOf renders postings as "account:amount" for comparison.
func journalOf(ps []Posting) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%s:%s", p.Account, p.Amount.Amount)
	}
	return out
}

func TestPostingsPerEvent(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	ref := AttemptRef{Obligation: k, Attempt: 1, RunID: "R1", PaymentID: "R1-001150000001-b000000"}
	off := Amounts{Gross: vnd(540_000), Offsets: []Offset{{Correction: "C1", Amount: vnd(40_000)}}, Net: vnd(500_000)}
	full := Amounts{Gross: vnd(540_000), Net: vnd(540_000)}
	cases := []struct {
		ev   domain.Event
		want []string
	}{
		{PaymentIssued{AttemptRef: ref, Amounts: full}, []string{"program_expense:540000", "beneficiary_payable:-540000"}},
		{PaymentIssued{AttemptRef: ref, Amounts: off}, []string{"program_expense:540000", "beneficiary_payable:-500000", "beneficiary_receivable:-40000"}},
		{PaymentCancelled{AttemptRef: ref, Amounts: off}, []string{"beneficiary_payable:500000", "beneficiary_receivable:40000", "program_expense:-540000"}},
		{PaymentReleased{AttemptRef: ref, Method: MethodBank, Net: vnd(500_000)}, []string{"beneficiary_payable:500000", "payments_in_transit:-500000"}},
		{PaymentSettled{AttemptRef: ref, Method: MethodBank, Net: vnd(500_000)}, []string{"payments_in_transit:500000", "bank_disbursed:-500000"}},
		{PaymentSettled{AttemptRef: ref, Method: MethodCash, Net: vnd(500_000)}, []string{"payments_in_transit:500000", "cash_disbursed:-500000"}},
		{PaymentFailed{AttemptRef: ref, Method: MethodBank, Amounts: off}, []string{"payments_in_transit:500000", "beneficiary_receivable:40000", "program_expense:-540000"}},
		{PaymentReturned{AttemptRef: ref, Method: MethodBank, Amounts: full}, []string{"bank_disbursed:540000", "program_expense:-540000"}},
		{RecoveryRaised{CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Amount: vnd(180_000)}, []string{"beneficiary_receivable:180000", "program_expense:-180000"}},
		// A line fully kept back moves nothing through payable or transit.
		{PaymentReleased{AttemptRef: ref, Method: MethodOffset, Net: vnd(0)}, []string{}},
		// Events that move no money.
		{PaymentReversed{AttemptRef: ref, Gross: vnd(540_000)}, nil},
		{TopUpGranted{}, nil},
		{RecoveryOffsetReserved{}, nil},
		{PayoutRunApproved{}, nil},
		{CorrectionApproved{}, nil},
	}
	for _, c := range cases {
		t.Run(c.ev.EventType(), func(t *testing.T) {
			ps, err := Postings(c.ev)
			mustNoErr(t, err)
			if got := journalOf(ps); !slices.Equal(got, c.want) {
				t.Fatalf("postings %v, want %v", got, c.want)
			}
			for _, p := range ps {
				if p.CitizenID != cidAn || p.Program != "SOCIAL_MONTHLY" {
					t.Fatalf("dimensions: %+v", p)
				}
			}
		})
	}
}

func TestPostingsRefuseBadEvents(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	ref := AttemptRef{Obligation: k, Attempt: 1}
	for _, ev := range []domain.Event{
		// Gross and net disagree: the entry would not balance.
		PaymentIssued{AttemptRef: ref, Amounts: Amounts{Gross: vnd(540_000), Net: vnd(500_000)}},
		PaymentFailed{AttemptRef: ref, Amounts: Amounts{Gross: vnd(100), Net: vnd(100), Offsets: []Offset{{Amount: vnd(1)}}}},
		RecoveryRaised{Amount: vnd(-5)},
		RecoveryRaised{Amount: domain.RoundToDong(vnd(5).Amount).Add(domain.Money{Amount: vnd(1).Amount.Div(vnd(3).Amount), Currency: domain.VND})},
	} {
		if _, err := Postings(ev); err == nil {
			t.Errorf("%s %+v: postings accepted", ev.EventType(), ev)
		}
	}
}

func TestTrialBalance(t *testing.T) {
	tb := NewTrialBalance()
	tb.Post(MustPostings(RecoveryRaised{CitizenID: cidAn, Program: "P", Amount: vnd(10)})...)
	mustNoErr(t, tb.Check())
	if !tb.Balance(BeneficiaryReceivable).Equal(vnd(10)) || !tb.Balance(ProgramExpense).Equal(vnd(-10)) || !tb.Balance(BankDisbursed).IsZero() {
		t.Fatal("balances")
	}
	tb.Post(Posting{Account: BankDisbursed, Amount: vnd(1)})
	if tb.Check() == nil {
		t.Fatal("an unbalanced trial balance passed")
	}
}

// world is the property test's model: obligations, adjustments and runs
// driven only through this package's deciders, with every event posted.
type world struct {
	obs       map[string]Obligation
	adj       map[string]Adjustments
	cancelled map[string]bool
	released  map[string]bool
	runs      int
	corr      int
	tb        *TrialBalance
	raised    map[string]domain.Money // by citizen: recoveries raised
	raisedOff map[string]domain.Money // by citizen+program: offset-mode recoveries raised
}

var (
	simCitizens = []string{cidAn, cidBinh}
	simPrograms = []string{"SOCIAL_MONTHLY", "TET_GIFT"}
	simPeriods  = []domain.Period{jan, feb}
)

func (w *world) apply(t *rapid.T, evs ...domain.Event) {
	for _, e := range evs {
		ps, err := Postings(e)
		if err != nil {
			t.Fatalf("%s: %v", e.EventType(), err)
		}
		w.tb.Post(ps...)
		switch e := e.(type) {
		case PaymentIssued, PaymentCancelled, PaymentReleased, PaymentSettled, PaymentFailed, PaymentReturned, PaymentReversed:
			s := attemptRefOf(e).Obligation.Stream()
			w.obs[s] = w.obs[s].Evolve(e)
		case TopUpGranted, RecoveryRaised, RecoveryOffsetReserved, RecoveryOffsetReleased:
			cid := citizenOf(e)
			w.adj[cid] = w.adj[cid].Evolve(e)
			if r, ok := e.(RecoveryRaised); ok {
				w.raised[cid] = orZero(w.raised, cid).Add(r.Amount)
				if r.Mode == RecoverByOffset {
					w.raisedOff[cid+r.Program] = orZero(w.raisedOff, cid+r.Program).Add(r.Amount)
				}
			}
		}
	}
}

func orZero(m map[string]domain.Money, k string) domain.Money {
	if v, ok := m[k]; ok {
		return v
	}
	return domain.ZeroVND()
}

func attemptRefOf(e domain.Event) AttemptRef {
	switch e := e.(type) {
	case PaymentIssued:
		return e.AttemptRef
	case PaymentCancelled:
		return e.AttemptRef
	case PaymentReleased:
		return e.AttemptRef
	case PaymentSettled:
		return e.AttemptRef
	case PaymentFailed:
		return e.AttemptRef
	case PaymentReturned:
		return e.AttemptRef
	case PaymentReversed:
		return e.AttemptRef
	}
	panic("not a payment event")
}

func citizenOf(e domain.Event) string {
	switch e := e.(type) {
	case TopUpGranted:
		return e.CitizenID
	case RecoveryRaised:
		return e.CitizenID
	case RecoveryOffsetReserved:
		return e.CitizenID
	case RecoveryOffsetReleased:
		return e.CitizenID
	}
	panic("not an adjustment")
}

func (w *world) lastAttempts(status Status) []Attempt {
	var out []Attempt
	for _, s := range slices.Sorted(mapsKeys(w.obs)) {
		if a, ok := w.obs[s].Last(); ok && a.Status == status {
			out = append(out, a)
		}
	}
	return out
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// calculate runs a calculation for every simulated beneficiary.
func (w *world) calculate(t *rapid.T) {
	w.runs++
	run := fmt.Sprintf("R%d", w.runs)
	scope := Scope{Periods: simPeriods, Programs: simPrograms, CashOnly: rapid.Bool().Draw(t, "cash_only")}
	for _, cid := range simCitizens {
		owed := Owed{CitizenID: cid, Payee: bankPayee(cid)}
		for _, prog := range simPrograms {
			for _, p := range simPeriods {
				owed.Lines = append(owed.Lines, OwedLine{Key: key(cid, prog, p), Amount: vnd(simAmount(cid, prog, p))})
			}
		}
		lines, err := Candidates(scope, owed, w.adj[cid])
		if err != nil {
			t.Fatal(err)
		}
		obs := map[string]Obligation{}
		for _, l := range lines {
			o := w.obs[l.Key.Stream()]
			o.Key = l.Key
			obs[l.Key.Stream()] = o
		}
		plan, err := PlanBeneficiary(PlanInput{RunID: run, Scope: scope, Owed: owed, Lines: lines, Adjustments: w.adj[cid], Obligations: obs,
			RunCancelled: func(id string) bool { return w.cancelled[id] }})
		if err != nil {
			t.Fatal(err)
		}
		w.apply(t, plan.Reserve...)
		for _, c := range plan.Claims {
			w.apply(t, c.Events...)
		}
	}
}

func simAmount(cid, prog string, p domain.Period) int64 {
	n := int64(540_000)
	if prog == "TET_GIFT" {
		n = 600_000
	}
	if cid == cidBinh {
		n -= 1
	}
	return n + int64(p.Month)
}

func (w *world) runOf(t *rapid.T) (string, bool) {
	if w.runs == 0 {
		return "", false
	}
	return fmt.Sprintf("R%d", rapid.IntRange(1, w.runs).Draw(t, "run")), true
}

func (w *world) pick(t *rapid.T, status Status, label string) (Attempt, bool) {
	as := w.lastAttempts(status)
	if len(as) == 0 {
		return Attempt{}, false
	}
	return as[rapid.IntRange(0, len(as)-1).Draw(t, label)], true
}

func (w *world) answer(t *rapid.T, a Attempt, s Settlement) {
	o := w.obs[a.Obligation.Stream()]
	ev, err := o.Settle(s)
	if err != nil {
		t.Fatalf("settle %s: %v", a.Obligation.Stream(), err)
	}
	w.apply(t, ev)
	if s.Outcome != OutcomeSettled {
		cid := a.Obligation.CitizenID
		w.apply(t, w.adj[cid].ReleaseOffsets(a.AttemptRef, a.Offsets, string(s.Outcome))...)
	}
}

func (w *world) correct(t *rapid.T, cmd RequestCorrection) {
	w.corr++
	cmd.CorrectionID = fmt.Sprintf("C%d", w.corr)
	cmd.Reason, cmd.DocumentRef = "property test", "DOC-1"
	k := ObligationKey{CitizenID: cmd.CitizenID, Program: cmd.Program, Period: cmd.Period}
	ob := w.obs[k.Stream()]
	ob.Key = k
	evs, err := Correction{}.Request(cmd, ob, officer)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	c := Correction{}.Evolve(evs[0])
	c = c.Evolve(mustEvents(c.Approve(cmd.CorrectionID, approver))[0])
	pay, adj, err := c.Effects(ob, w.adj[cmd.CitizenID])
	if err != nil {
		t.Fatalf("effects: %v", err)
	}
	w.apply(t, pay...)
	w.apply(t, adj...)
}

// check asserts the books against the model: every account's balance is
// what the attempts and recoveries say it must be, and no obligation has two
// live attempts.
func (w *world) check(t *rapid.T) {
	if err := w.tb.Check(); err != nil {
		t.Fatal(err)
	}
	want := map[Account]domain.Money{}
	for _, a := range Accounts {
		want[a] = domain.ZeroVND()
	}
	add := func(a Account, m domain.Money) { want[a] = want[a].Add(m) }
	liveOffsets := map[string]domain.Money{}
	for s, o := range w.obs {
		live := 0
		for _, a := range o.Attempts {
			switch a.Status {
			case StatusIssued:
				add(BeneficiaryPayable, a.Net.Neg())
			case StatusReleased:
				add(PaymentsInTransit, a.Net.Neg())
			case StatusSettled, StatusReversed:
				add(disbursed(a.Payee.Method), a.Net.Neg())
			}
			switch a.Status {
			case StatusIssued, StatusReleased, StatusSettled, StatusReversed:
				live++
				add(ProgramExpense, a.Gross)
				add(BeneficiaryReceivable, a.OffsetTotal().Neg())
				k := a.Obligation.CitizenID + a.Obligation.Program
				liveOffsets[k] = orZero(liveOffsets, k).Add(a.OffsetTotal())
			}
		}
		if live > 1 {
			t.Fatalf("%s has %d live attempts: paid twice", s, live)
		}
	}
	for _, m := range w.raised {
		add(BeneficiaryReceivable, m)
		add(ProgramExpense, m.Neg())
	}
	for _, a := range Accounts {
		if !w.tb.Balance(a).Equal(want[a]) {
			t.Fatalf("%s: books %s, model %s", a, w.tb.Balance(a), want[a])
		}
	}
	// What recoveries still have to keep back is what was raised less what
	// live attempts keep back.
	for _, cid := range simCitizens {
		for _, prog := range simPrograms {
			out := domain.ZeroVND()
			for _, r := range w.adj[cid].Recoveries {
				if r.Mode == RecoverByOffset && r.Program == prog {
					o := r.Outstanding(func(id string) bool { return w.cancelled[id] })
					if o.IsNegative() {
						t.Fatalf("recovery %s outstanding %s", r.Correction, o)
					}
					out = out.Add(o)
				}
			}
			raised, kept := orZero(w.raisedOff, cid+prog), orZero(liveOffsets, cid+prog)
			if !out.Equal(raised.Sub(kept)) {
				t.Fatalf("%s %s: outstanding %s, raised %s - kept back %s", cid, prog, out, raised, kept)
			}
		}
	}
}

func TestPostingsPropertyRandomCommands(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := &world{obs: map[string]Obligation{}, adj: map[string]Adjustments{}, cancelled: map[string]bool{}, released: map[string]bool{},
			tb: NewTrialBalance(), raised: map[string]domain.Money{}, raisedOff: map[string]domain.Money{}}
		t.Repeat(map[string]func(*rapid.T){
			"calculate": w.calculate,
			"release run": func(t *rapid.T) {
				run, ok := w.runOf(t)
				if !ok || w.cancelled[run] {
					t.Skip("no run to release")
				}
				w.released[run] = true
				for _, a := range w.lastAttempts(StatusIssued) {
					if a.RunID != run {
						continue
					}
					o := w.obs[a.Obligation.Stream()]
					ev := must(o.Release(run))
					w.apply(t, ev)
					if a.Payee.Method == MethodOffset {
						w.apply(t, PaymentSettled{AttemptRef: ev.AttemptRef, Method: MethodOffset, Net: ev.Net, Reference: "offset", SettledAt: at})
					}
				}
			},
			"cancel run": func(t *rapid.T) {
				run, ok := w.runOf(t)
				if !ok || w.released[run] {
					t.Skip("no run to cancel")
				}
				w.cancelled[run] = true
				for _, a := range w.lastAttempts(StatusIssued) {
					if a.RunID == run {
						w.apply(t, must(w.obs[a.Obligation.Stream()].Cancel(run, "cancelled")))
					}
				}
			},
			"settle": func(t *rapid.T) {
				a, ok := w.pick(t, StatusReleased, "attempt")
				if !ok {
					t.Skip("nothing in transit")
				}
				w.answer(t, a, Settlement{PaymentID: a.PaymentID, Outcome: OutcomeSettled, Reference: "FT" + a.PaymentID[len(a.PaymentID)-4:], At: at})
			},
			"fail": func(t *rapid.T) {
				a, ok := w.pick(t, StatusReleased, "attempt")
				if !ok {
					t.Skip("nothing in transit")
				}
				w.answer(t, a, Settlement{PaymentID: a.PaymentID, Outcome: OutcomeFailed, Reason: rapid.SampledFrom(failureReasons).Draw(t, "reason"), At: at})
			},
			"return": func(t *rapid.T) {
				a, ok := w.pick(t, StatusSettled, "attempt")
				if !ok || a.Payee.Method != MethodBank {
					t.Skip("no settled transfer")
				}
				w.answer(t, a, Settlement{PaymentID: a.PaymentID, Outcome: OutcomeReturned, Reference: "RT1", Reason: ReasonAccountClosed, At: at})
			},
			"recover": func(t *rapid.T) {
				w.correct(t, RequestCorrection{Kind: CorrectRecovery, CitizenID: rapid.SampledFrom(simCitizens).Draw(t, "citizen"),
					Program: rapid.SampledFrom(simPrograms).Draw(t, "program"), Period: jan,
					Amount: vnd(rapid.Int64Range(1, 1_500_000).Draw(t, "amount")),
					Mode:   rapid.SampledFrom([]RecoveryMode{RecoverByOffset, RecoverAsReceivable}).Draw(t, "mode")})
			},
			"top up": func(t *rapid.T) {
				w.correct(t, RequestCorrection{Kind: CorrectTopUp, CitizenID: rapid.SampledFrom(simCitizens).Draw(t, "citizen"),
					Program: rapid.SampledFrom(simPrograms).Draw(t, "program"), Period: rapid.SampledFrom(simPeriods).Draw(t, "period"),
					Amount: vnd(rapid.Int64Range(1, 300_000).Draw(t, "amount"))})
			},
			"reverse": func(t *rapid.T) {
				a, ok := w.pick(t, StatusSettled, "attempt")
				if !ok || a.Obligation.TopUp != "" {
					t.Skip("nothing settled")
				}
				w.correct(t, RequestCorrection{Kind: CorrectReversal, CitizenID: a.Obligation.CitizenID, Program: a.Obligation.Program,
					Period: a.Obligation.Period, Mode: rapid.SampledFrom([]RecoveryMode{RecoverByOffset, RecoverAsReceivable}).Draw(t, "mode")})
			},
			"": w.check,
		})
	})
}
