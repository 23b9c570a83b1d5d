package projections

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// The books: the trial balance of the double-entry accounts, folded from
// disbursement.Postings of every money event. Postings re-checks that each
// entry balances (re-check after read); an entry that does not stops the
// projection at that event.
//
//	a/<account>             the account's balance (debit positive)
//	ap/<account>/<program>  the same per program
const booksName = "books"

type booksProjection struct{}

func (booksProjection) Name() string { return booksName }
func (booksProjection) Version() int { return 1 }

type moneyValue struct{ domain.Money }

func (m *moneyValue) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, m.Money) }
func (m *moneyValue) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, &m.Money) }

func (booksProjection) Apply(tx *Tx, ev *Event) error {
	if _, err := domainEvent(ev); err != nil {
		return err
	}
	ps, err := ev.postings()
	if err != nil {
		return err
	}
	for _, p := range ps {
		amount := dong(p.Amount) // |amount| <= MaxPostingDong, far within dong's range
		var kb [2][keyBytes]byte
		for _, key := range [2][]byte{joinKey(kb[0][:0], "a/", string(p.Account)), joinKey(kb[1][:0], "ap/", string(p.Account), "/", p.Program)} {
			v, found, err := Load[dongValue](tx, key)
			if err != nil {
				return err
			}
			if !found {
				v = &dongValue{}
			}
			if v.n, err = v.n.plus(amount); err != nil {
				return fmt.Errorf("books: %s: %w", string(key), err)
			}
			tx.Put(key, v)
		}
	}
	return nil
}

// dongValue is a balance of the books while Apply adds to it, stored byte
// for byte as the moneyValue the trial balance reads.
type dongValue struct{ n dong }

func (v *dongValue) AppendBinary(b []byte) ([]byte, error) { return v.n.appendJSON(b), nil }
func (v *dongValue) UnmarshalBinary(b []byte) error        { return v.n.UnmarshalJSON(b) }

// AccountBalance is one account of the trial balance. Balance is signed
// (debit positive); Debit and Credit show it on its side.
type AccountBalance struct {
	Account   disbursement.Account    `json:"account"`
	Balance   domain.Money            `json:"balance"`
	Debit     domain.Money            `json:"debit"`
	Credit    domain.Money            `json:"credit"`
	ByProgram map[string]domain.Money `json:"by_program"`
}

// TrialBalance lists every account with postings. The accounts must net to
// zero (Total); Balanced says whether they do.
type TrialBalance struct {
	Accounts []AccountBalance `json:"accounts"`
	Debits   domain.Money     `json:"debits"`
	Credits  domain.Money     `json:"credits"`
	Total    domain.Money     `json:"total"`
	Balanced bool             `json:"balanced"`
}

func trialBalance(r *Reader) (TrialBalance, error) {
	tb := TrialBalance{Accounts: []AccountBalance{}, Debits: domain.ZeroVND(), Credits: domain.ZeroVND(), Total: domain.ZeroVND()}
	byAccount := map[disbursement.Account]*AccountBalance{}
	err := r.Scan([]byte("a/"), prefixEnd([]byte("a/")), func(k, v []byte) (bool, error) {
		var m moneyValue
		if err := m.UnmarshalBinary(v); err != nil {
			return false, fmt.Errorf("books: %q: %w", k, err)
		}
		a := disbursement.Account(k[2:])
		p := disbursement.Posting{Amount: m.Money}
		byAccount[a] = &AccountBalance{Account: a, Balance: m.Money, Debit: p.Debit(), Credit: p.Credit(), ByProgram: map[string]domain.Money{}}
		tb.Total = tb.Total.Add(m.Money)
		tb.Debits, tb.Credits = tb.Debits.Add(p.Debit()), tb.Credits.Add(p.Credit())
		return true, nil
	})
	if err != nil {
		return tb, err
	}
	err = r.Scan([]byte("ap/"), prefixEnd([]byte("ap/")), func(k, v []byte) (bool, error) {
		var m moneyValue
		if err := m.UnmarshalBinary(v); err != nil {
			return false, fmt.Errorf("books: %q: %w", k, err)
		}
		rest := string(k[3:])
		i := slices.Index([]byte(rest), '/')
		if i < 0 {
			return false, fmt.Errorf("books: key %q is corrupt", k)
		}
		if ab := byAccount[disbursement.Account(rest[:i])]; ab != nil {
			ab.ByProgram[rest[i+1:]] = m.Money
		}
		return true, nil
	})
	if err != nil {
		return tb, err
	}
	// Report order first, then any account the code does not know yet.
	for _, a := range disbursement.Accounts {
		if ab := byAccount[a]; ab != nil {
			tb.Accounts = append(tb.Accounts, *ab)
			delete(byAccount, a)
		}
	}
	for _, a := range slices.Sorted(maps.Keys(byAccount)) {
		tb.Accounts = append(tb.Accounts, *byAccount[a])
	}
	tb.Balanced = tb.Total.IsZero()
	return tb, nil
}
