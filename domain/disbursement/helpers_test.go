package disbursement

import (
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
)

// Fixtures: well-formed citizen IDs of Hanoi (province 001).
const (
	cidAn   = "001150000001"
	cidBinh = "001150000002"
	cidChi  = "001150000003"
	cidDung = "001085000004" // a proxy
)

var (
	jan = domain.MustPeriod("2024-01")
	feb = domain.MustPeriod("2024-02")
	mar = domain.MustPeriod("2024-03")

	officer  = domain.Actor{UserID: "thu", Role: domain.RoleFinanceOfficer}
	officer2 = domain.Actor{UserID: "lan", Role: domain.RoleFinanceOfficer}
	approver = domain.Actor{UserID: "minh", Role: domain.RoleApprover}

	at = time.Date(2024, 1, 20, 9, 30, 0, 0, time.UTC)
)

func vnd(n int64) domain.Money { return domain.VNDAmount(n) }

func key(cid, prog string, p domain.Period) ObligationKey {
	return ObligationKey{CitizenID: cid, Program: prog, Period: p}
}

func bankPayee(cid string) Payee {
	return Payee{CitizenID: cid, Name: "Nguyễn Văn An", Method: MethodBank, BankCode: "VCB", AccountNumber: "0011001234567", District: "004", Ward: "00118"}
}

func cashPayee(cid string) Payee {
	return Payee{CitizenID: cid, Name: "Trần Thị Chi", Method: MethodCash, District: "004", Ward: "00118"}
}

// wantRule asserts err is a RuleError of the given kind and code.
func wantRule(t *testing.T, err error, kind domain.Kind, code string) {
	t.Helper()
	re, ok := domain.AsRuleError(err)
	if !ok {
		t.Fatalf("want RuleError %s/%s, got %v", kind, code, err)
	}
	if re.Kind != kind || re.Code != code {
		t.Fatalf("want RuleError %s/%s, got %s/%s: %s", kind, code, re.Kind, re.Code, re.Message)
	}
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fold applies events to an obligation.
func fold(o Obligation, evs ...domain.Event) Obligation {
	for _, e := range evs {
		o = o.Evolve(e)
	}
	return o
}

// issue returns a freshly issued obligation of gross amount.
func issued(t *testing.T, k ObligationKey, run string, p Payee, gross int64, offsets ...Offset) (Obligation, PaymentIssued) {
	t.Helper()
	o := Obligation{Key: k}
	am := Amounts{Gross: vnd(gross), Offsets: offsets, Net: vnd(gross)}
	am.Net = am.Gross.Sub(am.OffsetTotal())
	ev, err := o.Issue(AttemptRef{Obligation: k, Attempt: 1, RunID: run, PaymentID: PaymentID(run, p)}, p, am, Trace{Rule: "test"})
	mustNoErr(t, err)
	return o.Evolve(ev), ev
}
