package api

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/ledger"
	"github.com/labstack/echo/v4"
)

// The beneficiary registry: registration and the life of a record
// (corrections, death or moving away, bank account, payment method,
// proxies), read straight from the beneficiary's stream, so a read always
// shows the last write. The ETag is the stream's revision; entitlements live
// in the same stream and share it.
//
// Every change is a POST of a command (never PUT or DELETE), so that every
// change carries an Idempotency-Key: unlinking a bank account is
// POST .../bank-account/unlink, replacing it POST .../bank-account/replace.
//
// Searching the registry (by name, district, ward, category) is a query on
// the registry read model: search.go.

// registryWriters may change the registry and entitlements, as the ledger
// allows (it also allows the system role, which no person has).
var registryWriters = []domain.Role{domain.RoleRegistrar, domain.RoleAdmin}

func (s *Server) beneficiaryRoutes() []Route {
	const one = "/v1/beneficiaries/:citizen_id"
	w := registryWriters
	return []Route{
		{Method: http.MethodPost, Path: "/v1/beneficiaries", Handler: s.registerBeneficiary, Roles: w},
		{Method: http.MethodGet, Path: "/v1/beneficiaries", Handler: s.searchBeneficiaries, Roles: AllRoles}, // search.go
		{Method: http.MethodGet, Path: one, Handler: s.getBeneficiary, Roles: AllRoles},
		{Method: http.MethodPost, Path: one + "/corrections", Handler: s.correctBeneficiary, Roles: w},
		{Method: http.MethodPost, Path: one + "/death", Handler: registryHandler(s, http.StatusOK, deathCommand), Roles: w},
		{Method: http.MethodPost, Path: one + "/move-away", Handler: registryHandler(s, http.StatusOK, moveAwayCommand), Roles: w},
		{Method: http.MethodPost, Path: one + "/bank-account", Handler: registryHandler(s, http.StatusOK, linkCommand), Roles: w},
		{Method: http.MethodPost, Path: one + "/bank-account/replace", Handler: registryHandler(s, http.StatusOK, replaceCommand), Roles: w},
		{Method: http.MethodPost, Path: one + "/bank-account/unlink", Handler: registryHandler(s, http.StatusOK, unlinkCommand), Roles: w},
		{Method: http.MethodPost, Path: one + "/payment-method", Handler: registryHandler(s, http.StatusOK, methodCommand), Roles: w},
		{Method: http.MethodPost, Path: one + "/proxies", Handler: registryHandler(s, http.StatusCreated, proxyCommand), Roles: w},
		{Method: http.MethodPost, Path: one + "/proxies/:proxy_id/revoke", Handler: registryHandler(s, http.StatusOK, revokeCommand), Roles: w},
	}
}

// Wire types of the registry.
type (
	addressJSON struct {
		Street       string `json:"street"`
		DistrictCode string `json:"district_code"`
		DistrictName string `json:"district_name"`
		WardCode     string `json:"ward_code"`
		WardName     string `json:"ward_name"`
		Catalogue    string `json:"catalogue"`
	}
	exitJSON struct {
		Cause       string `json:"cause"`
		Date        string `json:"date"`
		LastPeriod  string `json:"last_period"`
		DocumentRef string `json:"document_ref"`
		Destination string `json:"destination"`
	}
	bankAccountJSON struct {
		BankCode      string `json:"bank_code"`
		AccountNumber string `json:"account_number"`
		HolderName    string `json:"holder_name"`
		Holder        string `json:"holder"`
		ProxyID       string `json:"proxy_id"`
	}
	proxyJSON struct {
		ID           string  `json:"id"`
		FullName     string  `json:"full_name"`
		CitizenID    string  `json:"citizen_id"`
		Relationship string  `json:"relationship"`
		Reason       string  `json:"reason"`
		ReasonNote   string  `json:"reason_note"`
		ValidFrom    string  `json:"valid_from"`
		ValidTo      string  `json:"valid_to"`
		DocumentRef  string  `json:"document_ref"`
		RevokedFrom  *string `json:"revoked_from"`
		RevokeReason string  `json:"revoke_reason"`
		// ActiveToday: the authorization applies today (in Vietnam).
		ActiveToday bool `json:"active_today"`
	}
	beneficiaryJSON struct {
		CitizenID     string            `json:"citizen_id"`
		FullName      string            `json:"full_name"`
		DateOfBirth   string            `json:"date_of_birth"`
		Sex           string            `json:"sex"`
		Address       addressJSON       `json:"address"`
		Category      string            `json:"category"`
		HouseholdID   string            `json:"household_id"`
		Status        string            `json:"status"` // active, deceased, moved_away
		Exit          *exitJSON         `json:"exit"`
		PaymentMethod string            `json:"payment_method"`
		BankAccount   *bankAccountJSON  `json:"bank_account"`
		Proxies       []proxyJSON       `json:"proxies"`
		Entitlements  []entitlementJSON `json:"entitlements"`
		Revision      int64             `json:"revision"`
	}
	// beneficiaryWritten answers a registry command: the record after it,
	// the events it appended, and the position to read it back from the
	// projections.
	beneficiaryWritten struct {
		Beneficiary beneficiaryJSON `json:"beneficiary"`
		Events      []eventJSON     `json:"events"`
		Written
	}
)

func toBeneficiaryJSON(b registry.Beneficiary, revision int64, today domain.Date) beneficiaryJSON {
	a := b.Address
	out := beneficiaryJSON{
		CitizenID: b.CitizenID, FullName: b.FullName, DateOfBirth: b.DateOfBirth.String(), Sex: string(b.Sex),
		Address: addressJSON{
			Street: a.Street, DistrictCode: a.DistrictCode, DistrictName: a.DistrictName,
			WardCode: a.WardCode, WardName: a.WardName, Catalogue: a.Catalogue,
		},
		Category: string(b.Category), HouseholdID: b.HouseholdID, Status: "active",
		PaymentMethod: string(b.PaymentMethod), Proxies: []proxyJSON{},
		Entitlements: toEntitlementsJSON(b.Entitlements.Entitlements, today.Period()), Revision: revision,
	}
	if x := b.Exit; x != nil {
		out.Status = "deceased"
		if x.Cause == entitlement.EndedByMove {
			out.Status = "moved_away"
		}
		out.Exit = &exitJSON{
			Cause: string(x.Cause), Date: x.Date.String(), LastPeriod: x.LastPeriod.String(),
			DocumentRef: x.DocumentRef, Destination: x.Destination,
		}
	}
	if ba := b.BankAccount; ba != nil {
		out.BankAccount = &bankAccountJSON{
			BankCode: ba.BankCode, AccountNumber: ba.AccountNumber, HolderName: ba.HolderName,
			Holder: string(ba.Holder), ProxyID: ba.ProxyID,
		}
	}
	for _, p := range b.Proxies {
		out.Proxies = append(out.Proxies, proxyJSON{
			ID: p.ID, FullName: p.FullName, CitizenID: p.CitizenID, Relationship: p.Relationship,
			Reason: string(p.Reason), ReasonNote: p.ReasonNote, ValidFrom: p.ValidFrom.String(), ValidTo: p.ValidTo.String(),
			DocumentRef: p.DocumentRef, RevokedFrom: dateOrNil(p.RevokedFrom), RevokeReason: p.RevokeReason,
			ActiveToday: p.ActiveOn(today),
		})
	}
	return out
}

// today is the date in Vietnam by the ledger's clock, the one its rules
// decide with (which proxy applies today, which period is current).
func (s *Server) today() domain.Date { return s.deps.Ledger.Today() }

func (s *Server) getBeneficiary(c echo.Context) error {
	ld, err := s.deps.Ledger.LoadBeneficiary(c.Request().Context(), c.Param("citizen_id"))
	if err != nil {
		return ledgerError(err)
	}
	SetETag(c, uint64(ld.Revision))
	return c.JSON(http.StatusOK, toBeneficiaryJSON(ld.State, ld.Revision, s.today()))
}

// registryCommand runs a registry command against the beneficiary in the
// path and answers with the record after it. effective, when set, is the
// business date of the fact (a death, a move), recorded in the metadata.
func (s *Server) registryCommand(c echo.Context, status int, reason string, effective domain.Date, cmd registry.Command) error {
	req, err := s.ledgerRequest(c, reason)
	if err != nil {
		return err
	}
	if !effective.IsZero() {
		req.EffectiveAt = effective.Time()
	}
	citizenID := c.Param("citizen_id")
	res, err := s.deps.Ledger.Beneficiary(c.Request().Context(), req, citizenID, cmd)
	if err != nil {
		return ledgerError(err)
	}
	if status == http.StatusCreated {
		c.Response().Header().Set(echo.HeaderLocation, beneficiaryPath(citizenID))
	}
	return s.beneficiaryResult(c, status, citizenID, res)
}

func beneficiaryPath(citizenID string) string {
	return "/v1/beneficiaries/" + url.PathEscape(citizenID)
}

// beneficiaryResult answers a registry command with the record as the
// command left it (the ledger folds the new events into the state it
// loaded, so nothing is read again); the ETag is the revision of what the
// body shows. For a replayed command that is the record as it is now.
func (s *Server) beneficiaryResult(c echo.Context, status int, citizenID string, res ledger.Result) error {
	b, rev, err := stateAfter(citizenID, res)
	if err != nil {
		return err
	}
	markReplayed(c, res)
	SetPosition(c, res.Position)
	SetETag(c, uint64(rev))
	return c.JSON(status, beneficiaryWritten{
		Beneficiary: toBeneficiaryJSON(b, rev, s.today()),
		Events:      toEventsJSON(res.Events),
		Written:     Written{res.Position},
	})
}

// stateAfter is the beneficiary a command left: the ledger's Result
// carries it for every registry and entitlement command.
func stateAfter(citizenID string, res ledger.Result) (registry.Beneficiary, int64, error) {
	b, ok := res.State.(registry.Beneficiary)
	if !ok || !b.Registered {
		return registry.Beneficiary{}, 0, fmt.Errorf("ledger answered a command on %s without the record it left (%T)", citizenID, res.State)
	}
	return b, res.StateRevision, nil
}

type addressInputJSON struct {
	Street       string `json:"street"`
	DistrictCode string `json:"district_code"`
	WardCode     string `json:"ward_code"`
}

func (a addressInputJSON) toInput() registry.AddressInput {
	return registry.AddressInput{Street: a.Street, DistrictCode: a.DistrictCode, WardCode: a.WardCode}
}

type registerRequest struct {
	CitizenID   string           `json:"citizen_id"`
	FullName    string           `json:"full_name"`
	DateOfBirth string           `json:"date_of_birth"`
	Sex         string           `json:"sex"`
	Address     addressInputJSON `json:"address"`
	Category    string           `json:"category"`
	HouseholdID string           `json:"household_id"`
}

func (s *Server) registerBeneficiary(c echo.Context) error {
	var in registerRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := registry.Register{
		CitizenID: in.CitizenID, FullName: in.FullName, DateOfBirth: f.date("date_of_birth", in.DateOfBirth),
		Sex: registry.Sex(in.Sex), Address: in.Address.toInput(), Category: registry.Category(in.Category),
		HouseholdID: in.HouseholdID,
	}
	if err := f.err(); err != nil {
		return err
	}
	if v, present, _ := IfMatch(c); present && v.IsStreamExists() {
		// "*" asks for an existing record, and a registration creates one.
		return NewProblem(http.StatusPreconditionFailed, "precondition_failed",
			"If-Match: * asks that the record exist, but a registration creates it; send no If-Match")
	}
	req, err := s.ledgerRequest(c, "")
	if err != nil {
		return err
	}
	res, err := s.deps.Ledger.Register(c.Request().Context(), req, cmd)
	if err != nil {
		return ledgerError(err)
	}
	Logger(c).Info("beneficiary registered", "stream", res.Stream, "replayed", res.Replayed)
	c.Response().Header().Set(echo.HeaderLocation, beneficiaryPath(cmd.CitizenID))
	return s.beneficiaryResult(c, http.StatusCreated, cmd.CitizenID, res)
}

// correctionRequest: fields left out (or null) are kept; household_id ""
// clears it.
type correctionRequest struct {
	FullName    *string           `json:"full_name"`
	DateOfBirth *string           `json:"date_of_birth"`
	Sex         *string           `json:"sex"`
	Address     *addressInputJSON `json:"address"`
	Category    *string           `json:"category"`
	HouseholdID *string           `json:"household_id"`
	Reason      string            `json:"reason"`
}

func (s *Server) correctBeneficiary(c echo.Context) error {
	var in correctionRequest
	if err := Decode(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	cmd := registry.CorrectDetails{FullName: in.FullName, HouseholdID: in.HouseholdID, Reason: in.Reason}
	if in.DateOfBirth != nil {
		d := f.date("date_of_birth", *in.DateOfBirth)
		cmd.DateOfBirth = &d
	}
	if in.Sex != nil {
		sex := registry.Sex(*in.Sex)
		cmd.Sex = &sex
	}
	if in.Address != nil {
		a := in.Address.toInput()
		cmd.Address = &a
	}
	if in.Category != nil {
		cat := registry.Category(*in.Category)
		cmd.Category = &cat
	}
	if err := f.err(); err != nil {
		return err
	}
	return s.registryCommand(c, http.StatusOK, in.Reason, domain.Date{}, cmd)
}

type deathRequest struct {
	DateOfDeath string `json:"date_of_death"`
	DocumentRef string `json:"document_ref"`
}

// registryHandler is the handler of a registry command sent as a JSON body
// of type In: build turns the body into the command, with the reason to
// record and the business date of the fact (zero when none), and notes
// field errors in f; the record after the command is the answer.
func registryHandler[In any](s *Server, status int, build func(c echo.Context, in In, f *fieldErrors) (cmd registry.Command, reason string, effective domain.Date)) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in In
		if err := Decode(c, &in); err != nil {
			return err
		}
		var f fieldErrors
		cmd, reason, effective := build(c, in, &f)
		if err := f.err(); err != nil {
			return err
		}
		return s.registryCommand(c, status, reason, effective, cmd)
	}
}

func deathCommand(_ echo.Context, in deathRequest, f *fieldErrors) (registry.Command, string, domain.Date) {
	cmd := registry.RecordDeath{DateOfDeath: f.date("date_of_death", in.DateOfDeath), DocumentRef: in.DocumentRef}
	return cmd, "", cmd.DateOfDeath
}

type moveAwayRequest struct {
	MovedOn     string `json:"moved_on"`
	Destination string `json:"destination"`
	DocumentRef string `json:"document_ref"`
}

func moveAwayCommand(_ echo.Context, in moveAwayRequest, f *fieldErrors) (registry.Command, string, domain.Date) {
	cmd := registry.RecordMoveAway{MovedOn: f.date("moved_on", in.MovedOn), Destination: in.Destination, DocumentRef: in.DocumentRef}
	return cmd, "", cmd.MovedOn
}

type bankAccountRequest struct {
	BankCode      string `json:"bank_code"`
	AccountNumber string `json:"account_number"`
	HolderName    string `json:"holder_name"`
}

func linkCommand(_ echo.Context, in bankAccountRequest, _ *fieldErrors) (registry.Command, string, domain.Date) {
	return registry.LinkBankAccount{BankCode: in.BankCode, AccountNumber: in.AccountNumber, HolderName: in.HolderName}, "", domain.Date{}
}

type replaceBankAccountRequest struct {
	BankCode      string `json:"bank_code"`
	AccountNumber string `json:"account_number"`
	HolderName    string `json:"holder_name"`
	Reason        string `json:"reason"`
}

func replaceCommand(_ echo.Context, in replaceBankAccountRequest, _ *fieldErrors) (registry.Command, string, domain.Date) {
	return registry.ReplaceBankAccount{BankCode: in.BankCode, AccountNumber: in.AccountNumber, HolderName: in.HolderName, Reason: in.Reason}, in.Reason, domain.Date{}
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

func unlinkCommand(_ echo.Context, in reasonRequest, _ *fieldErrors) (registry.Command, string, domain.Date) {
	return registry.UnlinkBankAccount{Reason: in.Reason}, in.Reason, domain.Date{}
}

type paymentMethodRequest struct {
	Method string `json:"method"`
}

func methodCommand(_ echo.Context, in paymentMethodRequest, _ *fieldErrors) (registry.Command, string, domain.Date) {
	return registry.ChoosePaymentMethod{Method: registry.PaymentMethod(in.Method)}, "", domain.Date{}
}

type authorizeProxyRequest struct {
	FullName     string `json:"full_name"`
	CitizenID    string `json:"citizen_id"`
	Relationship string `json:"relationship"`
	Reason       string `json:"reason"`
	ReasonNote   string `json:"reason_note"`
	ValidFrom    string `json:"valid_from"`
	ValidTo      string `json:"valid_to"`
	DocumentRef  string `json:"document_ref"`
}

// proxyCommand: the answer is 201 with the record, the new authorization
// the last of its proxies (they are kept in authorization order).
func proxyCommand(_ echo.Context, in authorizeProxyRequest, f *fieldErrors) (registry.Command, string, domain.Date) {
	return registry.AuthorizeProxy{
		FullName: in.FullName, CitizenID: in.CitizenID, Relationship: in.Relationship,
		Reason: registry.ProxyReason(in.Reason), ReasonNote: in.ReasonNote,
		ValidFrom: f.date("valid_from", in.ValidFrom), ValidTo: f.date("valid_to", in.ValidTo), DocumentRef: in.DocumentRef,
	}, "", domain.Date{}
}

type revokeProxyRequest struct {
	From   string `json:"from"` // default today
	Reason string `json:"reason"`
}

func revokeCommand(c echo.Context, in revokeProxyRequest, f *fieldErrors) (registry.Command, string, domain.Date) {
	return registry.RevokeProxy{ProxyID: c.Param("proxy_id"), From: f.date("from", in.From), Reason: in.Reason}, in.Reason, domain.Date{}
}
