package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/labstack/echo/v4"
)

// The catalogue: programs (the kinds of benefit and their amount rules) and
// base levels (rate schedules set by decree). Both live in the one
// catalogue stream, whose revision is the ETag of every catalogue resource,
// and If-Match on a catalogue command takes it. Definitions and rates are
// never edited: re-sending one that is already there changes nothing (200),
// the same code with other content is a 409.
func (s *Server) catalogueRoutes() []Route {
	// Only admins change the catalogue, as the ledger requires: a rate
	// change alters what thousands of people are owed.
	admins := []domain.Role{domain.RoleAdmin}
	return []Route{
		{Method: http.MethodGet, Path: "/v1/programs", Handler: s.listPrograms, Roles: AllRoles},
		{Method: http.MethodPost, Path: "/v1/programs", Handler: s.defineProgram, Roles: admins},
		{Method: http.MethodGet, Path: "/v1/programs/:code", Handler: s.getProgram, Roles: AllRoles},
		{Method: http.MethodGet, Path: "/v1/base-levels", Handler: s.listBaseLevels, Roles: AllRoles},
		{Method: http.MethodPost, Path: "/v1/base-levels", Handler: s.defineBaseLevel, Roles: admins},
		{Method: http.MethodGet, Path: "/v1/base-levels/:code", Handler: s.getBaseLevel, Roles: AllRoles},
		{Method: http.MethodPost, Path: "/v1/base-levels/:code/rates", Handler: s.setBaseLevelRate, Roles: admins},
	}
}

type (
	amountRuleJSON struct {
		Kind      string      `json:"kind"`
		Amount    *moneyJSON  `json:"amount"`
		Tiers     []moneyJSON `json:"tiers"`
		BaseLevel string      `json:"base_level"`
	}
	programJSON struct {
		Code      string         `json:"code"`
		Name      string         `json:"name"`
		Kind      string         `json:"kind"`
		Rule      amountRuleJSON `json:"rule"`
		Reference string         `json:"reference"`
	}
	rateJSON struct {
		EffectiveFrom string    `json:"effective_from"`
		Amount        moneyJSON `json:"amount"`
		DecreeRef     string    `json:"decree_ref"`
	}
	baseLevelJSON struct {
		Code      string     `json:"code"`
		Name      string     `json:"name"`
		Reference string     `json:"reference"`
		Rates     []rateJSON `json:"rates"`
	}
	programWritten struct {
		Program programJSON `json:"program"`
		Events  []eventJSON `json:"events"`
		Written
	}
	baseLevelWritten struct {
		BaseLevel baseLevelJSON `json:"base_level"`
		Events    []eventJSON   `json:"events"`
		Written
	}
)

func toProgramJSON(p entitlement.Program) programJSON {
	r := p.Rule
	rule := amountRuleJSON{Kind: string(r.Kind), Amount: toMoneyPtr(r.Amount), Tiers: make([]moneyJSON, len(r.Tiers)), BaseLevel: r.BaseLevel}
	for i, t := range r.Tiers {
		rule.Tiers[i] = toMoneyJSON(t)
	}
	return programJSON{Code: p.Code, Name: p.Name, Kind: string(p.Kind), Rule: rule, Reference: p.Reference}
}

func toBaseLevelJSON(b entitlement.BaseLevel) baseLevelJSON {
	out := baseLevelJSON{Code: b.Code, Name: b.Name, Reference: b.Reference, Rates: make([]rateJSON, len(b.Rates))}
	for i, r := range b.Rates {
		out.Rates[i] = rateJSON{EffectiveFrom: r.From.String(), Amount: toMoneyJSON(r.Amount), DecreeRef: r.DecreeRef}
	}
	return out
}

// catalogue reads the current catalogue and sets its ETag.
func (s *Server) catalogue(c echo.Context) (entitlement.Catalogue, error) {
	cat, rev, err := s.deps.Ledger.Catalogue(c.Request().Context())
	if err != nil {
		return cat, ledgerError(err)
	}
	if rev >= 0 {
		SetETag(c, uint64(rev))
	}
	return cat, nil
}

// sortedValues returns a map's values sorted by key.
func sortedValues[T any](m map[string]T) ([]string, []T) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]T, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return keys, vals
}

func (s *Server) listPrograms(c echo.Context) error {
	page, err := ParsePage(c)
	if err != nil {
		return err
	}
	cat, err := s.catalogue(c)
	if err != nil {
		return err
	}
	_, progs := sortedValues(cat.Programs)
	items := make([]programJSON, len(progs))
	for i, p := range progs {
		items[i] = toProgramJSON(p)
	}
	return c.JSON(http.StatusOK, Paginate(items, func(p programJSON) string { return p.Code }, page))
}

func (s *Server) getProgram(c echo.Context) error {
	cat, err := s.catalogue(c)
	if err != nil {
		return err
	}
	p, ok := cat.Programs[c.Param("code")]
	if !ok {
		return domain.Rejectf(domain.NotFound, "program_not_found", "code", "no program has code %q", clip(c.Param("code")))
	}
	return c.JSON(http.StatusOK, toProgramJSON(p))
}

func (s *Server) listBaseLevels(c echo.Context) error {
	page, err := ParsePage(c)
	if err != nil {
		return err
	}
	cat, err := s.catalogue(c)
	if err != nil {
		return err
	}
	_, levels := sortedValues(cat.BaseLevels)
	items := make([]baseLevelJSON, len(levels))
	for i, b := range levels {
		items[i] = toBaseLevelJSON(b)
	}
	return c.JSON(http.StatusOK, Paginate(items, func(b baseLevelJSON) string { return b.Code }, page))
}

func (s *Server) getBaseLevel(c echo.Context) error {
	cat, err := s.catalogue(c)
	if err != nil {
		return err
	}
	b, ok := cat.BaseLevels[c.Param("code")]
	if !ok {
		return baseLevelNotFound(c.Param("code"))
	}
	return c.JSON(http.StatusOK, toBaseLevelJSON(b))
}

func baseLevelNotFound(code string) error {
	return domain.Rejectf(domain.NotFound, "base_level_not_found", "code", "no base level has code %q", clip(code))
}

// catalogueCommand runs a catalogue command. It answers 201 when the command
// wrote events and 200 when what it defines was already there, with the
// catalogue as it is now (the ETag) and the resource answer picks from it.
func (s *Server) catalogueCommand(c echo.Context, effective domain.Period, cmd entitlement.CatalogueCommand,
	answer func(cat entitlement.Catalogue, events []eventJSON, w Written) (body any, location string, err error),
) error {
	req, err := s.ledgerRequest(c, "")
	if err != nil {
		return err
	}
	if !effective.IsZero() {
		req.EffectiveAt = effective.FirstDay(domain.VietnamZone)
	}
	res, err := s.deps.Ledger.ChangeCatalogue(c.Request().Context(), req, cmd)
	if err != nil {
		return ledgerError(err)
	}
	cat, err := s.catalogue(c)
	if err != nil {
		return err
	}
	body, location, err := answer(cat, toEventsJSON(res.Events), Written{res.Position})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if len(res.Events) > 0 {
		status = http.StatusCreated
	}
	Logger(c).Info("catalogue changed", "command", fmt.Sprintf("%T", cmd), "events", len(res.Events), "replayed", res.Replayed)
	c.Response().Header().Set(echo.HeaderLocation, location)
	markReplayed(c, res)
	SetPosition(c, res.Position)
	return c.JSON(status, body)
}

type amountRuleInput struct {
	Kind      string      `json:"kind"`
	Amount    *moneyJSON  `json:"amount"`
	Tiers     []moneyJSON `json:"tiers"`
	BaseLevel string      `json:"base_level"`
}

type defineProgramRequest struct {
	Code      string          `json:"code"`
	Name      string          `json:"name"`
	Kind      string          `json:"kind"`
	Rule      amountRuleInput `json:"rule"`
	Reference string          `json:"reference"`
}

func (s *Server) defineProgram(c echo.Context) error {
	var in defineProgramRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	if len(in.Rule.Tiers) > entitlement.MaxTiers {
		return domain.Reject("invalid_rule", "rule.tiers", "at most %d tiers", entitlement.MaxTiers)
	}
	var f fieldErrors
	rule := entitlement.AmountRule{Kind: entitlement.RuleKind(in.Rule.Kind), Amount: f.money("rule.amount", in.Rule.Amount), BaseLevel: in.Rule.BaseLevel}
	for i := range in.Rule.Tiers {
		if m := f.money("rule.tiers["+strconv.Itoa(i)+"]", &in.Rule.Tiers[i]); m != nil {
			rule.Tiers = append(rule.Tiers, *m)
		}
	}
	if err := f.err(); err != nil {
		return err
	}
	cmd := entitlement.DefineProgram{Code: in.Code, Name: in.Name, Kind: entitlement.Kind(in.Kind), Rule: rule, Reference: in.Reference}
	return s.catalogueCommand(c, domain.Period{}, cmd, func(cat entitlement.Catalogue, evs []eventJSON, w Written) (any, string, error) {
		p, ok := cat.Programs[cmd.Code]
		if !ok {
			return nil, "", fmt.Errorf("program %s was written but is not in the catalogue read after", cmd.Code)
		}
		return programWritten{Program: toProgramJSON(p), Events: evs, Written: w}, "/v1/programs/" + url.PathEscape(cmd.Code), nil
	})
}

type defineBaseLevelRequest struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	Reference string `json:"reference"`
}

func (s *Server) defineBaseLevel(c echo.Context) error {
	var in defineBaseLevelRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	cmd := entitlement.DefineBaseLevel{Code: in.Code, Name: in.Name, Reference: in.Reference}
	return s.catalogueCommand(c, domain.Period{}, cmd, s.answerBaseLevel(cmd.Code))
}

type setRateRequest struct {
	EffectiveFrom string     `json:"effective_from"`
	Amount        *moneyJSON `json:"amount"`
	DecreeRef     string     `json:"decree_ref"`
}

func (s *Server) setBaseLevelRate(c echo.Context) error {
	var in setRateRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := entitlement.SetBaseLevelRate{Code: c.Param("code"), EffectiveFrom: f.period("effective_from", in.EffectiveFrom), DecreeRef: in.DecreeRef}
	amount := f.money("amount", in.Amount)
	if err := f.err(); err != nil {
		return err
	}
	if amount == nil {
		return domain.Reject("required", "amount", `is required: the rate in whole dong, e.g. {"amount": "500000", "currency": "VND"}`)
	}
	cmd.Amount = *amount
	return s.catalogueCommand(c, cmd.EffectiveFrom, cmd, s.answerBaseLevel(cmd.Code))
}

func (s *Server) answerBaseLevel(code string) func(entitlement.Catalogue, []eventJSON, Written) (any, string, error) {
	return func(cat entitlement.Catalogue, evs []eventJSON, w Written) (any, string, error) {
		b, ok := cat.BaseLevels[code]
		if !ok {
			return nil, "", fmt.Errorf("base level %s was written but is not in the catalogue read after", code)
		}
		return baseLevelWritten{BaseLevel: toBaseLevelJSON(b), Events: evs, Written: w}, "/v1/base-levels/" + url.PathEscape(code), nil
	}
}
