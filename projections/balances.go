package projections

import (
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// The balances read model keeps, per beneficiary, where each obligation
// stands (its latest attempt) and the person's share of the books (the
// postings that name them). What is accrued is not stored: it depends on the
// period asked about, so a query computes it with the domain's own
// entitlement.OwedThrough from the registry record and the catalogue of the
// same view.
//
// One small key per obligation rather than one record per person: a payment
// event then rewrites a hundred bytes, not the person's whole history.
//
//	o/<citizen ID>/<obligation stream>   obligationBalance
//	acc/<citizen ID>                     the person's account balances
//	t/<citizen ID>/<correction>          TopUp
//	rv/<citizen ID>/<correction>         Recovery
const balancesName = "balances"

type balancesProjection struct{}

func (balancesProjection) Name() string { return balancesName }
func (balancesProjection) Version() int { return 2 }

type obligationBalance struct {
	Key       disbursement.ObligationKey `json:"key"`
	Attempt   int                        `json:"attempt"`
	Status    disbursement.Status        `json:"status"`
	Gross     domain.Money               `json:"gross"`
	Net       domain.Money               `json:"net"`
	RunID     string                     `json:"run_id"`
	PaymentID string                     `json:"payment_id"`
}

type accounts map[disbursement.Account]domain.Money

// TopUp is an approved top-up: an amount owed on top of the entitlements.
type TopUp struct {
	Correction string                     `json:"correction_id"`
	Obligation disbursement.ObligationKey `json:"obligation"`
	Amount     domain.Money               `json:"amount"`
	Reason     string                     `json:"reason"`
}

func (t *TopUp) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, t) }
func (t *TopUp) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, t) }

// Recovery is an approved recovery or reversal: an amount the beneficiary
// owes back.
type Recovery struct {
	Correction string                      `json:"correction_id"`
	Kind       disbursement.CorrectionKind `json:"kind"`
	Program    string                      `json:"program"`
	Amount     domain.Money                `json:"amount"`
	Mode       disbursement.RecoveryMode   `json:"mode"`
}

func (r *Recovery) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, r) }
func (r *Recovery) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, r) }

func (balancesProjection) Apply(tx *Tx, ev *Event) error {
	de, err := domainEvent(ev)
	if de == nil {
		return err
	}
	var cid string
	ch, isPayment := ev.payment()
	switch e := de.(type) {
	case disbursement.TopUpGranted:
		cid = e.CitizenID
		tx.Put([]byte("t/"+cid+"/"+e.Correction), &TopUp{Correction: e.Correction, Obligation: e.Obligation, Amount: e.Amount, Reason: e.Reason})
	case disbursement.RecoveryRaised:
		cid = e.CitizenID
		tx.Put([]byte("rv/"+cid+"/"+e.Correction), &Recovery{Correction: e.Correction, Kind: e.Kind, Program: e.Program, Amount: e.Amount, Mode: e.Mode})
	default:
		if !isPayment {
			return nil
		}
		cid = ch.ref.Obligation.CitizenID
		key := []byte("o/" + cid + "/" + ch.stream)
		switch {
		case ch.issued != nil:
			tx.Put(key, &obligationBalance{
				Key: ch.ref.Obligation, Attempt: ch.ref.Attempt, Status: ch.status,
				Gross: ch.issued.Gross, Net: ch.issued.Net, RunID: ch.ref.RunID, PaymentID: ch.ref.PaymentID,
			})
		default:
			ob, found, err := Load[obligationBalance](tx, key)
			if err != nil {
				return err
			}
			if found && ob.Attempt == ch.ref.Attempt {
				ob.Status = ch.status
				tx.Put(key, ob)
			}
		}
	}
	postings, err := ev.postings()
	if err != nil || len(postings) == 0 {
		return err
	}
	key := []byte("acc/" + cid)
	acc, found, err := Load[accounts](tx, key)
	if err != nil {
		return err
	}
	if !found {
		acc = &accounts{}
	}
	for _, p := range postings {
		(*acc)[p.Account] = add((*acc)[p.Account], p.Amount)
	}
	tx.Put(key, acc)
	return nil
}
