package projections

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections/audit"
)

// TestRegistryServesVersion1RecordsAfterTheUpgrade: a database whose
// registry is of version 1 (records in JSON) answers searches, records and
// balances with this code exactly as the binary records did, at once and
// without a rebuild (the registry is an Upgrader); the service then
// rebuilds it beside (RebuildUpgraded) into version 2, with the same
// answers and binary records.
func TestRegistryServesVersion1RecordsAfterTheUpgrade(t *testing.T) {
	store, n := buildLedgerLog(t, 30, 2)
	defer store.Close()
	dir := t.TempDir()
	ctx := context.Background()
	head := eventstore.Position{Commit: uint64(n), Prepare: uint64(n)}
	answers := func(opts Options) (map[string]string, *DB, *Set) {
		t.Helper()
		db, err := OpenDB(dir, DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		opts.CountablePositions = true
		set, err := NewSet(db, store, ledger.NewCodec(), SetOptions{Runner: opts})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		add := func(k string, v any, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			j, _ := json.Marshal(v)
			out[k] = string(j)
		}
		found, err := set.Search(ctx, SearchQuery{Text: "nguyen", Limit: 100})
		add("search", found, err)
		if len(found.Items) == 0 {
			t.Fatalf("search found nobody: %s", out["search"])
		}
		for _, b := range found.Items {
			rec, _, err := set.Beneficiary(ctx, b.CitizenID)
			add("record "+b.CitizenID, rec, err)
			bal, err := set.Balance(ctx, b.CitizenID, domain.MustPeriod("2024-02"))
			add("balance "+b.CitizenID, bal, err)
		}
		return out, db, set
	}

	// Build version 2's read models, then write the registry's records
	// back as version 1 did (JSON) and say so in its meta.
	db, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewSet(db, store, ledger.NewCodec(), SetOptions{Runner: Options{CountablePositions: true}})
	if err != nil {
		t.Fatal(err)
	}
	stop := runRunner(t, set.r)
	waitFor(t, set.r, head)
	stop()
	_ = db.Close()
	want, db, _ := answers(Options{})
	m, _, err := db.readMeta(registryName)
	if err != nil {
		t.Fatal(err)
	}
	b := db.pdb.NewBatch()
	prefix := append(statePrefix(registryName, m.Active.Gen), "b/"...)
	it, err := db.pdb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	records, cid := 0, ""
	for ok := it.SeekGE(prefix); ok && string(it.Key()[:len(prefix)]) == string(prefix); ok = it.Next() {
		var rec regRecord
		if err := rec.UnmarshalBinary(it.Value()); err != nil {
			t.Fatal(err)
		}
		j, err := appendJSON(nil, &rec.Beneficiary)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Set(it.Key(), j, nil); err != nil {
			t.Fatal(err)
		}
		records++
		cid = rec.CitizenID
	}
	_ = it.Close()
	m.Active.Version = 1
	if err := setMeta(b, registryName, m); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	if records != 30 {
		t.Fatalf("%d records rewritten, want 30", records)
	}

	got, db, set := answers(Options{})
	if pos := set.Position(); pos != head {
		t.Errorf("version 1's registry opened at %s, want %s: it started again", pos, head)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s from version 1's records:\n%s\nwant\n%s", k, got[k], w)
		}
	}
	// verify says why it cannot compare the registry yet, and compares
	// the others.
	rep, err := set.Verify(ctx, store, ledger.NewCodec(), nil, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Projections {
		switch {
		case c.Name == registryName && (c.Matches || !strings.Contains(c.Difference, "stored by version 1")):
			t.Errorf("verify of the registry of version 1: %+v", c)
		case c.Name != registryName && !c.Matches:
			t.Errorf("verify of %s: %+v", c.Name, c)
		}
	}
	_ = db.Close()

	_, db, set = answers(Options{RebuildUpgraded: true})
	stop = runRunner(t, set.r)
	waitForVersion(t, set.r, registryName, 2, head)
	stop()
	_ = db.Close()
	got, db, _ = answers(Options{})
	defer db.Close()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s after the rebuild:\n%s\nwant\n%s", k, got[k], w)
		}
	}
	m, _, _ = db.readMeta(registryName)
	v, closer, err := db.pdb.Get(append(statePrefix(registryName, m.Active.Gen), "b/"+cid...))
	if err != nil {
		t.Fatal(err)
	}
	if v[0] != binFormatV1 {
		t.Errorf("a record after the rebuild starts with %q, want the binary format", v[0])
	}
	_ = closer.Close()
}
