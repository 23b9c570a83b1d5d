package api

import (
	"net/http"
	"testing"
)

// entitlementCommand posts an entitlement command and decodes the answer.
func (e *registryAPI) entitlementCommand(path, body string, status int, headers ...string) entitlementWritten {
	e.t.Helper()
	w := e.post(path, e.registrar, body, headers...)
	wantStatus(e.t, w, status)
	got := decodeJSON[entitlementWritten](e.t, w)
	if w.Header().Get(HeaderPosition) != got.Position.String() {
		e.t.Errorf("X-Ansinh-Position %q, body %s", w.Header().Get(HeaderPosition), got.Position)
	}
	return got
}

func (e *registryAPI) owed(query string) owedJSON {
	e.t.Helper()
	w := e.get("/v1/beneficiaries/"+anID+"/owed?"+query, e.auditor)
	wantStatus(e.t, w, http.StatusOK)
	return decodeJSON[owedJSON](e.t, w)
}

func TestEntitlementLifecycle(t *testing.T) {
	env := newRegistryAPI(t)
	env.register()
	list := "/v1/beneficiaries/" + anID + "/entitlements"

	// Grant the monthly social allowance at 1.5 times the base level.
	w := env.post(list, env.registrar, `{"program": "SOCIAL_MONTHLY", "start_period": "2024-01", "coefficient": "1.5", "note": "elderly, no supporter"}`)
	wantStatus(t, w, http.StatusCreated)
	granted := decodeJSON[entitlementWritten](t, w)
	x := granted.Entitlement
	if x.ID != "E1" || x.Program != "SOCIAL_MONTHLY" || x.Kind != "monthly" || x.State != "active" || x.EndPeriod != nil ||
		len(x.Terms) != 1 || x.Terms[0].Coefficient == nil || *x.Terms[0].Coefficient != "1.5" || x.Terms[0].Amount != nil {
		t.Fatalf("granted = %+v", x)
	}
	if got := w.Header().Get("Location"); got != list+"/E1" {
		t.Errorf("Location %q", got)
	}
	if w.Header().Get("ETag") != `"1"` {
		t.Errorf("ETag %q, want the beneficiary's revision \"1\"", w.Header().Get("ETag"))
	}

	// What is owed for January: 1.5 x 360,000, traced to the decree.
	owed := env.owed("period=2024-01")
	if len(owed.Lines) != 1 || owed.Total.Amount != "540000" || owed.Through {
		t.Fatalf("owed for 2024-01 = %+v", owed)
	}
	tr := owed.Lines[0].Trace
	if tr.Rule != "base_times_coefficient" || tr.BaseLevel != "SOCIAL_ASSISTANCE_BASE" || tr.BaseAmount == nil || tr.BaseAmount.Amount != "360000" ||
		tr.BaseDecreeRef != "Decree 20/2021/ND-CP" || tr.Coefficient == nil || *tr.Coefficient != "1.5" || tr.BaseFrom == nil || *tr.BaseFrom != "2021-07" {
		t.Fatalf("trace = %+v", tr)
	}
	// Through August: six months at 360,000 and two at the 500,000 of
	// Decree 76/2024 from July.
	owed = env.owed("period=2024-08&through=true")
	if len(owed.Lines) != 8 || owed.Total.Amount != "4740000" || !owed.Through {
		t.Fatalf("owed through 2024-08: %d lines, total %s", len(owed.Lines), owed.Total.Amount)
	}
	if l := owed.Lines[7]; l.Period != "2024-08" || l.Amount.Amount != "750000" || l.Trace.BaseDecreeRef != "Decree 76/2024/ND-CP" {
		t.Fatalf("August line = %+v", l)
	}

	// Adjust, suspend, resume, end.
	one := list + "/E1"
	adj := env.entitlementCommand(one+"/adjust", `{"from_period": "2024-03", "coefficient": "2.0", "reason": "turned 80"}`, http.StatusOK, "If-Match", `"1"`)
	if len(adj.Entitlement.Terms) != 2 || *adj.Entitlement.Terms[1].Coefficient != "2" || adj.Entitlement.Terms[1].From != "2024-03" {
		t.Fatalf("adjusted terms = %+v", adj.Entitlement.Terms)
	}
	env.entitlementCommand(one+"/suspend", `{"from_period": "2024-04", "reason": "in hospital abroad"}`, http.StatusOK)
	res := env.entitlementCommand(one+"/resume", `{"from_period": "2024-06", "reason": "back home"}`, http.StatusOK)
	if s := res.Entitlement.Suspensions; len(s) != 1 || s[0].Until == nil || *s[0].Until != "2024-06" {
		t.Fatalf("suspensions = %+v", s)
	}
	// March at 2.0 x 360,000; April and May suspended.
	if o := env.owed("period=2024-03"); o.Total.Amount != "720000" {
		t.Fatalf("owed for March %s", o.Total.Amount)
	}
	if o := env.owed("period=2024-04"); len(o.Lines) != 0 || o.Total.Amount != "0" {
		t.Fatalf("owed while suspended = %+v", o)
	}
	end := env.entitlementCommand(one+"/end", `{"last_period": "2024-12", "reason": "moves to a care home"}`, http.StatusOK)
	if e := end.Entitlement; e.EndPeriod == nil || *e.EndPeriod != "2024-12" || e.EndCause != "decision" {
		t.Fatalf("ended = %+v", e)
	}

	// The Tet gift: a second, higher tier raises the first (200, not 201).
	gift := env.entitlementCommand(list, `{"program": "PRESIDENT_TET_GIFT", "start_period": "2024-01", "amount": {"amount": "300000", "currency": "VND"}}`, http.StatusCreated)
	if gift.Entitlement.ID != "E2" || gift.Entitlement.Terms[0].Amount.Amount != "300000" {
		t.Fatalf("gift = %+v", gift.Entitlement)
	}
	raised := env.entitlementCommand(list, `{"program": "PRESIDENT_TET_GIFT", "start_period": "2024-01", "amount": {"amount": "600000", "currency": "VND"}}`, http.StatusOK)
	if raised.Entitlement.ID != "E2" || raised.Events[0].Type != "EntitlementAdjusted.v1" {
		t.Fatalf("raised = %+v", raised)
	}

	// Reads.
	w = env.get(list+"?limit=1", env.auditor)
	wantStatus(t, w, http.StatusOK)
	page := decodeJSON[List[entitlementJSON]](t, w)
	if len(page.Items) != 1 || page.Items[0].ID != "E1" || page.NextCursor == "" {
		t.Fatalf("first page = %+v", page)
	}
	w = env.get(list+"?limit=1&cursor="+page.NextCursor, env.auditor)
	page = decodeJSON[List[entitlementJSON]](t, w)
	if len(page.Items) != 1 || page.Items[0].ID != "E2" || page.NextCursor != "" {
		t.Fatalf("second page = %+v", page)
	}
	w = env.get(list+"/E2", env.auditor)
	wantStatus(t, w, http.StatusOK)
	if e := decodeJSON[entitlementJSON](t, w); e.Program != "PRESIDENT_TET_GIFT" || e.Kind != "gift" {
		t.Fatalf("E2 = %+v", e)
	}
	ben := decodeJSON[beneficiaryJSON](t, env.get("/v1/beneficiaries/"+anID, env.auditor))
	if w.Header().Get("ETag") != ETag(uint64(ben.Revision)) || len(ben.Entitlements) != 2 {
		t.Fatalf("entitlement ETag %q, beneficiary revision %d, %d entitlements", w.Header().Get("ETag"), ben.Revision, len(ben.Entitlements))
	}
}

func TestEntitlementRejectionsChangeNothing(t *testing.T) {
	env := newRegistryAPI(t)
	env.register()
	list := "/v1/beneficiaries/" + anID + "/entitlements"
	env.entitlementCommand(list, `{"program": "SOCIAL_MONTHLY", "start_period": "2024-01", "coefficient": "1.5"}`, http.StatusCreated)
	tests := []struct {
		name, path, token, body string
		headers                 []string
		status                  int
		code                    string
	}{
		{"unknown field", list, "registrar", `{"program": "SOCIAL_MONTHLY", "start": "2024-01"}`, nil, 400, "invalid_json"},
		{"malformed period", list, "registrar", `{"program": "SOCIAL_MONTHLY", "start_period": "2024-13", "coefficient": "1"}`, nil, 400, "invalid_json"},
		{"unknown program", list, "registrar", `{"program": "NO_SUCH", "start_period": "2024-01", "amount": {"amount": "1", "currency": "VND"}}`, nil, 404, "program_not_found"},
		{"overlapping grant", list, "registrar", `{"program": "SOCIAL_MONTHLY", "start_period": "2024-05", "coefficient": "2"}`, nil, 409, "overlapping_entitlement"},
		{"coefficient with three decimals", list, "registrar", `{"program": "MERIT_MONTHLY", "start_period": "2024-01", "coefficient": "1.125"}`, nil, 422, "invalid_coefficient"},
		{"amount for a coefficient program", list, "registrar", `{"program": "MERIT_MONTHLY", "start_period": "2024-01", "amount": {"amount": "100", "currency": "VND"}}`, nil, 422, "amount_not_allowed"},
		{"gift off the tiers", list, "registrar", `{"program": "PRESIDENT_TET_GIFT", "start_period": "2024-01", "amount": {"amount": "400000", "currency": "VND"}}`, nil, 422, "not_a_tier"},
		{"unknown entitlement", list + "/E9/suspend", "registrar", `{"from_period": "2024-02", "reason": "x"}`, nil, 404, "entitlement_not_found"},
		{"resume what is not suspended", list + "/E1/resume", "registrar", `{"from_period": "2024-02", "reason": "x"}`, nil, 409, "not_suspended"},
		{"reason missing", list + "/E1/end", "registrar", `{"last_period": "2024-06"}`, nil, 422, "required"},
		{"stale If-Match", list + "/E1/end", "registrar", `{"last_period": "2024-06", "reason": "x"}`, []string{"If-Match", `"0"`}, 412, "precondition_failed"},
		{"unknown beneficiary", "/v1/beneficiaries/" + binhID + "/entitlements", "registrar", `{"program": "SOCIAL_MONTHLY", "start_period": "2024-01", "coefficient": "1"}`, nil, 404, "beneficiary_not_found"},
		{"auditor grants", list, "auditor", `{"program": "MERIT_MONTHLY", "start_period": "2024-01", "coefficient": "1"}`, nil, 403, "forbidden"},
	}
	tokens := map[string]string{"registrar": env.registrar, "auditor": env.auditor}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.head()
			wantProblem(t, env.post(tt.path, tokens[tt.token], tt.body, tt.headers...), tt.status, tt.code)
			if after := env.head(); after != before {
				t.Errorf("the rejected request moved the log head from %s to %s", before, after)
			}
		})
	}

	for _, q := range []string{"", "period=2024", "period=2024-01&through=yes"} {
		wantProblem(t, env.get("/v1/beneficiaries/"+anID+"/owed?"+q, env.auditor), http.StatusBadRequest, "bad_request")
	}
	wantProblem(t, env.get("/v1/beneficiaries/"+binhID+"/owed?period=2024-01", env.auditor), http.StatusNotFound, "beneficiary_not_found")
	wantProblem(t, env.get(list+"/E7", env.auditor), http.StatusNotFound, "entitlement_not_found")
	wantProblem(t, env.get(list+"?limit=0", env.auditor), http.StatusBadRequest, "invalid_limit")
}
