package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/registry"
)

// payoutAPI is the registry test server with the people of a payout: Thu
// and Vy (finance officers), Minh and Quang (approvers), besides the
// registrar and the auditor.
type payoutAPI struct {
	*registryAPI
	thu, vy, minh, quang string
}

func newPayoutAPI(t *testing.T) *payoutAPI {
	t.Helper()
	env := &payoutAPI{registryAPI: newRegistryAPI(t)}
	env.thu = env.createUser("thu", "finance_officer").Token
	env.vy = env.createUser("vy", "finance_officer").Token
	env.minh = env.createUser("minh", "approver").Token
	env.quang = env.createUser("quang", "approver").Token
	return env
}

// Three people of Hà Đông (district 268, ward 09556), born 1945.
var (
	hdAn   = registry.MakeCitizenID("001", registry.Female, 1945, 101) // bank VCB, monthly + gift
	hdBinh = registry.MakeCitizenID("001", registry.Female, 1945, 102) // bank BIDV, monthly; the account is closed
	hdChi  = registry.MakeCitizenID("001", registry.Female, 1945, 103) // cash, monthly
)

const (
	hdDistrict = "268"
	hdWard     = "09556"
	bankTime   = "2024-01-18T10:00:00+07:00"
)

// person registers a beneficiary with the monthly allowance at 1.5 x
// 360,000 from July 2023, and a bank account when bank is set.
func (e *payoutAPI) person(cid, name, holder, bank, account string) {
	e.t.Helper()
	wantStatus(e.t, e.post("/v1/beneficiaries", e.registrar, registerBody(cid, name)), http.StatusCreated)
	base := "/v1/beneficiaries/" + cid
	wantStatus(e.t, e.post(base+"/entitlements", e.registrar, `{"program": "SOCIAL_MONTHLY", "start_period": "2023-07", "coefficient": "1.5"}`), http.StatusCreated)
	if bank != "" {
		wantStatus(e.t, e.post(base+"/bank-account", e.registrar,
			fmt.Sprintf(`{"bank_code": %q, "account_number": %q, "holder_name": %q}`, bank, account, holder)), http.StatusOK)
		wantStatus(e.t, e.post(base+"/payment-method", e.registrar, `{"method": "bank_transfer"}`), http.StatusOK)
	}
}

// month registers the three people of the worked month.
func (e *payoutAPI) month() {
	e.t.Helper()
	e.person(hdAn, "Nguyễn Thị An", "NGUYEN THI AN", "VCB", "0011001234567")
	wantStatus(e.t, e.post("/v1/beneficiaries/"+hdAn+"/entitlements", e.registrar,
		`{"program": "PRESIDENT_TET_GIFT", "start_period": "2024-01", "amount": {"amount": "600000", "currency": "VND"}}`), http.StatusCreated)
	e.person(hdBinh, "Trần Thị Bình", "TRAN THI BINH", "BIDV", "12010000456789")
	e.person(hdChi, "Lê Thị Chi", "", "", "")
}

const openJanuary = `{"run_id": %q, "periods": ["2024-01"], "programs": ["SOCIAL_MONTHLY", "PRESIDENT_TET_GIFT"], "districts": ["268"]%s}`

func (e *payoutAPI) openRun(id, extra string) runWritten {
	e.t.Helper()
	w := e.post("/v1/payout-runs", e.thu, fmt.Sprintf(openJanuary, id, extra))
	wantStatus(e.t, w, http.StatusCreated)
	return decodeJSON[runWritten](e.t, w)
}

// calculate starts the background calculation and waits for it.
func (e *payoutAPI) calculate(id, body string) runJSON {
	e.t.Helper()
	w := e.post("/v1/payout-runs/"+id+"/calculate", e.thu, body)
	wantStatus(e.t, w, http.StatusAccepted)
	if got := w.Header().Get("Location"); got != "/v1/payout-runs/"+id {
		e.t.Errorf("calculate Location %q", got)
	}
	if c := decodeJSON[runWritten](e.t, w).Run.Calculation; c == nil || c.StartedBy != "thu" {
		e.t.Errorf("202 shows calculation %+v", c)
	}
	e.srv.calcs.wg.Wait()
	return e.run(id)
}

func (e *payoutAPI) run(id string) runJSON {
	e.t.Helper()
	w := e.get("/v1/payout-runs/"+id, e.auditor)
	wantStatus(e.t, w, http.StatusOK)
	r := decodeJSON[runJSON](e.t, w)
	if w.Header().Get("ETag") != ETag(uint64(r.Revision)) {
		e.t.Errorf("run ETag %q, revision %d", w.Header().Get("ETag"), r.Revision)
	}
	return r
}

// command posts a run or correction command and checks the answer's
// position and ETag.
func (e *payoutAPI) runCommand(path, token, body string, status int, headers ...string) runWritten {
	e.t.Helper()
	w := e.post(path, token, body, headers...)
	wantStatus(e.t, w, status)
	got := decodeJSON[runWritten](e.t, w)
	checkWritten(e.t, w, got.Position, got.Run.Revision)
	return got
}

func (e *payoutAPI) postCSV(path, token, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.post(path, token, body, append([]string{"Content-Type", "text/csv"}, headers...)...)
}

func (e *payoutAPI) payments(runID, query string) List[paymentJSON] {
	e.t.Helper()
	w := e.get("/v1/payout-runs/"+runID+"/payments"+query, e.auditor)
	wantStatus(e.t, w, http.StatusOK)
	return decodeJSON[List[paymentJSON]](e.t, w)
}

// paymentTo finds the payment of a run to a payee.
func (e *payoutAPI) paymentTo(runID, cid string) paymentJSON {
	e.t.Helper()
	for _, p := range e.payments(runID, "?limit=500").Items {
		if p.Payee.CitizenID == cid {
			return p
		}
	}
	e.t.Fatalf("run %s pays nothing to %s", runID, cid)
	return paymentJSON{}
}

func (e *payoutAPI) trialBalance() map[string]string {
	e.t.Helper()
	w := e.get("/v1/trial-balance", e.auditor)
	wantStatus(e.t, w, http.StatusOK)
	out := map[string]string{}
	for _, a := range decodeJSON[trialBalanceJSON](e.t, w).Accounts {
		out[a.Account] = a.Balance.Amount
	}
	return out
}

func wantBalances(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for _, a := range disbursement.Accounts {
		w := want[string(a)]
		if w == "" {
			w = "0"
		}
		if got[string(a)] != w {
			t.Errorf("%s = %s, want %s", a, got[string(a)], w)
		}
	}
}

// A month of Hà Đông through the API: open, calculate in the background,
// four eyes, release, files, the bank's answers (one failure), a cash
// reissue, a correction decided by a second person, and a reconciled
// statement; the books at the end are computed by hand.
func TestPayoutMonthThroughTheAPI(t *testing.T) {
	env := newPayoutAPI(t)
	env.month()

	// Thu opens the run.
	w := env.post("/v1/payout-runs", env.thu, fmt.Sprintf(openJanuary, "HD-2024-01", `, "budget": {"max_payments": 10, "max_amount": {"amount": "5000000", "currency": "VND"}}, "reason": "January and the Tet gift"`))
	wantStatus(t, w, http.StatusCreated)
	opened := decodeJSON[runWritten](t, w)
	checkWritten(t, w, opened.Position, opened.Run.Revision)
	if r := opened.Run; r.Status != "opened" || r.OpenedBy != "thu" || len(r.Periods) != 1 || r.Periods[0] != "2024-01" ||
		r.Budget.MaxPayments == nil || *r.Budget.MaxPayments != 10 || r.Budget.MaxAmount == nil || r.Budget.MaxAmount.Amount != "5000000" {
		t.Fatalf("opened run = %+v", r)
	}
	if got := w.Header().Get("Location"); got != "/v1/payout-runs/HD-2024-01" {
		t.Errorf("Location %q", got)
	}

	// Calculation runs in the background, two beneficiaries a page. An
	// 540,000 + 600,000; Bình 540,000; Chi 540,000 in cash: 3 payments, 4
	// lines, 2,220,000 VND.
	r := env.calculate("HD-2024-01", `{"page_size": 2}`)
	if r.Status != "calculated" || r.CalculatedBy != "thu" || r.Pages != 2 || r.Beneficiaries != 3 || r.Payments != 3 || r.Lines != 4 ||
		r.Net.Amount != "2220000" || r.ProblemCount != 0 || len(r.CashWards) != 1 || r.CashWards[0] != hdWard {
		t.Fatalf("calculated run = %+v", r)
	}
	if c := r.Calculation; c == nil || c.State != "succeeded" || c.Pages != 2 || c.Lines != 4 || c.Net.Amount != "2220000" || c.FinishedAt == nil || c.Error != nil {
		t.Fatalf("calculation = %+v", c)
	}
	if len(env.logs.logLines(t, "calculation progress")) != 3 || len(env.logs.logLines(t, "calculation finished")) != 1 {
		t.Errorf("want a progress line per page (and the completion) and one finished line; logs:\n%s", env.logs.String())
	}
	// Calculating again is a read.
	wantStatus(t, env.post("/v1/payout-runs/HD-2024-01/calculate", env.thu, ""), http.StatusOK)

	// Thu opened and calculated it, and a finance officer approves nothing
	// (four eyes for an admin who did both is in TestPayoutRejections).
	// Minh approves, first with a stale ETag.
	wantProblem(t, env.post("/v1/payout-runs/HD-2024-01/approve", env.thu, ""), http.StatusForbidden, "forbidden")
	w = env.post("/v1/payout-runs/HD-2024-01/approve", env.minh, "", "If-Match", `"0"`)
	wantProblem(t, w, http.StatusPreconditionFailed, "precondition_failed")
	if w.Header().Get("ETag") != ETag(uint64(r.Revision)) {
		t.Errorf("412 ETag %q, want %q", w.Header().Get("ETag"), ETag(uint64(r.Revision)))
	}
	approved := env.runCommand("/v1/payout-runs/HD-2024-01/approve", env.minh, `{"reason": "checked against the list"}`, http.StatusOK,
		"If-Match", ETag(uint64(r.Revision)))
	if approved.Run.Status != "approved" || approved.Run.ApprovedBy != "minh" {
		t.Fatalf("approved = %+v", approved.Run)
	}

	// Released; the same request again is a replay.
	key := []string{HeaderIdempotencyKey, "release-hd-2024-01"}
	w = env.do(env.req(http.MethodPost, "/v1/payout-runs/HD-2024-01/release", env.thu, "", key...))
	wantStatus(t, w, http.StatusOK)
	if got := decodeJSON[runWritten](t, w).Run; got.Status != "released" || got.ReleasedBy != "thu" {
		t.Fatalf("released = %+v", got)
	}
	w = env.do(env.req(http.MethodPost, "/v1/payout-runs/HD-2024-01/release", env.thu, "", key...))
	if w.Code != http.StatusOK || w.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Fatalf("resent release: %d, replayed %q", w.Code, w.Header().Get(HeaderIdempotentReplayed))
	}

	// The payments, two a page.
	page1 := env.payments("HD-2024-01", "?limit=2")
	if len(page1.Items) != 2 || page1.NextCursor == "" {
		t.Fatalf("page 1: %d items, cursor %q", len(page1.Items), page1.NextCursor)
	}
	page2 := env.payments("HD-2024-01", "?limit=2&cursor="+page1.NextCursor)
	if len(page2.Items) != 1 || page2.NextCursor != "" || page2.Items[0].PaymentID <= page1.Items[1].PaymentID {
		t.Fatalf("page 2: %+v", page2)
	}
	payAn, payBinh, payChi := env.paymentTo("HD-2024-01", hdAn), env.paymentTo("HD-2024-01", hdBinh), env.paymentTo("HD-2024-01", hdChi)
	if payAn.Status != "released" || payAn.Net.Amount != "1140000" || len(payAn.Lines) != 2 || payAn.Payee.Method != "bank" ||
		payAn.Payee.BankCode != "VCB" || payChi.Payee.Method != "cash" || payChi.Payee.Ward != hdWard {
		t.Fatalf("payments: An %+v, Chi %+v", payAn, payChi)
	}

	// The bank file has An's and Bình's transfers, in the account holders'
	// names; the cash list of the ward has Chi's.
	w = env.get("/v1/payout-runs/HD-2024-01/bank-file", env.thu)
	wantStatus(t, w, http.StatusOK)
	if ct, cd := w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"); ct != "text/csv; charset=utf-8" || cd != `attachment; filename="HD-2024-01-bank.csv"` {
		t.Errorf("bank file headers %q, %q", ct, cd)
	}
	file := w.Body.String()
	if !strings.HasPrefix(file, strings.Join(disbursement.BankFileHeader, ",")+"\n") || strings.Count(file, "\n") != 3 ||
		!strings.Contains(file, payAn.PaymentID+",NGUYEN THI AN,"+hdAn+",VCB,0011001234567,1140000,VND,"+payAn.PaymentID) ||
		!strings.Contains(file, payBinh.PaymentID+",") || strings.Contains(file, payChi.PaymentID) {
		t.Fatalf("bank file:\n%s", file)
	}
	w = env.get("/v1/payout-runs/HD-2024-01/cash-list?ward="+hdWard, env.auditor)
	wantStatus(t, w, http.StatusOK)
	if list := w.Body.String(); strings.Count(list, "\n") != 2 || !strings.Contains(list, payChi.PaymentID+",Lê Thị Chi,"+hdChi+",no,"+hdChi+","+hdDistrict+","+hdWard+",540000,VND,") {
		t.Fatalf("cash list:\n%s", list)
	}

	// The bank answers: An settled, Bình's account closed, a line for a
	// payment that does not exist.
	answers := strings.Join(disbursement.SettlementHeader, ",") + "\n" +
		payAn.PaymentID + ",settled,FT24011801," + bankTime + ",1140000,,\n" +
		payBinh.PaymentID + ",failed,," + bankTime + ",,account_closed,tai khoan da dong\n" +
		"HD-2024-01-" + hdChi + "-b000000,settled,FT24011803," + bankTime + ",,,\n"
	w = env.postCSV("/v1/bank-results", env.thu, answers)
	wantStatus(t, w, http.StatusOK)
	rep := decodeJSON[settlementReportJSON](t, w)
	if rep.Lines != 3 || rep.Applied != 2 || rep.Unchanged != 0 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 4 || rep.Rejected[0].Code != "unknown_payment" {
		t.Fatalf("report = %+v", rep)
	}
	if w.Header().Get(HeaderPosition) != rep.Position.String() {
		t.Errorf("position header %q, body %s", w.Header().Get(HeaderPosition), rep.Position)
	}
	// The same file again changes nothing.
	w = env.postCSV("/v1/bank-results", env.vy, answers)
	wantStatus(t, w, http.StatusOK)
	if rep := decodeJSON[settlementReportJSON](t, w); rep.Applied != 0 || rep.Unchanged != 2 || len(rep.Rejected) != 1 {
		t.Fatalf("again: %+v", rep)
	}
	// The ward cashier posts Chi's receipt; posted twice it is recorded once.
	for i, applied := range []bool{true, false} {
		w = env.post("/v1/payments/"+payChi.PaymentID+"/settlement", env.thu, `{"outcome": "settled", "reference": "PT-0001", "occurred_at": "`+bankTime+`", "amount": {"amount": "540000", "currency": "VND"}}`)
		wantStatus(t, w, http.StatusOK)
		if got := decodeJSON[settlementWritten](t, w); got.Applied != applied || got.PaymentID != payChi.PaymentID || got.Outcome != "settled" {
			t.Fatalf("receipt %d: %+v", i, got)
		}
	}
	if p := env.paymentTo("HD-2024-01", hdBinh); p.Status != "failed" || p.Lines[0].Failure != "account_closed" {
		t.Fatalf("Bình's payment = %+v", p)
	}
	if p := env.paymentTo("HD-2024-01", hdAn); p.Status != "settled" || p.Lines[0].Reference != "FT24011801" {
		t.Fatalf("An's payment = %+v", p)
	}
	wantBalances(t, env.trialBalance(), map[string]string{
		"program_expense": "1680000", "bank_disbursed": "-1140000", "cash_disbursed": "-540000",
	})
	closed := env.runCommand("/v1/payout-runs/HD-2024-01/close", env.thu, "", http.StatusOK)
	if closed.Run.Status != "closed" {
		t.Fatalf("closed = %+v", closed.Run)
	}

	// Bình is paid again, in cash: a reissue run over the same scope.
	env.openRun("HD-2024-01-R", `, "cash_only": true`)
	r = env.calculate("HD-2024-01-R", "")
	if r.Payments != 1 || r.Lines != 1 || r.Skipped != 3 || r.Net.Amount != "540000" {
		t.Fatalf("reissue run = %+v", r)
	}
	env.runCommand("/v1/payout-runs/HD-2024-01-R/approve", env.quang, "", http.StatusOK)
	env.runCommand("/v1/payout-runs/HD-2024-01-R/release", env.vy, "", http.StatusOK)
	reissued := env.paymentTo("HD-2024-01-R", hdBinh)
	if reissued.Payee.Method != "cash" || reissued.Lines[0].Attempt != 2 {
		t.Fatalf("reissued = %+v", reissued)
	}
	wantStatus(t, env.post("/v1/payments/"+reissued.PaymentID+"/settlement", env.vy,
		`{"outcome": "settled", "reference": "PT-0002", "occurred_at": "`+bankTime+`"}`), http.StatusOK)

	// An's January was 180,000 too much: Thu requests a recovery by offset;
	// she cannot approve it herself (nor may a finance officer), Minh does.
	w = env.post("/v1/corrections", env.thu, `{"correction_id": "CORR-2024-001", "kind": "recovery", "citizen_id": "`+hdAn+
		`", "program": "SOCIAL_MONTHLY", "period": "2024-01", "amount": {"amount": "180000", "currency": "VND"}, "mode": "offset", "reason": "coefficient 1.0 from January", "document_ref": "QD-45/2024"}`)
	wantStatus(t, w, http.StatusCreated)
	corr := decodeJSON[correctionWritten](t, w)
	checkWritten(t, w, corr.Position, corr.Correction.Revision)
	if c := corr.Correction; c.Status != "requested" || c.Amount.Amount != "180000" || c.RequestedBy != "thu" || c.Mode != "offset" {
		t.Fatalf("requested = %+v", c)
	}
	if got := w.Header().Get("Location"); got != "/v1/corrections/CORR-2024-001" {
		t.Errorf("Location %q", got)
	}
	wantBalances(t, env.trialBalance(), map[string]string{ // a request has no effect
		"program_expense": "2220000", "bank_disbursed": "-1140000", "cash_disbursed": "-1080000",
	})
	wantProblem(t, env.post("/v1/corrections/CORR-2024-001/approve", env.thu, ""), http.StatusForbidden, "forbidden")
	w = env.post("/v1/corrections/CORR-2024-001/approve", env.minh, `{"reason": "decision QD-45 seen"}`)
	wantStatus(t, w, http.StatusOK)
	if c := decodeJSON[correctionWritten](t, w).Correction; c.Status != "approved" || c.ApprovedBy != "minh" {
		t.Fatalf("approved correction = %+v", c)
	}
	w = env.get("/v1/corrections/CORR-2024-001", env.auditor)
	wantStatus(t, w, http.StatusOK)
	if c := decodeJSON[correctionJSON](t, w); c.Status != "approved" || w.Header().Get("ETag") != ETag(uint64(c.Revision)) || c.Revision != 1 {
		t.Fatalf("correction = %+v, ETag %q", c, w.Header().Get("ETag"))
	}

	// The bank's statement: An's transfer, and a line nobody sent. Bình's
	// transfer failed, so nothing is missing.
	statement := strings.Join(disbursement.StatementHeader, ",") + "\n" +
		payAn.PaymentID + ",1140000,2024-01-18,TX0001\n" +
		"NOT-OURS-1,250000,2024-01-18,TX0002\n"
	w = env.postCSV("/v1/reconciliations?id=STMT-2024-01-18&run=HD-2024-01", env.thu, statement)
	wantStatus(t, w, http.StatusCreated)
	rec := decodeJSON[reconciliationWritten](t, w).Reconciliation
	if rec.Counts["matched"] != 1 || rec.Counts["unknown_reference"] != 1 || len(rec.Missing) != 0 || rec.Replayed ||
		len(rec.Lines) != 2 || rec.Lines[0].Status != "matched" || rec.Lines[0].Line != 2 {
		t.Fatalf("reconciliation = %+v", rec)
	}
	if got := w.Header().Get("Location"); got != "/v1/reconciliations/STMT-2024-01-18" {
		t.Errorf("Location %q", got)
	}
	w = env.postCSV("/v1/reconciliations?id=STMT-2024-01-18&run=HD-2024-01", env.thu, statement)
	wantStatus(t, w, http.StatusOK)
	if !decodeJSON[reconciliationWritten](t, w).Reconciliation.Replayed {
		t.Error("the same statement again is not marked replayed")
	}
	w = env.get("/v1/reconciliations/STMT-2024-01-18", env.auditor)
	wantStatus(t, w, http.StatusOK)
	if got := decodeJSON[reconciliationJSON](t, w); got.Counts["matched"] != 1 || got.Replayed || got.FileSHA256 != rec.FileSHA256 {
		t.Fatalf("recorded reconciliation = %+v", got)
	}
	if !env.paymentTo("HD-2024-01", hdAn).Reconciled {
		t.Error("An's payment is not marked reconciled")
	}

	// The books: 2,220,000 paid (An 1,140,000 by bank; Chi and Bình
	// 540,000 each in cash), less the 180,000 An owes back.
	wantBalances(t, env.trialBalance(), map[string]string{
		"program_expense": "2040000", "bank_disbursed": "-1140000", "cash_disbursed": "-1080000", "beneficiary_receivable": "180000",
	})
}

// Every class of refusal, and that a refused request writes nothing.
func TestPayoutRejectionsChangeNothing(t *testing.T) {
	env := newPayoutAPI(t)
	env.month()
	// R-REL: January, released, no answers yet. R-ADM: February, opened
	// and calculated by the admin. R-OPEN: March, only opened.
	env.openRun("R-REL", "")
	env.calculate("R-REL", "")
	env.runCommand("/v1/payout-runs/R-REL/approve", env.minh, "", http.StatusOK)
	env.runCommand("/v1/payout-runs/R-REL/release", env.thu, "", http.StatusOK)
	wantStatus(t, env.post("/v1/payout-runs", env.admin, `{"run_id": "R-ADM", "periods": ["2024-02"], "programs": ["SOCIAL_MONTHLY"]}`), http.StatusCreated)
	wantStatus(t, env.post("/v1/payout-runs/R-ADM/calculate", env.admin, ""), http.StatusAccepted)
	env.srv.calcs.wg.Wait()
	if r := env.run("R-ADM"); r.Status != "calculated" || r.Payments != 3 {
		t.Fatalf("R-ADM = %+v", r)
	}
	wantStatus(t, env.post("/v1/payout-runs", env.thu, `{"run_id": "R-OPEN", "periods": ["2024-03"], "programs": ["SOCIAL_MONTHLY"]}`), http.StatusCreated)
	wantStatus(t, env.post("/v1/corrections", env.admin, `{"correction_id": "C-ADM", "kind": "top_up", "citizen_id": "`+hdChi+
		`", "program": "SOCIAL_MONTHLY", "period": "2024-01", "amount": {"amount": "10000", "currency": "VND"}, "reason": "rounding", "document_ref": "QD-1"}`), http.StatusCreated)
	payAn := env.paymentTo("R-REL", hdAn)
	csvHeader := strings.Join(disbursement.SettlementHeader, ",") + "\n"

	tests := []struct {
		name, method, path, token, body string
		headers                         []string
		status                          int
		code, field                     string
	}{
		// Roles and four eyes.
		{"registrar opens a run", "POST", "/v1/payout-runs", "registrar", `{"run_id": "X", "periods": ["2024-01"], "programs": ["SOCIAL_MONTHLY"]}`, nil, 403, "forbidden", ""},
		{"auditor approves", "POST", "/v1/payout-runs/R-ADM/approve", "auditor", "", nil, 403, "forbidden", ""},
		{"approver releases", "POST", "/v1/payout-runs/R-REL/release", "minh", "", nil, 403, "forbidden", ""},
		{"admin approves the run it calculated", "POST", "/v1/payout-runs/R-ADM/approve", "admin", "", nil, 403, "self_approval", ""},
		{"admin approves its own correction", "POST", "/v1/corrections/C-ADM/approve", "admin", "", nil, 403, "self_approval", ""},
		{"admin rejects its own correction", "POST", "/v1/corrections/C-ADM/reject", "admin", `{"reason": "no"}`, nil, 403, "self_approval", ""},
		{"finance officer approves a correction", "POST", "/v1/corrections/C-ADM/approve", "thu", "", nil, 403, "forbidden", ""},
		{"registrar reads a run", "GET", "/v1/payout-runs/R-REL", "registrar", "", nil, 403, "forbidden", ""},
		// Wrong state.
		{"approve an opened run", "POST", "/v1/payout-runs/R-OPEN/approve", "minh", "", nil, 409, "not_calculated", "run_id"},
		{"release an unapproved run", "POST", "/v1/payout-runs/R-ADM/release", "thu", "", nil, 409, "not_approved", "run_id"},
		{"cancel a released run", "POST", "/v1/payout-runs/R-REL/cancel", "thu", `{"reason": "wrong month"}`, nil, 409, "already_released", "run_id"},
		{"close with answers missing", "POST", "/v1/payout-runs/R-REL/close", "thu", "", nil, 409, "payments_pending", "run_id"},
		{"open the same ID with another scope", "POST", "/v1/payout-runs", "thu", `{"run_id": "R-OPEN", "periods": ["2024-04"], "programs": ["SOCIAL_MONTHLY"]}`, nil, 409, "run_exists", "run_id"},
		{"bank file before release", "GET", "/v1/payout-runs/R-ADM/bank-file", "thu", "", nil, 409, "not_released", "run_id"},
		{"cash list before release", "GET", "/v1/payout-runs/R-OPEN/cash-list?ward=" + hdWard, "thu", "", nil, 409, "not_released", "run_id"},
		{"returned before settled", "POST", "/v1/payments/" + payAn.PaymentID + "/settlement", "thu",
			`{"outcome": "returned", "reference": "RT1", "reason": "account_closed", "occurred_at": "` + bankTime + `"}`, nil, 409, "not_settled", "outcome"},
		// Stale If-Match.
		{"stale If-Match on approve", "POST", "/v1/payout-runs/R-ADM/approve", "minh", "", []string{"If-Match", `"0"`}, 412, "precondition_failed", ""},
		{"stale If-Match on calculate", "POST", "/v1/payout-runs/R-OPEN/calculate", "thu", "", []string{"If-Match", `"5"`}, 412, "precondition_failed", ""},
		{"stale If-Match on a correction", "POST", "/v1/corrections/C-ADM/approve", "minh", "", []string{"If-Match", `"3"`}, 412, "precondition_failed", ""},
		// Bad input the domain refuses.
		{"arrears after the run", "POST", "/v1/payout-runs", "thu", `{"run_id": "X", "periods": ["2024-01"], "programs": ["SOCIAL_MONTHLY"], "arrears_from": "2024-02"}`, nil, 422, "invalid_arrears", "arrears_from"},
		{"page size too large", "POST", "/v1/payout-runs/R-OPEN/calculate", "thu", `{"page_size": 1001}`, nil, 422, "invalid_page_size", "page_size"},
		{"settled without reference", "POST", "/v1/payments/" + payAn.PaymentID + "/settlement", "thu", `{"outcome": "settled", "occurred_at": "` + bankTime + `"}`, nil, 422, "required", "reference"},
		{"settled with another amount", "POST", "/v1/payments/" + payAn.PaymentID + "/settlement", "thu",
			`{"outcome": "settled", "reference": "FT1", "occurred_at": "` + bankTime + `", "amount": {"amount": "1", "currency": "VND"}}`, nil, 422, "amount_mismatch", "amount"},
		{"unknown payment", "POST", "/v1/payments/R-REL-" + hdAn + "-b000000/settlement", "thu", `{"outcome": "settled", "reference": "FT1", "occurred_at": "` + bankTime + `"}`, nil, 404, "unknown_payment", "payment_id"},
		{"correction without document", "POST", "/v1/corrections", "thu", `{"correction_id": "C-2", "kind": "top_up", "citizen_id": "` + hdChi +
			`", "program": "SOCIAL_MONTHLY", "period": "2024-01", "amount": {"amount": "10000", "currency": "VND"}, "reason": "x"}`, nil, 422, "required", "document_ref"},
		{"correction of unknown kind", "POST", "/v1/corrections", "thu", `{"correction_id": "C-2", "kind": "gift", "citizen_id": "` + hdChi +
			`", "program": "SOCIAL_MONTHLY", "period": "2024-01", "reason": "x", "document_ref": "D"}`, nil, 422, "invalid_kind", "kind"},
		{"reversal of an unpaid month", "POST", "/v1/corrections", "thu", `{"correction_id": "C-2", "kind": "reversal", "citizen_id": "` + hdChi +
			`", "program": "SOCIAL_MONTHLY", "period": "2023-01", "mode": "offset", "reason": "x", "document_ref": "D"}`, nil, 404, "payment_not_found", "period"},
		{"cancel without reason", "POST", "/v1/payout-runs/R-OPEN/cancel", "thu", `{}`, nil, 422, "required", "reason"},
		{"unknown run", "GET", "/v1/payout-runs/NO-SUCH-RUN", "auditor", "", nil, 404, "run_not_found", "run_id"},
		{"unknown correction", "POST", "/v1/corrections/NO-SUCH/approve", "minh", "", nil, 404, "correction_not_found", "correction_id"},
		{"statement for a run not released", "CSV", "/v1/reconciliations?id=S1&run=R-ADM", "thu",
			strings.Join(disbursement.StatementHeader, ",") + "\n" + payAn.PaymentID + ",1140000,2024-01-18,TX1\n", nil, 409, "not_released", "run_id"},
		// Malformed requests.
		{"unknown field", "POST", "/v1/payout-runs", "thu", `{"run_id": "X", "periodz": ["2024-01"], "programs": ["SOCIAL_MONTHLY"]}`, nil, 400, "invalid_json", "periodz"},
		{"malformed period", "POST", "/v1/payout-runs", "thu", `{"run_id": "X", "periods": ["2024-13"], "programs": ["SOCIAL_MONTHLY"]}`, nil, 400, "invalid_json", "periods[0]"},
		{"unknown field in an optional body", "POST", "/v1/payout-runs/R-ADM/approve", "minh", `{"reson": "typo"}`, nil, 400, "invalid_json", "reson"},
		{"malformed time", "POST", "/v1/payments/" + payAn.PaymentID + "/settlement", "thu", `{"outcome": "settled", "reference": "FT1", "occurred_at": "2024-01-18 10:00"}`, nil, 400, "invalid_json", "occurred_at"},
		{"If-Match on a settlement", "POST", "/v1/payments/" + payAn.PaymentID + "/settlement", "thu",
			`{"outcome": "settled", "reference": "FT1", "occurred_at": "` + bankTime + `"}`, []string{"If-Match", `"1"`}, 400, "precondition_invalid", "If-Match"},
		{"statement without runs", "POST", "/v1/reconciliations?id=S1", "thu", "", nil, 400, "bad_request", "run"},
		{"cash list without ward", "GET", "/v1/payout-runs/R-REL/cash-list", "thu", "", nil, 400, "bad_request", "ward"},
		{"bank results as JSON", "POST", "/v1/bank-results", "thu", `{"lines": []}`, nil, 415, "unsupported_media_type", ""},
		{"bank results of another layout", "CSV", "/v1/bank-results", "thu", "id,status\n1,ok\n", nil, 422, "invalid_file", "file"},
		{"statement with a bad line", "CSV", "/v1/reconciliations?id=S1&run=R-REL", "thu",
			strings.Join(disbursement.StatementHeader, ",") + "\n" + payAn.PaymentID + ",-5,2024-01-18,TX1\n", nil, 422, "invalid_statement", "amount"},
		{"settlement file line refused whole", "CSV", "/v1/bank-results", "thu", csvHeader + payAn.PaymentID + ",settled,FT1\n", nil, 422, "invalid_file", "file"},
	}
	tokens := map[string]string{"registrar": env.registrar, "auditor": env.auditor, "admin": env.admin, "thu": env.thu, "minh": env.minh}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.head()
			var w *httptest.ResponseRecorder
			switch tt.method {
			case "GET":
				w = env.do(env.req(http.MethodGet, tt.path, tokens[tt.token], "", tt.headers...))
			case "CSV":
				w = env.postCSV(tt.path, tokens[tt.token], tt.body, tt.headers...)
			default:
				w = env.post(tt.path, tokens[tt.token], tt.body, tt.headers...)
			}
			p := wantProblem(t, w, tt.status, tt.code)
			if tt.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tt.field) {
				t.Errorf("errors %+v, want one for %q", p.Errors, tt.field)
			}
			if after := env.head(); after != before {
				t.Errorf("the rejected request moved the log head from %s to %s", before, after)
			}
		})
	}

	// An upload over the route's 64 MiB is refused from its declared length,
	// before a byte is read.
	before := env.head()
	r := env.req(http.MethodPost, "/v1/bank-results", env.thu, "x", "Content-Type", "text/csv", HeaderIdempotencyKey, "too-big")
	r.ContentLength = uploadMaxBytes + 1
	wantProblem(t, env.do(r), http.StatusRequestEntityTooLarge, "body_too_large")
	// A JSON command keeps the default 1 MiB.
	big := `{"reason": "` + strings.Repeat("x", 1<<20) + `"}`
	wantProblem(t, env.post("/v1/payout-runs/R-ADM/approve", env.minh, big), http.StatusRequestEntityTooLarge, "body_too_large")
	if after := env.head(); after != before {
		t.Errorf("oversize requests moved the log head from %s to %s", before, after)
	}
	// The runs are as they were.
	if r := env.run("R-ADM"); r.Status != "calculated" || r.ApprovedBy != "" {
		t.Errorf("R-ADM after the refusals = %+v", r)
	}
	if p := env.paymentTo("R-REL", hdAn); p.Status != "released" {
		t.Errorf("An's payment after the refusals = %+v", p)
	}
}
