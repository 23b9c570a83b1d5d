package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// Where one beneficiary stands, from the balances and payouts read models:
//
//   - GET /v1/beneficiaries/{citizen_id}/balance: accrued, paid, in
//     transit, outstanding and overpaid, with the periods and lines of
//     each, through a period (?through=, default the current month); with
//     ?as_of= as the ledger knew it then (readside.go).
//   - GET /v1/beneficiaries/{citizen_id}/payouts: every payment attempt,
//     oldest program and period first, with the payee, the method, the
//     bank and the account number masked (the read model never holds a
//     usable one), amounts, offsets, the bank's reference or why it failed.
//
// Any role may read them: a registrar answers "was I paid?" at the ward
// desk, and nothing here can be used to move money.
func (s *Server) balanceRoutes() []Route {
	const one = "/v1/beneficiaries/:citizen_id"
	return []Route{
		{Method: http.MethodGet, Path: one + "/balance", Handler: s.getBalance, Roles: AllRoles, Timeout: asOfTimeout},
		{Method: http.MethodGet, Path: one + "/payouts", Handler: s.listPayouts, Roles: AllRoles},
	}
}

type (
	balanceLineJSON struct {
		Program   string    `json:"program"`
		Period    string    `json:"period"`
		TopUp     string    `json:"top_up"`
		Gross     moneyJSON `json:"gross"`
		Net       moneyJSON `json:"net"`
		Status    string    `json:"status"` // of the latest attempt; "" if never issued
		RunID     string    `json:"run_id"`
		PaymentID string    `json:"payment_id"`
	}
	balanceBucketJSON struct {
		Gross   moneyJSON         `json:"gross"`
		Net     moneyJSON         `json:"net"`
		Periods []string          `json:"periods"`
		Lines   []balanceLineJSON `json:"lines"`
	}
	recoveryJSON struct {
		CorrectionID string    `json:"correction_id"`
		Kind         string    `json:"kind"`
		Program      string    `json:"program"`
		Amount       moneyJSON `json:"amount"`
		Mode         string    `json:"mode"`
	}
	topUpJSON struct {
		CorrectionID string    `json:"correction_id"`
		Program      string    `json:"program"`
		Period       string    `json:"period"`
		Amount       moneyJSON `json:"amount"`
		Reason       string    `json:"reason"`
	}
	balanceJSON struct {
		CitizenID   string            `json:"citizen_id"`
		Through     string            `json:"through"`
		AsOf        *string           `json:"as_of"`
		Accrued     balanceBucketJSON `json:"accrued"`
		Paid        balanceBucketJSON `json:"paid"`
		InTransit   balanceBucketJSON `json:"in_transit"`
		Outstanding balanceBucketJSON `json:"outstanding"`
		Overpaid    moneyJSON         `json:"overpaid"`
		Recoveries  []recoveryJSON    `json:"recoveries"`
		TopUps      []topUpJSON       `json:"top_ups"`
		// Accounts is the person's share of the double-entry books (debit
		// positive), by account.
		Accounts map[string]moneyJSON `json:"accounts"`
		Position eventstore.Position  `json:"position"`
	}
)

// maxThroughYears bounds ?through= ahead of today: accruals are computed
// line by line, and a period centuries away is a typo.
const maxThroughYears = 5

func (s *Server) getBalance(c echo.Context) error {
	cid, err := citizenIDParam(c)
	if err != nil {
		return err
	}
	var through domain.Period
	if raw := c.QueryParam("through"); raw != "" {
		now := s.currentPeriod()
		if through, err = domain.ParsePeriod(raw); err != nil {
			return badParam("through", "want a month, YYYY-MM")
		}
		if through.After(domain.Period{Year: now.Year + maxThroughYears, Month: now.Month}) {
			return badParam("through", "is more than 5 years ahead; ask for a nearer month")
		}
	}
	set, done, until, err := s.readModelsAt(c)
	if err != nil {
		return err
	}
	defer done()
	if through.IsZero() {
		// By default, what is owed up to the month it is, or was at
		// as_of's instant (a position carries no date: the current month).
		through = s.currentPeriod()
		if until != nil && !until.Time.IsZero() {
			through = domain.DateOf(until.Time).Period()
		}
	}
	b, err := set.Balance(c.Request().Context(), cid, through)
	if err != nil {
		return beneficiaryReadError(err, cid)
	}
	var asOf *string
	if until != nil {
		v := c.QueryParam(QueryAsOf)
		asOf = &v
	}
	return c.JSON(http.StatusOK, balanceAnswer{b, asOf})
}

// balanceAnswer is the balance as the API writes it: balanceJSON's shape,
// written by hand (appendJSON) because a balance is the most asked-for
// answer and its 12 KB went through reflection twice (to the JSON types,
// then to bytes), a fifth of the query's CPU. TestBalanceAnswerMatches
// checks it against encoding/json of toBalanceJSON.
type balanceAnswer struct {
	b    projections.BalanceResult
	asOf *string
}

// toBalanceJSON is the reference encoding of a balance, through the types
// that document its shape.
func toBalanceJSON(b projections.BalanceResult, asOf *string) balanceJSON {
	out := balanceJSON{
		CitizenID: b.CitizenID, Through: b.Through.String(), AsOf: asOf,
		Accrued: toBucketJSON(b.Accrued), Paid: toBucketJSON(b.Paid), InTransit: toBucketJSON(b.InTransit),
		Outstanding: toBucketJSON(b.Outstanding), Overpaid: toMoneyJSON(b.Overpaid),
		Recoveries: make([]recoveryJSON, len(b.Recoveries)), TopUps: make([]topUpJSON, len(b.TopUps)),
		Accounts: map[string]moneyJSON{}, Position: b.Position,
	}
	for i, r := range b.Recoveries {
		out.Recoveries[i] = recoveryJSON{CorrectionID: r.Correction, Kind: string(r.Kind), Program: r.Program,
			Amount: toMoneyJSON(r.Amount), Mode: string(r.Mode)}
	}
	for i, t := range b.TopUps {
		out.TopUps[i] = topUpJSON{CorrectionID: t.Correction, Program: t.Obligation.Program, Period: t.Obligation.Period.String(),
			Amount: toMoneyJSON(t.Amount), Reason: t.Reason}
	}
	for a, m := range b.Accounts {
		out.Accounts[string(a)] = toMoneyJSON(m)
	}
	return out
}

func (a balanceAnswer) appendJSON(o []byte) []byte {
	b := &a.b
	o = appendKey(append(o, '{'), "citizen_id", true)
	o = appendJSONString(o, b.CitizenID)
	o = appendKey(o, "through", false)
	o = appendJSONString(o, b.Through.String())
	o = appendKey(o, "as_of", false)
	if a.asOf == nil {
		o = append(o, "null"...)
	} else {
		o = appendJSONString(o, *a.asOf)
	}
	for _, bk := range []struct {
		name string
		b    *projections.BalanceBucket
	}{{"accrued", &b.Accrued}, {"paid", &b.Paid}, {"in_transit", &b.InTransit}, {"outstanding", &b.Outstanding}} {
		o = appendBucket(appendKey(o, bk.name, false), bk.b)
	}
	o = appendAmount(appendKey(o, "overpaid", false), b.Overpaid)
	o = append(appendKey(o, "recoveries", false), '[')
	for i, r := range b.Recoveries {
		if i > 0 {
			o = append(o, ',')
		}
		o = appendJSONString(appendKey(append(o, '{'), "correction_id", true), r.Correction)
		o = appendJSONString(appendKey(o, "kind", false), string(r.Kind))
		o = appendJSONString(appendKey(o, "program", false), r.Program)
		o = appendAmount(appendKey(o, "amount", false), r.Amount)
		o = append(appendJSONString(appendKey(o, "mode", false), string(r.Mode)), '}')
	}
	o = append(appendKey(append(o, ']'), "top_ups", false), '[')
	for i, t := range b.TopUps {
		if i > 0 {
			o = append(o, ',')
		}
		o = appendJSONString(appendKey(append(o, '{'), "correction_id", true), t.Correction)
		o = appendJSONString(appendKey(o, "program", false), t.Obligation.Program)
		o = appendJSONString(appendKey(o, "period", false), t.Obligation.Period.String())
		o = appendAmount(appendKey(o, "amount", false), t.Amount)
		o = append(appendJSONString(appendKey(o, "reason", false), t.Reason), '}')
	}
	o = append(appendKey(append(o, ']'), "accounts", false), '{')
	// In key order, as encoding/json writes a map.
	names := make([]string, 0, len(b.Accounts))
	for acc := range b.Accounts {
		names = append(names, string(acc))
	}
	slices.Sort(names)
	for i, n := range names {
		if i > 0 {
			o = append(o, ',')
		}
		o = appendAmount(append(appendJSONString(o, n), ':'), b.Accounts[disbursement.Account(n)])
	}
	o = append(appendKey(append(o, '}'), "position", false), '"')
	o = strconv.AppendUint(o, b.Position.Commit, 10)
	o = append(o, '/')
	o = strconv.AppendUint(o, b.Position.Prepare, 10)
	return append(o, '"', '}')
}

func appendBucket(o []byte, bk *projections.BalanceBucket) []byte {
	o = appendAmount(appendKey(append(o, '{'), "gross", true), bk.Gross)
	o = appendAmount(appendKey(o, "net", false), bk.Net)
	o = append(appendKey(o, "periods", false), '[')
	for i, p := range bk.Periods {
		if i > 0 {
			o = append(o, ',')
		}
		o = appendJSONString(o, p.String())
	}
	o = append(appendKey(append(o, ']'), "lines", false), '[')
	for i := range bk.Lines {
		l := &bk.Lines[i]
		if i > 0 {
			o = append(o, ',')
		}
		o = appendJSONString(appendKey(append(o, '{'), "program", true), l.Program)
		o = appendJSONString(appendKey(o, "period", false), l.Period.String())
		o = appendJSONString(appendKey(o, "top_up", false), l.TopUp)
		o = appendAmount(appendKey(o, "gross", false), l.Gross)
		o = appendAmount(appendKey(o, "net", false), l.Net)
		o = appendJSONString(appendKey(o, "status", false), string(l.Status))
		o = appendJSONString(appendKey(o, "run_id", false), l.RunID)
		o = append(appendJSONString(appendKey(o, "payment_id", false), l.PaymentID), '}')
	}
	return append(o, ']', '}')
}

func toBucketJSON(b projections.BalanceBucket) balanceBucketJSON {
	out := balanceBucketJSON{Gross: toMoneyJSON(b.Gross), Net: toMoneyJSON(b.Net),
		Periods: make([]string, len(b.Periods)), Lines: make([]balanceLineJSON, len(b.Lines))}
	for i, p := range b.Periods {
		out.Periods[i] = p.String()
	}
	for i, l := range b.Lines {
		out.Lines[i] = balanceLineJSON{Program: l.Program, Period: l.Period.String(), TopUp: l.TopUp,
			Gross: toMoneyJSON(l.Gross), Net: toMoneyJSON(l.Net), Status: string(l.Status), RunID: l.RunID, PaymentID: l.PaymentID}
	}
	return out
}

type (
	attemptPayeeJSON struct {
		CitizenID     string `json:"citizen_id"`
		Name          string `json:"name"`
		Proxy         bool   `json:"proxy"`
		Method        string `json:"method"`
		BankCode      string `json:"bank_code"`
		AccountNumber string `json:"account_number"` // masked: *********4567
		District      string `json:"district"`
		Ward          string `json:"ward"`
	}
	offsetJSON struct {
		CorrectionID string    `json:"correction_id"`
		Amount       moneyJSON `json:"amount"`
	}
	paymentTraceJSON struct {
		Entitlement string     `json:"entitlement"`
		Rule        string     `json:"rule"`
		Rate        *moneyJSON `json:"rate"`
		Decree      string     `json:"decree"`
	}
	// paymentAttemptJSON is one attempt to pay one obligation.
	paymentAttemptJSON struct {
		RunID      string           `json:"run_id"`
		PaymentID  string           `json:"payment_id"`
		CitizenID  string           `json:"citizen_id"`
		Program    string           `json:"program"`
		Period     string           `json:"period"`
		TopUp      string           `json:"top_up"`
		Attempt    int              `json:"attempt"`
		Status     string           `json:"status"`
		Payee      attemptPayeeJSON `json:"payee"`
		Gross      moneyJSON        `json:"gross"`
		Net        moneyJSON        `json:"net"`
		Offsets    []offsetJSON     `json:"offsets"`
		Reference  string           `json:"reference"`
		Reason     string           `json:"reason"`
		Detail     string           `json:"detail"`
		IssuedAt   time.Time        `json:"issued_at"`
		UpdatedAt  time.Time        `json:"updated_at"`
		AnsweredAt *time.Time       `json:"answered_at"`
		Trace      paymentTraceJSON `json:"trace"`
	}
	payoutHistoryJSON struct {
		Items      []paymentAttemptJSON `json:"items"`
		NextCursor string               `json:"next_cursor,omitempty"`
		Position   eventstore.Position  `json:"position"`
	}
)

func (s *Server) listPayouts(c echo.Context) error {
	cid, err := citizenIDParam(c)
	if err != nil {
		return err
	}
	page, err := parseReadPage(c)
	if err != nil {
		return err
	}
	set, err := s.liveReadModels(c)
	if err != nil {
		return err
	}
	h, err := set.History(c.Request().Context(), cid, page.After, page.Limit)
	if err != nil {
		return readError(err)
	}
	out := payoutHistoryJSON{Items: make([]paymentAttemptJSON, len(h.Items)), NextCursor: nextCursor(h.Next), Position: h.Position}
	for i, r := range h.Items {
		out.Items[i] = toAttemptJSON(r)
	}
	return c.JSON(http.StatusOK, out)
}

func toAttemptJSON(r projections.PaymentRow) paymentAttemptJSON {
	k, p := r.Obligation, r.Payee
	out := paymentAttemptJSON{
		RunID: r.RunID, PaymentID: r.PaymentID, CitizenID: k.CitizenID, Program: k.Program, Period: k.Period.String(), TopUp: k.TopUp,
		Attempt: r.Attempt, Status: string(r.Status),
		Payee: attemptPayeeJSON{CitizenID: p.CitizenID, Name: p.Name, Proxy: p.Proxy, Method: string(p.Method),
			BankCode: p.BankCode, AccountNumber: p.AccountMasked, District: p.District, Ward: p.Ward},
		Gross: toMoneyJSON(r.Gross), Net: toMoneyJSON(r.Net), Offsets: make([]offsetJSON, len(r.Offsets)),
		Reference: r.Reference, Reason: r.Reason, Detail: r.Detail,
		IssuedAt: r.IssuedAt, UpdatedAt: r.UpdatedAt, AnsweredAt: timeOrNil(r.AnsweredAt),
		Trace: paymentTraceJSON{Entitlement: r.Trace.Entitlement, Rule: r.Trace.Rule, Rate: toMoneyPtr(r.Trace.Rate), Decree: r.Trace.Decree},
	}
	for i, o := range r.Offsets {
		out.Offsets[i] = offsetJSON{CorrectionID: o.Correction, Amount: toMoneyJSON(o.Amount)}
	}
	return out
}

// citizenIDParam is the path's citizen ID, 12 digits.
func citizenIDParam(c echo.Context) (string, error) {
	cid := c.Param("citizen_id")
	if len(cid) != 12 || !validCode(cid, 12) {
		return "", NewProblem(http.StatusBadRequest, "invalid_identifier",
			"citizen_id: want the 12 digits of the citizen ID card (CCCD)").WithField("citizen_id", "want 12 digits")
	}
	return cid, nil
}

// beneficiaryReadError is a 404 for a person the read models do not know.
func beneficiaryReadError(err error, cid string) error {
	if errors.Is(err, projections.ErrNotFound) {
		return Problemf(http.StatusNotFound, "beneficiary_not_found",
			"no beneficiary is registered with citizen ID %s (as of the read models' position; pass min_position to include your latest write)", cid).
			WithField("citizen_id", "not registered")
	}
	return readError(err)
}
