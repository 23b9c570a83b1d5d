package projections

import (
	"fmt"
	"slices"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
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

func (b *BalanceBucket) add(l BalanceLine) {
	b.Gross = add(b.Gross, l.Gross)
	b.Net = add(b.Net, l.Net)
	b.Lines = append(b.Lines, l)
	if !slices.Contains(b.Periods, l.Period) {
		b.Periods = append(b.Periods, l.Period)
	}
}

func (b *BalanceBucket) finish() {
	b.Gross, b.Net = zeroIfUnset(b.Gross), zeroIfUnset(b.Net)
	slices.SortFunc(b.Periods, domain.Period.Compare)
	if b.Periods == nil {
		b.Periods = []domain.Period{}
	}
	if b.Lines == nil {
		b.Lines = []BalanceLine{}
	}
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

func balance(reg, bal *Reader, cid string, through domain.Period, lim entitlement.Limits) (Balance, bool, error) {
	rec, found, err := Read[regRecord](reg, []byte("b/"+cid))
	if err != nil || !found || !rec.Registered {
		return Balance{}, false, err
	}
	cat, err := catalogue(reg)
	if err != nil {
		return Balance{}, false, err
	}
	var obs []*obligationBalance
	var topUps []TopUp
	var recoveries []Recovery
	if err := scanValues(bal, "o/"+cid+"/", func(o *obligationBalance) { obs = append(obs, o) }); err != nil {
		return Balance{}, false, err
	}
	if err := scanValues(bal, "t/"+cid+"/", func(t *TopUp) { topUps = append(topUps, *t) }); err != nil {
		return Balance{}, false, err
	}
	if err := scanValues(bal, "rv/"+cid+"/", func(r *Recovery) { recoveries = append(recoveries, *r) }); err != nil {
		return Balance{}, false, err
	}
	acc, _, err := Read[accounts](bal, []byte("acc/"+cid))
	if err != nil {
		return Balance{}, false, err
	}
	if acc == nil {
		acc = &accounts{}
	}
	byStream := make(map[string]*obligationBalance, len(obs))
	for _, o := range obs {
		byStream[o.Key.Stream()] = o
	}
	b := rec.Domain()
	owed, err := entitlement.OwedThrough(b.Entitlements, b.Holder(), cat, through, lim)
	if err != nil {
		return Balance{}, false, fmt.Errorf("balance of %s: %w", cid, err)
	}
	out := Balance{CitizenID: cid, Through: through, Recoveries: recoveries, TopUps: topUps, Accounts: *acc}
	// Sized once: a monthly grant accrues a line a month (29 by late
	// 2026), and growing these, the buckets' lines most of all, was a fifth
	// of what a balance query allocated.
	accrued := make([]disbursement.ObligationKey, 0, len(owed)+len(topUps))
	amounts := make(map[disbursement.ObligationKey]domain.Money, cap(accrued))
	out.Accrued.Lines = make([]BalanceLine, 0, cap(accrued))
	out.Outstanding.Lines = make([]BalanceLine, 0, cap(accrued))
	for _, l := range owed {
		k := disbursement.ObligationKey{CitizenID: cid, Program: l.Program, Period: l.Period}
		accrued = append(accrued, k)
		amounts[k] = add(amounts[k], l.Amount)
	}
	for _, t := range topUps {
		if !t.Obligation.Period.After(through) {
			accrued = append(accrued, t.Obligation)
			amounts[t.Obligation] = add(amounts[t.Obligation], t.Amount)
		}
	}
	seen := make(map[disbursement.ObligationKey]bool, len(accrued))
	for _, k := range accrued {
		if seen[k] {
			continue
		}
		seen[k] = true
		line := BalanceLine{Program: k.Program, Period: k.Period, TopUp: k.TopUp, Gross: amounts[k], Net: amounts[k]}
		ob := byStream[k.Stream()]
		if ob != nil {
			line.Status, line.RunID, line.PaymentID = ob.Status, ob.RunID, ob.PaymentID
		}
		out.Accrued.add(line)
		if ob == nil || ob.Status.Reopens() {
			out.Outstanding.add(line)
		}
	}
	for _, ob := range obs { // in key order: by program, period
		line := BalanceLine{Program: ob.Key.Program, Period: ob.Key.Period, TopUp: ob.Key.TopUp, Gross: ob.Gross, Net: ob.Net,
			Status: ob.Status, RunID: ob.RunID, PaymentID: ob.PaymentID}
		switch {
		case ob.Status == disbursement.StatusSettled:
			out.Paid.add(line)
		case inTransit(ob.Status):
			out.InTransit.add(line)
		}
	}
	for _, bk := range []*BalanceBucket{&out.Accrued, &out.Paid, &out.InTransit, &out.Outstanding} {
		bk.finish()
	}
	out.Overpaid = zeroIfUnset((*acc)[disbursement.BeneficiaryReceivable])
	if out.Recoveries == nil {
		out.Recoveries = []Recovery{}
	}
	if out.TopUps == nil {
		out.TopUps = []TopUp{}
	}
	return out, true, nil
}

// scanValues decodes every value under prefix into a fresh *T and hands it
// to f, in key order.
func scanValues[T any, P decodable[T]](r *Reader, prefix string, f func(P)) error {
	return r.Scan([]byte(prefix), prefixEnd([]byte(prefix)), func(k, v []byte) (bool, error) {
		p := P(new(T))
		if err := p.UnmarshalBinary(v); err != nil {
			return false, fmt.Errorf("%q: %w", k, err)
		}
		f(p)
		return true, nil
	})
}
