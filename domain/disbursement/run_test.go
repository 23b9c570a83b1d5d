package disbursement

import (
	"testing"

	"github.com/ansinh/ansinh/domain"
)

func openCmd() OpenRun {
	return OpenRun{RunID: "LB-2024-01", Scope: Scope{Periods: []domain.Period{feb, jan}, Programs: []string{"TET_GIFT", "SOCIAL_MONTHLY"}, Districts: []string{"004"}}}
}

func applyRun(r Run, evs ...domain.Event) Run {
	for _, e := range evs {
		r = r.Evolve(e)
	}
	return r
}

func openedRun(t *testing.T, cmd OpenRun) Run {
	t.Helper()
	evs, err := Run{}.Open(cmd, officer)
	mustNoErr(t, err)
	return applyRun(Run{}, evs...)
}

// calculatedRun has one payment of 1,680,000 (An: 2 x 540,000 + 600,000).
func calculatedRun(t *testing.T, cmd OpenRun, by domain.Actor) Run {
	t.Helper()
	r := openedRun(t, cmd)
	p := bankPayee(cidAn)
	r = applyRun(r, PayoutRunPaymentsCalculated{RunID: r.ID, Page: 1, Part: 0, Cursor: cidAn, Beneficiaries: 1},
		PayoutRunPaymentsCalculated{RunID: r.ID, Page: 1, Part: 1, Cursor: cidAn, Payments: []RunPayment{{PaymentID: PaymentID(r.ID, p), Payee: p, Lines: []RunLine{
			{Obligation: key(cidAn, "SOCIAL_MONTHLY", jan), Attempt: 1, Gross: vnd(540_000), Net: vnd(540_000)},
			{Obligation: key(cidAn, "SOCIAL_MONTHLY", feb), Attempt: 1, Gross: vnd(540_000), Net: vnd(540_000)},
			{Obligation: key(cidAn, "TET_GIFT", jan), Attempt: 1, Gross: vnd(600_000), Net: vnd(600_000)},
		}}}})
	evs, err := r.CompleteCalculation(by)
	mustNoErr(t, err)
	return applyRun(r, evs...)
}

func TestOpenRun(t *testing.T) {
	r := openedRun(t, openCmd())
	if r.Status != RunOpened || r.OpenedBy != officer.UserID {
		t.Fatalf("opened run: %+v", r)
	}
	if r.Scope.Periods[0] != jan || r.Scope.Programs[0] != "SOCIAL_MONTHLY" {
		t.Fatalf("scope not normalized: %+v", r.Scope)
	}
	// The same command again is a read; other content under the ID a conflict.
	evs, err := r.Open(openCmd(), officer)
	if err != nil || evs != nil {
		t.Fatalf("resent open: %v %v", evs, err)
	}
	other := openCmd()
	other.Scope.Periods = []domain.Period{mar}
	_, err = r.Open(other, officer)
	wantRule(t, err, domain.Conflict, "run_exists")
}

func TestOpenRunValidation(t *testing.T) {
	big := vnd(domain.MaxAmountDong)
	cases := []struct {
		name  string
		edit  func(*OpenRun)
		actor domain.Actor
		code  string
	}{
		{"no periods", func(c *OpenRun) { c.Scope.Periods = nil }, officer, "invalid_periods"},
		{"period twice", func(c *OpenRun) { c.Scope.Periods = []domain.Period{jan, jan} }, officer, "invalid_periods"},
		{"no programs", func(c *OpenRun) { c.Scope.Programs = nil }, officer, "invalid_programs"},
		{"program twice", func(c *OpenRun) { c.Scope.Programs = []string{"A", "A"} }, officer, "invalid_programs"},
		{"bad district", func(c *OpenRun) { c.Scope.Districts = []string{"00 4"} }, officer, "invalid_code"},
		{"arrears after the first period", func(c *OpenRun) { c.Scope.ArrearsFrom = feb }, officer, "invalid_arrears"},
		{"arrears too far back", func(c *OpenRun) { c.Scope.ArrearsFrom = jan.AddMonths(-MaxArrearsMonths - 2) }, officer, "invalid_arrears"},
		{"negative budget", func(c *OpenRun) { c.Budget.MaxPayments = -1 }, officer, "invalid_budget"},
		{"absurd budget", func(c *OpenRun) { c.Budget.MaxAmount = &big }, officer, "invalid_budget"},
		{"bad run ID", func(c *OpenRun) { c.RunID = "run 1" }, officer, "invalid_id"},
		{"registrar", func(c *OpenRun) {}, domain.Actor{UserID: "r", Role: domain.RoleRegistrar}, "role_forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := openCmd()
			c.edit(&cmd)
			_, err := Run{}.Open(cmd, c.actor)
			re, ok := domain.AsRuleError(err)
			if !ok || re.Code != c.code {
				t.Fatalf("want %s, got %v", c.code, err)
			}
		})
	}
	ok := openCmd()
	ok.Scope.ArrearsFrom = jan.AddMonths(-MaxArrearsMonths)
	_, err := Run{}.Open(ok, officer)
	mustNoErr(t, err)
}

func TestScopeCovers(t *testing.T) {
	s := Scope{Periods: []domain.Period{mar}, Programs: []string{"SOCIAL_MONTHLY"}, ArrearsFrom: jan}
	if !s.Covers("SOCIAL_MONTHLY", jan) || !s.Covers("SOCIAL_MONTHLY", mar) || s.Covers("SOCIAL_MONTHLY", mar.Next()) || s.Covers("TET_GIFT", mar) {
		t.Fatal("Covers")
	}
	if got := s.AllPeriods(); len(got) != 3 || got[0] != jan || got[2] != mar {
		t.Fatalf("AllPeriods = %v", got)
	}
}

func TestFourEyes(t *testing.T) {
	admin := domain.Actor{UserID: "thu", Role: domain.RoleAdmin}
	cases := []struct {
		name       string
		calculator domain.Actor
		approver   domain.Actor
		code       string
	}{
		{"another person approves", officer2, approver, ""},
		{"the opener approves", officer2, admin, "self_approval"},
		{"the calculator approves", domain.Actor{UserID: "minh", Role: domain.RoleFinanceOfficer}, approver, "self_approval"},
		{"a finance officer may not approve", officer2, domain.Actor{UserID: "x", Role: domain.RoleFinanceOfficer}, "role_forbidden"},
		{"the service may not approve", officer2, domain.Actor{UserID: "svc", Role: domain.RoleSystem}, "role_forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := calculatedRun(t, openCmd(), c.calculator)
			evs, err := r.Approve(c.approver)
			if c.code == "" {
				mustNoErr(t, err)
				r = applyRun(r, evs...)
				if r.Status != RunApproved || r.ApprovedBy != c.approver.UserID {
					t.Fatalf("approved: %+v", r)
				}
				return
			}
			re, ok := domain.AsRuleError(err)
			if !ok || re.Code != c.code || re.Kind != domain.Forbidden {
				t.Fatalf("want Forbidden %s, got %v", c.code, err)
			}
		})
	}
}

func TestFourEyesCoversEveryCalculator(t *testing.T) {
	r := openedRun(t, openCmd())
	// Minh started a page (resuming as a finance officer), Lan completed.
	r = applyRun(r, PayoutRunPageStarted{RunID: r.ID, Page: 1, CitizenIDs: []string{cidAn}, By: "minh"},
		PayoutRunPaymentsCalculated{RunID: r.ID, Page: 1, Cursor: cidAn, Beneficiaries: 1})
	r = applyRun(r, mustEvents(r.CompleteCalculation(officer2))...)
	_, err := r.Approve(approver)
	wantRule(t, err, domain.Forbidden, "self_approval")
	_, err = r.Approve(domain.Actor{UserID: "hoa", Role: domain.RoleApprover})
	mustNoErr(t, err)
}

func TestBudget(t *testing.T) {
	cases := []struct {
		name   string
		budget Budget
		code   string
	}{
		{"no budget", Budget{}, ""},
		{"exactly the budget", Budget{MaxPayments: 1, MaxAmount: ptr(vnd(1_680_000))}, ""},
		{"one dong over", Budget{MaxAmount: ptr(vnd(1_679_999))}, "over_budget"},
		{"as many payments as allowed", Budget{MaxPayments: 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := openCmd()
			cmd.Budget = c.budget
			r := calculatedRun(t, cmd, officer2)
			_, err := r.Approve(approver)
			if c.code == "" {
				mustNoErr(t, err)
				return
			}
			wantRule(t, err, domain.Invalid, c.code)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRunLifecycle(t *testing.T) {
	r := calculatedRun(t, openCmd(), officer2)
	if r.Net.Cmp(vnd(1_680_000)) != 0 || r.Lines != 3 || len(r.Payments) != 1 {
		t.Fatalf("calculated totals: %s %d %d", r.Net, r.Lines, len(r.Payments))
	}
	// Not yet approved: no release, no close.
	_, err := r.Release(officer)
	wantRule(t, err, domain.Conflict, "not_approved")
	r = applyRun(r, mustEvents(r.Approve(approver))...)
	evs, err := r.Approve(approver)
	if err != nil || evs != nil {
		t.Fatal("a resent approval is not a read")
	}
	_, err = r.Approve(domain.Actor{UserID: "hoa", Role: domain.RoleApprover})
	wantRule(t, err, domain.Conflict, "already_approved")
	r = applyRun(r, mustEvents(r.Release(officer))...)
	if evs, err := r.Release(officer); err != nil || evs != nil {
		t.Fatal("a resent release is not a read")
	}
	_, err = r.Cancel(officer, "too late")
	wantRule(t, err, domain.Conflict, "already_released")
	_, err = r.Close(officer, 2)
	wantRule(t, err, domain.Conflict, "payments_pending")
	r = applyRun(r, mustEvents(r.Close(officer, 0))...)
	if r.Status != RunClosed {
		t.Fatal("not closed")
	}
}

func TestCancelBeforeRelease(t *testing.T) {
	for _, status := range []RunStatus{RunOpened, RunCalculated, RunApproved} {
		r := calculatedRun(t, openCmd(), officer2)
		r.Status = status
		_, err := r.Cancel(officer, "")
		wantRule(t, err, domain.Invalid, "required")
		r = applyRun(r, mustEvents(r.Cancel(officer, "wrong districts"))...)
		if r.Status != RunCancelled {
			t.Fatalf("from %s: not cancelled", status)
		}
		if err := r.CanCalculate(officer); err == nil {
			t.Fatal("a cancelled run calculates")
		}
		_, err = r.Approve(approver)
		wantRule(t, err, domain.Conflict, "not_calculated")
	}
}

func mustEvents(evs []domain.Event, err error) []domain.Event {
	if err != nil {
		panic(err)
	}
	return evs
}
