package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
)

// PostingsOf decodes a recorded event and returns its journal entry: nil for
// an event that moves no money, an error wrapping
// disbursement.ErrUnbalanced for one whose postings do not balance (which
// the ledger never writes; a projection that meets one stops). Events of
// types this ledger does not know move no money.
func (l *Ledger) PostingsOf(rec eventstore.RecordedEvent) ([]disbursement.Posting, error) {
	ev, err := l.codec.Decode(rec.Type, rec.Data)
	if errors.Is(err, domain.ErrUnknownEventType) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: postings of %s@%d: %w", rec.StreamID, rec.Revision, err)
	}
	ps, err := disbursement.Postings(ev)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s@%d: %w", rec.StreamID, rec.Revision, err)
	}
	return ps, nil
}

// TrialBalance folds the postings of every event in the global log up to
// now. It reads the whole log, so it is for audits and tests; a projection
// keeps the same sums incrementally with PostingsOf. It also returns the
// postings, in log order.
func (l *Ledger) TrialBalance(ctx context.Context) (*disbursement.TrialBalance, []disbursement.Posting, error) {
	tb := disbursement.NewTrialBalance()
	var all []disbursement.Posting
	for after := eventstore.Start; ; {
		recs, err := l.store.ReadAll(ctx, after, eventstore.MaxReadLimit)
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: trial balance: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			ps, err := l.PostingsOf(rec)
			if err != nil {
				return nil, nil, err
			}
			tb.Post(ps...)
			all = append(all, ps...)
		}
		after = recs[len(recs)-1].Position
	}
	if err := tb.Check(); err != nil {
		return nil, nil, err
	}
	return tb, all, nil
}
