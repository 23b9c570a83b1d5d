package disbursement

import (
	"github.com/ansinh/ansinh/domain"
)

// Method is how a payment reaches its payee.
type Method string

const (
	// MethodBank: a transfer to the payee's linked account.
	MethodBank Method = "bank"
	// MethodCash: handed out at the ward office against a signature.
	MethodCash Method = "cash"
	// MethodOffset: nothing is handed over because recoveries took the whole
	// amount; the payment settles itself at release.
	MethodOffset Method = "offset"
)

// Bounds on payee data. Account numbers in Vietnam are 6 to 19 digits; the
// bounds leave room for IBAN-like forms without admitting documents.
const (
	MaxNameRunes      = 200
	MaxBankCodeBytes  = 20
	MinAccountBytes   = 4
	MaxAccountBytes   = 34
	MaxUnitCodeBytes  = 10 // district and ward codes ("001", "00004")
	MaxReasonRunes    = 500
	MaxDocumentRunes  = 100
	MaxReferenceBytes = 100 // bank references
)

// Payee is who receives a beneficiary's money and how: the beneficiary, or
// the proxy whose authorization is active; a bank transfer where an account
// is linked, cash otherwise. The registry resolves it; a run records it on
// every payment so that the bank file and the cash list need nothing else.
//
// District and Ward are the beneficiary's (cash is handed out at the
// beneficiary's ward office, also to a proxy).
type Payee struct {
	CitizenID     string `json:"citizen_id"`
	Name          string `json:"name"`
	Proxy         bool   `json:"proxy,omitempty"`
	Method        Method `json:"method"`
	BankCode      string `json:"bank_code,omitempty"`
	AccountNumber string `json:"account_number,omitempty"`
	District      string `json:"district"`
	Ward          string `json:"ward"`
}

// Validate checks p and returns it cleaned (the name normalized).
func (p Payee) Validate() (Payee, error) {
	if err := ValidateCitizenID("payee.citizen_id", p.CitizenID); err != nil {
		return p, err
	}
	name, err := domain.CleanText("payee.name", p.Name, 1, MaxNameRunes)
	if err != nil {
		return p, err
	}
	p.Name = name
	if err := validateCode("payee.district", p.District, MaxUnitCodeBytes); err != nil {
		return p, err
	}
	if err := validateCode("payee.ward", p.Ward, MaxUnitCodeBytes); err != nil {
		return p, err
	}
	switch p.Method {
	case MethodBank:
		if err := validateCode("payee.bank_code", p.BankCode, MaxBankCodeBytes); err != nil {
			return p, err
		}
		if len(p.AccountNumber) < MinAccountBytes {
			return p, domain.Reject("invalid_account", "payee.account_number", "must be %d to %d letters or digits", MinAccountBytes, MaxAccountBytes)
		}
		if err := validateCode("payee.account_number", p.AccountNumber, MaxAccountBytes); err != nil {
			return p, err
		}
	case MethodCash:
		if p.BankCode != "" || p.AccountNumber != "" {
			return p, domain.Reject("invalid_payee", "payee.account_number", "a cash payee has no bank account")
		}
	default:
		return p, domain.Reject("invalid_method", "payee.method", "must be %q or %q", MethodBank, MethodCash)
	}
	return p, nil
}

// AsCash is the same payee paid in cash at the ward office.
func (p Payee) AsCash() Payee {
	p.Method, p.BankCode, p.AccountNumber = MethodCash, "", ""
	return p
}

// validateCode checks an ASCII code of letters and digits (bank codes,
// account numbers, administrative unit codes): they go into files the bank
// parses, so nothing else is let through.
func validateCode(field, s string, maxBytes int) error {
	if s == "" {
		return domain.Reject("required", field, "is required")
	}
	if len(s) > maxBytes {
		return domain.Reject("too_long", field, "must be at most %d characters", maxBytes)
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return domain.Reject("invalid_code", field, "may hold only letters and digits")
		}
	}
	return nil
}

// Trace says where an owed amount comes from, so that an auditor can follow
// a payment line back to the entitlement, the rule and the rate that made it.
type Trace struct {
	// Entitlement is the entitlement ID within the beneficiary ("E1"), or
	// the correction ID for a top-up.
	Entitlement string `json:"entitlement"`
	// Rule is the program's amount rule in words, e.g.
	// "base_times_coefficient: 360000 VND x 1.5".
	Rule string `json:"rule"`
	// Rate is the base level or fixed amount applied, and Decree the legal
	// act that set it.
	Rate   *domain.Money `json:"rate,omitempty"`
	Decree string        `json:"decree,omitempty"`
}

// OwedLine is one obligation and its amount, as the entitlement rules compute
// it (or as an approved top-up states it).
type OwedLine struct {
	Key    ObligationKey `json:"obligation"`
	Amount domain.Money  `json:"amount"`
	Trace  Trace         `json:"trace"`
}

// Owed is what the rules say one beneficiary is owed for a run's scope, and
// to whom it is paid. The ledger builds it from the registry and the
// entitlements; the calculation decides which lines are still unpaid.
type Owed struct {
	CitizenID string     `json:"citizen_id"`
	Payee     Payee      `json:"payee"`
	Lines     []OwedLine `json:"lines"`
}
