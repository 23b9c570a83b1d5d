package disbursement

import (
	"testing"

	"github.com/ansinh/ansinh/domain"
)

func TestReconcile(t *testing.T) {
	d := domain.MustDate("2024-01-20")
	exp := []ExpectedPayment{
		{PaymentID: "R1-001150000001-b000001", Net: vnd(1_680_000), Status: StatusSettled},
		{PaymentID: "R1-001150000002-b000002", Net: vnd(1_680_000), Status: StatusFailed},
		{PaymentID: "R1-001150000003-b000003", Net: vnd(540_000), Status: StatusSettled},
		{PaymentID: "R1-001150000004-b000004", Net: vnd(540_000), Status: StatusSettled},
		{PaymentID: "R1-001150000005-b000005", Net: vnd(300_000), Status: StatusSettled,
			Reconciled: &ReconciledPayment{PaymentID: "R1-001150000005-b000005", Amount: vnd(300_000), Transaction: "T0"}},
	}
	lines := []StatementLine{
		{Line: 2, Reference: "R1-001150000001-b000001", Amount: vnd(1_680_000), ValueDate: d, Transaction: "T1"},
		{Line: 3, Reference: "R1-001150000002-b000002", Amount: vnd(1_680_000), ValueDate: d, Transaction: "T2"},
		{Line: 4, Reference: "R1-001150000003-b000003", Amount: vnd(450_000), ValueDate: d, Transaction: "T3"},
		{Line: 5, Reference: "R9-001150000009-b000009", Amount: vnd(100), ValueDate: d, Transaction: "T4"},
		{Line: 6, Reference: "R1-001150000001-b000001", Amount: vnd(1_680_000), ValueDate: d, Transaction: "T5"},
		{Line: 7, Reference: "R1-001150000005-b000005", Amount: vnd(300_000), ValueDate: d, Transaction: "T0"},
	}
	res, err := Reconcile(lines, exp)
	mustNoErr(t, err)
	want := []MatchStatus{Matched, NotSettled, AmountMismatch, UnknownReference, DuplicateLine, AlreadyReconciled}
	for i, w := range want {
		if res.Lines[i].Status != w {
			t.Errorf("line %d: %s, want %s", res.Lines[i].Line, res.Lines[i].Status, w)
		}
	}
	if len(res.Missing) != 1 || res.Missing[0].PaymentID != "R1-001150000004-b000004" {
		t.Fatalf("missing: %+v", res.Missing)
	}
	if len(res.Matched) != 1 || res.Matched[0].Transaction != "T1" {
		t.Fatalf("matched: %+v", res.Matched)
	}
	if res.Counts[Matched] != 1 || res.Counts["missing"] != 1 {
		t.Fatalf("counts: %v", res.Counts)
	}

	// A statement contradicting an already reconciled payment is refused whole.
	lines[5].Transaction = "T9"
	_, err = Reconcile(lines, exp)
	wantRule(t, err, domain.Conflict, "contradicts_reconciled")
	lines[5].Transaction, lines[5].Amount = "T0", vnd(300_001)
	_, err = Reconcile(lines, exp)
	wantRule(t, err, domain.Conflict, "contradicts_reconciled")
}

func TestReconciliationEventsRoundTrip(t *testing.T) {
	res := Reconciliation{Counts: map[MatchStatus]int{Matched: 1}}
	for i := range MaxResultsPerEvent + 3 {
		res.Lines = append(res.Lines, LineResult{Line: i + 2, Status: Matched})
	}
	res.Missing = []MissingPayment{{PaymentID: "x", Amount: vnd(1)}}
	evs := ReconciliationEvents("S1", []string{"R1"}, "abc", len(res.Lines), "thu", res)
	if len(evs) != 5 { // imported, 2 parts of lines, 1 of missing, completed
		t.Fatalf("%d events", len(evs))
	}
	var s ReconciliationState
	for _, e := range evs {
		s = s.Evolve(e)
	}
	if len(s.Lines) != len(res.Lines) || len(s.Missing) != 1 || s.Completed == nil || s.Imported.FileSHA256 != "abc" {
		t.Fatal("state does not hold what the events say")
	}
}
