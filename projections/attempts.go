package projections

import (
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// attemptChange is what one payment event does to its attempt, in the terms
// the read models need. It mirrors disbursement.Obligation.Evolve: an event
// for an attempt other than the one it names is ignored there and here.
type attemptChange struct {
	ref    disbursement.AttemptRef
	status disbursement.Status
	issued *disbursement.PaymentIssued // set by PaymentIssued only

	reference string // bank reference or cash receipt (settled, returned)
	reason    string // failed, returned, cancelled
	detail    string
	at        time.Time // when the bank or cashier answered
}

func paymentChange(e domain.Event) (attemptChange, bool) {
	switch e := e.(type) {
	case disbursement.PaymentIssued:
		return attemptChange{ref: e.AttemptRef, status: disbursement.StatusIssued, issued: &e}, true
	case disbursement.PaymentCancelled:
		return attemptChange{ref: e.AttemptRef, status: disbursement.StatusCancelled, reason: e.Reason}, true
	case disbursement.PaymentReleased:
		return attemptChange{ref: e.AttemptRef, status: disbursement.StatusReleased}, true
	case disbursement.PaymentSettled:
		return attemptChange{ref: e.AttemptRef, status: disbursement.StatusSettled, reference: e.Reference, at: e.SettledAt}, true
	case disbursement.PaymentFailed:
		return attemptChange{ref: e.AttemptRef, status: disbursement.StatusFailed, reason: string(e.Reason), detail: e.Detail, at: e.FailedAt}, true
	case disbursement.PaymentReturned:
		return attemptChange{ref: e.AttemptRef, status: disbursement.StatusReturned, reference: e.Reference,
			reason: string(e.Reason), detail: e.Detail, at: e.ReturnedAt}, true
	case disbursement.PaymentReversed:
		return attemptChange{ref: e.AttemptRef, status: disbursement.StatusReversed, reason: "reversed by " + e.Correction}, true
	}
	return attemptChange{}, false
}

// inTransit: issued or sent, no answer yet.
func inTransit(s disbursement.Status) bool {
	return s == disbursement.StatusIssued || s == disbursement.StatusReleased
}
