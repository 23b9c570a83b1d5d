package registry

import (
	"slices"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
)

// StreamPrefix starts the name of every beneficiary's stream.
const StreamPrefix = "beneficiary-"

// Stream is the stream of the beneficiary with the given citizen ID. Keying
// the stream by citizen ID makes the ID unique across the registry by
// construction: a registration appends only to a stream that does not exist.
func Stream(citizenID string) string { return StreamPrefix + citizenID }

// Sex as recorded on the citizen ID card.
type Sex string

const (
	Male   Sex = "male"
	Female Sex = "female"
)

// Category is the group a beneficiary belongs to (DOMAIN.md, "category").
type Category string

const (
	Meritorious         Category = "meritorious"          // người có công
	MeritoriousRelative Category = "meritorious_relative" // thân nhân người có công
	ResistanceOneTime   Category = "resistance_one_time"  // trợ cấp một lần kháng chiến
	MartyrWorship       Category = "martyr_worship"       // thờ cúng liệt sĩ
	SocialProtection    Category = "social_protection"    // bảo trợ xã hội hằng tháng
	NearPoor            Category = "near_poor"            // hộ cận nghèo
	OtherCategory       Category = "other"
)

// Categories lists the categories, in the order forms show them.
var Categories = []Category{Meritorious, MeritoriousRelative, ResistanceOneTime, MartyrWorship, SocialProtection, NearPoor, OtherCategory}

// Address is where a beneficiary lives, with the administrative codes valid
// in the catalogue named by Catalogue when it was recorded.
type Address struct {
	Street       string `json:"street,omitempty"` // house number, lane, street, hamlet
	DistrictCode string `json:"district_code"`
	DistrictName string `json:"district_name"`
	WardCode     string `json:"ward_code"`
	WardName     string `json:"ward_name"`
	Catalogue    string `json:"catalogue"`
}

// PaymentMethod is how a beneficiary is paid.
type PaymentMethod string

const (
	Cash         PaymentMethod = "cash"
	BankTransfer PaymentMethod = "bank_transfer"
)

// HolderKind says who holds a linked bank account.
type HolderKind string

const (
	HolderBeneficiary HolderKind = "beneficiary"
	HolderProxy       HolderKind = "proxy"
)

// BankAccount is the account payments go to when the method is bank transfer.
type BankAccount struct {
	BankCode      string     `json:"bank_code"`
	AccountNumber string     `json:"account_number"`
	HolderName    string     `json:"holder_name"`
	Holder        HolderKind `json:"holder"`
	ProxyID       string     `json:"proxy_id,omitempty"` // when Holder is HolderProxy
}

// Exit records that a beneficiary died or moved away from the city.
type Exit struct {
	Cause       entitlement.EndCause // EndedByDeath or EndedByMove
	Date        domain.Date
	LastPeriod  domain.Period // the last period anything is owed
	DocumentRef string
	Destination string
}

// Beneficiary is the state of one beneficiary's stream: the person, how they
// are paid, who may receive for them, and their entitlements.
type Beneficiary struct {
	CitizenID     string
	Registered    bool
	FullName      string
	DateOfBirth   domain.Date
	Sex           Sex
	Address       Address
	Category      Category
	HouseholdID   string
	Exit          *Exit
	BankAccount   *BankAccount
	PaymentMethod PaymentMethod
	Proxies       []Proxy
	Entitlements  entitlement.Book
}

// Holder is what the entitlement rules need to know about b.
func (b Beneficiary) Holder() entitlement.Holder {
	h := entitlement.Holder{CitizenID: b.CitizenID}
	if b.Exit != nil {
		h.LastPeriod, h.ExitCause = b.Exit.LastPeriod, b.Exit.Cause
	}
	return h
}

// Owed is what is owed to b for period p (see entitlement.OwedIn).
func (b Beneficiary) Owed(cat entitlement.Catalogue, p domain.Period, lim entitlement.Limits) ([]entitlement.Line, error) {
	return entitlement.OwedIn(b.Entitlements, b.Holder(), cat, p, lim)
}

// OwedThrough is what is owed to b for every period up to p (see
// entitlement.OwedThrough).
func (b Beneficiary) OwedThrough(cat entitlement.Catalogue, p domain.Period, lim entitlement.Limits) ([]entitlement.Line, error) {
	return entitlement.OwedThrough(b.Entitlements, b.Holder(), cat, p, lim)
}

// Evolve returns b after e. It copies what it changes, so earlier states
// stay valid. Entitlement events are handed to the entitlement book.
func (b Beneficiary) Evolve(e domain.Event) Beneficiary {
	switch e := e.(type) {
	case BeneficiaryRegistered:
		b = Beneficiary{
			CitizenID: e.CitizenID, Registered: true, FullName: e.FullName, DateOfBirth: e.DateOfBirth,
			Sex: e.Sex, Address: e.Address, Category: e.Category, HouseholdID: e.HouseholdID, PaymentMethod: Cash,
		}
	case BeneficiaryDetailsCorrected:
		if e.FullName != nil {
			b.FullName = *e.FullName
		}
		if e.DateOfBirth != nil {
			b.DateOfBirth = *e.DateOfBirth
		}
		if e.Sex != nil {
			b.Sex = *e.Sex
		}
		if e.Address != nil {
			b.Address = *e.Address
		}
		if e.Category != nil {
			b.Category = *e.Category
		}
		if e.HouseholdID != nil {
			b.HouseholdID = *e.HouseholdID
		}
	case BeneficiaryDied:
		b.Exit = &Exit{Cause: entitlement.EndedByDeath, Date: e.DateOfDeath, LastPeriod: e.LastPeriod, DocumentRef: e.DocumentRef}
	case BeneficiaryMovedAway:
		b.Exit = &Exit{Cause: entitlement.EndedByMove, Date: e.MovedOn, LastPeriod: e.LastPeriod, DocumentRef: e.DocumentRef, Destination: e.Destination}
	case BankAccountLinked:
		a := e.BankAccount
		b.BankAccount = &a
	case BankAccountReplaced:
		a := e.BankAccount
		b.BankAccount = &a
	case BankAccountUnlinked:
		b.BankAccount = nil
	case PaymentMethodChosen:
		b.PaymentMethod = e.Method
	case ProxyAuthorized:
		b.Proxies = append(slices.Clip(b.Proxies), Proxy{
			ID: e.ProxyID, FullName: e.FullName, CitizenID: e.ProxyCitizenID, Relationship: e.Relationship,
			Reason: e.Reason, ReasonNote: e.ReasonNote, ValidFrom: e.ValidFrom, ValidTo: e.ValidTo, DocumentRef: e.DocumentRef,
		})
	case ProxyRevoked:
		if i := slices.IndexFunc(b.Proxies, func(p Proxy) bool { return p.ID == e.ProxyID }); i >= 0 {
			b.Proxies = slices.Clone(b.Proxies)
			b.Proxies[i].RevokedFrom, b.Proxies[i].RevokeReason = e.RevokedFrom, e.Reason
		}
	default:
		b.Entitlements = b.Entitlements.Evolve(e)
	}
	return b
}

// Beneficiary events. They live in the beneficiary's stream and carry the
// citizen ID, so that a projection needs nothing but the event.
type (
	// BeneficiaryRegistered: a person is on the registry. Version 2 nests
	// the address and records its catalogue; version 1 had flat
	// district_code and ward_code (see the upcaster in codec.go).
	BeneficiaryRegistered struct {
		CitizenID   string      `json:"citizen_id"`
		FullName    string      `json:"full_name"`
		DateOfBirth domain.Date `json:"date_of_birth"`
		Sex         Sex         `json:"sex"`
		Address     Address     `json:"address"`
		Category    Category    `json:"category"`
		HouseholdID string      `json:"household_id,omitempty"`
	}
	// BeneficiaryDetailsCorrected: personal details were wrong; the fields
	// present are the corrected values. HouseholdID "" clears it.
	BeneficiaryDetailsCorrected struct {
		CitizenID   string       `json:"citizen_id"`
		FullName    *string      `json:"full_name,omitempty"`
		DateOfBirth *domain.Date `json:"date_of_birth,omitempty"`
		Sex         *Sex         `json:"sex,omitempty"`
		Address     *Address     `json:"address,omitempty"`
		Category    *Category    `json:"category,omitempty"`
		HouseholdID *string      `json:"household_id,omitempty"`
		Reason      string       `json:"reason"`
	}
	// BeneficiaryDied: nothing is owed after LastPeriod, the period of death.
	BeneficiaryDied struct {
		CitizenID   string        `json:"citizen_id"`
		DateOfDeath domain.Date   `json:"date_of_death"`
		LastPeriod  domain.Period `json:"last_period"`
		DocumentRef string        `json:"document_ref"`
	}
	// BeneficiaryMovedAway: the person left the city; nothing is owed after
	// LastPeriod, the period of the move.
	BeneficiaryMovedAway struct {
		CitizenID   string        `json:"citizen_id"`
		MovedOn     domain.Date   `json:"moved_on"`
		LastPeriod  domain.Period `json:"last_period"`
		Destination string        `json:"destination"`
		DocumentRef string        `json:"document_ref,omitempty"`
	}
	// BankAccountLinked: payments by transfer go to this account.
	BankAccountLinked struct {
		CitizenID string `json:"citizen_id"`
		BankAccount
	}
	// BankAccountReplaced: a new account replaces the linked one.
	BankAccountReplaced struct {
		CitizenID string `json:"citizen_id"`
		BankAccount
		Reason string `json:"reason"`
	}
	// BankAccountUnlinked: no account is linked any more.
	BankAccountUnlinked struct {
		CitizenID string `json:"citizen_id"`
		Reason    string `json:"reason"`
	}
	// PaymentMethodChosen: how the beneficiary is paid from now on. A new
	// registration is paid in cash until a method is chosen.
	PaymentMethodChosen struct {
		CitizenID string        `json:"citizen_id"`
		Method    PaymentMethod `json:"method"`
	}
	// ProxyAuthorized: a person may receive on the beneficiary's behalf from
	// ValidFrom to ValidTo, both days included.
	ProxyAuthorized struct {
		CitizenID      string      `json:"citizen_id"`
		ProxyID        string      `json:"proxy_id"`
		FullName       string      `json:"full_name"`
		ProxyCitizenID string      `json:"proxy_citizen_id"`
		Relationship   string      `json:"relationship"`
		Reason         ProxyReason `json:"reason"`
		ReasonNote     string      `json:"reason_note,omitempty"`
		ValidFrom      domain.Date `json:"valid_from"`
		ValidTo        domain.Date `json:"valid_to"`
		DocumentRef    string      `json:"document_ref"`
	}
	// ProxyRevoked: the authorization does not apply from RevokedFrom on.
	ProxyRevoked struct {
		CitizenID   string      `json:"citizen_id"`
		ProxyID     string      `json:"proxy_id"`
		RevokedFrom domain.Date `json:"revoked_from"`
		Reason      string      `json:"reason"`
	}
)

func (BeneficiaryRegistered) EventType() string       { return "BeneficiaryRegistered.v2" }
func (BeneficiaryDetailsCorrected) EventType() string { return "BeneficiaryDetailsCorrected.v1" }
func (BeneficiaryDied) EventType() string             { return "BeneficiaryDied.v1" }
func (BeneficiaryMovedAway) EventType() string        { return "BeneficiaryMovedAway.v1" }
func (BankAccountLinked) EventType() string           { return "BankAccountLinked.v1" }
func (BankAccountReplaced) EventType() string         { return "BankAccountReplaced.v1" }
func (BankAccountUnlinked) EventType() string         { return "BankAccountUnlinked.v1" }
func (PaymentMethodChosen) EventType() string         { return "PaymentMethodChosen.v1" }
func (ProxyAuthorized) EventType() string             { return "ProxyAuthorized.v1" }
func (ProxyRevoked) EventType() string                { return "ProxyRevoked.v1" }
