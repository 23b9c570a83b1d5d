package registry

import (
	"fmt"
	"slices"
	"unicode"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
)

// Bounds on what a client sends, checked before anything is decided.
const (
	MaxNameRunes         = 200
	MaxStreetRunes       = 200
	MaxReasonRunes       = 500
	MaxDocumentRefRunes  = 100
	MaxRelationshipRunes = 50
	MaxDestinationRunes  = 200
	MaxHouseholdIDLen    = 30
	MinAccountDigits     = 6
	MaxAccountDigits     = 20
	// MaxProxies bounds the authorizations one record keeps (they are never
	// deleted); a person rarely has more than a handful in a lifetime.
	MaxProxies = 100
	// MaxProxyYears bounds an authorization's validity: it is certified and
	// time-limited, and renewed rather than granted for life.
	MaxProxyYears = 10
)

// Env is what deciding a registry command reads besides the beneficiary:
// today's date (in Vietnam) and the administrative-units catalogue.
type Env struct {
	Today domain.Date
	Units *AdminUnits // nil means HanoiAdminUnits()
}

func (e Env) units() *AdminUnits {
	if e.Units != nil {
		return e.Units
	}
	return HanoiAdminUnits()
}

// Command is a command decided against a beneficiary.
type Command interface {
	decide(b Beneficiary, env Env) ([]domain.Event, error)
}

// Decide decides cmd against b. It returns the events to append (none when
// the command changes nothing), or a *domain.RuleError saying why not.
func Decide(b Beneficiary, env Env, cmd Command) ([]domain.Event, error) {
	if _, isRegister := cmd.(Register); !isRegister && !b.Registered {
		return nil, notRegistered()
	}
	return cmd.decide(b, env)
}

// DecideEntitlement decides an entitlement command against b's book.
func DecideEntitlement(b Beneficiary, env entitlement.Env, cmd entitlement.Command) ([]domain.Event, error) {
	if !b.Registered {
		return nil, notRegistered()
	}
	return entitlement.Decide(b.Entitlements, b.Holder(), env, cmd)
}

func notRegistered() error {
	return domain.Rejectf(domain.NotFound, "beneficiary_not_found", "citizen_id", "no beneficiary is registered with this citizen ID")
}

// AddressInput is an address as a registrar enters it; the decider adds the
// unit names and the catalogue version.
type AddressInput struct {
	Street       string
	DistrictCode string
	WardCode     string
}

// Registry commands.
type (
	Register struct {
		CitizenID   string
		FullName    string
		DateOfBirth domain.Date
		Sex         Sex
		Address     AddressInput
		Category    Category
		HouseholdID string // required for near-poor households
	}
	// CorrectDetails corrects wrong personal details; nil fields are kept.
	// HouseholdID pointing to "" clears it.
	CorrectDetails struct {
		FullName    *string
		DateOfBirth *domain.Date
		Sex         *Sex
		Address     *AddressInput
		Category    *Category
		HouseholdID *string
		Reason      string
	}
	RecordDeath struct {
		DateOfDeath domain.Date
		DocumentRef string // e.g. the death certificate number
	}
	RecordMoveAway struct {
		MovedOn     domain.Date
		Destination string
		DocumentRef string
	}
	LinkBankAccount struct {
		BankCode      string
		AccountNumber string
		HolderName    string
	}
	ReplaceBankAccount struct {
		BankCode      string
		AccountNumber string
		HolderName    string
		Reason        string
	}
	UnlinkBankAccount struct {
		Reason string
	}
	ChoosePaymentMethod struct {
		Method PaymentMethod
	}
	AuthorizeProxy struct {
		FullName     string
		CitizenID    string
		Relationship string
		Reason       ProxyReason
		ReasonNote   string // required when Reason is OtherReason
		ValidFrom    domain.Date
		ValidTo      domain.Date
		DocumentRef  string
	}
	// RevokeProxy ends an authorization from a day (zero: today).
	RevokeProxy struct {
		ProxyID string
		From    domain.Date
		Reason  string
	}
)

func (cmd Register) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	if err := ValidateCitizenID("citizen_id", cmd.CitizenID); err != nil {
		return nil, err
	}
	if b.Registered {
		return nil, domain.Rejectf(domain.Conflict, "citizen_id_taken", "citizen_id",
			"a beneficiary with citizen ID %s is already registered (%s); correct that record instead of registering again", b.CitizenID, b.FullName)
	}
	name, err := cleanName("full_name", cmd.FullName)
	if err != nil {
		return nil, err
	}
	if err := checkBirth(cmd.DateOfBirth, env.Today); err != nil {
		return nil, err
	}
	if cmd.Sex != Male && cmd.Sex != Female {
		return nil, domain.Reject("invalid_sex", "sex", "must be %q or %q, as on the citizen ID card", Male, Female)
	}
	if err := CheckCitizenIDMatches("citizen_id", cmd.CitizenID, cmd.DateOfBirth, cmd.Sex); err != nil {
		return nil, err
	}
	addr, err := resolveAddress(env.units(), cmd.Address)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(Categories, cmd.Category) {
		return nil, domain.Reject("invalid_category", "category", "must be one of %v", Categories)
	}
	hh, err := checkHousehold(cmd.Category, cmd.HouseholdID)
	if err != nil {
		return nil, err
	}
	return []domain.Event{BeneficiaryRegistered{
		CitizenID: cmd.CitizenID, FullName: name, DateOfBirth: cmd.DateOfBirth, Sex: cmd.Sex,
		Address: addr, Category: cmd.Category, HouseholdID: hh,
	}}, nil
}

func (cmd CorrectDetails) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	e := BeneficiaryDetailsCorrected{CitizenID: b.CitizenID, Reason: reason}
	after := b // the details as they would be, to check them together
	if cmd.FullName != nil {
		name, err := cleanName("full_name", *cmd.FullName)
		if err != nil {
			return nil, err
		}
		if name != b.FullName {
			e.FullName, after.FullName = &name, name
		}
	}
	if cmd.DateOfBirth != nil && *cmd.DateOfBirth != b.DateOfBirth {
		if err := checkBirth(*cmd.DateOfBirth, env.Today); err != nil {
			return nil, err
		}
		d := *cmd.DateOfBirth
		e.DateOfBirth, after.DateOfBirth = &d, d
	}
	if cmd.Sex != nil && *cmd.Sex != b.Sex {
		if *cmd.Sex != Male && *cmd.Sex != Female {
			return nil, domain.Reject("invalid_sex", "sex", "must be %q or %q, as on the citizen ID card", Male, Female)
		}
		s := *cmd.Sex
		e.Sex, after.Sex = &s, s
	}
	if cmd.Address != nil {
		addr, err := resolveAddress(env.units(), *cmd.Address)
		if err != nil {
			return nil, err
		}
		if addr != b.Address {
			e.Address, after.Address = &addr, addr
		}
	}
	if cmd.Category != nil && *cmd.Category != b.Category {
		if !slices.Contains(Categories, *cmd.Category) {
			return nil, domain.Reject("invalid_category", "category", "must be one of %v", Categories)
		}
		c := *cmd.Category
		e.Category, after.Category = &c, c
	}
	if cmd.HouseholdID != nil {
		hh, err := domain.CleanText("household_id", *cmd.HouseholdID, 0, MaxHouseholdIDLen)
		if err != nil {
			return nil, err
		}
		if hh != b.HouseholdID {
			e.HouseholdID, after.HouseholdID = &hh, hh
		}
	}
	if e.FullName == nil && e.DateOfBirth == nil && e.Sex == nil && e.Address == nil && e.Category == nil && e.HouseholdID == nil {
		return nil, domain.Rejectf(domain.Conflict, "no_change", "", "the correction changes nothing: every given detail is already recorded")
	}
	if err := CheckCitizenIDMatches("citizen_id", b.CitizenID, after.DateOfBirth, after.Sex); err != nil {
		return nil, err
	}
	if _, err := checkHousehold(after.Category, after.HouseholdID); err != nil {
		return nil, err
	}
	if b.Exit != nil && b.Exit.Date.Before(after.DateOfBirth) {
		return nil, domain.Reject("invalid_date", "date_of_birth", "is after the recorded exit on %s", b.Exit.Date)
	}
	return []domain.Event{e}, nil
}

func (cmd RecordDeath) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	if err := checkNoExit(b); err != nil {
		return nil, err
	}
	if err := checkEventDate("date_of_death", cmd.DateOfDeath, b, env.Today); err != nil {
		return nil, err
	}
	doc, err := domain.CleanText("document_ref", cmd.DocumentRef, 1, MaxDocumentRefRunes)
	if err != nil {
		return nil, err
	}
	last := cmd.DateOfDeath.Period()
	out := []domain.Event{BeneficiaryDied{CitizenID: b.CitizenID, DateOfDeath: cmd.DateOfDeath, LastPeriod: last, DocumentRef: doc}}
	return append(out, entitlement.EndForExit(b.Entitlements, b.CitizenID, last, entitlement.EndedByDeath)...), nil
}

func (cmd RecordMoveAway) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	if err := checkNoExit(b); err != nil {
		return nil, err
	}
	if err := checkEventDate("moved_on", cmd.MovedOn, b, env.Today); err != nil {
		return nil, err
	}
	dest, err := domain.CleanText("destination", cmd.Destination, 1, MaxDestinationRunes)
	if err != nil {
		return nil, err
	}
	doc, err := domain.CleanText("document_ref", cmd.DocumentRef, 0, MaxDocumentRefRunes)
	if err != nil {
		return nil, err
	}
	last := cmd.MovedOn.Period()
	out := []domain.Event{BeneficiaryMovedAway{CitizenID: b.CitizenID, MovedOn: cmd.MovedOn, LastPeriod: last, Destination: dest, DocumentRef: doc}}
	return append(out, entitlement.EndForExit(b.Entitlements, b.CitizenID, last, entitlement.EndedByMove)...), nil
}

func (cmd LinkBankAccount) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	if a := b.BankAccount; a != nil {
		return nil, domain.Rejectf(domain.Conflict, "bank_account_linked", "",
			"account %s at %s is already linked; replace it instead", maskAccount(a.AccountNumber), a.BankCode)
	}
	acct, err := resolveAccount(b, env, cmd.BankCode, cmd.AccountNumber, cmd.HolderName)
	if err != nil {
		return nil, err
	}
	return []domain.Event{BankAccountLinked{CitizenID: b.CitizenID, BankAccount: acct}}, nil
}

func (cmd ReplaceBankAccount) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	if b.BankAccount == nil {
		return nil, domain.Rejectf(domain.Conflict, "no_bank_account", "", "no account is linked; link one instead")
	}
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	acct, err := resolveAccount(b, env, cmd.BankCode, cmd.AccountNumber, cmd.HolderName)
	if err != nil {
		return nil, err
	}
	if acct == *b.BankAccount {
		return nil, domain.Rejectf(domain.Conflict, "no_change", "", "this account is already the linked one")
	}
	return []domain.Event{BankAccountReplaced{CitizenID: b.CitizenID, BankAccount: acct, Reason: reason}}, nil
}

func (cmd UnlinkBankAccount) decide(b Beneficiary, _ Env) ([]domain.Event, error) {
	if b.BankAccount == nil {
		return nil, domain.Rejectf(domain.Conflict, "no_bank_account", "", "no account is linked")
	}
	if b.PaymentMethod == BankTransfer {
		return nil, domain.Rejectf(domain.Conflict, "account_in_use", "",
			"the beneficiary is paid by bank transfer; choose cash first, or replace the account instead")
	}
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	return []domain.Event{BankAccountUnlinked{CitizenID: b.CitizenID, Reason: reason}}, nil
}

func (cmd ChoosePaymentMethod) decide(b Beneficiary, _ Env) ([]domain.Event, error) {
	switch cmd.Method {
	case Cash:
	case BankTransfer:
		if b.BankAccount == nil {
			return nil, domain.Rejectf(domain.Conflict, "no_bank_account", "method", "link a bank account before choosing bank transfer")
		}
	default:
		return nil, domain.Reject("invalid_method", "method", "must be %q or %q", BankTransfer, Cash)
	}
	if cmd.Method == b.PaymentMethod {
		return nil, nil // already so: nothing to record
	}
	return []domain.Event{PaymentMethodChosen{CitizenID: b.CitizenID, Method: cmd.Method}}, nil
}

func (cmd AuthorizeProxy) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	if b.Exit != nil && b.Exit.Cause == entitlement.EndedByDeath {
		return nil, domain.Rejectf(domain.Conflict, "beneficiary_deceased", "", "the beneficiary died on %s; a deceased person cannot authorize a proxy", b.Exit.Date)
	}
	name, err := cleanName("full_name", cmd.FullName)
	if err != nil {
		return nil, err
	}
	if err := ValidateCitizenID("citizen_id", cmd.CitizenID); err != nil {
		return nil, err
	}
	if cmd.CitizenID == b.CitizenID {
		return nil, domain.Reject("proxy_is_beneficiary", "citizen_id", "is the beneficiary's own citizen ID; a proxy is another person")
	}
	rel, err := domain.CleanText("relationship", cmd.Relationship, 1, MaxRelationshipRunes)
	if err != nil {
		return nil, err
	}
	minNote := 0
	switch cmd.Reason {
	case IllnessOrImmobility, NoLegalCapacity, MinorWithGuardian:
	case OtherReason:
		minNote = 1 // "other" must say what
	default:
		return nil, domain.Reject("invalid_reason", "reason", "must be one of %s, %s, %s, %s", IllnessOrImmobility, NoLegalCapacity, MinorWithGuardian, OtherReason)
	}
	note, err := domain.CleanText("reason_note", cmd.ReasonNote, minNote, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	doc, err := domain.CleanText("document_ref", cmd.DocumentRef, 1, MaxDocumentRefRunes)
	if err != nil {
		return nil, err
	}
	switch {
	case cmd.ValidFrom.IsZero():
		return nil, domain.Reject("required", "valid_from", "is required: the first day the authorization applies (YYYY-MM-DD)")
	case cmd.ValidTo.IsZero():
		return nil, domain.Reject("required", "valid_to", "is required: an authorization is time-limited (YYYY-MM-DD)")
	case cmd.ValidTo.Before(cmd.ValidFrom):
		return nil, domain.Reject("invalid_date", "valid_to", "%s is before valid_from %s", cmd.ValidTo, cmd.ValidFrom)
	case cmd.ValidTo.Before(env.Today):
		return nil, domain.Reject("invalid_date", "valid_to", "%s has already passed; the authorization would never apply", cmd.ValidTo)
	case cmd.ValidTo.After(domain.Date{Year: cmd.ValidFrom.Year + MaxProxyYears, Month: cmd.ValidFrom.Month, Day: cmd.ValidFrom.Day}):
		return nil, domain.Reject("invalid_date", "valid_to", "an authorization may last at most %d years; renew it when it ends", MaxProxyYears)
	}
	for _, p := range b.Proxies {
		last := p.LastDay()
		if last.Before(p.ValidFrom) {
			continue // revoked before it began: it never applied
		}
		if !cmd.ValidFrom.After(last) && !cmd.ValidTo.Before(p.ValidFrom) {
			return nil, domain.Rejectf(domain.Conflict, "proxy_overlap", "valid_from",
				"proxy %s (%s) is authorized from %s to %s; only one proxy at a time: revoke it, or start the new authorization after %s",
				p.ID, p.FullName, p.ValidFrom, last, last)
		}
	}
	if len(b.Proxies) >= MaxProxies {
		return nil, domain.Rejectf(domain.Conflict, "too_many_proxies", "", "the record already holds %d authorizations", MaxProxies)
	}
	return []domain.Event{ProxyAuthorized{
		CitizenID: b.CitizenID, ProxyID: fmt.Sprintf("P%d", len(b.Proxies)+1), FullName: name, ProxyCitizenID: cmd.CitizenID,
		Relationship: rel, Reason: cmd.Reason, ReasonNote: note, ValidFrom: cmd.ValidFrom, ValidTo: cmd.ValidTo, DocumentRef: doc,
	}}, nil
}

func (cmd RevokeProxy) decide(b Beneficiary, env Env) ([]domain.Event, error) {
	i := slices.IndexFunc(b.Proxies, func(p Proxy) bool { return p.ID == cmd.ProxyID })
	if i < 0 {
		return nil, domain.Rejectf(domain.NotFound, "proxy_not_found", "proxy_id", "the beneficiary has no authorization %q", clip(cmd.ProxyID))
	}
	p := b.Proxies[i]
	reason, err := domain.CleanText("reason", cmd.Reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	from := cmd.From
	if from.IsZero() {
		from = env.Today
	}
	if !p.RevokedFrom.IsZero() {
		return nil, domain.Rejectf(domain.Conflict, "proxy_revoked", "proxy_id", "%s was already revoked from %s", p.ID, p.RevokedFrom)
	}
	if from.After(p.ValidTo) {
		return nil, domain.Rejectf(domain.Conflict, "proxy_expired", "from", "%s ends on %s by itself; nothing to revoke from %s", p.ID, p.ValidTo, from)
	}
	return []domain.Event{ProxyRevoked{CitizenID: b.CitizenID, ProxyID: p.ID, RevokedFrom: from, Reason: reason}}, nil
}

// cleanName normalizes a person's name and checks it is made of letters
// (any script, with their diacritics), spaces, and - . ' only.
func cleanName(field, s string) (string, error) {
	name, err := domain.CleanText(field, s, 1, MaxNameRunes)
	if err != nil {
		return "", err
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.Is(unicode.Mn, r) && r != ' ' && r != '-' && r != '.' && r != '\'' {
			return "", domain.Reject("invalid_name", field, "may hold only letters, spaces and - . ' (found %q)", r)
		}
	}
	return name, nil
}

func checkBirth(dob, today domain.Date) error {
	if dob.IsZero() {
		return domain.Reject("required", "date_of_birth", "is required (YYYY-MM-DD)")
	}
	if dob.After(today) {
		return domain.Reject("invalid_date", "date_of_birth", "%s is in the future", dob)
	}
	return nil
}

func resolveAddress(units *AdminUnits, in AddressInput) (Address, error) {
	street, err := domain.CleanText("address.street", in.Street, 0, MaxStreetRunes)
	if err != nil {
		return Address{}, err
	}
	d, ok := units.District(in.DistrictCode)
	if !ok {
		return Address{}, domain.Reject("unknown_district", "address.district_code",
			"%q is not a district of Hanoi in catalogue %s; use the 3-digit code, e.g. 268 for Hà Đông", clip(in.DistrictCode), units.Version)
	}
	w, ok := units.Ward(d.Code, in.WardCode)
	if !ok {
		return Address{}, domain.Reject("unknown_ward", "address.ward_code",
			"%q is not a ward or commune of %s in catalogue %s; use its 5-digit code", clip(in.WardCode), d.Name, units.Version)
	}
	return Address{Street: street, DistrictCode: d.Code, DistrictName: d.Name, WardCode: w.Code, WardName: w.Name, Catalogue: units.Version}, nil
}

func checkHousehold(c Category, id string) (string, error) {
	id, err := domain.CleanText("household_id", id, 0, MaxHouseholdIDLen)
	if err != nil {
		return "", err
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-' || r == '/' || r == '.') {
			return "", domain.Reject("invalid_household_id", "household_id", "may hold only letters, digits and - / .")
		}
	}
	if c == NearPoor && id == "" {
		return "", domain.Reject("required", "household_id", "is required for a near-poor household")
	}
	return id, nil
}

func checkNoExit(b Beneficiary) error {
	if x := b.Exit; x != nil {
		what := "died on"
		if x.Cause == entitlement.EndedByMove {
			what = "moved away on"
		}
		return domain.Rejectf(domain.Conflict, "beneficiary_exited", "", "the beneficiary already %s %s", what, x.Date)
	}
	return nil
}

func checkEventDate(field string, d domain.Date, b Beneficiary, today domain.Date) error {
	switch {
	case d.IsZero():
		return domain.Reject("required", field, "is required (YYYY-MM-DD)")
	case d.After(today):
		return domain.Reject("invalid_date", field, "%s is in the future", d)
	case d.Before(b.DateOfBirth):
		return domain.Reject("invalid_date", field, "%s is before the date of birth %s", d, b.DateOfBirth)
	}
	return nil
}

// resolveAccount checks a bank account and decides who holds it: the
// beneficiary or the proxy active today, matched by name without
// diacritics (banks write "NGUYEN VAN AN").
func resolveAccount(b Beneficiary, env Env, bankCode, number, holderName string) (BankAccount, error) {
	bank, ok := BankByCode(bankCode)
	if !ok {
		return BankAccount{}, domain.Reject("unknown_bank", "bank_code", "%q is not in the bank list %s; use a short code such as VCB, BIDV, CTG, VBA", clip(bankCode), BankListVersion)
	}
	if len(number) < MinAccountDigits || len(number) > MaxAccountDigits {
		return BankAccount{}, domain.Reject("invalid_account_number", "account_number", "must be %d to %d digits", MinAccountDigits, MaxAccountDigits)
	}
	for _, c := range number {
		if c < '0' || c > '9' {
			return BankAccount{}, domain.Reject("invalid_account_number", "account_number", "must be digits only, without spaces or dashes")
		}
	}
	holder, err := domain.CleanText("holder_name", holderName, 1, MaxNameRunes)
	if err != nil {
		return BankAccount{}, err
	}
	acct := BankAccount{BankCode: bank.Code, AccountNumber: number, HolderName: holder}
	key := NameKey(holder)
	if key == NameKey(b.FullName) {
		acct.Holder = HolderBeneficiary
		return acct, nil
	}
	if p, ok := b.ActiveProxy(env.Today); ok && key == NameKey(p.FullName) {
		acct.Holder, acct.ProxyID = HolderProxy, p.ID
		return acct, nil
	}
	return BankAccount{}, domain.Reject("holder_not_allowed", "holder_name",
		"%q is neither the beneficiary (%s) nor a proxy authorized today; the account must be in one of their names", clip(holder), b.FullName)
}

// maskAccount shows the last four digits only: error messages end up in logs.
func maskAccount(n string) string {
	if len(n) <= 4 {
		return n
	}
	return "…" + n[len(n)-4:]
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
