package projections

import (
	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// The registry read model folds events with the domain's own Evolve, so it
// can never disagree with the ledger about what a beneficiary's state is.
// The domain's state types are not meant for storage, though: a zero
// domain.Date or domain.Period (an open-ended entitlement, a proxy not
// revoked) marshals as "0000-00-00" and does not parse back. These mirror
// types store exactly the same fields with zero dates and periods as "".
// TestStoredBeneficiaryRoundTrip fails when the domain types gain a field
// this file does not carry.

// OptDate is a domain.Date whose zero value (no date) is written as "".
type OptDate struct{ domain.Date }

func (d OptDate) MarshalText() ([]byte, error) {
	if d.Date == (domain.Date{}) {
		return []byte{}, nil
	}
	return d.Date.MarshalText()
}

func (d *OptDate) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		d.Date = domain.Date{}
		return nil
	}
	return d.Date.UnmarshalText(b)
}

// OptPeriod is a domain.Period whose zero value (no period) is written as "".
type OptPeriod struct{ domain.Period }

func (p OptPeriod) MarshalText() ([]byte, error) {
	if p.Period.IsZero() {
		return []byte{}, nil
	}
	return p.Period.MarshalText()
}

func (p *OptPeriod) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		p.Period = domain.Period{}
		return nil
	}
	return p.Period.UnmarshalText(b)
}

// Beneficiary is the registry's record of one person: who they are, where
// they live, how they are paid, who may receive for them, and their
// entitlements. Queries return it with the account number masked and Status
// filled in.
type Beneficiary struct {
	CitizenID     string                 `json:"citizen_id"`
	Registered    bool                   `json:"registered"`
	FullName      string                 `json:"full_name"`
	DateOfBirth   OptDate                `json:"date_of_birth"`
	Sex           registry.Sex           `json:"sex"`
	Address       registry.Address       `json:"address"`
	Category      registry.Category      `json:"category"`
	HouseholdID   string                 `json:"household_id,omitempty"`
	Exit          *ExitRecord            `json:"exit,omitempty"`
	BankAccount   *registry.BankAccount  `json:"bank_account,omitempty"`
	PaymentMethod registry.PaymentMethod `json:"payment_method"`
	Proxies       []ProxyRecord          `json:"proxies,omitempty"`
	Entitlements  []EntitlementRecord    `json:"entitlements,omitempty"`
	// Status is active, deceased or moved_away (filled in by queries).
	Status string `json:"status,omitempty"`
}

type ExitRecord struct {
	Cause       entitlement.EndCause `json:"cause"`
	Date        OptDate              `json:"date"`
	LastPeriod  OptPeriod            `json:"last_period"`
	DocumentRef string               `json:"document_ref,omitempty"`
	Destination string               `json:"destination,omitempty"`
}

type ProxyRecord struct {
	ID           string               `json:"id"`
	FullName     string               `json:"full_name"`
	CitizenID    string               `json:"citizen_id"`
	Relationship string               `json:"relationship"`
	Reason       registry.ProxyReason `json:"reason"`
	ReasonNote   string               `json:"reason_note,omitempty"`
	ValidFrom    OptDate              `json:"valid_from"`
	ValidTo      OptDate              `json:"valid_to"`
	DocumentRef  string               `json:"document_ref"`
	RevokedFrom  OptDate              `json:"revoked_from"`
	RevokeReason string               `json:"revoke_reason,omitempty"`
}

type EntitlementRecord struct {
	ID          string               `json:"id"`
	Program     string               `json:"program"`
	Kind        entitlement.Kind     `json:"kind"`
	Start       OptPeriod            `json:"start"`
	End         OptPeriod            `json:"end"`
	EndCause    entitlement.EndCause `json:"end_cause,omitempty"`
	Terms       []TermsRecord        `json:"terms"`
	Suspensions []SuspensionRecord   `json:"suspensions,omitempty"`
}

type TermsRecord struct {
	From        OptPeriod        `json:"from"`
	Coefficient *decimal.Decimal `json:"coefficient,omitempty"`
	Amount      *domain.Money    `json:"amount,omitempty"`
}

type SuspensionRecord struct {
	From   OptPeriod `json:"from"`
	Until  OptPeriod `json:"until"`
	Reason string    `json:"reason"`
}

// ExitRecord, ProxyRecord, EntitlementRecord, TermsRecord and
// SuspensionRecord mirror the domain's types of the same names.

func storeBeneficiary(b registry.Beneficiary) Beneficiary {
	s := Beneficiary{
		CitizenID: b.CitizenID, Registered: b.Registered, FullName: b.FullName, DateOfBirth: OptDate{b.DateOfBirth},
		Sex: b.Sex, Address: b.Address, Category: b.Category, HouseholdID: b.HouseholdID,
		BankAccount: b.BankAccount, PaymentMethod: b.PaymentMethod,
	}
	if e := b.Exit; e != nil {
		s.Exit = &ExitRecord{Cause: e.Cause, Date: OptDate{e.Date}, LastPeriod: OptPeriod{e.LastPeriod}, DocumentRef: e.DocumentRef, Destination: e.Destination}
	}
	for _, p := range b.Proxies {
		s.Proxies = append(s.Proxies, ProxyRecord{
			ID: p.ID, FullName: p.FullName, CitizenID: p.CitizenID, Relationship: p.Relationship, Reason: p.Reason,
			ReasonNote: p.ReasonNote, ValidFrom: OptDate{p.ValidFrom}, ValidTo: OptDate{p.ValidTo}, DocumentRef: p.DocumentRef,
			RevokedFrom: OptDate{p.RevokedFrom}, RevokeReason: p.RevokeReason,
		})
	}
	for _, e := range b.Entitlements.Entitlements {
		se := EntitlementRecord{ID: e.ID, Program: e.Program, Kind: e.Kind, Start: OptPeriod{e.Start}, End: OptPeriod{e.End}, EndCause: e.EndCause}
		for _, t := range e.Terms {
			se.Terms = append(se.Terms, TermsRecord{From: OptPeriod{t.From}, Coefficient: t.Coefficient, Amount: t.Amount})
		}
		for _, x := range e.Suspensions {
			se.Suspensions = append(se.Suspensions, SuspensionRecord{From: OptPeriod{x.From}, Until: OptPeriod{x.Until}, Reason: x.Reason})
		}
		s.Entitlements = append(s.Entitlements, se)
	}
	return s
}

// Domain returns the record as the domain's state, for the domain's rules
// (what is owed, who is paid today).
func (s Beneficiary) Domain() registry.Beneficiary {
	b := registry.Beneficiary{
		CitizenID: s.CitizenID, Registered: s.Registered, FullName: s.FullName, DateOfBirth: s.DateOfBirth.Date,
		Sex: s.Sex, Address: s.Address, Category: s.Category, HouseholdID: s.HouseholdID,
		BankAccount: s.BankAccount, PaymentMethod: s.PaymentMethod,
	}
	if e := s.Exit; e != nil {
		b.Exit = &registry.Exit{Cause: e.Cause, Date: e.Date.Date, LastPeriod: e.LastPeriod.Period, DocumentRef: e.DocumentRef, Destination: e.Destination}
	}
	for _, p := range s.Proxies {
		b.Proxies = append(b.Proxies, registry.Proxy{
			ID: p.ID, FullName: p.FullName, CitizenID: p.CitizenID, Relationship: p.Relationship, Reason: p.Reason,
			ReasonNote: p.ReasonNote, ValidFrom: p.ValidFrom.Date, ValidTo: p.ValidTo.Date, DocumentRef: p.DocumentRef,
			RevokedFrom: p.RevokedFrom.Date, RevokeReason: p.RevokeReason,
		})
	}
	for _, se := range s.Entitlements {
		e := entitlement.Entitlement{ID: se.ID, Program: se.Program, Kind: se.Kind, Start: se.Start.Period, End: se.End.Period, EndCause: se.EndCause}
		for _, t := range se.Terms {
			e.Terms = append(e.Terms, entitlement.Terms{From: t.From.Period, Coefficient: t.Coefficient, Amount: t.Amount})
		}
		for _, x := range se.Suspensions {
			e.Suspensions = append(e.Suspensions, entitlement.Suspension{From: x.From.Period, Until: x.Until.Period, Reason: x.Reason})
		}
		b.Entitlements.Entitlements = append(b.Entitlements.Entitlements, e)
	}
	return b
}

// storedCatalogue mirrors entitlement.Catalogue (rates carry periods).
type storedCatalogue struct {
	Programs   map[string]entitlement.Program `json:"programs"`
	BaseLevels map[string]storedBaseLevel     `json:"base_levels"`
}

type storedBaseLevel struct {
	Code      string             `json:"code"`
	Name      string             `json:"name"`
	Reference string             `json:"reference,omitempty"`
	Rates     []entitlement.Rate `json:"rates"`
}

func storeCatalogue(c entitlement.Catalogue) storedCatalogue {
	s := storedCatalogue{Programs: c.Programs, BaseLevels: map[string]storedBaseLevel{}}
	for k, b := range c.BaseLevels {
		s.BaseLevels[k] = storedBaseLevel{Code: b.Code, Name: b.Name, Reference: b.Reference, Rates: b.Rates}
	}
	return s
}

func (s storedCatalogue) domain() entitlement.Catalogue {
	c := entitlement.Catalogue{Programs: s.Programs}
	if len(s.BaseLevels) > 0 {
		c.BaseLevels = map[string]entitlement.BaseLevel{}
		for k, b := range s.BaseLevels {
			c.BaseLevels[k] = entitlement.BaseLevel{Code: b.Code, Name: b.Name, Reference: b.Reference, Rates: b.Rates}
		}
	}
	return c
}

func (s *storedCatalogue) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, s) }
func (s *storedCatalogue) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, s) }
