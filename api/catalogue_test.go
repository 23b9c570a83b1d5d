package api

import (
	"net/http"
	"testing"
)

func TestCatalogueReads(t *testing.T) {
	env := newRegistryAPI(t)
	w := env.get("/v1/programs", env.auditor)
	wantStatus(t, w, http.StatusOK)
	progs := decodeJSON[List[programJSON]](t, w)
	var codes []string
	for _, p := range progs.Items {
		codes = append(codes, p.Code)
	}
	// The starter catalogue, sorted by code.
	want := []string{"MARTYR_WORSHIP", "MERIT_MONTHLY", "PRESIDENT_TET_GIFT", "RESISTANCE_ONE_TIME", "SOCIAL_MONTHLY"}
	if len(codes) != len(want) {
		t.Fatalf("programs %v, want %v", codes, want)
	}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("programs %v, want %v", codes, want)
		}
	}
	_, rev, err := env.ledger.Catalogue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Header().Get("ETag"); got != ETag(uint64(rev)) {
		t.Errorf("ETag %q, catalogue revision %d", got, rev)
	}

	w = env.get("/v1/programs/PRESIDENT_TET_GIFT", env.auditor)
	wantStatus(t, w, http.StatusOK)
	gift := decodeJSON[programJSON](t, w)
	if gift.Kind != "gift" || gift.Rule.Kind != "fixed" || len(gift.Rule.Tiers) != 2 || gift.Rule.Tiers[0].Amount != "600000" || gift.Rule.Amount != nil {
		t.Fatalf("gift = %+v", gift)
	}
	wantProblem(t, env.get("/v1/programs/NO_SUCH", env.auditor), http.StatusNotFound, "program_not_found")

	w = env.get("/v1/base-levels?limit=1", env.auditor)
	wantStatus(t, w, http.StatusOK)
	levels := decodeJSON[List[baseLevelJSON]](t, w)
	if len(levels.Items) != 1 || levels.Items[0].Code != "PREFERENTIAL_STANDARD" || levels.NextCursor == "" {
		t.Fatalf("first page of base levels = %+v", levels)
	}
	w = env.get("/v1/base-levels/SOCIAL_ASSISTANCE_BASE", env.auditor)
	wantStatus(t, w, http.StatusOK)
	sab := decodeJSON[baseLevelJSON](t, w)
	if len(sab.Rates) != 2 || sab.Rates[1].EffectiveFrom != "2024-07" || sab.Rates[1].Amount.Amount != "500000" || sab.Rates[1].DecreeRef != "Decree 76/2024/ND-CP" {
		t.Fatalf("social-assistance base level = %+v", sab)
	}
	wantProblem(t, env.get("/v1/base-levels/NO_SUCH", env.auditor), http.StatusNotFound, "base_level_not_found")
}

func TestCatalogueCommands(t *testing.T) {
	env := newRegistryAPI(t)
	post := func(path, body string, status int, headers ...string) *http.Response {
		t.Helper()
		w := env.post(path, env.admin, body, headers...)
		wantStatus(t, w, status)
		return w.Result()
	}

	// A provincial base level, its rate, and a program on it.
	r := post("/v1/base-levels", `{"code": "HANOI_TOP_UP", "name": "Mức bổ sung của Hà Nội", "reference": "Resolution 1/2024/NQ-HĐND"}`, http.StatusCreated)
	if r.Header.Get("Location") != "/v1/base-levels/HANOI_TOP_UP" || r.Header.Get(HeaderPosition) == "" {
		t.Fatalf("define base level: Location %q, position %q", r.Header.Get("Location"), r.Header.Get(HeaderPosition))
	}
	// The same definition again changes nothing.
	before := env.head()
	w := env.post("/v1/base-levels", env.admin, `{"code": "HANOI_TOP_UP", "name": "Mức bổ sung của Hà Nội", "reference": "Resolution 1/2024/NQ-HĐND"}`)
	wantStatus(t, w, http.StatusOK)
	if got := decodeJSON[baseLevelWritten](t, w); len(got.Events) != 0 || env.head() != before {
		t.Fatalf("redefinition wrote %+v", got.Events)
	}

	w = env.post("/v1/base-levels/HANOI_TOP_UP/rates", env.admin,
		`{"effective_from": "2024-01", "amount": {"amount": "150000", "currency": "VND"}, "decree_ref": "Resolution 1/2024/NQ-HĐND"}`)
	wantStatus(t, w, http.StatusCreated)
	rate := decodeJSON[baseLevelWritten](t, w)
	if len(rate.BaseLevel.Rates) != 1 || rate.BaseLevel.Rates[0].Amount.Amount != "150000" || rate.Events[0].Type != "BaseLevelRateSet.v1" {
		t.Fatalf("rate set = %+v", rate)
	}
	if w.Header().Get(HeaderPosition) != rate.Position.String() || w.Header().Get("ETag") != ETag(rate.Events[0].Revision) {
		t.Errorf("position %q / %s, ETag %q", w.Header().Get(HeaderPosition), rate.Position, w.Header().Get("ETag"))
	}

	w = env.post("/v1/programs", env.admin, `{"code": "HANOI_MONTHLY_TOP_UP", "name": "Trợ cấp bổ sung hằng tháng", "kind": "monthly",
		"rule": {"kind": "base_times_coefficient", "base_level": "HANOI_TOP_UP"}}`, "If-Match", w.Header().Get("ETag"))
	wantStatus(t, w, http.StatusCreated)
	prog := decodeJSON[programWritten](t, w)
	if prog.Program.Code != "HANOI_MONTHLY_TOP_UP" || prog.Program.Rule.BaseLevel != "HANOI_TOP_UP" || w.Header().Get("Location") != "/v1/programs/HANOI_MONTHLY_TOP_UP" {
		t.Fatalf("program = %+v, Location %q", prog.Program, w.Header().Get("Location"))
	}
	w = env.post("/v1/programs", env.admin, `{"code": "TET_GIFT_CITY", "name": "Quà Tết của thành phố", "kind": "gift",
		"rule": {"kind": "fixed", "amount": {"amount": "500000", "currency": "VND"}, "tiers": [{"amount": "500000", "currency": "VND"}, {"amount": "250000", "currency": "VND"}]}}`)
	wantStatus(t, w, http.StatusCreated)
	if p := decodeJSON[programWritten](t, w).Program; len(p.Rule.Tiers) != 2 || p.Rule.Amount == nil || p.Rule.Amount.Amount != "500000" {
		t.Fatalf("gift program = %+v", p)
	}

	// A registrar may grant the new program; what is owed follows the rate.
	env.register()
	env.entitlementCommand("/v1/beneficiaries/"+anID+"/entitlements", `{"program": "HANOI_MONTHLY_TOP_UP", "start_period": "2024-01", "coefficient": "1"}`, http.StatusCreated)
	if o := env.owed("period=2024-01"); o.Total.Amount != "150000" || o.Lines[0].Trace.BaseDecreeRef != "Resolution 1/2024/NQ-HĐND" {
		t.Fatalf("owed = %+v", o)
	}
}

func TestCatalogueRejectionsChangeNothing(t *testing.T) {
	env := newRegistryAPI(t)
	tests := []struct {
		name, path, token, body string
		headers                 []string
		status                  int
		code                    string
	}{
		{"unknown field", "/v1/programs", "admin", `{"code": "X_Y", "name": "x", "kind": "monthly", "rule": {"kind": "fixed"}, "budget": 1}`, nil, 400, "invalid_json"},
		{"malformed tier", "/v1/programs", "admin", `{"code": "X_Y", "name": "x", "kind": "gift", "rule": {"kind": "fixed", "tiers": [{"amount": "1e6", "currency": "VND"}]}}`, nil, 400, "invalid_json"},
		{"too many tiers", "/v1/programs", "admin", `{"code": "X_Y", "name": "x", "kind": "gift", "rule": {"kind": "fixed", "tiers": [` +
			`{"amount": "1", "currency": "VND"}, {"amount": "2", "currency": "VND"}, {"amount": "3", "currency": "VND"}, {"amount": "4", "currency": "VND"},` +
			`{"amount": "5", "currency": "VND"}, {"amount": "6", "currency": "VND"}, {"amount": "7", "currency": "VND"}, {"amount": "8", "currency": "VND"},` +
			`{"amount": "9", "currency": "VND"}, {"amount": "10", "currency": "VND"}, {"amount": "11", "currency": "VND"}]}}`, nil, 422, "invalid_rule"},
		{"program redefined otherwise", "/v1/programs", "admin", `{"code": "SOCIAL_MONTHLY", "name": "another", "kind": "monthly", "rule": {"kind": "base_times_coefficient", "base_level": "SOCIAL_ASSISTANCE_BASE"}}`, nil, 409, "program_exists"},
		{"unknown base level in a rule", "/v1/programs", "admin", `{"code": "X_Y", "name": "x", "kind": "monthly", "rule": {"kind": "base_times_coefficient", "base_level": "NO_SUCH"}}`, nil, 404, "base_level_not_found"},
		{"lower-case code", "/v1/base-levels", "admin", `{"code": "hanoi", "name": "x"}`, nil, 422, "invalid_code"},
		{"rate for no base level", "/v1/base-levels/NO_SUCH/rates", "admin", `{"effective_from": "2024-01", "amount": {"amount": "1", "currency": "VND"}, "decree_ref": "x"}`, nil, 404, "base_level_not_found"},
		{"rate edited", "/v1/base-levels/SOCIAL_ASSISTANCE_BASE/rates", "admin", `{"effective_from": "2024-07", "amount": {"amount": "550000", "currency": "VND"}, "decree_ref": "x"}`, nil, 409, "rate_exists"},
		{"rate without amount", "/v1/base-levels/SOCIAL_ASSISTANCE_BASE/rates", "admin", `{"effective_from": "2025-07", "decree_ref": "x"}`, nil, 422, "required"},
		{"rate above the cap", "/v1/base-levels/SOCIAL_ASSISTANCE_BASE/rates", "admin", `{"effective_from": "2025-07", "amount": {"amount": "50000001", "currency": "VND"}, "decree_ref": "x"}`, nil, 422, "amount_above_cap"},
		{"rate in dollars", "/v1/base-levels/SOCIAL_ASSISTANCE_BASE/rates", "admin", `{"effective_from": "2025-07", "amount": {"amount": "20", "currency": "USD"}, "decree_ref": "x"}`, nil, 400, "invalid_json"},
		{"stale If-Match", "/v1/base-levels", "admin", `{"code": "NEW_BASE", "name": "x"}`, []string{"If-Match", `"0"`}, 412, "precondition_failed"},
		{"registrar defines a program", "/v1/programs", "registrar", `{"code": "X_Y", "name": "x", "kind": "monthly", "rule": {"kind": "fixed"}}`, nil, 403, "forbidden"},
		{"registrar sets a rate", "/v1/base-levels/SOCIAL_ASSISTANCE_BASE/rates", "registrar", `{"effective_from": "2025-07", "amount": {"amount": "600000", "currency": "VND"}, "decree_ref": "x"}`, nil, 403, "forbidden"},
	}
	tokens := map[string]string{"admin": env.admin, "registrar": env.registrar}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.head()
			wantProblem(t, env.post(tt.path, tokens[tt.token], tt.body, tt.headers...), tt.status, tt.code)
			if after := env.head(); after != before {
				t.Errorf("the rejected request moved the log head from %s to %s", before, after)
			}
		})
	}
}
