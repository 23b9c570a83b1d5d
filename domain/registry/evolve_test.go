package registry

import (
	"encoding/json"
	"testing"
)

// TestDecideAndEvolveKeepEarlierStates: neither a decider nor Evolve may
// change the state it is given. The ledger caches beneficiary states and
// hands one cached state to concurrent commands (ledger/statecache.go), so
// a decider that appended into a shared slice, or an Evolve that changed
// one in place, would corrupt what another command is deciding on.
func TestDecideAndEvolveKeepEarlierStates(t *testing.T) {
	name, household := "Nguyễn Thị Ân", "HH-9"
	cmds := []Command{
		register(),
		LinkBankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN THI AN"},
		ChoosePaymentMethod{Method: BankTransfer},
		authorizeBinh(),
		RevokeProxy{ProxyID: "P1", Reason: "the son moved abroad"},
		AuthorizeProxy{FullName: "Trần Thị Cúc", CitizenID: MakeCitizenID("001", Female, 1972, 778), Relationship: "con gái",
			Reason: IllnessOrImmobility, ValidFrom: date("2024-06-16"), ValidTo: date("2025-05-31"), DocumentRef: "UQ-2024/031"},
		CorrectDetails{FullName: &name, HouseholdID: &household, Reason: "typo in the name"},
		ReplaceBankAccount{BankCode: "BIDV", AccountNumber: "2151000123456", HolderName: "NGUYEN THI AN", Reason: "VCB account closed"},
		ChoosePaymentMethod{Method: Cash},
		UnlinkBankAccount{Reason: "no longer used"},
		RecordMoveAway{MovedOn: date("2024-06-01"), Destination: "Bắc Ninh", DocumentRef: "CV-12"},
	}
	snapshot := func(b Beneficiary) string {
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	var b Beneficiary
	var earlier []Beneficiary
	var seen []string
	for _, c := range cmds {
		before := snapshot(b)
		evs, err := Decide(b, env, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if snapshot(b) != before {
			t.Fatalf("deciding %T changed the state it was given", c)
		}
		earlier, seen = append(earlier, b), append(seen, before)
		for _, e := range evs {
			b = b.Evolve(e)
		}
		for i, s := range earlier {
			if snapshot(s) != seen[i] {
				t.Fatalf("after %T: the state of step %d changed:\n%s\n%s", c, i, seen[i], snapshot(s))
			}
		}
	}
	if b.BankAccount != nil || len(b.Proxies) != 2 {
		t.Fatalf("final state %+v", b)
	}
}
