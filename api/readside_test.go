package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
	"github.com/ansinh/ansinh/projections/audit"
)

// readAPI is the payout test server (payouts_test.go) with the real read
// models running over its store, and optionally a sealer.
type readAPI struct {
	*payoutAPI
	set *projections.Set
	db  *projections.DB
	// releasedAt is an instant between the release of settledJanuary and
	// the bank's answers (the store records events at nanoseconds).
	releasedAt time.Time
}

// withReadModels runs the read models over the test store in an in-memory
// database until the test ends, and gives them to the server. out receives
// them.
func withReadModels(t *testing.T, out **projections.Set, outDB **projections.DB) testOption {
	return func(_ *Config, d *Deps) {
		db, err := projections.OpenDB("", projections.DBOptions{InMemory: true, CacheBytes: 1 << 20, MemTableBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		set, err := projections.NewSet(db, d.Store, ledger.NewCodec(), projections.SetOptions{
			Runner: projections.Options{CountablePositions: true}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = set.Run(ctx)
		}()
		// Cleanups run last-in first-out: this one before the store closes.
		t.Cleanup(func() {
			cancel()
			<-done
			_ = db.Close()
		})
		d.ReadModels = set
		*out, *outDB = set, db
	}
}

// newReadAPI is newPayoutAPI with read models (and extra options, applied
// first, e.g. a store wrapper).
func newReadAPI(t *testing.T, opts ...testOption) *readAPI {
	t.Helper()
	env := &readAPI{}
	env.payoutAPI = newPayoutAPIWith(t, append(opts, withReadModels(t, &env.set, &env.db))...)
	return env
}

// newPayoutAPIWith is newPayoutAPI with more options.
func newPayoutAPIWith(t *testing.T, opts ...testOption) *payoutAPI {
	t.Helper()
	reg := &registryAPI{testAPI: newTestAPI(t, append([]testOption{withLedger}, opts...)...)}
	reg.ledger = reg.srv.deps.Ledger
	if _, err := reg.ledger.SeedCatalogue(t.Context()); err != nil {
		t.Fatal(err)
	}
	reg.registrar = reg.createUser("lan", "registrar").Token
	reg.auditor = reg.createUser("hoa", "auditor").Token
	env := &payoutAPI{registryAPI: reg}
	env.thu = env.createUser("thu", "finance_officer").Token
	env.vy = env.createUser("vy", "finance_officer").Token
	env.minh = env.createUser("minh", "approver").Token
	env.quang = env.createUser("quang", "approver").Token
	return env
}

// caughtUp waits until the read models have applied the whole log, so
// that a query without min_position sees every write so far.
func (e *readAPI) caughtUp() eventstore.Position {
	e.t.Helper()
	head := e.head()
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute) // a guard against a hang, not a timing assertion
	defer cancel()
	for {
		err := e.set.WaitFor(ctx, head)
		if err == nil {
			return head
		}
		if ctx.Err() != nil {
			e.t.Fatalf("the read models did not reach %s: %v", head, err)
		}
	}
}

// settledJanuary runs the worked month (registered with month) up to the
// bank's answers: run HD-2024-01 calculated (with the read models'
// roster), approved, released; An's transfer settled, Bình's failed
// (account closed), Chi's cash receipt posted. It returns the head of the
// log once released, before any answer. (Not the release's own position:
// the ledger answers a release with the run event's position, which comes
// before the lines it releases.)
func (e *readAPI) settledJanuary() (released eventstore.Position) {
	e.t.Helper()
	e.openRun("HD-2024-01", "")
	if r := e.calculate("HD-2024-01", ""); r.Payments != 3 || r.Lines != 4 || r.Net.Amount != "2220000" {
		e.t.Fatalf("calculated with the read models' roster: %+v", r)
	}
	e.runCommand("/v1/payout-runs/HD-2024-01/approve", e.minh, "", http.StatusOK)
	e.runCommand("/v1/payout-runs/HD-2024-01/release", e.thu, "", http.StatusOK)
	released = e.head()
	e.releasedAt = time.Now()
	payAn, payBinh, payChi := e.paymentTo("HD-2024-01", hdAn), e.paymentTo("HD-2024-01", hdBinh), e.paymentTo("HD-2024-01", hdChi)
	answers := strings.Join(disbursement.SettlementHeader, ",") + "\n" +
		payAn.PaymentID + ",settled,FT24011801," + bankTime + ",1140000,,\n" +
		payBinh.PaymentID + ",failed,," + bankTime + ",,account_closed,tai khoan da dong\n"
	wantStatus(e.t, e.postCSV("/v1/bank-results", e.thu, answers), http.StatusOK)
	wantStatus(e.t, e.post("/v1/payments/"+payChi.PaymentID+"/settlement", e.thu,
		`{"outcome": "settled", "reference": "PT-0001", "occurred_at": "`+bankTime+`"}`), http.StatusOK)
	return released
}

func (e *readAPI) getJSON(path, token string, status int) *httptest.ResponseRecorder {
	e.t.Helper()
	w := e.get(path, token)
	wantStatus(e.t, w, status)
	return w
}

func (e *readAPI) balance(cid, query, token string) balanceJSON {
	e.t.Helper()
	return decodeJSON[balanceJSON](e.t, e.getJSON("/v1/beneficiaries/"+cid+"/balance"+query, token, http.StatusOK))
}

// bucket is a balance bucket in brief: net amount and periods.
func brief(b balanceBucketJSON) string {
	return b.Net.Amount + " " + strings.Join(b.Periods, ",")
}

// The registry search: with and without diacritics, by any word, by
// citizen ID, with filters, paged; refusals of bad parameters.
func TestSearchBeneficiaries(t *testing.T) {
	env := newReadAPI(t)
	env.month()
	env.caughtUp()

	ids := func(path string) []string {
		t.Helper()
		page := decodeJSON[searchPageJSON](t, env.getJSON(path, env.registrar, http.StatusOK))
		var out []string
		for _, h := range page.Items {
			out = append(out, h.CitizenID)
		}
		return out
	}
	tests := []struct {
		name, query string
		want        []string
	}{
		{"full name with diacritics", "q=" + url.QueryEscape("Nguyễn Thị An"), []string{hdAn}},
		{"full name without diacritics, lower case", "q=nguyen+thi+an", []string{hdAn}},
		{"a later word", "q=binh", []string{hdBinh}},
		{"the last word as a prefix", "q=" + url.QueryEscape("trần thị b"), []string{hdBinh}},
		{"a word every name has", "q=thi", []string{hdAn, hdBinh, hdChi}},
		{"a whole citizen ID", "q=" + hdChi, []string{hdChi}},
		{"a citizen ID prefix", "q=001145", []string{hdAn, hdBinh, hdChi}},
		{"no bank account", "has_bank_account=false", []string{hdChi}},
		{"bank account and a name", "has_bank_account=true&q=le", nil},
		{"district and ward", "district=" + hdDistrict + "&ward=" + hdWard, []string{hdAn, hdBinh, hdChi}},
		{"another district", "district=004", nil},
		{"category", "category=social_protection&q=an", []string{hdAn}},
		{"another category", "category=near_poor", nil},
		{"status", "status=deceased", nil},
		{"a name nobody has", "q=pham", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids("/v1/beneficiaries?" + tt.query)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}

	// A hit in full, with its position.
	page := decodeJSON[searchPageJSON](t, env.getJSON("/v1/beneficiaries?q=chi", env.auditor, http.StatusOK))
	if len(page.Items) != 1 || page.Partial || page.NextCursor != "" || page.Position.IsStart() {
		t.Fatalf("page = %+v", page)
	}
	if h := page.Items[0]; h.FullName != "Lê Thị Chi" || h.Status != "active" || h.HasBankAccount || h.Category != "social_protection" ||
		h.Address.DistrictCode != hdDistrict || h.Address.WardCode != hdWard || h.DateOfBirth == nil || *h.DateOfBirth != "1945-03-02" {
		t.Fatalf("hit = %+v", h)
	}

	// Two a page: the cursor continues where the first page stopped.
	first := decodeJSON[searchPageJSON](t, env.getJSON("/v1/beneficiaries?district=268&limit=2", env.registrar, http.StatusOK))
	if len(first.Items) != 2 || first.NextCursor == "" {
		t.Fatalf("first page = %+v", first)
	}
	second := decodeJSON[searchPageJSON](t, env.getJSON("/v1/beneficiaries?district=268&limit=2&cursor="+first.NextCursor, env.registrar, http.StatusOK))
	if len(second.Items) != 1 || second.NextCursor != "" || second.Items[0].CitizenID != hdChi {
		t.Fatalf("second page = %+v", second)
	}

	bad := []struct{ query, code, field string }{
		{"q=" + strings.Repeat("a", 101), "bad_request", "q"},
		{"q=" + strings.Repeat("1", 13), "bad_request", "q"},
		{"q=%CC%81", "bad_request", "q"}, // a combining accent alone: no letter
		{"district=ha-dong", "bad_request", "district"},
		{"category=poor", "bad_request", "category"},
		{"status=alive", "bad_request", "status"},
		{"has_bank_account=yes", "bad_request", "has_bank_account"},
		{"limit=201", "invalid_limit", "limit"},
		{"cursor=not-a-cursor", "invalid_cursor", "cursor"},
		// A cursor of one search is refused by another.
		{"q=binh&cursor=" + first.NextCursor, "invalid_cursor", "cursor"},
	}
	for _, b := range bad {
		t.Run(b.query, func(t *testing.T) {
			p := wantProblem(t, env.get("/v1/beneficiaries?"+b.query, env.registrar), http.StatusBadRequest, b.code)
			if len(p.Errors) == 0 || p.Errors[0].Field != b.field {
				t.Errorf("errors %+v, want one for %s", p.Errors, b.field)
			}
		})
	}
}

// A query given the position a command answered with sees that command's
// write, whatever the read models' pace.
func TestReadYourWritesThroughTheReadModels(t *testing.T) {
	env := newReadAPI(t)
	for i := range 5 {
		cid := fmt.Sprintf("00114500020%d", i)
		w := env.post("/v1/beneficiaries", env.registrar, registerBody(cid, "Phạm Văn Đức"))
		wantStatus(t, w, http.StatusCreated)
		pos := w.Header().Get(HeaderPosition)
		page := decodeJSON[searchPageJSON](t, env.getJSON("/v1/beneficiaries?q="+cid+"&min_position="+pos, env.registrar, http.StatusOK))
		if len(page.Items) != 1 || page.Items[0].FullName != "Phạm Văn Đức" {
			t.Fatalf("registration %d not seen at its position %s: %+v", i, pos, page)
		}
		if got := page.Position.String(); page.Position.Compare(mustPosition(t, pos)) < 0 {
			t.Fatalf("answer reflects %s, before the write at %s", got, pos)
		}
		// "duc" without the diacritic and the đ.
		page = decodeJSON[searchPageJSON](t, env.getJSON("/v1/beneficiaries?q=pham+van+duc&min_position="+pos, env.registrar, http.StatusOK))
		if len(page.Items) != i+1 {
			t.Fatalf("after %d registrations, 'pham van duc' finds %d", i+1, len(page.Items))
		}
	}
	// A position past the end of the log cannot be waited for.
	wantProblem(t, env.get("/v1/beneficiaries?min_position=999999/999999", env.registrar), http.StatusBadRequest, "invalid_position")
}

func mustPosition(t *testing.T, s string) eventstore.Position {
	t.Helper()
	p, err := eventstore.ParsePosition(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Balances before and after the bank's answers, as of a past position, and
// the payment history with masked accounts; figures computed by hand.
func TestBalancesAndPayoutHistory(t *testing.T) {
	env := newReadAPI(t)
	env.month()
	env.caughtUp()

	// Before any run: An is owed 540,000 a month from July 2023 (7 months
	// to January 2024) and the 600,000 Tet gift: 4,380,000, all
	// outstanding.
	b := env.balance(hdAn, "", env.registrar)
	if b.Through != "2024-01" || b.AsOf != nil || brief(b.Accrued) != "4380000 2023-07,2023-08,2023-09,2023-10,2023-11,2023-12,2024-01" ||
		brief(b.Outstanding) != brief(b.Accrued) || brief(b.Paid) != "0 " || brief(b.InTransit) != "0 " || b.Overpaid.Amount != "0" {
		t.Fatalf("An before any run: %+v", b)
	}
	if len(b.Accrued.Lines) != 8 {
		t.Errorf("accrued lines %d, want 8 (7 months and the gift)", len(b.Accrued.Lines))
	}
	// Through December: no gift, 6 months.
	if b := env.balance(hdAn, "?through=2023-12", env.registrar); brief(b.Accrued) != "3240000 2023-07,2023-08,2023-09,2023-10,2023-11,2023-12" {
		t.Errorf("through December: %s", brief(b.Accrued))
	}

	released := env.settledJanuary()
	env.caughtUp()

	// After: An's January (540,000 + 600,000) is paid; the six months
	// before were never in a run and stay outstanding.
	b = env.balance(hdAn, "", env.auditor)
	if brief(b.Paid) != "1140000 2024-01" || brief(b.InTransit) != "0 " ||
		brief(b.Outstanding) != "3240000 2023-07,2023-08,2023-09,2023-10,2023-11,2023-12" || brief(b.Accrued) != "4380000 2023-07,2023-08,2023-09,2023-10,2023-11,2023-12,2024-01" {
		t.Fatalf("An after settlement: paid %s, in transit %s, outstanding %s", brief(b.Paid), brief(b.InTransit), brief(b.Outstanding))
	}
	if len(b.Paid.Lines) != 2 || b.Paid.Lines[0].Status != "settled" || b.Paid.Lines[0].RunID != "HD-2024-01" {
		t.Errorf("paid lines %+v", b.Paid.Lines)
	}
	if b.Accounts["program_expense"].Amount != "1140000" || b.Accounts["bank_disbursed"].Amount != "-1140000" {
		t.Errorf("An's accounts %+v", b.Accounts)
	}
	// Bình's transfer failed: January is outstanding again, nothing paid.
	if b := env.balance(hdBinh, "", env.thu); brief(b.Paid) != "0 " || brief(b.Outstanding) != "3780000 2023-07,2023-08,2023-09,2023-10,2023-11,2023-12,2024-01" {
		t.Errorf("Bình: paid %s, outstanding %s", brief(b.Paid), brief(b.Outstanding))
	}

	// As of the release (before the bank answered): An's January was in
	// transit, nothing paid; the answer says which position it reflects.
	past := env.balance(hdAn, "?as_of="+released.String(), env.auditor)
	if past.AsOf == nil || *past.AsOf != released.String() || past.Position != released ||
		brief(past.InTransit) != "1140000 2024-01" || brief(past.Paid) != "0 " {
		t.Fatalf("An as of %s: as_of %v, position %s, in transit %s, paid %s", released, past.AsOf, past.Position, brief(past.InTransit), brief(past.Paid))
	}
	// As of an instant before the ledger held anything, An is unknown.
	wantProblem(t, env.get("/v1/beneficiaries/"+hdAn+"/balance?as_of=2024-01-01T00:00:00%2B07:00", env.admin), http.StatusNotFound, "beneficiary_not_found")

	// The history: both of An's lines, settled, the account masked.
	h := decodeJSON[payoutHistoryJSON](t, env.getJSON("/v1/beneficiaries/"+hdAn+"/payouts", env.registrar, http.StatusOK))
	if len(h.Items) != 2 || h.NextCursor != "" {
		t.Fatalf("An's history: %+v", h)
	}
	for _, a := range h.Items {
		if a.Status != "settled" || a.Payee.Method != "bank" || a.Payee.BankCode != "VCB" || a.Payee.AccountNumber != "*********4567" ||
			a.Reference != "FT24011801" || a.AnsweredAt == nil || a.RunID != "HD-2024-01" || a.Period != "2024-01" || a.Attempt != 1 {
			t.Errorf("An's attempt %+v", a)
		}
	}
	if strings.Contains(h.Items[0].Payee.AccountNumber+h.Items[1].Payee.AccountNumber, "0011001234567") {
		t.Error("the history shows a whole account number")
	}
	// One a page.
	p1 := decodeJSON[payoutHistoryJSON](t, env.getJSON("/v1/beneficiaries/"+hdAn+"/payouts?limit=1", env.registrar, http.StatusOK))
	p2 := decodeJSON[payoutHistoryJSON](t, env.getJSON("/v1/beneficiaries/"+hdAn+"/payouts?limit=1&cursor="+p1.NextCursor, env.registrar, http.StatusOK))
	if len(p1.Items) != 1 || len(p2.Items) != 1 || p2.NextCursor != "" || p1.Items[0].Program == p2.Items[0].Program {
		t.Fatalf("pages: %+v / %+v", p1, p2)
	}
	// Bình's failed transfer, with why; Chi's cash receipt.
	hb := decodeJSON[payoutHistoryJSON](t, env.getJSON("/v1/beneficiaries/"+hdBinh+"/payouts", env.registrar, http.StatusOK))
	if len(hb.Items) != 1 || hb.Items[0].Status != "failed" || hb.Items[0].Reason != "account_closed" || hb.Items[0].Payee.AccountNumber != "**********6789" {
		t.Fatalf("Bình's history: %+v", hb)
	}
	hc := decodeJSON[payoutHistoryJSON](t, env.getJSON("/v1/beneficiaries/"+hdChi+"/payouts", env.registrar, http.StatusOK))
	if len(hc.Items) != 1 || hc.Items[0].Payee.Method != "cash" || hc.Items[0].Payee.AccountNumber != "" || hc.Items[0].Reference != "PT-0001" {
		t.Fatalf("Chi's history: %+v", hc)
	}

	// Refusals.
	tests := []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"as_of for a registrar", "/balance?as_of=" + released.String(), env.registrar, 403, "forbidden"},
		{"as_of for an approver", "/balance?as_of=" + released.String(), env.minh, 403, "forbidden"},
		{"as_of not a time", "/balance?as_of=yesterday", env.auditor, 400, "bad_request"},
		{"as_of in the future", "/balance?as_of=2030-01-01T00:00:00Z", env.auditor, 400, "bad_request"},
		{"as_of past the log", "/balance?as_of=999999/999999", env.auditor, 400, "bad_request"},
		{"as_of before the first event", "/balance?as_of=0", env.auditor, 400, "bad_request"},
		{"through malformed", "/balance?through=2024-13", env.auditor, 400, "bad_request"},
		{"through far ahead", "/balance?through=2099-01", env.auditor, 400, "bad_request"},
		{"history limit", "/payouts?limit=0", env.auditor, 400, "invalid_limit"},
		{"history cursor", "/payouts?cursor=bm90LWEta2V5", env.auditor, 400, "invalid_cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, env.get("/v1/beneficiaries/"+hdAn+tt.path, tt.token), tt.status, tt.code)
		})
	}
	wantProblem(t, env.get("/v1/beneficiaries/001145999999/balance", env.auditor), http.StatusNotFound, "beneficiary_not_found")
	wantProblem(t, env.get("/v1/beneficiaries/12345/balance", env.auditor), http.StatusBadRequest, "invalid_identifier")

	// As of an instant between the release and the bank's answers. The
	// store stamps events with the real clock and the server's clock is
	// the fake one of January 2024: move it past the real one, so that the
	// instant is not "in the future".
	env.clock.Advance(10 * 365 * 24 * time.Hour)
	at := env.releasedAt.UTC().Format(time.RFC3339Nano)
	past = env.balance(hdAn, "?through=2024-01&as_of="+url.QueryEscape(at), env.thu)
	if brief(past.InTransit) != "1140000 2024-01" || brief(past.Paid) != "0 " || past.Position != released {
		t.Fatalf("An as of %s: in transit %s, paid %s, position %s (release at %s)", at, brief(past.InTransit), brief(past.Paid), past.Position, released)
	}
	// Without through, as of an instant: through the month of that instant.
	if b := env.balance(hdAn, "?as_of="+url.QueryEscape(at), env.thu); b.Through != domain.DateOf(env.releasedAt).Period().String() {
		t.Errorf("through %s as of %s", b.Through, at)
	}
}

// One as-of replay at a time: a second while one runs is refused, not
// queued.
func TestAsOfReplaysOneAtATime(t *testing.T) {
	env := newReadAPI(t)
	env.month()
	pos := env.caughtUp()
	env.srv.reads.asOfBusy.Store(true) // as if a replay were running
	w := env.get("/v1/trial-balance?as_of="+pos.String(), env.auditor)
	wantProblem(t, w, http.StatusServiceUnavailable, "as_of_busy")
	if w.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	env.srv.reads.asOfBusy.Store(false)
	wantStatus(t, env.get("/v1/trial-balance?as_of="+pos.String(), env.auditor), http.StatusOK)
	if env.srv.reads.asOfBusy.Load() {
		t.Error("the as-of slot was not released")
	}
}

// The trial balance from the books read model nets to zero, and as of the
// release shows the money in transit.
func TestTrialBalanceFromTheReadModels(t *testing.T) {
	env := newReadAPI(t)
	env.month()
	released := env.settledJanuary()
	head := env.caughtUp()

	w := env.getJSON("/v1/trial-balance", env.auditor, http.StatusOK)
	tb := decodeJSON[trialBalanceJSON](t, w)
	got := map[string]string{}
	for _, a := range tb.Accounts {
		got[a.Account] = a.Balance.Amount
	}
	// An's 1,140,000 by bank and Chi's 540,000 in cash went out; Bình's
	// 540,000 failed and took its expense back.
	wantBalances(t, got, map[string]string{"program_expense": "1680000", "bank_disbursed": "-1140000", "cash_disbursed": "-540000"})
	if !tb.Balanced || tb.Total.Amount != "0" || tb.Debits.Amount != "1680000" || tb.Credits.Amount != "1680000" || tb.Position != head || tb.AsOf != nil {
		t.Fatalf("trial balance: balanced %v, total %s, debits %s, credits %s, position %s (head %s)", tb.Balanced, tb.Total.Amount, tb.Debits.Amount, tb.Credits.Amount, tb.Position, head)
	}
	if len(tb.Accounts) != len(disbursement.Accounts) {
		t.Errorf("%d accounts, want every account of the chart", len(tb.Accounts))
	}
	if pe := tb.Accounts[0]; pe.Account != "program_expense" || pe.Debit.Amount != "1680000" || pe.Credit.Amount != "0" ||
		pe.ByProgram["SOCIAL_MONTHLY"].Amount != "1080000" || pe.ByProgram["PRESIDENT_TET_GIFT"].Amount != "600000" {
		t.Errorf("program_expense = %+v", pe)
	}
	// The same as the ledger's fold of the whole log.
	fold, _, err := env.ledger.TrialBalance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range tb.Accounts {
		if want := fold.Balance(disbursement.Account(a.Account)).Amount.String(); a.Balance.Amount != want {
			t.Errorf("%s: read model %s, fold of the log %s", a.Account, a.Balance.Amount, want)
		}
	}

	// As of the release: all 2,220,000 issued and in transit.
	past := decodeJSON[trialBalanceJSON](t, env.getJSON("/v1/trial-balance?as_of="+released.String(), env.thu, http.StatusOK))
	got = map[string]string{}
	for _, a := range past.Accounts {
		got[a.Account] = a.Balance.Amount
	}
	wantBalances(t, got, map[string]string{"program_expense": "2220000", "payments_in_transit": "-2220000"})
	if !past.Balanced || past.Position != released || past.AsOf == nil {
		t.Errorf("as of the release: balanced %v, position %s", past.Balanced, past.Position)
	}
	wantProblem(t, env.get("/v1/trial-balance?as_of="+released.String(), env.minh), http.StatusForbidden, "forbidden")
	wantProblem(t, env.get("/v1/trial-balance", env.registrar), http.StatusForbidden, "forbidden")
}

// The district report of January in JSON and CSV, computed by hand.
func TestDistrictReport(t *testing.T) {
	env := newReadAPI(t)
	env.month()
	env.settledJanuary()
	env.caughtUp()

	rep := decodeJSON[districtReportJSON](t, env.getJSON("/v1/reports/districts?period=2024-01", env.registrar, http.StatusOK))
	if len(rep.Districts) != 1 || rep.From == nil || *rep.From != "2024-01" || rep.To == nil || *rep.To != "2024-01" {
		t.Fatalf("report = %+v", rep)
	}
	for _, d := range []districtFiguresJSON{rep.Districts[0], rep.City} {
		// Three active people, all social protection; An and Bình have an
		// account linked: 2/3 = 66.67%. January: 4 lines due (An 2, Bình,
		// Chi), 3 paid (1,680,000), Bình's failed (540,000): 75%.
		if d.Active != 3 || d.ByCategory["social_protection"] != 3 || len(d.ByCategory) != 1 || d.WithBank != 2 || d.BankAccountShare != "66.67" {
			t.Errorf("%q people: %+v", d.District, d)
		}
		if len(d.Periods) != 1 {
			t.Fatalf("%q periods %+v", d.District, d.Periods)
		}
		p := d.Periods[0]
		if *p.Period != "2024-01" || p.Due.Lines != 4 || p.Due.Net.Amount != "2220000" || p.Paid.Lines != 3 || p.Paid.Net.Amount != "1680000" ||
			p.Failed.Lines != 1 || p.Failed.Net.Amount != "540000" || p.InTransit.Lines != 0 || p.Reversed.Lines != 0 || p.Completion != "75.00" {
			t.Errorf("%q January: %+v", d.District, p)
		}
		if d.Totals.Period != nil || d.Totals.Due.Lines != 4 || d.Totals.Completion != "75.00" {
			t.Errorf("%q totals: %+v", d.District, d.Totals)
		}
	}
	if d := rep.Districts[0]; d.District != hdDistrict || d.DistrictName == "" || d.Catalogue == "" || rep.City.District != "" {
		t.Errorf("district %q %q %q, city %q", d.District, d.DistrictName, d.Catalogue, rep.City.District)
	}
	// February: nothing paid yet; the people are still counted.
	feb := decodeJSON[districtReportJSON](t, env.getJSON("/v1/reports/districts?period=2024-02", env.registrar, http.StatusOK))
	if len(feb.Districts) != 1 || len(feb.Districts[0].Periods) != 0 || feb.Districts[0].Active != 3 || feb.City.Totals.Due.Lines != 0 || feb.City.Totals.Completion != "" {
		t.Errorf("February: %+v", feb)
	}
	if other := decodeJSON[districtReportJSON](t, env.getJSON("/v1/reports/districts?district=004", env.registrar, http.StatusOK)); len(other.Districts) != 0 || other.City.Active != 0 {
		t.Errorf("district 004: %+v", other)
	}

	// The download.
	w := env.getJSON("/v1/reports/districts?period=2024-01&format=csv", env.auditor, http.StatusOK)
	if ct, cd := w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"); ct != "text/csv; charset=utf-8" || cd != `attachment; filename="district-report-2024-01.csv"` {
		t.Errorf("headers %q, %q", ct, cd)
	}
	if w.Header().Get(HeaderPosition) != rep.Position.String() {
		t.Errorf("position header %q, JSON %s", w.Header().Get(HeaderPosition), rep.Position)
	}
	rows, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	if err != nil || len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(reportCSVHeader, ",") {
		t.Fatalf("csv (%v):\n%s", err, w.Body.String())
	}
	want := map[string]string{
		"district": hdDistrict, "period": "2024-01", "active": "3", "active_social_protection": "3", "active_meritorious": "0",
		"with_bank_account": "2", "bank_account_share": "66.67", "due_lines": "4", "due_gross": "2220000", "due_net": "2220000",
		"paid_lines": "3", "paid_net": "1680000", "failed_lines": "1", "failed_net": "540000", "in_transit_lines": "0", "completion": "75.00",
	}
	for i, cells := range rows[1:] {
		if len(cells) != len(reportCSVHeader) {
			t.Fatalf("row %d has %d cells: %v", i, len(cells), cells)
		}
		want["district"] = []string{hdDistrict, "all"}[i]
		for j, col := range reportCSVHeader {
			if v, ok := want[col]; ok && cells[j] != v {
				t.Errorf("row %d %s = %q, want %q", i, col, cells[j], v)
			}
		}
	}

	for _, q := range []string{"period=2024-13", "from=2024-03&to=2024-01", "period=2024-01&from=2024-01", "format=xlsx", "district=abc"} {
		wantProblem(t, env.get("/v1/reports/districts?"+q, env.registrar), http.StatusBadRequest, "bad_request")
	}
}

// A stream's history with who, when and why, both ways, paged.
func TestStreamHistory(t *testing.T) {
	env := newReadAPI(t)
	env.register()
	wantStatus(t, env.post("/v1/beneficiaries/"+anID+"/corrections", env.registrar,
		`{"full_name": "Nguyễn Thị Ân", "reason": "typo on the card"}`, "X-Request-ID", "req-fix-name"), http.StatusOK)

	stream := "/v1/streams/beneficiary-" + anID + "/events"
	all := decodeJSON[streamEventsJSON](t, env.getJSON(stream, env.auditor, http.StatusOK))
	if len(all.Items) != 2 || all.NextCursor != "" {
		t.Fatalf("history: %+v", all)
	}
	reg, fix := all.Items[0], all.Items[1]
	if reg.Revision != 0 || !strings.HasPrefix(reg.Type, "BeneficiaryRegistered") || reg.Metadata == nil || reg.Metadata.Actor.UserID != "lan" ||
		reg.Metadata.Actor.Role != "registrar" || reg.Metadata.RecordedAt.IsZero() || !strings.Contains(string(reg.Data), `"Nguyễn Thị An"`) {
		t.Errorf("registration: %+v", reg)
	}
	if fix.Revision != 1 || fix.Metadata == nil || fix.Metadata.Reason != "typo on the card" || fix.Metadata.CorrelationID != "req-fix-name" ||
		fix.Metadata.CommandID == "" || fix.Position.Compare(reg.Position) <= 0 {
		t.Errorf("correction: %+v", fix)
	}

	// Newest first, one a page.
	p1 := decodeJSON[streamEventsJSON](t, env.getJSON(stream+"?direction=backwards&limit=1", env.admin, http.StatusOK))
	if len(p1.Items) != 1 || p1.Items[0].Revision != 1 || p1.NextCursor == "" {
		t.Fatalf("backwards page 1: %+v", p1)
	}
	p2 := decodeJSON[streamEventsJSON](t, env.getJSON(stream+"?direction=backwards&limit=1&cursor="+p1.NextCursor, env.admin, http.StatusOK))
	if len(p2.Items) != 1 || p2.Items[0].Revision != 0 || p2.NextCursor != "" {
		t.Fatalf("backwards page 2: %+v", p2)
	}
	if from := decodeJSON[streamEventsJSON](t, env.getJSON(stream+"?from=1", env.auditor, http.StatusOK)); len(from.Items) != 1 || from.Items[0].Revision != 1 {
		t.Errorf("from=1: %+v", from)
	}

	wantProblem(t, env.get(stream, env.registrar), http.StatusForbidden, "forbidden")
	wantProblem(t, env.get(stream, env.thu), http.StatusForbidden, "forbidden")
	wantProblem(t, env.get("/v1/streams/beneficiary-001145999999/events", env.auditor), http.StatusNotFound, "stream_not_found")
	wantProblem(t, env.get(stream+"?direction=sideways", env.auditor), http.StatusBadRequest, "bad_request")
	wantProblem(t, env.get(stream+"?cursor="+p1.NextCursor, env.auditor), http.StatusBadRequest, "invalid_cursor") // a backwards cursor, forwards
	wantProblem(t, env.get(stream+"?from=1&cursor="+p1.NextCursor, env.auditor), http.StatusBadRequest, "bad_request")
}

// tamperingStore alters the data of one event in what ReadAll returns,
// once told which: a log changed behind the ledger's back.
type tamperingStore struct {
	eventstore.Store
	mu     sync.Mutex
	target eventstore.Position
}

func (s *tamperingStore) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	recs, err := s.Store.ReadAll(ctx, after, limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range recs {
		if !s.target.IsStart() && recs[i].Position == s.target {
			recs[i].Data = []byte(strings.Replace(string(recs[i].Data), "540000", "5400000", 1))
		}
	}
	return recs, err
}

func withStoreWrapper(wrap func(eventstore.Store) eventstore.Store) testOption {
	return func(_ *Config, d *Deps) { d.Store = wrap(d.Store) }
}

// Seals are listed and check out; a verification of the untampered log
// is ok; the same log altered in one event is reported at that event.
func TestSealsAndVerification(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tamper := &tamperingStore{}
	env := newReadAPI(t,
		withStoreWrapper(func(s eventstore.Store) eventstore.Store { tamper.Store = s; return tamper }),
		func(_ *Config, d *Deps) { d.SealKeys = []ed25519.PublicKey{pub} })
	env.month()
	env.settledJanuary()
	head := env.caughtUp()

	// A sealer over the store, every 10 events, its state beside the read
	// models.
	sealer, err := audit.NewSealer(env.srv.deps.Store, env.db.Pebble(), projections.ComponentPrefix("sealer"), key, audit.SealerOptions{Every: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = sealer.Run(ctx)
	}()
	defer func() { cancel(); <-stopped }()
	events := head.Commit                   // the embedded store numbers events from 1
	deadline := time.Now().Add(time.Minute) // a guard against a hang, not a timing assertion
	for sealer.Status().LastSeal < events/10*10 {
		if time.Now().After(deadline) {
			t.Fatalf("the sealer did not seal %d events: %+v", events, sealer.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	env.srv.deps.Sealer = sealer

	seals := decodeJSON[sealListJSON](t, env.getJSON("/v1/seals?limit=500", env.auditor, http.StatusOK))
	// Seals are events too, so more may follow the ones that cover the
	// month; each covers the next 10.
	if len(seals.Items) < int(events/10) {
		t.Fatalf("%d seals for %d events, want one per 10", len(seals.Items), events)
	}
	for i, s := range seals.Items {
		if s.Count != uint64(10*(i+1)) || s.PrevCount != uint64(10*i) || !s.TrustedKey || !s.SignatureValid || s.KeyID != audit.KeyID(pub) {
			t.Errorf("seal %d = %+v", i, s)
		}
	}
	keys := decodeJSON[sealKeysJSON](t, env.getJSON("/v1/seals/public-key", env.registrar, http.StatusOK))
	if len(keys.Keys) != 1 || keys.Keys[0].KeyID != audit.KeyID(pub) {
		t.Fatalf("keys = %+v", keys)
	}
	if got, err := audit.ParsePublicKey([]byte(keys.Keys[0].PublicKeyPEM)); err != nil || !got.Equal(pub) {
		t.Fatalf("the PEM is not the key: %v", err)
	}
	status := decodeJSON[projectionsJSON](t, env.getJSON("/v1/projections", env.admin, http.StatusOK))
	if len(status.Projections) != len(projections.ReadModels()) || status.Head.Compare(head) < 0 || len(status.Failed) != 0 ||
		status.Sealer == nil || status.Sealer.LastSeal < events/10*10 {
		t.Fatalf("projections = %+v", status)
	}

	verify := func() verificationReportJSON {
		t.Helper()
		w := env.post("/v1/verifications", env.auditor, `{"expect_sealed_through": 10}`)
		wantStatus(t, w, http.StatusAccepted)
		started := decodeJSON[verificationJSON](t, w)
		if started.State != "running" || started.StartedBy != "hoa" || w.Header().Get("Location") != "/v1/verifications/"+started.VerificationID {
			t.Fatalf("started = %+v, Location %q", started, w.Header().Get("Location"))
		}
		env.srv.reads.verifications.wg.Wait()
		done := decodeJSON[verificationJSON](t, env.getJSON("/v1/verifications/"+started.VerificationID, env.admin, http.StatusOK))
		if done.State != "succeeded" || done.Report == nil || done.FinishedAt == nil || done.ExpectSealedThrough != 10 {
			t.Fatalf("verification = %+v", done)
		}
		return *done.Report
	}
	rep := verify()
	sealsCount := len(seals.Items)
	if !rep.OK || rep.Seals < sealsCount || rep.FirstProblem != nil || len(rep.Problems) != 0 || !rep.TrialBalanced || rep.TrialTotal.Amount != "0" ||
		len(rep.Projections) != len(projections.ReadModels()) || rep.Events < events {
		t.Fatalf("report of the untampered log = %+v", rep)
	}
	for _, p := range rep.Projections {
		if !p.Matches {
			t.Errorf("read model %s differs from a replay: %s", p.Name, p.Difference)
		}
	}

	// Someone edits Bình's payment in the log: the report names the event.
	var target eventstore.RecordedEvent
	recs, err := env.store.ReadAll(t.Context(), eventstore.Start, 1000)
	if err != nil {
		t.Fatal(err)
	}
	sealed := sealer.Status().LastSeal // only sealed events can be checked
	for _, r := range recs {
		if r.Position.Commit > sealed || !strings.Contains(string(r.Data), "540000") || !strings.HasPrefix(r.Type, "PaymentIssued") {
			continue
		}
		target = r
		break
	}
	if target.Position.IsStart() {
		t.Fatal("no payment event to tamper with")
	}
	tamper.mu.Lock()
	tamper.target = target.Position
	tamper.mu.Unlock()
	rep = verify()
	if rep.OK || rep.FirstProblem == nil || rep.FirstProblem.Position != target.Position || rep.FirstProblem.Count != target.Position.Commit {
		t.Fatalf("report of the altered log: ok %v, first problem %+v, want one at %s", rep.OK, rep.FirstProblem, target.Position)
	}

	// Roles, one at a time, and unknown verifications.
	wantProblem(t, env.post("/v1/verifications", env.thu, ""), http.StatusForbidden, "forbidden")
	wantProblem(t, env.get("/v1/seals", env.registrar), http.StatusForbidden, "forbidden")
	wantProblem(t, env.get("/v1/projections", env.thu), http.StatusForbidden, "forbidden")
	wantProblem(t, env.get("/v1/verifications/ver-0000000000000000", env.auditor), http.StatusNotFound, "verification_not_found")
	release := holdBusy(&env.srv.reads.verifications)
	wantProblem(t, env.post("/v1/verifications", env.auditor, ""), http.StatusServiceUnavailable, "verification_busy")
	release()
	wantProblem(t, env.post("/v1/verifications", env.auditor, `{"expect_sealed": 1}`), http.StatusBadRequest, "invalid_json")
}

// Without read models the read side says so (503), and the trial balance
// falls back to a fold of the log.
func TestReadSideWithoutReadModels(t *testing.T) {
	env := newPayoutAPI(t)
	env.month()
	for _, path := range []string{"/v1/beneficiaries?q=an", "/v1/beneficiaries/" + hdAn + "/balance", "/v1/beneficiaries/" + hdAn + "/payouts",
		"/v1/reports/districts", "/v1/projections"} {
		wantProblem(t, env.get(path, env.admin), http.StatusServiceUnavailable, "projections_unavailable")
	}
	w := env.get("/v1/trial-balance", env.auditor)
	wantStatus(t, w, http.StatusOK)
	tb := decodeJSON[trialBalanceJSON](t, w)
	if !tb.Balanced || tb.Total.Amount != "0" || len(tb.Accounts) != len(disbursement.Accounts) || tb.Position != env.head() {
		t.Fatalf("folded trial balance = %+v", tb)
	}
}

// headWaiter records the positions a calculation waits for; stuck, it
// never gets there (until the waiter's context ends).
type headWaiter struct {
	mu    sync.Mutex
	asked []eventstore.Position
	stuck bool
}

func (h *headWaiter) Position() eventstore.Position { return eventstore.Start }

func (h *headWaiter) WaitFor(ctx context.Context, pos eventstore.Position) error {
	h.mu.Lock()
	h.asked = append(h.asked, pos)
	h.mu.Unlock()
	if h.stuck {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// A calculation with a read-model roster first waits until the read
// models hold every event written before it started; if they do not get
// there, it fails saying so, rather than calculating from a roster that
// misses recent registrations.
func TestCalculationWaitsForTheRoster(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		t.Run(fmt.Sprintf("stuck=%v", stuck), func(t *testing.T) {
			waiter := &headWaiter{stuck: stuck}
			env := newPayoutAPIWith(t, func(_ *Config, d *Deps) {
				d.Projections = waiter
				d.Roster = ledger.NewStaticRoster(hdAn, hdBinh, hdChi)
			})
			if stuck {
				defer func(d time.Duration) { rosterWaitMax = d }(rosterWaitMax)
				rosterWaitMax = 20 * time.Millisecond
			}
			env.month()
			env.openRun("HD-2024-01", "")
			head := env.head()
			r := env.calculate("HD-2024-01", "")
			waiter.mu.Lock()
			asked := append([]eventstore.Position(nil), waiter.asked...)
			waiter.mu.Unlock()
			if len(asked) == 0 || asked[0] != head {
				t.Fatalf("the calculation waited for %v, want the head %s at its start", asked, head)
			}
			switch {
			case !stuck && (r.Status != "calculated" || r.Payments != 3):
				t.Fatalf("calculated run = %+v", r)
			case stuck && (r.Status != "opened" || r.Calculation == nil || r.Calculation.Error == nil || r.Calculation.Error.Code != "projections_behind"):
				t.Fatalf("run after a stuck roster = %+v, calculation %+v", r, r.Calculation)
			}
		})
	}
}
