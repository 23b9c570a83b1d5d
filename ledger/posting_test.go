package ledger

import (
	"errors"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
)

// TestUnbalancedEventsAreNeverWritten: the ledger checks every money event's
// postings before it appends it.
func TestUnbalancedEventsAreNeverWritten(t *testing.T) {
	f := newPayoutFixture(t)
	k := disbursement.ObligationKey{CitizenID: "001150000001", Program: "SOCIAL_MONTHLY", Period: jan24}
	bad := disbursement.PaymentIssued{AttemptRef: disbursement.AttemptRef{Obligation: k, Attempt: 1, RunID: "X"},
		Amounts: disbursement.Amounts{Gross: domain.VNDAmount(540_000), Net: domain.VNDAmount(500_000)}}
	before := head(t, f.store)
	_, err := f.l.appendDerived(f.ctx, k.Stream(), eventstore.NoStream(), mustMeta(t, f.l, thu), "test", []domain.Event{bad})
	if !errors.Is(err, disbursement.ErrUnbalanced) {
		t.Fatalf("want ErrUnbalanced, got %v", err)
	}
	if head(t, f.store) != before {
		t.Fatal("an unbalanced event was written")
	}
}

func TestPostingsOfForeignEvents(t *testing.T) {
	f := newPayoutFixture(t)
	recs, err := f.store.ReadAll(f.ctx, eventstore.Start, 5)
	if err != nil || len(recs) == 0 {
		t.Fatal(err)
	}
	for _, rec := range recs { // catalogue events move no money
		if ps, err := f.l.PostingsOf(rec); err != nil || ps != nil {
			t.Fatalf("%s: %v %v", rec.Type, ps, err)
		}
	}
	if ps, err := f.l.PostingsOf(eventstore.RecordedEvent{Type: "SomethingNew.v1", Data: []byte(`{}`)}); err != nil || ps != nil {
		t.Fatalf("unknown type: %v %v", ps, err)
	}
}
