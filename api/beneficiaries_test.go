package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
)

// registryAPI is a test server with a ledger on the fake clock (18 Jan 2024
// in Hanoi), the starter catalogue, and a registrar and an auditor besides
// the admin.
type registryAPI struct {
	*testAPI
	ledger    *ledger.Ledger
	registrar string
	auditor   string
	keys      atomic.Int64
}

// withLedger gives the server a ledger over the test store, on the test
// clock.
func withLedger(_ *Config, d *Deps) {
	cfg := ledger.DefaultConfig()
	cfg.Clock = d.Now
	d.Ledger = ledger.New(d.Store, cfg)
}

func newRegistryAPI(t *testing.T) *registryAPI {
	t.Helper()
	env := &registryAPI{testAPI: newTestAPI(t, withLedger)}
	env.ledger = env.srv.deps.Ledger
	if _, err := env.ledger.SeedCatalogue(t.Context()); err != nil {
		t.Fatal(err)
	}
	env.registrar = env.createUser("lan", "registrar").Token
	env.auditor = env.createUser("hoa", "auditor").Token
	return env
}

// post sends a command with a fresh Idempotency-Key (unless headers name
// one).
func (e *registryAPI) post(path, token, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	hs := append([]string{HeaderIdempotencyKey, fmt.Sprintf("key-%d", e.keys.Add(1))}, headers...)
	return e.do(e.req(http.MethodPost, path, token, body, hs...))
}

func (e *registryAPI) get(path, token string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(e.req(http.MethodGet, path, token, ""))
}

func (e *registryAPI) head() eventstore.Position {
	e.t.Helper()
	pos, err := e.store.Head(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return pos
}

// wantStatus fails the test unless w has the status.
func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, clipBody(w.Body.Bytes()))
	}
}

var (
	anID    = registry.MakeCitizenID("001", registry.Female, 1945, 12345)
	binhID  = registry.MakeCitizenID("001", registry.Male, 1950, 777)
	proxyID = registry.MakeCitizenID("001", registry.Female, 1975, 42)
)

// registerBody is a registration of a person born in 1945 living in Hà Cầu
// ward, Hà Đông; over may change fields ("key": json value).
func registerBody(citizenID, name string, over ...string) string {
	fields := map[string]string{
		"citizen_id":    fmt.Sprintf("%q", citizenID),
		"full_name":     fmt.Sprintf("%q", name),
		"date_of_birth": `"1945-03-02"`,
		"sex":           `"female"`,
		"address":       `{"street": "12 ngõ 5 Hà Cầu", "district_code": "268", "ward_code": "09556"}`,
		"category":      `"social_protection"`,
	}
	for i := 0; i+1 < len(over); i += 2 {
		fields[over[i]] = over[i+1]
	}
	var parts []string
	for k, v := range fields {
		parts = append(parts, fmt.Sprintf("%q: %s", k, v))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// register registers An and returns the answer.
func (e *registryAPI) register() beneficiaryWritten {
	e.t.Helper()
	w := e.post("/v1/beneficiaries", e.registrar, registerBody(anID, "Nguyễn Thị An"))
	wantStatus(e.t, w, http.StatusCreated)
	return decodeJSON[beneficiaryWritten](e.t, w)
}

// command posts to a beneficiary sub-resource and decodes the answer.
func (e *registryAPI) command(path, body string, status int, headers ...string) (beneficiaryWritten, *httptest.ResponseRecorder) {
	e.t.Helper()
	w := e.post(path, e.registrar, body, headers...)
	wantStatus(e.t, w, status)
	return decodeJSON[beneficiaryWritten](e.t, w), w
}

// checkWritten holds a command's answer to the read-your-writes and ETag
// conventions: the position header equals the body's, and the ETag is the
// revision the body shows.
func checkWritten(t *testing.T, w *httptest.ResponseRecorder, pos eventstore.Position, revision int64) {
	t.Helper()
	if got := w.Header().Get(HeaderPosition); got != pos.String() || pos.IsStart() {
		t.Errorf("X-Ansinh-Position %q, body position %s", got, pos)
	}
	if got := w.Header().Get("ETag"); got != ETag(uint64(revision)) {
		t.Errorf("ETag %q, body revision %d", got, revision)
	}
}

func TestBeneficiaryLifecycle(t *testing.T) {
	env := newRegistryAPI(t)
	base := "/v1/beneficiaries/" + anID

	// Register.
	w := env.post("/v1/beneficiaries", env.registrar, registerBody(anID, "Nguyễn  Thị An"))
	wantStatus(t, w, http.StatusCreated)
	reg := decodeJSON[beneficiaryWritten](t, w)
	b := reg.Beneficiary
	if b.CitizenID != anID || b.FullName != "Nguyễn Thị An" || b.Status != "active" || b.PaymentMethod != "cash" ||
		b.Address.DistrictName != "Quận Hà Đông" || b.Address.WardName == "" || b.Address.Catalogue != registry.AdminCatalogueVersion ||
		b.Revision != 0 || b.Exit != nil || b.BankAccount != nil || len(b.Proxies) != 0 {
		t.Fatalf("registered = %+v", b)
	}
	if len(reg.Events) != 1 || reg.Events[0].Type != "BeneficiaryRegistered.v2" || reg.Events[0].Revision != 0 {
		t.Fatalf("events = %+v", reg.Events)
	}
	if got := w.Header().Get("Location"); got != base {
		t.Errorf("Location %q, want %s", got, base)
	}
	checkWritten(t, w, reg.Position, b.Revision)

	// Any role reads it, with the same ETag.
	w = env.get(base, env.auditor)
	wantStatus(t, w, http.StatusOK)
	if got := decodeJSON[beneficiaryJSON](t, w); got.FullName != b.FullName || got.Revision != 0 || w.Header().Get("ETag") != `"0"` {
		t.Fatalf("get = %+v, ETag %s", got, w.Header().Get("ETag"))
	}

	// Correct the name, conditionally on the revision read.
	got, w := env.command(base+"/corrections", `{"full_name": "Nguyễn Thị Ân", "reason": "typo on the form"}`, http.StatusOK, "If-Match", `"0"`)
	if got.Beneficiary.FullName != "Nguyễn Thị Ân" || got.Beneficiary.Revision != 1 {
		t.Fatalf("corrected = %+v", got.Beneficiary)
	}
	checkWritten(t, w, got.Position, 1)

	// Bank account, paid by transfer, replaced, back to cash, unlinked.
	got, _ = env.command(base+"/bank-account", `{"bank_code": "VCB", "account_number": "0011002233445", "holder_name": "NGUYEN THI AN"}`, http.StatusOK)
	if a := got.Beneficiary.BankAccount; a == nil || a.BankCode != "VCB" || a.Holder != "beneficiary" || a.AccountNumber != "0011002233445" {
		t.Fatalf("linked = %+v", a)
	}
	got, _ = env.command(base+"/payment-method", `{"method": "bank_transfer"}`, http.StatusOK)
	if got.Beneficiary.PaymentMethod != "bank_transfer" {
		t.Fatalf("method = %s", got.Beneficiary.PaymentMethod)
	}
	// Choosing the method already chosen writes nothing and succeeds.
	before := env.head()
	got, w = env.command(base+"/payment-method", `{"method": "bank_transfer"}`, http.StatusOK)
	if len(got.Events) != 0 || env.head() != before {
		t.Fatalf("a no-op wrote %+v", got.Events)
	}
	checkWritten(t, w, got.Position, got.Beneficiary.Revision)
	got, _ = env.command(base+"/bank-account/replace",
		`{"bank_code": "BIDV", "account_number": "12345678", "holder_name": "Nguyen Thi An", "reason": "the old account was closed"}`, http.StatusOK)
	if a := got.Beneficiary.BankAccount; a == nil || a.BankCode != "BIDV" {
		t.Fatalf("replaced = %+v", a)
	}
	env.command(base+"/payment-method", `{"method": "cash"}`, http.StatusOK)
	got, _ = env.command(base+"/bank-account/unlink", `{"reason": "paid in cash from now on"}`, http.StatusOK)
	if got.Beneficiary.BankAccount != nil {
		t.Fatalf("unlinked still has %+v", got.Beneficiary.BankAccount)
	}

	// A proxy, authorized and revoked.
	got, w = env.command(base+"/proxies", fmt.Sprintf(`{"full_name": "Trần Thị Bích", "citizen_id": %q, "relationship": "con gái",
		"reason": "illness_or_immobility", "valid_from": "2024-01-18", "valid_to": "2025-01-17", "document_ref": "UQ-2024/17"}`, proxyID), http.StatusCreated)
	if ps := got.Beneficiary.Proxies; len(ps) != 1 || ps[0].ID != "P1" || !ps[0].ActiveToday || ps[0].RevokedFrom != nil || ps[0].CitizenID != proxyID {
		t.Fatalf("proxies = %+v", ps)
	}
	if w.Header().Get("Location") != base {
		t.Errorf("Location %q", w.Header().Get("Location"))
	}
	got, _ = env.command(base+"/proxies/P1/revoke", `{"from": "2024-01-18", "reason": "she recovered"}`, http.StatusOK)
	if p := got.Beneficiary.Proxies[0]; p.RevokedFrom == nil || *p.RevokedFrom != "2024-01-18" || p.ActiveToday || p.RevokeReason != "she recovered" {
		t.Fatalf("revoked = %+v", p)
	}

	// Death ends the entitlements running past its month, in one command.
	env.post(base+"/entitlements", env.registrar, `{"program": "SOCIAL_MONTHLY", "start_period": "2023-12", "coefficient": "1.5"}`)
	got, w = env.command(base+"/death", `{"date_of_death": "2024-01-10", "document_ref": "KT-2024/88"}`, http.StatusOK)
	if b := got.Beneficiary; b.Status != "deceased" || b.Exit == nil || b.Exit.LastPeriod != "2024-01" || b.Exit.Cause != "death" {
		t.Fatalf("after death = %+v", b)
	}
	if len(got.Events) != 2 || got.Events[0].Type != "BeneficiaryDied.v1" || got.Events[1].Type != "EntitlementEnded.v1" {
		t.Fatalf("death events = %+v", got.Events)
	}
	if e := got.Beneficiary.Entitlements[0]; e.EndPeriod == nil || *e.EndPeriod != "2024-01" || e.EndCause != "death" {
		t.Fatalf("entitlement after death = %+v", e)
	}
	checkWritten(t, w, got.Position, got.Beneficiary.Revision)
}

func TestMoveAway(t *testing.T) {
	env := newRegistryAPI(t)
	env.register()
	got, _ := env.command("/v1/beneficiaries/"+anID+"/move-away", `{"moved_on": "2024-01-05", "destination": "Bắc Ninh"}`, http.StatusOK)
	if b := got.Beneficiary; b.Status != "moved_away" || b.Exit == nil || b.Exit.Destination != "Bắc Ninh" || b.Exit.Date != "2024-01-05" {
		t.Fatalf("after the move = %+v", b)
	}
	// Moving again is a conflict.
	wantProblem(t, env.post("/v1/beneficiaries/"+anID+"/move-away", env.registrar, `{"moved_on": "2024-01-06", "destination": "Huế"}`),
		http.StatusConflict, "beneficiary_exited")
}

// Every rejected command is a problem of the right status and code, and
// leaves the event log exactly as it was.
func TestRegistryRejectionsChangeNothing(t *testing.T) {
	env := newRegistryAPI(t)
	env.register()
	base := "/v1/beneficiaries/" + anID
	env.command(base+"/corrections", `{"household_id": "HD-1", "reason": "missing"}`, http.StatusOK) // revision 1
	longName := strings.Repeat("A", 201)
	tests := []struct {
		name, path, token, body string
		headers                 []string
		status                  int
		code, field             string
	}{
		{"unknown field", "/v1/beneficiaries", "registrar", `{"citizen_id": "` + binhID + `", "fulname": "Binh"}`, nil, 400, "invalid_json", "fulname"},
		{"malformed date", "/v1/beneficiaries", "registrar", registerBody(binhID, "Lê Văn Bình", "date_of_birth", `"1950-02-30"`), nil, 400, "invalid_json", "date_of_birth"},
		{"malformed amount", base + "/entitlements", "registrar", `{"program": "PRESIDENT_TET_GIFT", "start_period": "2024-01", "amount": {"amount": "1.5", "currency": "VND"}}`, nil, 400, "invalid_json", "amount.amount"},
		{"not JSON", base + "/death", "registrar", `{"date_of_death": `, nil, 400, "invalid_json", ""},
		{"duplicate CCCD", "/v1/beneficiaries", "registrar", registerBody(anID, "Nguyễn Thị An"), nil, 409, "citizen_id_taken", "citizen_id"},
		{"unknown ward", "/v1/beneficiaries", "registrar", registerBody(binhID, "Lê Văn Bình", "sex", `"male"`, "date_of_birth", `"1950-01-01"`,
			"address", `{"district_code": "268", "ward_code": "00001"}`), nil, 422, "unknown_ward", "address.ward_code"},
		{"bad province in CCCD", "/v1/beneficiaries", "registrar", registerBody("999"+anID[3:], "Nguyễn Thị An"), nil, 422, "invalid_citizen_id", "citizen_id"},
		{"CCCD disagrees with sex", "/v1/beneficiaries", "registrar", registerBody(binhID, "Lê Văn Bình", "date_of_birth", `"1950-01-01"`), nil, 422, "citizen_id_mismatch", "citizen_id"},
		{"name too long", "/v1/beneficiaries", "registrar", registerBody(binhID, longName, "sex", `"male"`, "date_of_birth", `"1950-01-01"`), nil, 422, "too_long", "full_name"},
		{"reason missing", base + "/corrections", "registrar", `{"full_name": "Nguyễn Thị Ấn"}`, nil, 422, "required", "reason"},
		{"unknown beneficiary", "/v1/beneficiaries/" + binhID + "/death", "registrar", `{"date_of_death": "2024-01-10", "document_ref": "KT-1"}`, nil, 404, "beneficiary_not_found", "citizen_id"},
		{"unknown proxy", base + "/proxies/P9/revoke", "registrar", `{"reason": "no longer needed"}`, nil, 404, "proxy_not_found", "proxy_id"},
		{"stale If-Match", base + "/corrections", "registrar", `{"full_name": "Nguyễn Thị Ấn", "reason": "accent"}`, []string{"If-Match", `"0"`}, 412, "precondition_failed", ""},
		{"If-Match * on a registration", "/v1/beneficiaries", "registrar", registerBody(binhID, "Lê Văn Bình", "sex", `"male"`, "date_of_birth", `"1950-01-01"`), []string{"If-Match", "*"}, 412, "precondition_failed", ""},
		{"malformed If-Match", base + "/corrections", "registrar", `{"full_name": "Nguyễn Thị Ấn", "reason": "accent"}`, []string{"If-Match", "1"}, 400, "precondition_invalid", "If-Match"},
		{"unlink with no account", base + "/bank-account/unlink", "registrar", `{"reason": "x"}`, nil, 409, "no_bank_account", ""},
		{"auditor registers", "/v1/beneficiaries", "auditor", registerBody(binhID, "Lê Văn Bình", "sex", `"male"`, "date_of_birth", `"1950-01-01"`), nil, 403, "forbidden", ""},
		{"auditor records a death", base + "/death", "auditor", `{"date_of_death": "2024-01-10", "document_ref": "KT-1"}`, nil, 403, "forbidden", ""},
		{"no credential", base + "/death", "", `{"date_of_death": "2024-01-10", "document_ref": "KT-1"}`, nil, 401, "unauthorized", ""},
	}
	tokens := map[string]string{"registrar": env.registrar, "auditor": env.auditor, "": ""}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.head()
			w := env.post(tt.path, tokens[tt.token], tt.body, tt.headers...)
			p := wantProblem(t, w, tt.status, tt.code)
			if tt.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tt.field) {
				t.Errorf("errors %+v, want one for %q", p.Errors, tt.field)
			}
			if after := env.head(); after != before {
				t.Errorf("the rejected request moved the log head from %s to %s", before, after)
			}
		})
	}

	// A 412 says which revision is current.
	w := env.post(base+"/corrections", env.registrar, `{"full_name": "Nguyễn Thị Ấn", "reason": "accent"}`, "If-Match", `"0"`)
	if got := w.Header().Get("ETag"); got != `"1"` {
		t.Errorf("412 ETag %q, want the current \"1\"", got)
	}

	// Reads: an unknown or malformed citizen ID.
	wantProblem(t, env.get("/v1/beneficiaries/"+binhID, env.auditor), http.StatusNotFound, "beneficiary_not_found")
	wantProblem(t, env.get("/v1/beneficiaries/12345", env.auditor), http.StatusUnprocessableEntity, "invalid_citizen_id")
	wantProblem(t, env.get("/v1/beneficiaries/"+anID, ""), http.StatusUnauthorized, "unauthorized")
}

// A retried command is idempotent in the ledger itself: after a restart
// (a new server, whose in-memory replay records are empty) the same key
// and body return the first result and write nothing.
func TestCommandIDSurvivesRestart(t *testing.T) {
	env := newRegistryAPI(t)
	body := registerBody(anID, "Nguyễn Thị An")
	key := "register an, attempt 1 of a batch with spaces and quotes \"!\"" // not a valid ledger command ID as is
	w := env.do(env.req(http.MethodPost, "/v1/beneficiaries", env.registrar, body, HeaderIdempotencyKey, key, HeaderRequestID, "req-first"))
	wantStatus(t, w, http.StatusCreated)
	first := decodeJSON[beneficiaryWritten](t, w)
	head := env.head()

	restart := func() {
		t.Helper()
		restarted, err := New(env.srv.cfg, env.srv.deps)
		if err != nil {
			t.Fatal(err)
		}
		env.srv = restarted
	}
	restart()
	w = env.do(env.req(http.MethodPost, "/v1/beneficiaries", env.registrar, body, HeaderIdempotencyKey, key))
	wantStatus(t, w, http.StatusCreated)
	again := decodeJSON[beneficiaryWritten](t, w)
	if w.Header().Get(HeaderIdempotentReplayed) != "true" || again.Position != first.Position || len(again.Events) != 1 || again.Events[0].ID != first.Events[0].ID {
		t.Fatalf("retry after restart: replayed %q, %+v, first %+v", w.Header().Get(HeaderIdempotentReplayed), again, first)
	}
	if env.head() != head {
		t.Fatal("the retry wrote events")
	}
	// The same key for another command on the same record is refused by
	// the ledger, once the API has forgotten it.
	restart()
	w = env.do(env.req(http.MethodPost, "/v1/beneficiaries", env.registrar, registerBody(anID, "Nguyễn Thị Ân"), HeaderIdempotencyKey, key))
	wantProblem(t, w, http.StatusConflict, "command_id_reused")
	// Keys are per user: another user's same key is another command.
	admin := env.do(env.req(http.MethodPost, "/v1/beneficiaries", env.admin, body, HeaderIdempotencyKey, key))
	wantProblem(t, admin, http.StatusConflict, "citizen_id_taken")

	// The events record who, which request and which command.
	evs, err := env.store.ReadStream(t.Context(), registry.Stream(anID), eventstore.ReadStreamOptions{Direction: eventstore.Forwards, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	meta := string(evs[0].Metadata)
	for _, want := range []string{`"user_id":"lan"`, `"role":"registrar"`, `"correlation_id":"req-first"`, `"command_id":"idem:`} {
		if !strings.Contains(meta, want) {
			t.Errorf("metadata %s lacks %s", meta, want)
		}
	}
}

func TestCorrectionRecordsReasonAndEffectiveDate(t *testing.T) {
	env := newRegistryAPI(t)
	env.register()
	base := "/v1/beneficiaries/" + anID
	env.command(base+"/corrections", `{"category": "meritorious_relative", "reason": "file from the veterans office"}`, http.StatusOK)
	env.command(base+"/death", `{"date_of_death": "2024-01-10", "document_ref": "KT-2024/88"}`, http.StatusOK)
	evs, err := env.store.ReadStream(t.Context(), registry.Stream(anID), eventstore.ReadStreamOptions{Direction: eventstore.Forwards, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if m := string(evs[1].Metadata); !strings.Contains(m, `"reason":"file from the veterans office"`) {
		t.Errorf("correction metadata %s lacks the reason", m)
	}
	// The death happened on 10 January in Hanoi: midnight there.
	want := time.Date(2024, 1, 10, 0, 0, 0, 0, time.FixedZone("", 7*3600)).UTC().Format(time.RFC3339)
	if m := string(evs[2].Metadata); !strings.Contains(m, `"effective_at":"`+want+`"`) {
		t.Errorf("death metadata %s lacks effective_at %s", m, want)
	}
}
