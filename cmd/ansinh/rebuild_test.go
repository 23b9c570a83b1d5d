package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
	"github.com/ansinh/ansinh/projections/audit"
)

// answers are the read models' answers to the queries the API serves, as
// JSON, for comparing before and after a rebuild.
func answers(t *testing.T, set *projections.Set, d *ledgerData) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(name string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = mustJSON(t, v)
	}
	for _, cid := range []string{d.an, d.binh, d.chi} {
		b, pos, err := set.Beneficiary(ctx, cid)
		add("beneficiary "+cid, []any{b, pos}, err)
		bal, err := set.Balance(ctx, cid, domain.MustPeriod("2024-03"))
		add("balance "+cid, bal, err)
		h, err := set.History(ctx, cid, "", 100)
		add("history "+cid, h, err)
	}
	s, err := set.Search(ctx, projections.SearchQuery{Text: "thi", Limit: 50})
	add("search", s, err)
	tb, err := set.TrialBalance(ctx)
	add("trial balance", tb, err)
	rep, err := set.DistrictReport(ctx, projections.ReportQuery{})
	add("districts", rep, err)
	run, pos, err := set.PayoutRun(ctx, "LB-2024-01")
	add("run", []any{run, pos}, err)
	return out
}

// A rebuild from zero gives every read model back key for key, and the
// queries the same answers, in a new generation; a read model damaged
// before is whole again.
func TestRebuildGivesIdenticalAnswers(t *testing.T) {
	d := newLedgerData(t)
	set, done := openReadModelsForTest(t, d.data)
	wantState, wantAnswers, gens := readModelState(t, set), answers(t, set, d), generations(t, set)
	done()
	if len(wantState["balances"]) < 2 || !strings.Contains(wantAnswers["trial balance"], "540000") {
		t.Fatalf("the read models hold too little to compare: %v", wantAnswers["trial balance"])
	}
	damageReadModel(t, d.data, "balances")

	code, stdout, stderr := runCmd(t, nil, "rebuild", "--data", d.data)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	events := strconv.FormatUint(d.head.Commit, 10)
	if got := lastLine(stdout); !strings.HasPrefix(got, "rebuilt 5 read models from "+events+" events in ") || !strings.HasSuffix(got, " events/s)") {
		t.Errorf("last line %q", got)
	}
	for _, name := range readModelNames() {
		g := strconv.FormatUint(gens[name], 10)
		if !containsLine(stdout, name+" ", g+" -> "+strconv.FormatUint(gens[name]+1, 10), events, d.head.String(), "rebuilt") {
			t.Errorf("no line for %s:\n%s", name, stdout)
		}
	}
	// One pass over the log for all of them, with one progress.
	if !containsLine(stderr, "rebuild "+strings.Join(readModelNames(), ", ")+": "+events+" events in ") {
		t.Errorf("no progress line for the pass: %q", stderr)
	}

	set, done = openReadModelsForTest(t, d.data)
	defer done()
	gotState, gotAnswers, gotGens := readModelState(t, set), answers(t, set, d), generations(t, set)
	for _, name := range readModelNames() {
		if gotGens[name] != gens[name]+1 {
			t.Errorf("%s: generation %d, want %d", name, gotGens[name], gens[name]+1)
		}
		if !maps.Equal(gotState[name], wantState[name]) {
			t.Errorf("%s: the rebuilt state differs (%d keys, want %d)", name, len(gotState[name]), len(wantState[name]))
		}
	}
	for q, want := range wantAnswers {
		if gotAnswers[q] != want {
			t.Errorf("%s:\n%s\nwant\n%s", q, gotAnswers[q], want)
		}
	}
}

// --projection rebuilds only the named read models; the others keep their
// generation. verify then finds everything in order.
func TestRebuildOneReadModel(t *testing.T) {
	d := newLedgerData(t)
	set, done := openReadModelsForTest(t, d.data)
	gens := generations(t, set)
	done()
	key := damageReadModel(t, d.data, "balances")
	if code, _, stderr := runCmd(t, nil, "verify", "--data", d.data); code != exitFailure || !strings.Contains(stderr, "read model balances") {
		t.Fatalf("verify before the rebuild: exit %d, %s", code, stderr)
	}

	code, stdout, stderr := runCmd(t, nil, "rebuild", "--data", d.data, "--projection", "balances,books,balances")
	if code != exitOK || !strings.HasPrefix(lastLine(stdout), "rebuilt 2 read models") {
		t.Fatalf("exit %d\n%s\nstderr %s", code, stdout, stderr)
	}
	set, done = openReadModelsForTest(t, d.data)
	got := generations(t, set)
	done()
	for name, g := range gens {
		want := g
		if name == "balances" || name == "books" {
			want++
		}
		if got[name] != want {
			t.Errorf("%s: generation %d, want %d", name, got[name], want)
		}
	}
	if code, stdout, stderr := runCmd(t, nil, "verify", "--data", d.data); code != exitOK {
		t.Fatalf("verify after the rebuild (damaged key %q): exit %d\n%s\n%s", key, code, stdout, stderr)
	}
}

func TestRebuildRefuses(t *testing.T) {
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"rebuild", "--projection", "ledger"},
			{"rebuild", "--projection", "balances,"},
			{"rebuild", "now"},
			{"rebuild", "--store", "postgres://x"},
		} {
			code, stdout, stderr := runCmd(t, nil, args...)
			if code != exitUsage || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
			}
		}
	})

	// A running server holds the event store, or with EventStoreDB the
	// projections database: the rebuild stops at once and says what to do.
	t.Run("store held", func(t *testing.T) {
		data := t.TempDir()
		held, err := pebble.Open(filepath.Join(data, "events"), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		code, stdout, stderr := runCmd(t, nil, "rebuild", "--data", data)
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, "already open") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("read models held", func(t *testing.T) {
		data := t.TempDir()
		s, err := pebble.Open(filepath.Join(data, "events"), pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		held, err := projections.OpenDB(filepath.Join(data, readModelsDirName), projections.DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		code, stdout, stderr := runCmd(t, nil, "rebuild", "--data", data)
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, "lock held") || !strings.HasSuffix(strings.TrimSpace(stderr), heldHint) {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

// A data directory without an event store is refused rather than given an
// empty one: a typo in --data must not verify as an intact, empty log.
func TestAuditCommandsNeedALog(t *testing.T) {
	data := filepath.Join(t.TempDir(), "typo")
	pub := filepath.Join(t.TempDir(), "seal-key.pub.pem")
	p, _, _ := ed25519.GenerateKey(nil)
	pem, err := audit.EncodePublicKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"rebuild", "--data", data},
		{"replay", "--data", data, "--as-of", "2024-01-31"},
		{"verify", "--data", data, "--public-key", pub},
	} {
		code, stdout, stderr := runCmd(t, nil, args...)
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, "no event store there") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", args[0], code, stdout, stderr)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data directory was created: %v", err)
	}
}

// A read model that cannot apply an event (here: a payment whose postings
// do not balance, written behind the ledger's back) keeps its previous
// generation; the others are rebuilt; the exit code and the error say
// which failed and on which event.
func TestRebuildKeepsTheGenerationOfAFailedReadModel(t *testing.T) {
	d := newLedgerData(t)
	bad := disbursement.PaymentIssued{
		AttemptRef: disbursement.AttemptRef{Obligation: disbursement.ObligationKey{CitizenID: d.an, Program: entitlement.SocialMonthly, Period: domain.MustPeriod("2024-02")},
			Attempt: 1, RunID: "X", PaymentID: "X-" + d.an + "-b0000000"},
		Payee:   disbursement.Payee{CitizenID: d.an, Name: "X", Method: disbursement.MethodCash, District: longBienDistrict, Ward: ngocThuyWard},
		Amounts: disbursement.Amounts{Gross: domain.VNDAmount(100), Net: domain.VNDAmount(90)}, // 10 dong vanish
	}
	data, err := json.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	var badAt eventstore.Position
	inspect(t, d.data, func(_ *ledger.Ledger, s eventstore.Store) {
		res, err := s.Append(context.Background(), bad.Obligation.Stream(), eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: bad.EventType(), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		badAt = res.Position
	})
	set, done := openReadModelsForTest(t, d.data)
	gens := generations(t, set)
	done()

	code, stdout, stderr := runCmd(t, nil, "rebuild", "--data", d.data, "--projection", "registry,books")
	if code != exitFailure {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	want := "ansinh: 1 of 2 read models not rebuilt (books); the first: rebuild of books: projection books stopped at event " + badAt.String()
	if got := lastLine(stderr); !strings.HasPrefix(got, want) || !strings.Contains(got, "PaymentIssued") {
		t.Errorf("error %q, want %q", got, want)
	}
	if !containsLine(stdout, "books ", "kept the previous generation") || !containsLine(stdout, "registry ", "rebuilt") || strings.Contains(stdout, "rebuilt 2") {
		t.Errorf("stdout:\n%s", stdout)
	}
	set, done = openReadModelsForTest(t, d.data)
	got := generations(t, set)
	done()
	if got["books"] != gens["books"] || got["registry"] != gens["registry"]+1 {
		t.Errorf("generations %v, were %v", got, gens)
	}
}

// setStoredVersion makes the read model name look written by another
// version of its code, as after an upgrade that changed it: the next open
// starts it again from zero.
func setStoredVersion(t *testing.T, data, name string, version int) {
	t.Helper()
	db, err := projections.OpenDB(readModelsDir(storeConfig{data: data}), projections.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := []byte("m/" + name) // docs/projections.md: m/<name> -> JSON meta
	v, closer, err := db.Pebble().Get(key)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]map[string]any
	err = json.Unmarshal(v, &meta)
	closer.Close()
	if err != nil || meta["active"] == nil {
		t.Fatalf("meta of %s: %s (%v)", name, v, err)
	}
	meta["active"]["version"] = version
	if err := db.Pebble().Set(key, []byte(mustJSON(t, meta)), nil); err != nil {
		t.Fatal(err)
	}
}

// After an upgrade that changed a read model's version, the runner starts
// it again from zero when it opens it, and the Run loop replays it from
// the first event: that replay is its rebuild. rebuild does not build it a
// second time beside it (which read the whole log twice): one progress,
// the read model in the generation the version change started, with the
// same state and answers as before. A read model that held nothing and was
// not named is caught up too, and said so; the named ones that held
// something are rebuilt into a new generation, in the same pass
// (projections.TestRebuildJoinsTheCatchUpFromNothing counts the passes).
func TestRebuildAfterAVersionChangeReadsTheLogOnce(t *testing.T) {
	d := newLedgerData(t)
	set, done := openReadModelsForTest(t, d.data)
	wantState, wantAnswers, gens := readModelState(t, set), answers(t, set, d), generations(t, set)
	done()
	events := strconv.FormatUint(d.head.Commit, 10)

	setStoredVersion(t, d.data, "registry", 1000)
	code, stdout, stderr := runCmd(t, nil, "rebuild", "--data", d.data, "--projection", "registry")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	g := strconv.FormatUint(gens["registry"]+1, 10) // the generation the version change started
	if !containsLine(stdout, "registry ", g+" -> "+g, events, d.head.String(), "rebuilt from the first event (it held nothing)") {
		t.Errorf("no line for the registry:\n%s", stdout)
	}
	if !containsLine(stderr, "rebuild registry: "+events+" events in ") || strings.Count(stderr, "events in ") != 1 {
		t.Errorf("want one progress, the registry's:\n%s", stderr)
	}

	// The registry changed version again; balances is named and held state.
	setStoredVersion(t, d.data, "registry", 1001)
	code, stdout, stderr = runCmd(t, nil, "rebuild", "--data", d.data, "--projection", "balances")
	if code != exitOK || !strings.HasPrefix(lastLine(stdout), "rebuilt 1 read models from "+events+" events") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	g = strconv.FormatUint(gens["registry"]+2, 10)
	if !containsLine(stdout, "registry ", g+" -> "+g, events, "caught up from the first event (it held nothing)") ||
		!containsLine(stdout, "balances ", strconv.FormatUint(gens["balances"], 10)+" -> "+strconv.FormatUint(gens["balances"]+1, 10), events, "rebuilt") {
		t.Errorf("want the registry caught up and balances rebuilt:\n%s", stdout)
	}
	if !containsLine(stderr, "rebuild balances and catch up registry: "+events+" events in ") || strings.Count(stderr, "events in ") != 1 {
		t.Errorf("want one progress, the rebuild of balances with the catch-up of the registry:\n%s", stderr)
	}

	set, done = openReadModelsForTest(t, d.data)
	defer done()
	gotState, gotAnswers := readModelState(t, set), answers(t, set, d)
	for _, name := range readModelNames() {
		if !maps.Equal(gotState[name], wantState[name]) {
			t.Errorf("%s: the state differs from before (%d keys, want %d)", name, len(gotState[name]), len(wantState[name]))
		}
	}
	for q, want := range wantAnswers {
		if gotAnswers[q] != want {
			t.Errorf("%s:\n%s\nwant\n%s", q, gotAnswers[q], want)
		}
	}
}
