package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
	"github.com/ansinh/ansinh/projections/audit"
)

// The rebuild, replay and verify commands are tested on a data directory
// filled as a running server fills it: the events written by the real
// ledger, the read models kept by a projections.Set in <data>/projections,
// and seals signed with <data>/seal-key.pem by an audit.Sealer.

var (
	auditRegistrar = ledger.Request{Actor: domain.Actor{UserID: "an.registrar", Role: domain.RoleRegistrar}}
	auditThu       = ledger.Request{Actor: domain.Actor{UserID: "thu.finance", Role: domain.RoleFinanceOfficer}}
	auditLan       = ledger.Request{Actor: domain.Actor{UserID: "lan.finance", Role: domain.RoleFinanceOfficer}}
	auditMinh      = ledger.Request{Actor: domain.Actor{UserID: "minh.approver", Role: domain.RoleApprover}}

	jan2024 = domain.MustPeriod("2024-01")
)

const (
	longBienDistrict = "004"
	ngocThuyWard     = "00118"
	// 1.5 x the social-assistance base level of January 2024 (360,000).
	janAllowance = 540_000
)

// ledgerData is a data directory holding one month of Long Biên: three
// people on the monthly social allowance (An and Bình paid by bank, Chi in
// cash), one payout run for January 2024 released to the bank, and An's
// payment settled by the bank last.
type ledgerData struct {
	data          string
	an, binh, chi string
	anPayment     string
	// settled is An's PaymentSettled event; beforeSettled the event just
	// before it in the log.
	settled, beforeSettled eventstore.RecordedEvent
	head                   eventstore.Position
	sealedThrough          uint64 // events covered by the last seal
}

func newLedgerData(t *testing.T) *ledgerData {
	t.Helper()
	ctx := context.Background()
	d := &ledgerData{data: t.TempDir()}
	store, err := pebble.Open(filepath.Join(d.data, "events"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db, err := projections.OpenDB(readModelsDir(storeConfig{data: d.data}), projections.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	cfg := ledger.DefaultConfig()
	cfg.Clock = func() time.Time { return time.Date(2024, 1, 15, 3, 0, 0, 0, time.UTC) }
	led := ledger.New(store, cfg)
	if _, err := led.SeedCatalogue(ctx); err != nil {
		t.Fatal(err)
	}
	set, err := projections.NewSet(db, store, led.Codec(), projections.SetOptions{Runner: projections.Options{CountablePositions: true}})
	if err != nil {
		t.Fatal(err)
	}
	stopSet := runInBackground(t, "read models", set.Run)
	key, err := audit.LoadOrCreateKey(d.data)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := audit.NewSealer(store, db.Pebble(), projections.ComponentPrefix("sealer"), key, audit.SealerOptions{Every: 10})
	if err != nil {
		t.Fatal(err)
	}
	stopSealer := runInBackground(t, "sealer", sealer.Run)

	ok := func(_ ledger.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	person := func(serial int, name string, sex registry.Sex, born int) string {
		t.Helper()
		cid := registry.MakeCitizenID("001", sex, born, serial)
		ok(led.Register(ctx, auditRegistrar, registry.Register{CitizenID: cid, FullName: name, DateOfBirth: domain.MustDate(fmt.Sprintf("%d-05-01", born)),
			Sex: sex, Address: registry.AddressInput{DistrictCode: longBienDistrict, WardCode: ngocThuyWard}, Category: registry.SocialProtection}))
		c := decimal.RequireFromString("1.5")
		ok(led.Entitlement(ctx, auditRegistrar, cid, entitlement.Grant{Program: entitlement.SocialMonthly, Start: jan2024, Coefficient: &c}))
		return cid
	}
	bank := func(cid, holder, number string) {
		t.Helper()
		ok(led.Beneficiary(ctx, auditRegistrar, cid, registry.LinkBankAccount{BankCode: "VCB", AccountNumber: number, HolderName: holder}))
		ok(led.Beneficiary(ctx, auditRegistrar, cid, registry.ChoosePaymentMethod{Method: registry.BankTransfer}))
	}
	d.an = person(1, "Nguyễn Văn An", registry.Male, 1950)
	d.binh = person(2, "Trần Thị Bình", registry.Female, 1948)
	d.chi = person(3, "Lê Thị Chi", registry.Female, 1935)
	bank(d.an, "NGUYEN VAN AN", "0011001234567")
	bank(d.binh, "Trần Thị Bình", "12010000456789")

	const runID = "LB-2024-01"
	if _, err := led.OpenRun(ctx, auditThu, disbursement.OpenRun{RunID: runID, Scope: disbursement.Scope{
		Periods: []domain.Period{jan2024}, Programs: []string{entitlement.SocialMonthly}, Districts: []string{longBienDistrict}}}); err != nil {
		t.Fatal(err)
	}
	waitForReadModels(t, set, store) // the roster is the registry read model
	if _, err := led.CalculateRun(ctx, auditThu, runID, set, ledger.CalculateOptions{PageSize: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := led.ApproveRun(ctx, auditMinh, runID); err != nil {
		t.Fatal(err)
	}
	if _, err := led.ReleaseRun(ctx, auditThu, runID); err != nil {
		t.Fatal(err)
	}
	ld, err := led.LoadRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ld.State.PaymentIDs {
		if p := ld.State.Payments[id]; p.Payee.CitizenID == d.an && p.Payee.Method == disbursement.MethodBank {
			d.anPayment = id
		}
	}
	if d.anPayment == "" {
		t.Fatal("the run has no bank payment to An")
	}
	waitSealed(t, sealer, store) // so that seals stand between the ledger's events
	if _, err := led.RecordSettlement(ctx, auditLan, disbursement.Settlement{PaymentID: d.anPayment, Outcome: disbursement.OutcomeSettled,
		Reference: "FT24020123456", At: time.Date(2024, 1, 20, 9, 30, 0, 0, domain.VietnamZone)}); err != nil {
		t.Fatal(err)
	}
	waitSealed(t, sealer, store)

	// Stop the sealer first, so that no seal lands after the read models
	// caught up: the directory is left as a server leaves it when stopped.
	stopSealer()
	d.head = waitForReadModels(t, set, store)
	stopSet()
	d.sealedThrough = sealer.Status().LastSeal

	all := readLog(t, store)
	i := slices.IndexFunc(all, func(ev eventstore.RecordedEvent) bool { return ev.Type == "PaymentSettled.v1" })
	if i < 1 {
		t.Fatalf("no PaymentSettled in the log: %v", eventTypes(all))
	}
	d.settled, d.beforeSettled = all[i], all[i-1]
	if d.sealedThrough == 0 {
		t.Fatal("nothing was sealed")
	}
	return d
}

// runInBackground runs f until the returned stop is called (or the test
// ends), and reports an error other than the cancellation.
func runInBackground(t *testing.T, what string, f func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", what, err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitForReadModels waits until the read models have applied the whole
// log, and returns its head.
func waitForReadModels(t *testing.T, set *projections.Set, store eventstore.Store) eventstore.Position {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.WaitFor(ctx, head); err != nil {
		t.Fatalf("read models at %s, head %s: %v", set.Position(), head, err)
	}
	return head
}

// waitSealed waits until the sealer has folded the whole log.
func waitSealed(t *testing.T, sl *audit.Sealer, store eventstore.Store) {
	t.Helper()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // a hang guard, not an assertion
	for sl.Status().Position.Compare(head) < 0 || sl.Status().Pending {
		if time.Now().After(deadline) {
			t.Fatalf("the sealer did not reach %s: %+v", head, sl.Status())
		}
		time.Sleep(time.Millisecond)
	}
}

func readLog(t *testing.T, s eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	for after := eventstore.Start; ; {
		page, err := s.ReadAll(context.Background(), after, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

func eventTypes(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

// copyLog writes the log of data's store, event by event, into the store
// of a new data directory, through edit: what an attacker with the store's
// files could make. edit may change an event, or return false to leave it
// out. Positions are given anew by the new store, one per event.
func copyLog(t *testing.T, from string, edit func(i int, ev *eventstore.RecordedEvent) bool) string {
	t.Helper()
	ctx := context.Background()
	var all []eventstore.RecordedEvent
	inspect(t, from, func(_ *ledger.Ledger, s eventstore.Store) { all = readLog(t, s) })
	to := t.TempDir()
	s, err := pebble.Open(filepath.Join(to, "events"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range all {
		ev := all[i]
		if !edit(i, &ev) {
			continue
		}
		if _, err := s.Append(ctx, ev.StreamID, eventstore.Any(), eventstore.EventData{ID: ev.ID, Type: ev.Type, Data: ev.Data, Metadata: ev.Metadata}); err != nil {
			t.Fatalf("copy event %d (%s): %v", i, ev.Type, err)
		}
	}
	return to
}

// openReadModelsForTest opens the read models of a data directory after a
// command closed them; close before the next command.
func openReadModelsForTest(t *testing.T, data string) (*projections.Set, func()) {
	t.Helper()
	store, err := pebble.Open(filepath.Join(data, "events"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := projections.OpenDB(readModelsDir(storeConfig{data: data}), projections.DBOptions{})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	set, err := projections.NewSet(db, store, ledger.NewCodec(), projections.SetOptions{Runner: projections.Options{CountablePositions: true}})
	if err != nil {
		db.Close()
		store.Close()
		t.Fatal(err)
	}
	return set, func() {
		if err := errors.Join(db.Close(), store.Close()); err != nil {
			t.Fatal(err)
		}
	}
}

// mustJSON is v as indented JSON, for comparing answers.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// damageReadModel overwrites the first stored key of a read model behind
// the runner's back, as a bug or a stray write would, and returns the key
// (within the read model).
func damageReadModel(t *testing.T, data, name string) string {
	t.Helper()
	db, err := projections.OpenDB(readModelsDir(storeConfig{data: data}), projections.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := []byte("s/" + name + "/") // docs/projections.md: s/<name>/<gen:8>/<key>
	it, err := db.Pebble().NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var key []byte
	if it.SeekGE(prefix) && bytes.HasPrefix(it.Key(), prefix) {
		key = slices.Clone(it.Key())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if key == nil {
		t.Fatalf("read model %s has no state", name)
	}
	if err := db.Pebble().Set(key, []byte("damaged"), nil); err != nil {
		t.Fatal(err)
	}
	return string(key[len(prefix)+8+1:])
}

// readModelState is every read model's whole stored state and position.
func readModelState(t *testing.T, set *projections.Set) map[string]map[string]string {
	t.Helper()
	v := set.Runner().View()
	defer v.Close()
	out := map[string]map[string]string{}
	for _, name := range readModelNames() {
		m := map[string]string{}
		pos, err := v.Position(name)
		if err != nil {
			t.Fatal(err)
		}
		m["(position)"] = pos.String()
		err = v.Reader(name).Scan(nil, nil, func(k, val []byte) (bool, error) {
			m[string(k)] = string(val)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = m
	}
	return out
}

// generations are the serving generation of each read model.
func generations(t *testing.T, set *projections.Set) map[string]uint64 {
	t.Helper()
	lag, err := set.Lag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, st := range lag.Projections {
		out[st.Name] = st.Generation
	}
	return out
}
