package api

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/labstack/echo/v4"
)

// Entitlements: a beneficiary's rights to programs, and what is owed under
// them. They live in the beneficiary's stream, so their ETag is the
// beneficiary's revision, and If-Match on a command takes the ETag of the
// beneficiary or of any of its entitlements.
func (s *Server) entitlementRoutes() []Route {
	const list = "/v1/beneficiaries/:citizen_id/entitlements"
	const one = list + "/:entitlement_id"
	w := registryWriters
	return []Route{
		{Method: http.MethodGet, Path: list, Handler: s.listEntitlements, Roles: AllRoles},
		{Method: http.MethodPost, Path: list, Handler: s.grantEntitlement, Roles: w},
		{Method: http.MethodGet, Path: one, Handler: s.getEntitlement, Roles: AllRoles},
		{Method: http.MethodPost, Path: one + "/adjust", Handler: s.adjustEntitlement, Roles: w},
		{Method: http.MethodPost, Path: one + "/suspend", Handler: s.suspendEntitlement, Roles: w},
		{Method: http.MethodPost, Path: one + "/resume", Handler: s.resumeEntitlement, Roles: w},
		{Method: http.MethodPost, Path: one + "/end", Handler: s.endEntitlement, Roles: w},
		{Method: http.MethodGet, Path: "/v1/beneficiaries/:citizen_id/owed", Handler: s.getOwed, Roles: AllRoles},
	}
}

// MaxOwedLines bounds the lines of one owed answer. One period yields one
// line per entitlement; "through" a period yields that for every month since
// the first grant, which for a long history and many grants is more than a
// client should get in one response.
const MaxOwedLines = 10_000

type (
	termsJSON struct {
		From        string     `json:"from_period"`
		Coefficient *string    `json:"coefficient"`
		Amount      *moneyJSON `json:"amount"`
	}
	suspensionJSON struct {
		From   string  `json:"from_period"`
		Until  *string `json:"until_period"` // null: still suspended
		Reason string  `json:"reason"`
	}
	entitlementJSON struct {
		ID          string  `json:"id"`
		Program     string  `json:"program"`
		Kind        string  `json:"kind"`
		StartPeriod string  `json:"start_period"`
		EndPeriod   *string `json:"end_period"`
		EndCause    string  `json:"end_cause"`
		// State in the current period: scheduled, active, suspended, ended
		// or cancelled.
		State       string           `json:"state"`
		Terms       []termsJSON      `json:"terms"`
		Suspensions []suspensionJSON `json:"suspensions"`
	}
	entitlementWritten struct {
		Entitlement entitlementJSON `json:"entitlement"`
		Events      []eventJSON     `json:"events"`
		Written
	}
)

func toEntitlementJSON(x entitlement.Entitlement, now domain.Period) entitlementJSON {
	out := entitlementJSON{
		ID: x.ID, Program: x.Program, Kind: string(x.Kind), StartPeriod: x.Start.String(),
		EndPeriod: periodOrNil(x.End), EndCause: string(x.EndCause), State: entitlementState(x, now),
		Terms: make([]termsJSON, len(x.Terms)), Suspensions: make([]suspensionJSON, len(x.Suspensions)),
	}
	for i, t := range x.Terms {
		out.Terms[i] = termsJSON{From: t.From.String(), Coefficient: decimalOrNil(t.Coefficient), Amount: toMoneyPtr(t.Amount)}
	}
	for i, sp := range x.Suspensions {
		out.Suspensions[i] = suspensionJSON{From: sp.From.String(), Until: periodOrNil(sp.Until), Reason: sp.Reason}
	}
	return out
}

func toEntitlementsJSON(xs []entitlement.Entitlement, now domain.Period) []entitlementJSON {
	out := make([]entitlementJSON, len(xs))
	for i, x := range xs {
		out[i] = toEntitlementJSON(x, now)
	}
	return out
}

func entitlementState(x entitlement.Entitlement, now domain.Period) string {
	switch {
	case x.Cancelled():
		return "cancelled"
	case x.Ended() && x.End.Before(now):
		return "ended"
	case x.Start.After(now):
		return "scheduled"
	case x.SuspendedIn(now):
		return "suspended"
	}
	return "active"
}

func decimalOrNil(d *decimal.Decimal) *string {
	if d == nil {
		return nil
	}
	s := d.String()
	return &s
}

// coefficient parses a coefficient such as "1.5"; nil stays nil. A malformed
// one is a rule error (422) of the domain's own wording.
func coefficient(field string, s *string) (*decimal.Decimal, error) {
	if s == nil {
		return nil, nil
	}
	d, err := entitlement.ParseCoefficient(field, *s)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *Server) listEntitlements(c echo.Context) error {
	page, err := ParsePage(c)
	if err != nil {
		return err
	}
	ld, err := s.deps.Ledger.LoadBeneficiary(c.Request().Context(), c.Param("citizen_id"))
	if err != nil {
		return ledgerError(err)
	}
	SetETag(c, uint64(ld.Revision))
	items := toEntitlementsJSON(ld.State.Entitlements.Entitlements, s.today().Period())
	// Entitlements are never deleted and keep their grant order, so the
	// index is a stable sort key ("E10" sorts before "E2" as text).
	keys := make(map[string]string, len(items))
	for i, x := range items {
		keys[x.ID] = fmt.Sprintf("%06d", i)
	}
	return c.JSON(http.StatusOK, Paginate(items, func(x entitlementJSON) string { return keys[x.ID] }, page))
}

func (s *Server) getEntitlement(c echo.Context) error {
	ld, err := s.deps.Ledger.LoadBeneficiary(c.Request().Context(), c.Param("citizen_id"))
	if err != nil {
		return ledgerError(err)
	}
	x, err := findEntitlement(ld.State.Entitlements, c.Param("entitlement_id"))
	if err != nil {
		return err
	}
	SetETag(c, uint64(ld.Revision))
	return c.JSON(http.StatusOK, toEntitlementJSON(x, s.today().Period()))
}

func findEntitlement(b entitlement.Book, id string) (entitlement.Entitlement, error) {
	x, ok := b.Find(id)
	if !ok {
		return x, domain.Rejectf(domain.NotFound, "entitlement_not_found", "entitlement_id", "the beneficiary has no entitlement %q", clip(id))
	}
	return x, nil
}

// entitlementCommand runs an entitlement command and answers with the
// entitlement it changed (for a grant: created, or, for a second Tet gift of
// a higher tier, the first one raised).
func (s *Server) entitlementCommand(c echo.Context, reason string, cmd entitlement.Command) error {
	req, err := s.ledgerRequest(c, reason)
	if err != nil {
		return err
	}
	citizenID := c.Param("citizen_id")
	res, err := s.deps.Ledger.Entitlement(c.Request().Context(), req, citizenID, cmd)
	if err != nil {
		return ledgerError(err)
	}
	id, created := c.Param("entitlement_id"), false
	if len(res.Events) > 0 {
		switch e := res.Events[0].Event.(type) {
		case entitlement.EntitlementGranted:
			id, created = e.EntitlementID, true
		case entitlement.EntitlementAdjusted:
			id = e.EntitlementID
		}
	}
	b, rev, err := stateAfter(citizenID, res)
	if err != nil {
		return err
	}
	x, err := findEntitlement(b.Entitlements, id)
	if err != nil {
		return fmt.Errorf("entitlement %s written but not found on reload: %w", id, err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Response().Header().Set(echo.HeaderLocation, beneficiaryPath(citizenID)+"/entitlements/"+url.PathEscape(id))
	}
	markReplayed(c, res)
	SetPosition(c, res.Position)
	SetETag(c, uint64(rev))
	return c.JSON(status, entitlementWritten{
		Entitlement: toEntitlementJSON(x, s.today().Period()),
		Events:      toEventsJSON(res.Events),
		Written:     Written{res.Position},
	})
}

type grantRequest struct {
	Program     string     `json:"program"`
	StartPeriod string     `json:"start_period"`
	EndPeriod   string     `json:"end_period"`
	Coefficient *string    `json:"coefficient"`
	Amount      *moneyJSON `json:"amount"`
	Note        string     `json:"note"`
}

func (s *Server) grantEntitlement(c echo.Context) error {
	var in grantRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := entitlement.Grant{
		Program: in.Program, Start: f.period("start_period", in.StartPeriod), End: f.period("end_period", in.EndPeriod),
		Amount: f.money("amount", in.Amount), Note: in.Note,
	}
	if err := f.err(); err != nil {
		return err
	}
	var err error
	if cmd.Coefficient, err = coefficient("coefficient", in.Coefficient); err != nil {
		return err
	}
	return s.entitlementCommand(c, "", cmd)
}

type adjustRequest struct {
	FromPeriod  string     `json:"from_period"`
	Coefficient *string    `json:"coefficient"`
	Amount      *moneyJSON `json:"amount"`
	Reason      string     `json:"reason"`
}

func (s *Server) adjustEntitlement(c echo.Context) error {
	var in adjustRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := entitlement.Adjust{
		EntitlementID: c.Param("entitlement_id"), From: f.period("from_period", in.FromPeriod),
		Amount: f.money("amount", in.Amount), Reason: in.Reason,
	}
	if err := f.err(); err != nil {
		return err
	}
	var err error
	if cmd.Coefficient, err = coefficient("coefficient", in.Coefficient); err != nil {
		return err
	}
	return s.entitlementCommand(c, in.Reason, cmd)
}

type periodReasonRequest struct {
	FromPeriod string `json:"from_period"`
	Reason     string `json:"reason"`
}

func (s *Server) suspendEntitlement(c echo.Context) error {
	var in periodReasonRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := entitlement.Suspend{EntitlementID: c.Param("entitlement_id"), From: f.period("from_period", in.FromPeriod), Reason: in.Reason}
	if err := f.err(); err != nil {
		return err
	}
	return s.entitlementCommand(c, in.Reason, cmd)
}

func (s *Server) resumeEntitlement(c echo.Context) error {
	var in periodReasonRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := entitlement.Resume{EntitlementID: c.Param("entitlement_id"), From: f.period("from_period", in.FromPeriod), Reason: in.Reason}
	if err := f.err(); err != nil {
		return err
	}
	return s.entitlementCommand(c, in.Reason, cmd)
}

type endRequest struct {
	LastPeriod string `json:"last_period"`
	Reason     string `json:"reason"`
}

func (s *Server) endEntitlement(c echo.Context) error {
	var in endRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := entitlement.End{EntitlementID: c.Param("entitlement_id"), LastPeriod: f.period("last_period", in.LastPeriod), Reason: in.Reason}
	if err := f.err(); err != nil {
		return err
	}
	return s.entitlementCommand(c, in.Reason, cmd)
}

type (
	traceJSON struct {
		Rule          string     `json:"rule"`
		TermsFrom     string     `json:"terms_from"`
		Coefficient   *string    `json:"coefficient"`
		FixedAmount   *moneyJSON `json:"fixed_amount"`
		BaseLevel     string     `json:"base_level"`
		BaseAmount    *moneyJSON `json:"base_amount"`
		BaseFrom      *string    `json:"base_effective_from"`
		BaseDecreeRef string     `json:"decree_ref"`
	}
	owedLineJSON struct {
		EntitlementID string    `json:"entitlement_id"`
		Program       string    `json:"program"`
		Kind          string    `json:"kind"`
		Period        string    `json:"period"`
		Amount        moneyJSON `json:"amount"`
		Trace         traceJSON `json:"trace"`
	}
	owedJSON struct {
		CitizenID string         `json:"citizen_id"`
		Period    string         `json:"period"`
		Through   bool           `json:"through"`
		Lines     []owedLineJSON `json:"lines"`
		Total     moneyJSON      `json:"total"`
	}
)

func toOwedLineJSON(l entitlement.Line) owedLineJSON {
	t := l.Trace
	return owedLineJSON{
		EntitlementID: l.EntitlementID, Program: l.Program, Kind: string(l.Kind), Period: l.Period.String(),
		Amount: toMoneyJSON(l.Amount),
		Trace: traceJSON{
			Rule: string(t.Rule), TermsFrom: t.TermsFrom.String(), Coefficient: decimalOrNil(t.Coefficient),
			FixedAmount: toMoneyPtr(t.FixedAmount), BaseLevel: t.BaseLevel, BaseAmount: toMoneyPtr(t.BaseAmount),
			BaseFrom: periodOrNil(t.BaseFrom), BaseDecreeRef: t.BaseDecreeRef,
		},
	}
}

// getOwed answers what is owed for ?period= (or, with &through=true, for
// every period up to it), each line traced to the rule, terms and rate that
// produced it. It is computed from the beneficiary's stream and the
// catalogue as they are now; what was already paid is not subtracted.
func (s *Server) getOwed(c echo.Context) error {
	f := fieldErrors{code: "bad_request"}
	raw := c.QueryParam("period")
	if raw == "" {
		f.add("period", "is required: the period (YYYY-MM) to compute")
	}
	p := f.period("period", raw)
	through := false
	switch v := c.QueryParam("through"); v {
	case "", "false":
	case "true":
		through = true
	default:
		f.add("through", "must be true or false")
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx, citizenID := c.Request().Context(), c.Param("citizen_id")
	var lines []entitlement.Line
	var err error
	if through {
		lines, err = s.deps.Ledger.OwedThrough(ctx, citizenID, p)
	} else {
		lines, err = s.deps.Ledger.Owed(ctx, citizenID, p)
	}
	if err != nil {
		return ledgerError(err)
	}
	if len(lines) > MaxOwedLines {
		return Problemf(http.StatusUnprocessableEntity, "too_many_lines",
			"%d lines are owed through %s, more than the %d one answer holds; ask for single periods instead", len(lines), p, MaxOwedLines)
	}
	out := owedJSON{CitizenID: citizenID, Period: p.String(), Through: through, Lines: make([]owedLineJSON, len(lines)), Total: toMoneyJSON(entitlement.Total(lines))}
	for i, l := range lines {
		out.Lines[i] = toOwedLineJSON(l)
	}
	return c.JSON(http.StatusOK, out)
}
