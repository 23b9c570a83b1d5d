package disbursement

import (
	"time"

	"github.com/ansinh/ansinh/domain"
)

// Outcome is the bank's (or the ward cashier's) answer for one payment.
type Outcome string

const (
	OutcomeSettled  Outcome = "settled"
	OutcomeFailed   Outcome = "failed"
	OutcomeReturned Outcome = "returned"
)

// FailureReason says why a payment failed or came back.
type FailureReason string

const (
	ReasonAccountClosed   FailureReason = "account_closed"
	ReasonAccountNotFound FailureReason = "account_not_found"
	ReasonNameMismatch    FailureReason = "name_mismatch"
	ReasonInvalidAccount  FailureReason = "invalid_account"
	ReasonRejectedByBank  FailureReason = "rejected_by_bank"
	ReasonNotCollected    FailureReason = "not_collected" // cash nobody came for
	ReasonDeceased        FailureReason = "deceased"
	ReasonOther           FailureReason = "other"
)

var failureReasons = []FailureReason{
	ReasonAccountClosed, ReasonAccountNotFound, ReasonNameMismatch, ReasonInvalidAccount,
	ReasonRejectedByBank, ReasonNotCollected, ReasonDeceased, ReasonOther,
}

// Valid reports whether r is a known reason.
func (r FailureReason) Valid() bool {
	for _, x := range failureReasons {
		if r == x {
			return true
		}
	}
	return false
}

// AccountProblem reports whether r means the destination account is unusable,
// so that reissuing to the same account would fail again: a calculation pays
// such an obligation in cash (see Plan).
func (r FailureReason) AccountProblem() bool {
	switch r {
	case ReasonAccountClosed, ReasonAccountNotFound, ReasonNameMismatch, ReasonInvalidAccount:
		return true
	}
	return false
}

// Settlement is one answer for one payment: a line of an imported bank file,
// or one posted answer.
type Settlement struct {
	Line      int // 1-based line in the file; 0 when posted singly
	PaymentID string
	Outcome   Outcome
	// Reference is the bank's transaction reference (settled, returned) or
	// the cash receipt number; required for settled and returned.
	Reference string
	At        time.Time
	// Amount, when the bank states it, must equal the payment's net amount.
	Amount *domain.Money
	Reason FailureReason // failed, returned
	Detail string
}

// Validate checks the answer on its own, before any payment is loaded.
func (s Settlement) Validate() (Settlement, error) {
	if _, err := RunOfPayment(s.PaymentID); err != nil {
		return s, err
	}
	switch s.Outcome {
	case OutcomeSettled, OutcomeReturned, OutcomeFailed:
	default:
		return s, domain.Reject("invalid_outcome", "outcome", "must be %q, %q or %q", OutcomeSettled, OutcomeFailed, OutcomeReturned)
	}
	if s.Outcome != OutcomeFailed && s.Reference == "" {
		return s, domain.Reject("required", "reference", "is required for a %s payment: the bank reference or cash receipt number", s.Outcome)
	}
	if s.Reference != "" {
		if err := validateReference("reference", s.Reference); err != nil {
			return s, err
		}
	}
	if s.At.IsZero() {
		return s, domain.Reject("required", "occurred_at", "is required: when the bank settled, failed or returned the payment")
	}
	if s.Outcome == OutcomeSettled {
		if s.Reason != "" {
			return s, domain.Reject("invalid_reason", "reason", "a settled payment has no failure reason")
		}
	} else if !s.Reason.Valid() {
		return s, domain.Reject("invalid_reason", "reason", "must be one of %v", failureReasons)
	}
	if s.Amount != nil {
		if s.Amount.Currency != domain.VND || !s.Amount.IsWhole() || s.Amount.IsNegative() {
			return s, domain.Reject("invalid_amount", "amount", "must be a whole, non-negative number of dong")
		}
	}
	detail, err := domain.CleanText("detail", s.Detail, 0, MaxReasonRunes)
	if err != nil {
		return s, err
	}
	s.Detail = detail
	return s, nil
}

// validateReference allows what bank references are made of: ASCII letters,
// digits and - _ . / : without spaces.
func validateReference(field, s string) error {
	if len(s) > MaxReferenceBytes {
		return domain.Reject("too_long", field, "must be at most %d characters", MaxReferenceBytes)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':') {
			return domain.Reject("invalid_reference", field, "may hold only letters, digits and - _ . / :")
		}
	}
	return nil
}

// Settle decides one answer for the attempt of o that travels in
// s.PaymentID. It returns nil when the answer is already recorded with the
// same content (a resent file changes nothing), and a Conflict when it
// contradicts what is recorded.
func (o Obligation) Settle(s Settlement) (domain.Event, error) {
	a, ok := o.ByPayment(s.PaymentID)
	if !ok {
		return nil, domain.Rejectf(domain.NotFound, "unknown_payment", "payment_id", "%s holds no attempt of payment %s", o.Key.Stream(), s.PaymentID)
	}
	conflict := func(code, format string, args ...any) error {
		return domain.Rejectf(domain.Conflict, code, "outcome", format, args...)
	}
	switch s.Outcome {
	case OutcomeSettled:
		switch a.Status {
		case StatusReleased:
			return PaymentSettled{AttemptRef: a.AttemptRef, Method: a.Payee.Method, Net: a.Net, Reference: s.Reference, SettledAt: s.At.UTC()}, nil
		case StatusSettled, StatusReturned, StatusReversed:
			// A resent settlement, also after a return or reversal, is a read.
			if a.Reference == s.Reference {
				return nil, nil
			}
			return nil, conflict("settlement_conflict", "payment %s is already settled with reference %s, not %s", s.PaymentID, a.Reference, s.Reference)
		}
	case OutcomeFailed:
		switch a.Status {
		case StatusReleased:
			return PaymentFailed{AttemptRef: a.AttemptRef, Method: a.Payee.Method, Amounts: a.Amounts, Reason: s.Reason, Detail: s.Detail, FailedAt: s.At.UTC()}, nil
		case StatusFailed:
			if a.Failure == s.Reason {
				return nil, nil
			}
			return nil, conflict("settlement_conflict", "payment %s already failed with reason %s, not %s", s.PaymentID, a.Failure, s.Reason)
		case StatusSettled, StatusReturned, StatusReversed:
			return nil, conflict("already_settled", "payment %s is %s; money that came back after settlement is reported as %q", s.PaymentID, a.Status, OutcomeReturned)
		}
	case OutcomeReturned:
		switch a.Status {
		case StatusSettled:
			if a.Payee.Method != MethodBank {
				return nil, conflict("not_returnable", "payment %s was paid by %s; only bank transfers come back", s.PaymentID, a.Payee.Method)
			}
			return PaymentReturned{AttemptRef: a.AttemptRef, Method: a.Payee.Method, Amounts: a.Amounts, Reference: s.Reference,
				Reason: s.Reason, Detail: s.Detail, ReturnedAt: s.At.UTC()}, nil
		case StatusReturned:
			if a.ReturnedRef == s.Reference {
				return nil, nil
			}
			return nil, conflict("settlement_conflict", "payment %s was already returned with reference %s, not %s", s.PaymentID, a.ReturnedRef, s.Reference)
		case StatusReleased:
			return nil, conflict("not_settled", "payment %s is not settled; a payment that never arrived is reported as %q", s.PaymentID, OutcomeFailed)
		}
	}
	switch a.Status {
	case StatusIssued:
		return nil, conflict("not_released", "payment %s was not released to the bank yet", s.PaymentID)
	case StatusCancelled:
		return nil, conflict("payment_cancelled", "payment %s was cancelled before release", s.PaymentID)
	}
	return nil, conflict("settlement_conflict", "payment %s is %s and cannot become %s", s.PaymentID, a.Status, s.Outcome)
}
