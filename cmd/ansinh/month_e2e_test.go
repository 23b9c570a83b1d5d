package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
)

// The people of the month, as in api/payouts_test.go: three women of Hà
// Đông (district 268, ward 09556) born in 1945 on the monthly allowance
// (1.5 x 360,000 = 540,000 from July 2023). An is paid by Vietcombank and
// also gets the 600,000 Tet gift; Bình's BIDV account turns out closed;
// Chi is paid in cash to her daughter Dung, her proxy.
var (
	monthAn   = registry.MakeCitizenID("001", registry.Female, 1945, 101)
	monthBinh = registry.MakeCitizenID("001", registry.Female, 1945, 102)
	monthChi  = registry.MakeCitizenID("001", registry.Female, 1945, 103)
	monthDung = registry.MakeCitizenID("001", registry.Female, 1975, 42)
)

const (
	monthRun      = "HD-2024-01"
	monthWard     = "09556"
	monthBankTime = "2024-01-18T10:00:00+07:00"
)

// answer is one HTTP response of the running server.
type answer struct {
	code int
	h    http.Header
	body []byte
}

// monthClient drives a running server over HTTP and remembers the
// position of the last write, so that every query can ask for it
// (read your writes).
type monthClient struct {
	t    *testing.T
	srv  *server
	keys int
	last eventstore.Position
}

func (c *monthClient) send(method, path, token, ctype, body, key string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://"+c.srv.addr+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return answer{code: resp.StatusCode, h: resp.Header, body: b}
}

// postAs sends a POST with a fresh Idempotency-Key, wants the status,
// decodes a success into out and records the position it reports.
func (c *monthClient) postAs(path, token, ctype, body string, want int, out any) answer {
	c.t.Helper()
	c.keys++
	a := c.send(http.MethodPost, path, token, ctype, body, fmt.Sprintf("month-e2e-%d", c.keys))
	c.check(http.MethodPost, path, a, want, out)
	if p := a.h.Get("X-Ansinh-Position"); p != "" && a.code < 300 {
		pos, err := eventstore.ParsePosition(p)
		if err != nil {
			c.t.Fatalf("POST %s: X-Ansinh-Position %q: %v", path, p, err)
		}
		if pos.Compare(c.last) > 0 {
			c.last = pos
		}
	}
	return a
}

func (c *monthClient) post(path, token, body string, want int, out any) answer {
	c.t.Helper()
	ctype := ""
	if body != "" {
		ctype = "application/json"
	}
	return c.postAs(path, token, ctype, body, want, out)
}

// get reads path once the read models hold the last write.
func (c *monthClient) get(path, token string, want int, out any) answer {
	c.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	full := path + sep + "min_position=" + url.QueryEscape(c.last.String())
	a := c.send(http.MethodGet, full, token, "", "", "")
	c.check(http.MethodGet, full, a, want, out)
	return a
}

func (c *monthClient) check(method, path string, a answer, want int, out any) {
	c.t.Helper()
	if a.code != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, a.code, want, a.body)
	}
	if out != nil && a.code < 300 {
		// Unmarshal merges into the maps of a reused value: start afresh so
		// that an answer is judged on its own keys only.
		reflect.ValueOf(out).Elem().SetZero()
		if err := json.Unmarshal(a.body, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, a.body)
		}
	}
}

// problem wants an RFC 9457 problem with the status and code.
func (c *monthClient) problem(what string, a answer, status int, code string) {
	c.t.Helper()
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
		Type   string `json:"type"`
	}
	if a.code != status || !strings.HasPrefix(a.h.Get("Content-Type"), "application/problem+json") {
		c.t.Fatalf("%s: status %d (%s), want %d problem+json; body %s", what, a.code, a.h.Get("Content-Type"), status, a.body)
	}
	if err := json.Unmarshal(a.body, &p); err != nil || p.Status != status || p.Code != code || p.Type != "https://ansinh.dev/problems/"+code {
		c.t.Fatalf("%s: problem %+v (%v), want %d %s", what, p, err, status, code)
	}
}

type monthMoney struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

type monthRunJSON struct {
	RunID         string     `json:"run_id"`
	Status        string     `json:"status"`
	OpenedBy      string     `json:"opened_by"`
	CalculatedBy  string     `json:"calculated_by"`
	ApprovedBy    string     `json:"approved_by"`
	ReleasedBy    string     `json:"released_by"`
	Beneficiaries int        `json:"beneficiaries"`
	Payments      int        `json:"payments"`
	Lines         int        `json:"lines"`
	Net           monthMoney `json:"net"`
	CashWards     []string   `json:"cash_wards"`
	Revision      int64      `json:"revision"`
	Calculation   *struct {
		State string `json:"state"`
	} `json:"calculation"`
}

type monthPayment struct {
	PaymentID string `json:"payment_id"`
	Status    string `json:"status"`
	Payee     struct {
		CitizenID string `json:"citizen_id"`
		Name      string `json:"name"`
		Proxy     bool   `json:"proxy"`
		Method    string `json:"method"`
		BankCode  string `json:"bank_code"`
	} `json:"payee"`
	Net   monthMoney `json:"net"`
	Lines []struct {
		CitizenID string `json:"citizen_id"`
		Program   string `json:"program"`
		Failure   string `json:"failure"`
	} `json:"lines"`
}

type monthBucket struct {
	Net     monthMoney `json:"net"`
	Periods []string   `json:"periods"`
}

func (b monthBucket) String() string { return b.Net.Amount + " " + strings.Join(b.Periods, ",") }

type monthBalance struct {
	Through     string                `json:"through"`
	AsOf        *string               `json:"as_of"`
	Accrued     monthBucket           `json:"accrued"`
	Paid        monthBucket           `json:"paid"`
	InTransit   monthBucket           `json:"in_transit"`
	Outstanding monthBucket           `json:"outstanding"`
	Overpaid    monthMoney            `json:"overpaid"`
	Accounts    map[string]monthMoney `json:"accounts"`
	Position    eventstore.Position   `json:"position"`
}

type monthTrial struct {
	Accounts []struct {
		Account string     `json:"account"`
		Balance monthMoney `json:"balance"`
	} `json:"accounts"`
	Debits   monthMoney          `json:"debits"`
	Credits  monthMoney          `json:"credits"`
	Total    monthMoney          `json:"total"`
	Balanced bool                `json:"balanced"`
	AsOf     *string             `json:"as_of"`
	Position eventstore.Position `json:"position"`
}

// books is the trial balance's non-zero accounts; it wants the books to
// net to zero.
func (c *monthClient) books(query, token string) map[string]string {
	c.t.Helper()
	var tb monthTrial
	c.get("/v1/trial-balance"+query, token, http.StatusOK, &tb)
	if !tb.Balanced || tb.Total.Amount != "0" || tb.Debits.Amount != tb.Credits.Amount {
		c.t.Fatalf("trial balance%s does not net to zero: %+v", query, tb)
	}
	out := map[string]string{}
	for _, a := range tb.Accounts {
		if a.Balance.Amount != "0" {
			out[a.Account] = a.Balance.Amount
		}
	}
	return out
}

func wantBooks(t *testing.T, when string, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("books %s:\n got %v\nwant %v", when, got, want)
	}
}

// A whole month through the real binary, over HTTP only: users, registry,
// a payout run with four eyes, the bank file and cash list, the bank's
// answers with one failure, a correction decided by a second person,
// balances now and as of the release, the district report as CSV, and a
// verification of the log. Every figure is computed by hand in the
// comments.
func TestServeMonthEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	t.Setenv("ANSINH_SEAL_EVERY", "25")    // a few seals for the verification to check
	t.Setenv("ANSINH_RATE_LIMIT", "10000") // the test is one client making many quick calls
	srv := startServer(t, bin, t.TempDir())
	if srv.adminToken == "" {
		t.Fatal("no admin token on first start")
	}
	c := &monthClient{t: t, srv: srv}
	admin := srv.adminToken

	// The admin creates the staff. Sent twice with one key, the creation
	// is answered again byte for byte (the token included), not repeated.
	type created struct {
		User struct {
			Name string `json:"name"`
			Role string `json:"role"`
		} `json:"user"`
		Token string `json:"token"`
	}
	user := func(name, role string) string {
		t.Helper()
		var u created
		c.post("/v1/users", admin, fmt.Sprintf(`{"name": %q, "role": %q}`, name, role), http.StatusCreated, &u)
		if u.User.Name != name || u.User.Role != role || !strings.HasPrefix(u.Token, "ans_") {
			t.Fatalf("created %+v", u)
		}
		return u.Token
	}
	lan := user("lan", "registrar")
	thu := user("thu", "finance_officer")
	minh := user("minh", "approver")
	body := `{"name": "hoa", "role": "auditor"}`
	first := c.send(http.MethodPost, "/v1/users", admin, "application/json", body, "create-hoa")
	again := c.send(http.MethodPost, "/v1/users", admin, "application/json", body, "create-hoa")
	if first.code != http.StatusCreated || first.h.Get("Idempotent-Replayed") != "" {
		t.Fatalf("create hoa: %d replayed %q %s", first.code, first.h.Get("Idempotent-Replayed"), first.body)
	}
	if again.code != first.code || !bytes.Equal(again.body, first.body) || again.h.Get("Idempotent-Replayed") != "true" ||
		again.h.Get("X-Ansinh-Position") != first.h.Get("X-Ansinh-Position") || again.h.Get("Location") != first.h.Get("Location") {
		t.Fatalf("the retry is not the first answer replayed: %d %v %s\nfirst: %d %v %s", again.code, again.h, again.body, first.code, first.h, first.body)
	}
	var hoaCreated created
	c.check(http.MethodPost, "/v1/users", first, http.StatusCreated, &hoaCreated)
	hoa := hoaCreated.Token
	var users struct {
		Items []struct{ Name string } `json:"items"`
	}
	c.get("/v1/users", admin, http.StatusOK, &users)
	if len(users.Items) != 5 { // admin, lan, thu, minh, hoa: the replay created nobody
		t.Fatalf("users %+v", users.Items)
	}

	// Lan registers the three women, their allowances, An's and Bình's
	// accounts, and Dung as Chi's proxy.
	register := func(cid, name string) {
		t.Helper()
		c.post("/v1/beneficiaries", lan, fmt.Sprintf(`{"citizen_id": %q, "full_name": %q, "date_of_birth": "1945-03-02", "sex": "female",
			"address": {"street": "12 ngõ 5 Hà Cầu", "district_code": "268", "ward_code": %q}, "category": "social_protection"}`, cid, name, monthWard),
			http.StatusCreated, nil)
		c.post("/v1/beneficiaries/"+cid+"/entitlements", lan, `{"program": "SOCIAL_MONTHLY", "start_period": "2023-07", "coefficient": "1.5"}`, http.StatusCreated, nil)
	}
	bank := func(cid, code, account, holder string) {
		t.Helper()
		c.post("/v1/beneficiaries/"+cid+"/bank-account", lan, fmt.Sprintf(`{"bank_code": %q, "account_number": %q, "holder_name": %q}`, code, account, holder), http.StatusOK, nil)
		c.post("/v1/beneficiaries/"+cid+"/payment-method", lan, `{"method": "bank_transfer"}`, http.StatusOK, nil)
	}
	register(monthAn, "Nguyễn Thị An")
	c.post("/v1/beneficiaries/"+monthAn+"/entitlements", lan, `{"program": "PRESIDENT_TET_GIFT", "start_period": "2024-01", "amount": {"amount": "600000", "currency": "VND"}}`, http.StatusCreated, nil)
	bank(monthAn, "VCB", "0011001234567", "NGUYEN THI AN")
	register(monthBinh, "Trần Thị Bình")
	bank(monthBinh, "BIDV", "12010000456789", "TRAN THI BINH")
	register(monthChi, "Lê Thị Chi")
	c.post("/v1/beneficiaries/"+monthChi+"/proxies", lan, fmt.Sprintf(`{"full_name": "Lê Thị Dung", "citizen_id": %q, "relationship": "con gái",
		"reason": "illness_or_immobility", "valid_from": "2024-01-01", "valid_to": "2033-12-31", "document_ref": "UQ-12/2024"}`, monthDung), http.StatusCreated, nil)
	var found struct {
		Items []struct {
			CitizenID string `json:"citizen_id"`
		} `json:"items"`
	}
	c.get("/v1/beneficiaries?q=thi&district=268", lan, http.StatusOK, &found)
	if len(found.Items) != 3 {
		t.Fatalf("search after registration: %+v", found)
	}

	// Thu opens January (allowance and gift) and calculates it in the
	// background: An 540,000 + 600,000 = 1,140,000; Bình 540,000; Chi
	// 540,000 in cash to Dung: 3 payments, 4 lines, 2,220,000 VND.
	var written struct {
		Run monthRunJSON `json:"run"`
	}
	c.post("/v1/payout-runs", thu, `{"run_id": "`+monthRun+`", "periods": ["2024-01"], "programs": ["SOCIAL_MONTHLY", "PRESIDENT_TET_GIFT"], "districts": ["268"]}`,
		http.StatusCreated, &written)
	if written.Run.Status != "opened" || written.Run.OpenedBy != "thu" {
		t.Fatalf("opened %+v", written.Run)
	}
	c.post("/v1/payout-runs/"+monthRun+"/calculate", thu, "", http.StatusAccepted, nil)
	var run monthRunJSON
	eventually(t, "the calculation finishes", func() bool {
		c.get("/v1/payout-runs/"+monthRun, hoa, http.StatusOK, &run)
		return run.Calculation == nil || run.Calculation.State != "running"
	})
	if run.Status != "calculated" || run.CalculatedBy != "thu" || run.Beneficiaries != 3 || run.Payments != 3 || run.Lines != 4 ||
		run.Net.Amount != "2220000" || len(run.CashWards) != 1 || run.CashWards[0] != monthWard {
		t.Fatalf("calculated %+v", run)
	}
	wantBooks(t, "once calculated", c.books("", hoa), map[string]string{"program_expense": "2220000", "beneficiary_payable": "-2220000"})

	// Four eyes: a finance officer approves nothing; Minh approves, with
	// the run's ETag; Thu releases, and her retry is a replay.
	c.problem("thu approves", c.post("/v1/payout-runs/"+monthRun+"/approve", thu, "", http.StatusForbidden, nil), http.StatusForbidden, "forbidden")
	c.keys++
	req, err := http.NewRequest(http.MethodPost, "http://"+srv.addr+"/v1/payout-runs/"+monthRun+"/approve", strings.NewReader(`{"reason": "checked against the list"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+minh)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("month-e2e-%d", c.keys))
	req.Header.Set("If-Match", fmt.Sprintf(`"%d"`, run.Revision))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	approveBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(approveBody), `"approved_by":"minh"`) {
		t.Fatalf("approve with If-Match %q: %d %s", req.Header.Get("If-Match"), resp.StatusCode, approveBody)
	}
	release := c.send(http.MethodPost, "/v1/payout-runs/"+monthRun+"/release", thu, "", "", "release-"+monthRun)
	c.check(http.MethodPost, "release", release, http.StatusOK, &written)
	if written.Run.Status != "released" || written.Run.ReleasedBy != "thu" || written.Run.ApprovedBy != "minh" {
		t.Fatalf("released %+v", written.Run)
	}
	resent := c.send(http.MethodPost, "/v1/payout-runs/"+monthRun+"/release", thu, "", "", "release-"+monthRun)
	if resent.code != http.StatusOK || resent.h.Get("Idempotent-Replayed") != "true" || !bytes.Equal(resent.body, release.body) {
		t.Fatalf("resent release: %d replayed %q", resent.code, resent.h.Get("Idempotent-Replayed"))
	}
	released, err := eventstore.ParsePosition(release.h.Get("X-Ansinh-Position"))
	if err != nil {
		t.Fatalf("release position %q: %v", release.h.Get("X-Ansinh-Position"), err)
	}
	c.last = released
	wantBooks(t, "once released", c.books("", thu), map[string]string{"program_expense": "2220000", "payments_in_transit": "-2220000"})

	// The payments, found by the beneficiary of their lines.
	var payments struct {
		Items []monthPayment `json:"items"`
	}
	c.get("/v1/payout-runs/"+monthRun+"/payments?limit=10", hoa, http.StatusOK, &payments)
	pay := map[string]monthPayment{}
	for _, p := range payments.Items {
		pay[p.Lines[0].CitizenID] = p
	}
	payAn, payBinh, payChi := pay[monthAn], pay[monthBinh], pay[monthChi]
	if len(payments.Items) != 3 || payAn.Net.Amount != "1140000" || len(payAn.Lines) != 2 || payAn.Payee.BankCode != "VCB" ||
		payBinh.Net.Amount != "540000" || payBinh.Payee.BankCode != "BIDV" ||
		payChi.Net.Amount != "540000" || payChi.Payee.Method != "cash" || !payChi.Payee.Proxy || payChi.Payee.CitizenID != monthDung {
		t.Fatalf("payments %+v", payments.Items)
	}

	// The bank file: An's and Bình's transfers in the holders' names,
	// nothing for Chi. The cash list of the ward: Dung receives Chi's.
	fileAnswer := c.get("/v1/payout-runs/"+monthRun+"/bank-file", thu, http.StatusOK, nil)
	rows := readCSV(t, fileAnswer.body)
	if fileAnswer.h.Get("Content-Type") != "text/csv; charset=utf-8" || len(rows) != 3 ||
		strings.Join(rows[0], ",") != "payment_id,payee_name,payee_citizen_id,bank_code,account_number,amount,currency,reference,description" {
		t.Fatalf("bank file:\n%s", fileAnswer.body)
	}
	file := string(fileAnswer.body)
	if !strings.Contains(file, payAn.PaymentID+",NGUYEN THI AN,"+monthAn+",VCB,0011001234567,1140000,VND,"+payAn.PaymentID+",") ||
		!strings.Contains(file, payBinh.PaymentID+",TRAN THI BINH,"+monthBinh+",BIDV,12010000456789,540000,VND,"+payBinh.PaymentID+",") {
		t.Fatalf("bank file:\n%s", file)
	}
	cash := string(c.get("/v1/payout-runs/"+monthRun+"/cash-list?ward="+monthWard, thu, http.StatusOK, nil).body)
	if strings.Count(cash, "\n") != 2 || !strings.Contains(cash, payChi.PaymentID+",Lê Thị Dung,"+monthDung+",yes,"+monthChi+",268,"+monthWard+",540000,VND,") {
		t.Fatalf("cash list:\n%s", cash)
	}

	// The bank answers: An settled, Bình's account closed. The ward
	// cashier posts Dung's receipt for Chi.
	var report struct {
		Lines     int               `json:"lines"`
		Applied   int               `json:"applied"`
		Unchanged int               `json:"unchanged"`
		Rejected  []json.RawMessage `json:"rejected"`
	}
	answers := "payment_id,outcome,reference,occurred_at,amount,reason,detail\n" +
		payAn.PaymentID + ",settled,FT24011801," + monthBankTime + ",1140000,,\n" +
		payBinh.PaymentID + ",failed,," + monthBankTime + ",,account_closed,tai khoan da dong\n"
	c.postAs("/v1/bank-results", thu, "text/csv", answers, http.StatusOK, &report)
	if report.Lines != 2 || report.Applied != 2 || report.Unchanged != 0 || len(report.Rejected) != 0 {
		t.Fatalf("bank results %+v", report)
	}
	c.post("/v1/payments/"+payChi.PaymentID+"/settlement", thu, `{"outcome": "settled", "reference": "PT-0001", "occurred_at": "`+monthBankTime+`"}`, http.StatusOK, nil)
	c.get("/v1/payout-runs/"+monthRun+"/payments?limit=10", hoa, http.StatusOK, &payments)
	for _, p := range payments.Items {
		want := map[string]string{monthAn: "settled", monthBinh: "failed", monthChi: "settled"}[p.Lines[0].CitizenID]
		if p.Status != want {
			t.Errorf("payment %s is %s, want %s", p.PaymentID, p.Status, want)
		}
	}
	// An's 1,140,000 by bank and Chi's 540,000 in cash went out; Bình's
	// 540,000 failed and took its expense back: 1,680,000.
	wantBooks(t, "once answered", c.books("", hoa), map[string]string{"program_expense": "1680000", "bank_disbursed": "-1140000", "cash_disbursed": "-540000"})

	// An's January was 180,000 too much: Thu requests a recovery by
	// offset, Minh approves it. The admin's own request cannot be approved
	// by the admin (four eyes); Minh rejects it.
	type correction struct {
		Correction struct {
			Status      string `json:"status"`
			RequestedBy string `json:"requested_by"`
			ApprovedBy  string `json:"approved_by"`
			RejectedBy  string `json:"rejected_by"`
		} `json:"correction"`
	}
	var corr correction
	c.post("/v1/corrections", thu, `{"correction_id": "CORR-2024-001", "kind": "recovery", "citizen_id": "`+monthAn+
		`", "program": "SOCIAL_MONTHLY", "period": "2024-01", "amount": {"amount": "180000", "currency": "VND"}, "mode": "offset",
		"reason": "coefficient 1.0 from January", "document_ref": "QD-45/2024"}`, http.StatusCreated, &corr)
	if corr.Correction.Status != "requested" || corr.Correction.RequestedBy != "thu" {
		t.Fatalf("requested %+v", corr.Correction)
	}
	wantBooks(t, "once requested", c.books("", hoa), map[string]string{"program_expense": "1680000", "bank_disbursed": "-1140000", "cash_disbursed": "-540000"})
	c.post("/v1/corrections/CORR-2024-001/approve", minh, `{"reason": "decision QD-45 seen"}`, http.StatusOK, &corr)
	if corr.Correction.Status != "approved" || corr.Correction.ApprovedBy != "minh" {
		t.Fatalf("approved %+v", corr.Correction)
	}
	c.post("/v1/corrections", admin, `{"correction_id": "C-ADM", "kind": "top_up", "citizen_id": "`+monthChi+
		`", "program": "SOCIAL_MONTHLY", "period": "2024-01", "amount": {"amount": "10000", "currency": "VND"}, "reason": "rounding", "document_ref": "QD-1"}`,
		http.StatusCreated, nil)
	self := c.post("/v1/corrections/C-ADM/approve", admin, "", http.StatusForbidden, nil)
	c.problem("the admin approves its own correction", self, http.StatusForbidden, "self_approval")
	c.post("/v1/corrections/C-ADM/reject", minh, `{"reason": "no rounding owed"}`, http.StatusOK, &corr)
	if corr.Correction.Status != "rejected" || corr.Correction.RejectedBy != "minh" {
		t.Fatalf("rejected %+v", corr.Correction)
	}

	// The books: 1,680,000 paid, less the 180,000 An owes back.
	wantBooks(t, "once corrected", c.books("", hoa), map[string]string{
		"program_expense": "1500000", "beneficiary_receivable": "180000", "bank_disbursed": "-1140000", "cash_disbursed": "-540000"})

	// Balances through January. An: 7 months of 540,000 and the gift
	// accrued (4,380,000); January paid (1,140,000); July to December
	// (3,240,000) never in a run. Bình: her failed January is owed again:
	// 7 x 540,000 = 3,780,000. An's share of the books: 1,140,000
	// expensed less the 180,000 recovery, which she owes back (overpaid);
	// Bình's failure took back all she was expensed.
	var b monthBalance
	c.get("/v1/beneficiaries/"+monthAn+"/balance?through=2024-01", lan, http.StatusOK, &b)
	const julToDec = "2023-07,2023-08,2023-09,2023-10,2023-11,2023-12"
	if b.Through != "2024-01" || b.AsOf != nil || b.Accrued.String() != "4380000 "+julToDec+",2024-01" || b.Paid.String() != "1140000 2024-01" ||
		b.InTransit.String() != "0 " || b.Outstanding.String() != "3240000 "+julToDec ||
		nonZero(b.Accounts) != "map[bank_disbursed:-1140000 beneficiary_receivable:180000 program_expense:960000]" || b.Overpaid.Amount != "180000" {
		t.Fatalf("An's balance: %+v", b)
	}
	c.get("/v1/beneficiaries/"+monthBinh+"/balance?through=2024-01", thu, http.StatusOK, &b)
	if b.Paid.String() != "0 " || b.Outstanding.String() != "3780000 "+julToDec+",2024-01" || nonZero(b.Accounts) != "map[]" {
		t.Fatalf("Bình's balance: %+v", b)
	}
	// As of the release, before the bank answered: An's January in
	// transit, nothing paid; the books as they were then.
	c.get("/v1/beneficiaries/"+monthAn+"/balance?through=2024-01&as_of="+url.QueryEscape(released.String()), hoa, http.StatusOK, &b)
	if b.AsOf == nil || *b.AsOf != released.String() || b.Position != released || b.InTransit.String() != "1140000 2024-01" || b.Paid.String() != "0 " {
		t.Fatalf("An's balance as of the release %s: %+v", released, b)
	}
	if got := nonZero(b.Accounts); got != "map[payments_in_transit:-1140000 program_expense:1140000]" {
		t.Fatalf("An's accounts as of the release: %s", got)
	}
	wantBooks(t, "as of the release", c.books("?as_of="+url.QueryEscape(released.String()), thu),
		map[string]string{"program_expense": "2220000", "payments_in_transit": "-2220000"})

	// The district report of January as CSV: 3 active, 2 with an account
	// (66.67%); 4 lines due (2,220,000), 3 paid (1,680,000), Bình's failed
	// (540,000): 75% complete. One row for district 268, one for the city.
	rep := c.get("/v1/reports/districts?period=2024-01&format=csv", hoa, http.StatusOK, nil)
	if rep.h.Get("Content-Type") != "text/csv; charset=utf-8" || rep.h.Get("X-Ansinh-Position") == "" {
		t.Errorf("report headers %v", rep.h)
	}
	rows = readCSV(t, rep.body)
	if len(rows) != 3 {
		t.Fatalf("district report:\n%s", rep.body)
	}
	want := map[string]string{
		"period": "2024-01", "active": "3", "active_social_protection": "3", "with_bank_account": "2", "bank_account_share": "66.67",
		"due_lines": "4", "due_net": "2220000", "paid_lines": "3", "paid_net": "1680000", "failed_lines": "1", "failed_net": "540000",
		"in_transit_lines": "0", "reversed_lines": "0", "completion": "75.00",
	}
	for i, row := range rows[1:] {
		if len(row) != len(rows[0]) {
			t.Fatalf("row %d: %d cells, header %d", i+1, len(row), len(rows[0]))
		}
		want["district"] = []string{"268", "all"}[i]
		for j, col := range rows[0] {
			if v, ok := want[col]; ok && row[j] != v {
				t.Errorf("report row %d %s = %q, want %q", i+1, col, row[j], v)
			}
		}
	}

	// The auditor verifies the whole log in the background.
	var v struct {
		ID     string `json:"verification_id"`
		State  string `json:"state"`
		Report *struct {
			OK            bool       `json:"ok"`
			Events        uint64     `json:"events"`
			Seals         int        `json:"seals"`
			FirstProblem  any        `json:"first_problem"`
			TrialBalanced bool       `json:"trial_balance_nets_to_zero"`
			TrialTotal    monthMoney `json:"trial_balance_total"`
			Projections   []struct {
				Name    string `json:"name"`
				Matches bool   `json:"matches"`
			} `json:"projections"`
		} `json:"report"`
	}
	started := c.post("/v1/verifications", hoa, "", http.StatusAccepted, &v)
	if v.State != "running" || started.h.Get("Location") != "/v1/verifications/"+v.ID {
		t.Fatalf("verification started %+v, Location %q", v, started.h.Get("Location"))
	}
	eventually(t, "the verification finishes", func() bool {
		c.get("/v1/verifications/"+v.ID, hoa, http.StatusOK, &v)
		return v.State != "running"
	})
	if v.State != "succeeded" || v.Report == nil || !v.Report.OK || v.Report.FirstProblem != nil || !v.Report.TrialBalanced ||
		v.Report.TrialTotal.Amount != "0" || v.Report.Seals == 0 || v.Report.Events < released.Commit || len(v.Report.Projections) == 0 {
		t.Fatalf("verification %+v report %+v", v, v.Report)
	}
	for _, p := range v.Report.Projections {
		if !p.Matches {
			t.Errorf("read model %s differs from a replay of the log", p.Name)
		}
	}

	// The books still net to zero at the end (books() checks it).
	wantBooks(t, "at the end", c.books("", hoa), map[string]string{
		"program_expense": "1500000", "beneficiary_receivable": "180000", "bank_disbursed": "-1140000", "cash_disbursed": "-540000"})
	if exit, logs := srv.stop(t); exit != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", exit, logs)
	}
}

// nonZero prints a person's accounts that are not zero, sorted.
func nonZero(accounts map[string]monthMoney) string {
	out := map[string]string{}
	for a, m := range accounts {
		if m.Amount != "0" {
			out[a] = m.Amount
		}
	}
	return fmt.Sprint(out)
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV (%v):\n%s", err, b)
	}
	return rows
}
