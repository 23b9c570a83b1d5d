package projections

import (
	"strings"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// attemptChange is what one payment event does to its attempt, in the terms
// the read models need. It mirrors disbursement.Obligation.Evolve: an event
// for an attempt other than the one it names is ignored there and here.
type attemptChange struct {
	ref    disbursement.AttemptRef
	stream string // ref.Obligation.Stream()
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

// derived holds what the read models compute from a payment or money
// event: the attempt it changes (balances, payouts, districts) and its
// postings (balances, books). Computed once per event instead of once per
// read model, it was a tenth of a rebuild's CPU.
type derived struct {
	payment     attemptChange
	isPayment   bool
	postings    []disbursement.PostingDong
	postingsErr error
	// postingsBuf holds the postings of a usual entry (at most three
	// lines: an issue with one offset), so that they cost no allocation.
	postingsBuf [3]disbursement.PostingDong
}

// derive fills e.derived from the decoded event. It runs where the event
// is decoded, before any read model sees the event; they only read it.
func (e *Event) derive() {
	de, ok := e.data.(domain.Event)
	if !ok || e.decodeErr != nil {
		return
	}
	d := &e.derived
	if d.payment, d.isPayment = paymentChange(de); d.isPayment {
		d.payment.stream = obligationStream(e.StreamID, d.payment.ref.Obligation)
	}
	// In int64 dong: the same entry as disbursement.Postings, without its
	// six or seven allocations on decimal.
	d.postings, d.postingsErr = disbursement.PostingsDong(de, d.postingsBuf[:0])
}

// obligationStream is k.Stream(): the stream the event was read from
// when that is its name (the ledger appends an attempt's events to its
// obligation's stream), which saves building the name again, an
// allocation per payment event.
func obligationStream(streamID string, k disbursement.ObligationKey) string {
	rest, ok := strings.CutPrefix(streamID, disbursement.PaymentStreamPrefix)
	for _, part := range [...]string{k.CitizenID, "-", k.Program, "-", k.Period.String()} {
		if !ok {
			break
		}
		rest, ok = strings.CutPrefix(rest, part)
	}
	if ok && k.TopUp != "" {
		if rest, ok = strings.CutPrefix(rest, "-topup-"); ok {
			rest, ok = strings.CutPrefix(rest, k.TopUp)
		}
	}
	if ok && rest == "" {
		return streamID
	}
	return k.Stream()
}

// payment is the attempt a payment event changes; false for other events.
// It points into the event (read only: three read models read it at once):
// a copy for each of them was 200 bytes read from memory the feed wrote on
// another core.
func (e *Event) payment() (*attemptChange, bool) { return &e.derived.payment, e.derived.isPayment }

// postings are the event's postings (none for an event that moves no
// money), or why they are wrong (which stops the read model).
func (e *Event) postings() ([]disbursement.PostingDong, error) {
	return e.derived.postings, e.derived.postingsErr
}

// inTransit: issued or sent, no answer yet.
func inTransit(s disbursement.Status) bool {
	return s == disbursement.StatusIssued || s == disbursement.StatusReleased
}
