package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections/audit"
)

func verifyJSON(t *testing.T, stdout string) verifyResult {
	t.Helper()
	var res verifyResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	return res
}

func TestVerifyIntactLog(t *testing.T) {
	d := newLedgerData(t)

	code, stdout, stderr := runCmd(t, nil, "verify", "--data", d.data)
	if code != exitOK {
		t.Fatalf("exit %d; stdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{"result:        OK", "trial balance: balanced", filepath.Join(d.data, audit.PublicKeyFile)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	for _, name := range readModelNames() {
		if !containsLine(stdout, "  "+name+" ", "at "+d.head.String(), "matches") {
			t.Errorf("report has no line saying %s matches:\n%s", name, stdout)
		}
	}

	code, stdout, stderr = runCmd(t, nil, "verify", "--data", d.data, "--json")
	if code != exitOK {
		t.Fatalf("--json: exit %d; stderr: %s", code, stderr)
	}
	res := verifyJSON(t, stdout)
	c := res.Chain
	if !res.OK || res.FirstProblem != "" || res.ReadModels != "stored" || c.Events != d.head.Commit || c.Head != d.head ||
		c.Seals == 0 || c.SealedThrough != d.sealedThrough || c.Unsealed != c.Events-d.sealedThrough || len(c.Problems) != 0 {
		t.Fatalf("report: %+v", res)
	}
	if !res.TrialBalance.Balanced || res.TrialBalance.Debits.Amount.IntPart() == 0 {
		t.Errorf("trial balance: %+v", res.TrialBalance)
	}
	if len(res.Projections) != len(readModelNames()) {
		t.Errorf("read models checked: %+v", res.Projections)
	}
	for _, p := range res.Projections {
		if !p.Matches || p.Position != d.head {
			t.Errorf("%s: %+v", p.Name, p)
		}
	}
	if len(res.TrustedKeys) != 1 || res.TrustedKeys[0].ID == "" {
		t.Errorf("keys: %+v", res.TrustedKeys)
	}

	// The same log elsewhere, without read models (an auditor's copy): the
	// books come from a replay, and everything checks.
	copied := copyLog(t, d.data, func(int, *eventstore.RecordedEvent) bool { return true })
	pub := filepath.Join(d.data, audit.PublicKeyFile)
	code, stdout, stderr = runCmd(t, nil, "verify", "--data", copied, "--public-key", pub, "--json")
	res = verifyJSON(t, stdout)
	if code != exitOK || !res.OK || res.ReadModels != "none" || res.Chain.Seals != c.Seals || !res.TrialBalance.Balanced ||
		res.TrialBalance.Debits.Amount.IntPart() == 0 || len(res.Projections) != 0 {
		t.Fatalf("copy: exit %d, %+v, stderr %s", code, res, stderr)
	}
	if _, err := os.Stat(filepath.Join(copied, readModelsDirName)); !os.IsNotExist(err) {
		t.Errorf("verify created read models in the copy: %v", err)
	}
}

// Each kind of tampering makes verify fail, exit 1, and name the first
// event that differs by its position, on one line.
func TestVerifyFindsTampering(t *testing.T) {
	d := newLedgerData(t)
	pub := filepath.Join(d.data, audit.PublicKeyFile)
	var all []eventstore.RecordedEvent
	inspect(t, d.data, func(_ *ledger.Ledger, s eventstore.Store) { all = readLog(t, s) })
	registered := -1
	for i, ev := range all {
		if strings.HasPrefix(ev.Type, "BeneficiaryRegistered.") && strings.Contains(string(ev.Data), d.binh) {
			registered = i
		}
	}
	if registered < 0 || uint64(registered) >= d.sealedThrough {
		t.Fatalf("Bình's registration at index %d is not sealed (sealed through %d)", registered, d.sealedThrough)
	}
	other := filepath.Join(t.TempDir(), "other.pub.pem")
	otherPub, _, _ := ed25519.GenerateKey(nil)
	pem, err := audit.EncodePublicKey(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	firstSeal := -1
	for i, ev := range all {
		if ev.Type == audit.SealedEventType && firstSeal < 0 {
			firstSeal = i
		}
	}

	tests := []struct {
		name string
		// edit makes the tampered copy; nil verifies the original.
		edit  func(i int, ev *eventstore.RecordedEvent) bool
		args  []string
		at    int // index in the (tampered) log of the event named
		cause string
		// bySeal: the sealer appends seals concurrently with the ledger, so
		// where a removal is first noticed depends on where the next seal
		// landed; the check is that it is found no later than that seal.
		bySeal bool
	}{
		{
			name: "an event's data changed",
			edit: func(i int, ev *eventstore.RecordedEvent) bool {
				if i == registered {
					ev.Data = []byte(strings.Replace(string(ev.Data), "Trần Thị Bình", "Trần Thị Bính", 1))
				}
				return true
			},
			args: []string{"--public-key", pub}, at: registered, cause: "differs from the event the seal",
		},
		{
			name: "an event's metadata changed",
			edit: func(i int, ev *eventstore.RecordedEvent) bool {
				if i == registered {
					ev.Metadata = []byte(strings.Replace(string(ev.Metadata), "an.registrar", "an.registrat", 1))
				}
				return true
			},
			args: []string{"--public-key", pub}, at: registered, cause: "differs from the event the seal",
		},
		{
			name: "an event removed",
			edit: func(i int, ev *eventstore.RecordedEvent) bool { return i != registered },
			args: []string{"--public-key", pub}, at: registered, bySeal: true,
		},
		{
			name: "seals by a key that is not trusted",
			args: []string{"--data", d.data, "--public-key", other}, at: firstSeal, cause: "which is not trusted",
		},
		{
			name: "the log cut after a seal the auditor saw",
			args: []string{"--data", d.data, "--expect-sealed-through", "100000"}, at: len(all) - 1, cause: "the log lost its tail",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify"}, tt.args...)
			log := all
			if tt.edit != nil {
				data := copyLog(t, d.data, tt.edit)
				args = append(args, "--data", data)
				inspect(t, data, func(_ *ledger.Ledger, s eventstore.Store) { log = readLog(t, s) })
			}
			code, stdout, stderr := runCmd(t, nil, args...)
			if code != exitFailure {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr: %s", code, exitFailure, stdout, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			errLine := lines[len(lines)-1]
			if tt.bySeal {
				nextSeal := -1
				for i := tt.at; i < len(log); i++ {
					if log[i].Type == audit.SealedEventType {
						nextSeal = i
						break
					}
				}
				var n int
				if _, err := fmt.Sscanf(errLine, "ansinh: verify failed: event #%d", &n); err != nil || n < tt.at+1 || nextSeal < 0 || n > nextSeal+1 {
					t.Errorf("error line %q: want the removal found between event #%d and the next seal, #%d", errLine, tt.at+1, nextSeal+1)
				}
				return
			}
			want := "ansinh: verify failed: event #" + strconv.Itoa(tt.at+1) + " at " + log[tt.at].Position.String() + ": "
			if !strings.HasPrefix(errLine, want) || !strings.Contains(errLine, tt.cause) {
				t.Errorf("error line %q, want %q ... %q", errLine, want, tt.cause)
			}
			if !strings.Contains(stdout, "result:        FAILED: event #"+strconv.Itoa(tt.at+1)) {
				t.Errorf("report:\n%s", stdout)
			}
		})
	}
}

func TestVerifyFindsADamagedReadModel(t *testing.T) {
	d := newLedgerData(t)
	key := damageReadModel(t, d.data, "balances")
	code, stdout, stderr := runCmd(t, nil, "verify", "--data", d.data, "--json")
	if code != exitFailure {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	res := verifyJSON(t, stdout)
	if res.OK || !res.Chain.OK() || !res.TrialBalance.Balanced {
		t.Fatalf("report: %+v", res)
	}
	for _, p := range res.Projections {
		if p.Matches != (p.Name != "balances") {
			t.Errorf("%s: %+v", p.Name, p)
		}
	}
	want := "ansinh: verify failed: read model balances at position " + d.head.String() + " differs from a fresh replay of the log: key " + strconv.Quote(key)
	if got := lastLine(stderr); !strings.HasPrefix(got, want) || strings.Count(stderr, "ansinh:") != 1 {
		t.Errorf("stderr %q, want it to start with %q", stderr, want)
	}
}

func TestVerifyUsage(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no public key", []string{"verify", "--data", empty}, exitUsage, "no public key: pass --public-key"},
		{"missing key file", []string{"verify", "--data", empty, "--public-key", filepath.Join(empty, "nope.pem")}, exitFailure, "--public-key: open"},
		{"not a key", []string{"verify", "--data", empty, "--public-key", "main.go"}, exitFailure, "not a PEM public key"},
		{"unknown flag", []string{"verify", "--key", "x"}, exitUsage, "flag provided but not defined: -key"},
		{"stray argument", []string{"verify", "now"}, exitUsage, `unexpected argument "now"`},
		{"bad number", []string{"verify", "--expect-sealed-through", "-1"}, exitUsage, `invalid value "-1" for flag -expect-sealed-through`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.err) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, stderr, tt.err)
			}
		})
	}
}

// containsLine reports whether a line of s starts with prefix and holds
// every one of parts.
func containsLine(s, prefix string, parts ...string) bool {
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
