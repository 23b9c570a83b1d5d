package projections

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/cockroachdb/pebble/v2"
	"github.com/shopspring/decimal"
)

// The balance query: what a beneficiary is owed, has been paid and owes back.

// BalanceLine is one obligation in a balance: owed (accrued, outstanding)
// or paid (paid, in transit).
type BalanceLine struct {
	Program string        `json:"program"`
	Period  domain.Period `json:"period"`
	TopUp   string        `json:"top_up,omitempty"`
	// Gross is what the obligation is worth (for an accrued line, what the
	// entitlements owe today); Net what reaches the payee, after what is
	// kept back to recover an overpayment.
	Gross domain.Money `json:"gross"`
	Net   domain.Money `json:"net"`
	// Status of the obligation's latest attempt; "" if never issued.
	Status    disbursement.Status `json:"status,omitempty"`
	RunID     string              `json:"run_id,omitempty"`
	PaymentID string              `json:"payment_id,omitempty"`
}

// BalanceBucket sums lines and lists the periods they cover.
type BalanceBucket struct {
	Gross   domain.Money    `json:"gross"`
	Net     domain.Money    `json:"net"`
	Periods []domain.Period `json:"periods"`
	Lines   []BalanceLine   `json:"lines"`
}

// Balance is where one beneficiary stands.
//
//   - Accrued: what the entitlements (and approved top-ups) owe for every
//     period up to Through, at today's terms and rates.
//   - Paid: obligations whose latest attempt settled. Net is what reached
//     the payee; Gross - Net was kept back to recover an overpayment.
//   - InTransit: issued or sent, with no answer from the bank yet.
//   - Outstanding: accrued lines with nothing paid or on its way: never
//     issued, or the last attempt failed, came back or was cancelled. A line
//     paid at another amount than is owed today is not outstanding: the
//     difference is settled by a top-up or a recovery correction.
//   - Overpaid: the beneficiary's receivable, what recoveries still have to
//     get back (raised less what payments kept back).
type Balance struct {
	CitizenID   string        `json:"citizen_id"`
	Through     domain.Period `json:"through"`
	Accrued     BalanceBucket `json:"accrued"`
	Paid        BalanceBucket `json:"paid"`
	InTransit   BalanceBucket `json:"in_transit"`
	Outstanding BalanceBucket `json:"outstanding"`
	Overpaid    domain.Money  `json:"overpaid"`
	Recoveries  []Recovery    `json:"recoveries"`
	TopUps      []TopUp       `json:"top_ups"`
	// Accounts is the person's share of the double-entry books (debit
	// positive), for auditors.
	Accounts map[disbursement.Account]domain.Money `json:"accounts"`
}

// balance reads with it, an iterator over the whole snapshot of reg and bal.
func balance(it *pebble.Iterator, reg, bal *Reader, cid string, through domain.Period, lim entitlement.Limits) (Balance, bool, error) {
	var rec regRecord
	key := make([]byte, 0, 64)
	found, err := seekValue(it, append(append(append(key, reg.prefix...), "b/"...), cid...), rec.UnmarshalBinary)
	if err != nil || !found || !rec.Registered {
		return Balance{}, false, err
	}
	var cat entitlement.Catalogue
	if _, err := seekValue(it, append(append(key[:0], reg.prefix...), catalogueKey...), func(raw []byte) error {
		cat, err = catalogueOf(raw)
		return err
	}); err != nil {
		return Balance{}, false, err
	}
	obs, topUps, recoveries, acc, err := balanceRecords(it, bal, cid)
	if err != nil {
		return Balance{}, false, err
	}
	byKey := make(map[disbursement.ObligationKey]*obligationBalance, len(obs))
	for _, o := range obs {
		byKey[o.Key] = o
	}
	b := rec.Domain()
	owed, err := entitlement.OwedThrough(b.Entitlements, b.Holder(), cat, through, lim)
	if err != nil {
		return Balance{}, false, fmt.Errorf("balance of %s: %w", cid, err)
	}
	out := Balance{CitizenID: cid, Through: through, Recoveries: recoveries, TopUps: topUps, Accounts: acc}
	// What is accrued per obligation, in the order first owed; several
	// lines of one obligation (two entitlements of a program in a month,
	// a top-up) add up to one. Sized once: a monthly grant accrues a line
	// a month (29 by late 2026), and growing these was a fifth of what a
	// balance query allocated.
	type accruedLine struct {
		key    disbursement.ObligationKey
		amount dongSum
	}
	accrued := make([]accruedLine, 0, len(owed)+len(topUps))
	index := make(map[disbursement.ObligationKey]int, cap(accrued))
	accrue := func(k disbursement.ObligationKey, m domain.Money) {
		i, ok := index[k]
		if !ok {
			i = len(accrued)
			index[k] = i
			accrued = append(accrued, accruedLine{key: k})
		}
		accrued[i].amount.add(m)
	}
	for _, l := range owed {
		accrue(disbursement.ObligationKey{CitizenID: cid, Program: l.Program, Period: l.Period}, l.Amount)
	}
	for _, t := range topUps {
		if !t.Obligation.Period.After(through) {
			accrue(t.Obligation, t.Amount)
		}
	}
	var accruedB, outstandingB, paidB, transitB bucketBuilder
	accruedB.lines = make([]BalanceLine, 0, len(accrued))
	outstandingB.lines = make([]BalanceLine, 0, len(accrued))
	for _, a := range accrued {
		k, amount := a.key, a.amount.money()
		line := BalanceLine{Program: k.Program, Period: k.Period, TopUp: k.TopUp, Gross: amount, Net: amount}
		ob := byKey[k]
		if ob != nil {
			line.Status, line.RunID, line.PaymentID = ob.Status, ob.RunID, ob.PaymentID
		}
		accruedB.add(line)
		if ob == nil || ob.Status.Reopens() {
			outstandingB.add(line)
		}
	}
	for _, ob := range obs { // in key order: by program, period
		line := BalanceLine{Program: ob.Key.Program, Period: ob.Key.Period, TopUp: ob.Key.TopUp, Gross: ob.Gross, Net: ob.Net,
			Status: ob.Status, RunID: ob.RunID, PaymentID: ob.PaymentID}
		switch {
		case ob.Status == disbursement.StatusSettled:
			paidB.add(line)
		case inTransit(ob.Status):
			transitB.add(line)
		}
	}
	out.Accrued, out.Outstanding, out.Paid, out.InTransit = accruedB.bucket(), outstandingB.bucket(), paidB.bucket(), transitB.bucket()
	out.Overpaid = zeroIfUnset(acc[disbursement.BeneficiaryReceivable])
	if out.Recoveries == nil {
		out.Recoveries = []Recovery{}
	}
	if out.TopUps == nil {
		out.TopUps = []TopUp{}
	}
	return out, true, nil
}

// balanceRecords reads what the balances read model keeps of one person
// with it: the keys under p/<citizen ID>/, one seek and then in key order
// the accounts (a), the obligations (o/, by program and period), the
// recoveries (r/) and the top-ups (t/).
func balanceRecords(it *pebble.Iterator, bal *Reader, cid string) (obs []*obligationBalance, topUps []TopUp, recoveries []Recovery, acc accounts, err error) {
	prefix := make([]byte, 0, len(bal.prefix)+len(cid)+3)
	prefix = append(append(append(append(prefix, bal.prefix...), "p/"...), cid...), '/')
	acc = accounts{}
	for valid := it.SeekGE(prefix); valid; valid = it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("projections: read %q: %w", k, err)
		}
		switch kind := k[len(prefix):]; {
		case string(kind) == "a":
			err = acc.UnmarshalBinary(v)
		case bytes.HasPrefix(kind, []byte("o/")):
			o := new(obligationBalance)
			obs = append(obs, o)
			err = o.UnmarshalBinary(v)
		case bytes.HasPrefix(kind, []byte("r/")):
			recoveries = append(recoveries, Recovery{})
			err = recoveries[len(recoveries)-1].UnmarshalBinary(v)
		case bytes.HasPrefix(kind, []byte("t/")):
			topUps = append(topUps, TopUp{})
			err = topUps[len(topUps)-1].UnmarshalBinary(v)
		default:
			err = errors.New("not a key of the balances read model")
		}
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("projections: decode %q: %w", k, err)
		}
	}
	if err := it.Error(); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("projections: balance of %s: %w", cid, err)
	}
	return obs, topUps, recoveries, acc, nil
}

// seekValue decodes the value under key (prefix included) with decode,
// or reports found=false.
func seekValue(it *pebble.Iterator, key []byte, decode func([]byte) error) (found bool, err error) {
	if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
		return false, it.Error()
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return false, fmt.Errorf("projections: read %q: %w", key, err)
	}
	if err := decode(v); err != nil {
		return false, fmt.Errorf("projections: decode %q: %w", key, err)
	}
	return true, nil
}

// bucketBuilder sums a bucket's lines in whole dong (dongSum) and collects
// its periods.
type bucketBuilder struct {
	gross, net dongSum
	periods    []domain.Period
	lines      []BalanceLine
}

func (b *bucketBuilder) add(l BalanceLine) {
	b.gross.add(l.Gross)
	b.net.add(l.Net)
	b.lines = append(b.lines, l)
	if !slices.Contains(b.periods, l.Period) {
		b.periods = append(b.periods, l.Period)
	}
}

func (b *bucketBuilder) bucket() BalanceBucket {
	out := BalanceBucket{Gross: b.gross.money(), Net: b.net.money(), Periods: b.periods, Lines: b.lines}
	slices.SortFunc(out.Periods, domain.Period.Compare)
	if out.Periods == nil {
		out.Periods = []domain.Period{}
	}
	if out.Lines == nil {
		out.Lines = []BalanceLine{}
	}
	return out
}

// dongSum adds amounts the way add does (an unset Money counts as zero;
// mixed currencies panic in Money.Add), in dong (dongOf, plus) while every
// amount is whole VND and the sum stays in dong's range, which dong amounts
// do: a decimal addition allocates, and a balance adds a few hundred
// amounts. Any other amount, or a sum out of range, moves the sum to
// decimal for good, so the result is always exact.
type dongSum struct {
	n      dong
	inDong bool         // something was added in dong
	dec    domain.Money // the sum once it left dong; Currency "" until then
}

func (s *dongSum) add(m domain.Money) {
	if m.Currency == "" {
		return
	}
	if s.dec.Currency == "" {
		if d, err := dongOf(m); err == nil {
			if sum, err := s.n.plus(d); err == nil {
				s.n, s.inDong = sum, true
				return
			}
		}
		s.dec = domain.Money{Amount: decimal.NewFromInt(int64(s.n)), Currency: m.Currency}
		if s.inDong {
			s.dec.Currency = domain.VND
		}
	}
	s.dec = s.dec.Add(m)
}

// money is the sum; zero dong when nothing was added.
func (s *dongSum) money() domain.Money {
	if s.dec.Currency != "" {
		return s.dec
	}
	return s.n.money()
}
