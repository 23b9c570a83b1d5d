package projections

import (
	"fmt"
	"slices"
	"strings"

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
// event then rewrites a hundred bytes, not the person's whole history. A
// person's keys share one prefix, so that a balance query reads them all
// with one seek and a few steps (version 3; version 2 kept each kind under
// its own prefix, four seeks a query):
//
//	p/<citizen ID>/a                     the person's account balances
//	p/<citizen ID>/o/<obligation stream> obligationBalance
//	p/<citizen ID>/r/<correction>        Recovery
//	p/<citizen ID>/t/<correction>        TopUp
const balancesName = "balances"

type balancesProjection struct{}

func (balancesProjection) Name() string { return balancesName }
func (balancesProjection) Version() int { return 3 }

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

// Keep keeps a person's account sums (p/<citizen ID>/a) in memory across
// commits: every payment event reads and changes them, a month apart for
// one person, while the obligations beside them are written with the
// payment and seldom read again (see Keeper).
func (balancesProjection) Keep(key string) bool {
	rest, ok := strings.CutPrefix(key, "p/")
	if !ok {
		return false
	}
	i := strings.IndexByte(rest, '/')
	return i >= 0 && rest[i+1:] == "a"
}

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
		tx.Put([]byte("p/"+cid+"/t/"+e.Correction), &TopUp{Correction: e.Correction, Obligation: e.Obligation, Amount: e.Amount, Reason: e.Reason})
	case disbursement.RecoveryRaised:
		cid = e.CitizenID
		tx.Put([]byte("p/"+cid+"/r/"+e.Correction), &Recovery{Correction: e.Correction, Kind: e.Kind, Program: e.Program, Amount: e.Amount, Mode: e.Mode})
	default:
		if !isPayment {
			return nil
		}
		cid = ch.ref.Obligation.CitizenID
		var kb [keyBytes]byte
		key := joinKey(kb[:0], "p/", cid, "/o/", ch.stream)
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
	var kb [keyBytes]byte
	key := joinKey(kb[:0], "p/", cid, "/a")
	acc, found, err := Load[accountSums](tx, key)
	if err != nil {
		return err
	}
	if !found {
		acc = &accountSums{}
	}
	for _, p := range postings {
		if err := acc.add(p.Account, dong(p.Amount)); err != nil {
			return fmt.Errorf("balances: %s %s: %w", string(key), p.Account, err)
		}
	}
	tx.Put(key, acc)
	return nil
}

// accountSums are a person's account balances while Apply adds to them:
// in dong (see dong), in a short slice sorted by account name rather than
// a map. They are stored byte for byte as the accounts the balance query
// reads (TestAccountSumsStoredAsAccounts).
type accountSums []accountSum

type accountSum struct {
	account disbursement.Account
	sum     dong
}

func (a *accountSums) add(account disbursement.Account, amount dong) error {
	i := 0
	for i < len(*a) && (*a)[i].account < account {
		i++
	}
	if i == len(*a) || (*a)[i].account != account {
		*a = slices.Insert(*a, i, accountSum{account: account})
	}
	var err error
	(*a)[i].sum, err = (*a)[i].sum.plus(amount)
	return err
}

// AppendBinary writes what accounts.AppendBinary writes.
func (a *accountSums) AppendBinary(b []byte) ([]byte, error) {
	w := binWriter{b: append(b, binFormatV1)}
	w.uvarint(uint64(len(*a)))
	for _, s := range *a {
		w.str(string(s.account))
		w.varint(int64(s.sum))
	}
	return w.b, w.err
}

// UnmarshalBinary reads what accounts.AppendBinary writes (sorted by
// account name, each once).
func (a *accountSums) UnmarshalBinary(b []byte) error {
	r := binReader{b: b}
	r.start()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return r.err
	}
	*a = make(accountSums, 0, n)
	for range n {
		s := accountSum{account: r.account(), sum: r.dong()}
		if k := len(*a); k > 0 && (*a)[k-1].account >= s.account && r.err == nil {
			return fmt.Errorf("stored accounts are not sorted: %s after %s", s.account, (*a)[k-1].account)
		}
		*a = append(*a, s)
	}
	return r.finish()
}
