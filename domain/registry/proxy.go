package registry

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/ansinh/ansinh/domain"
)

// ProxyReason is why a beneficiary needs someone to receive for them.
type ProxyReason string

const (
	IllnessOrImmobility ProxyReason = "illness_or_immobility" // too ill or frail to travel
	NoLegalCapacity     ProxyReason = "no_legal_capacity"     // lost or limited legal capacity
	MinorWithGuardian   ProxyReason = "minor_with_guardian"   // a child with a guardian
	OtherReason         ProxyReason = "other"                 // explained in ReasonNote
)

// Proxy is an authorization for a person (a proxy or guardian) to receive on
// the beneficiary's behalf. It applies from ValidFrom to ValidTo, both days
// included, unless revoked: then it stops applying on RevokedFrom.
type Proxy struct {
	ID           string // "P1", "P2", ... in authorization order
	FullName     string
	CitizenID    string
	Relationship string
	Reason       ProxyReason
	ReasonNote   string
	ValidFrom    domain.Date
	ValidTo      domain.Date
	DocumentRef  string
	RevokedFrom  domain.Date // zero unless revoked
	RevokeReason string
}

// ActiveOn reports whether the authorization applies on day d. An expired
// authorization stops applying on its own: no event is needed.
func (p Proxy) ActiveOn(d domain.Date) bool {
	return !d.Before(p.ValidFrom) && !d.After(p.LastDay())
}

// LastDay is the last day the authorization applies: ValidTo, or the day
// before it was revoked. It is before ValidFrom when it was revoked before it
// began.
func (p Proxy) LastDay() domain.Date {
	if !p.RevokedFrom.IsZero() && !p.RevokedFrom.After(p.ValidTo) {
		return p.RevokedFrom.AddDays(-1)
	}
	return p.ValidTo
}

// ActiveProxy returns the proxy whose authorization applies on day d. There
// is at most one: the rules refuse overlapping authorizations.
func (b Beneficiary) ActiveProxy(d domain.Date) (Proxy, bool) {
	for _, p := range b.Proxies {
		if p.ActiveOn(d) {
			return p, true
		}
	}
	return Proxy{}, false
}

// Payee is who receives a payment for a beneficiary on a given day, and how.
type Payee struct {
	Method      PaymentMethod
	Name        string       // who receives: the account holder, the proxy, or the beneficiary
	BankAccount *BankAccount // set for BankTransfer
	Proxy       *Proxy       // set when an authorized proxy receives
}

// PayeeOn says who is to be paid for b on day d: by transfer to the linked
// account if that is the method (refused when the account belongs to a
// proxy whose authorization no longer applies), else in cash to the active
// proxy if there is one, else to the beneficiary.
func (b Beneficiary) PayeeOn(d domain.Date) (Payee, error) {
	if !b.Registered {
		return Payee{}, domain.Rejectf(domain.NotFound, "beneficiary_not_found", "citizen_id", "no beneficiary is registered with this citizen ID")
	}
	proxy, hasProxy := b.ActiveProxy(d)
	if b.PaymentMethod == BankTransfer {
		a := b.BankAccount
		if a == nil {
			return Payee{}, domain.Rejectf(domain.Conflict, "no_bank_account", "", "%s is paid by bank transfer but has no linked account", b.CitizenID)
		}
		if a.Holder == HolderProxy {
			if !hasProxy || proxy.ID != a.ProxyID {
				return Payee{}, domain.Rejectf(domain.Conflict, "account_holder_not_authorized", "",
					"the account of %s belongs to proxy %s, whose authorization does not apply on %s; link a new account or pay in cash", b.CitizenID, a.ProxyID, d)
			}
			return Payee{Method: BankTransfer, Name: a.HolderName, BankAccount: a, Proxy: &proxy}, nil
		}
		return Payee{Method: BankTransfer, Name: a.HolderName, BankAccount: a}, nil
	}
	if hasProxy {
		return Payee{Method: Cash, Name: proxy.FullName, Proxy: &proxy}, nil
	}
	return Payee{Method: Cash, Name: b.FullName}, nil
}

// NameKey is the form in which two written names are compared: without
// diacritics, đ as d, upper case, single spaces. Banks often hold the
// holder's name as "NGUYEN VAN AN" for "Nguyễn Văn An"; both have the same
// key.
func NameKey(s string) string {
	if k, ok := nameKeyFast(s); ok {
		return k
	}
	return nameKeyNFD(s)
}

// nameKeyNFD is NameKey by its definition: decompose (NFD), drop the
// combining marks, fold. nameKeyFast gives the same answer for the usual
// Vietnamese name and hands it anything else.
func nameKeyNFD(s string) string {
	var b strings.Builder
	space := false
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		case r == 'đ' || r == 'Đ':
			r = 'D'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
