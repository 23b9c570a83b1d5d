package disbursement

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ansinh/ansinh/domain"
)

// Account is a ledger account of the disbursement books.
type Account string

const (
	// ProgramExpense (debit balance): what the programs have paid out or
	// committed. Recognized when a payment is issued; an attempt that fails,
	// comes back or is cancelled takes its own expense back, and the next
	// attempt recognizes it again.
	ProgramExpense Account = "program_expense"
	// BeneficiaryPayable (credit balance): issued, not yet sent.
	BeneficiaryPayable Account = "beneficiary_payable"
	// PaymentsInTransit (credit balance): sent to the bank or to the ward
	// cashier, not yet answered.
	PaymentsInTransit Account = "payments_in_transit"
	// BankDisbursed and CashDisbursed (credit balance): money that left the
	// program's bank account, or its cash fund.
	BankDisbursed Account = "bank_disbursed"
	CashDisbursed Account = "cash_disbursed"
	// BeneficiaryReceivable (debit balance): what beneficiaries owe back
	// (recoveries not yet kept back or collected).
	BeneficiaryReceivable Account = "beneficiary_receivable"
)

// Accounts lists every account, in the order reports show them.
var Accounts = []Account{ProgramExpense, BeneficiaryPayable, PaymentsInTransit, BankDisbursed, CashDisbursed, BeneficiaryReceivable}

// Posting is one line of a journal entry. Amount is signed: positive is a
// debit, negative a credit, so that the postings of an entry sum to zero.
type Posting struct {
	Account   Account      `json:"account"`
	CitizenID string       `json:"citizen_id"`
	Program   string       `json:"program"`
	Amount    domain.Money `json:"amount"`
}

// Debit is the debit side of p (zero for a credit).
func (p Posting) Debit() domain.Money {
	if p.Amount.IsPositive() {
		return p.Amount
	}
	return domain.ZeroVND()
}

// Credit is the credit side of p as a positive amount (zero for a debit).
func (p Posting) Credit() domain.Money {
	if p.Amount.IsNegative() {
		return p.Amount.Neg()
	}
	return domain.ZeroVND()
}

// ErrUnbalanced means an event's postings do not sum to zero. It is a bug,
// never a user error.
var ErrUnbalanced = errors.New("postings do not balance")

// Postings returns the journal entry of a money event, and nothing (nil,
// nil) for an event that moves no money, of this package or any other. The
// entry is checked to balance: the ledger calls Postings before it appends a
// money event and refuses to write one that fails (validate before write),
// and a projection calls it again on every event it reads (re-check after
// read). An error rather than a panic, because the ledger must turn it into
// a refused command and the projection into a stopped, alerting projection,
// not a crashed service.
func Postings(e domain.Event) ([]Posting, error) {
	var j journal
	switch e := e.(type) {
	case PaymentIssued:
		j.at(e.Obligation)
		j.debit(ProgramExpense, e.Gross)
		j.credit(BeneficiaryPayable, e.Net)
		j.offsets(-1, e.Offsets)
	case PaymentCancelled:
		j.at(e.Obligation)
		j.debit(BeneficiaryPayable, e.Net)
		j.offsets(+1, e.Offsets)
		j.credit(ProgramExpense, e.Gross)
	case PaymentReleased:
		j.at(e.Obligation)
		j.debit(BeneficiaryPayable, e.Net)
		j.credit(PaymentsInTransit, e.Net)
	case PaymentSettled:
		j.at(e.Obligation)
		j.debit(PaymentsInTransit, e.Net)
		j.credit(disbursed(e.Method), e.Net)
	case PaymentFailed:
		j.at(e.Obligation)
		j.debit(PaymentsInTransit, e.Net)
		j.offsets(+1, e.Offsets)
		j.credit(ProgramExpense, e.Gross)
	case PaymentReturned:
		j.at(e.Obligation)
		j.debit(disbursed(e.Method), e.Net)
		j.offsets(+1, e.Offsets)
		j.credit(ProgramExpense, e.Gross)
	case RecoveryRaised:
		j.citizen, j.program = e.CitizenID, e.Program
		j.debit(BeneficiaryReceivable, e.Amount)
		j.credit(ProgramExpense, e.Amount)
	default:
		return nil, nil
	}
	if j.err != nil {
		return nil, fmt.Errorf("postings of %s: %w", e.EventType(), j.err)
	}
	if err := CheckBalanced(j.lines); err != nil {
		return nil, fmt.Errorf("postings of %s: %w", e.EventType(), err)
	}
	return j.lines, nil
}

// MustPostings is Postings for events the caller just built and knows to be
// money events of this package; it panics on an imbalance. Tests use it.
func MustPostings(e domain.Event) []Posting {
	ps, err := Postings(e)
	if err != nil {
		panic(err)
	}
	return ps
}

func disbursed(m Method) Account {
	if m == MethodCash {
		return CashDisbursed
	}
	return BankDisbursed
}

// journal builds one entry; amounts of zero are left out (a line fully kept
// back moves nothing through payable or transit).
type journal struct {
	citizen, program string
	lines            []Posting
	err              error
}

func (j *journal) at(k ObligationKey) { j.citizen, j.program = k.CitizenID, k.Program }

func (j *journal) post(a Account, m domain.Money) {
	if j.err != nil {
		return
	}
	if m.Currency != domain.VND || !m.IsWhole() {
		j.err = fmt.Errorf("%s: %s is not a whole VND amount", a, m)
		return
	}
	if m.IsZero() {
		return
	}
	j.lines = append(j.lines, Posting{Account: a, CitizenID: j.citizen, Program: j.program, Amount: m})
}

func (j *journal) debit(a Account, m domain.Money) {
	if m.IsNegative() {
		j.err = fmt.Errorf("%s: negative amount %s", a, m)
	}
	j.post(a, m)
}

func (j *journal) credit(a Account, m domain.Money) {
	if m.IsNegative() {
		j.err = fmt.Errorf("%s: negative amount %s", a, m)
	}
	j.post(a, m.Neg())
}

// offsets posts the recoveries an attempt keeps back: credited to the
// receivable when the attempt is issued (sign -1), debited back when it is
// undone (+1).
func (j *journal) offsets(sign int, os []Offset) {
	for _, o := range os {
		if sign < 0 {
			j.credit(BeneficiaryReceivable, o.Amount)
		} else {
			j.debit(BeneficiaryReceivable, o.Amount)
		}
	}
}

// CheckBalanced returns ErrUnbalanced unless ps sum to zero in dong.
func CheckBalanced(ps []Posting) error {
	sum := domain.ZeroVND()
	for _, p := range ps {
		if p.Amount.Currency != domain.VND {
			return fmt.Errorf("%w: posting to %s in %s", ErrUnbalanced, p.Account, p.Amount.Currency)
		}
		sum = sum.Add(p.Amount)
	}
	if !sum.IsZero() {
		return fmt.Errorf("%w: they sum to %s", ErrUnbalanced, sum)
	}
	return nil
}

// TrialBalance sums postings per account. Its accounts always net to zero,
// because every entry does; Check asserts it.
type TrialBalance struct {
	accounts map[Account]domain.Money
}

// NewTrialBalance returns an empty trial balance.
func NewTrialBalance() *TrialBalance { return &TrialBalance{accounts: map[Account]domain.Money{}} }

// Post adds postings.
func (tb *TrialBalance) Post(ps ...Posting) {
	for _, p := range ps {
		have, ok := tb.accounts[p.Account]
		if !ok {
			have = domain.ZeroVND()
		}
		tb.accounts[p.Account] = have.Add(p.Amount)
	}
}

// Balance is the signed balance of an account (debit positive).
func (tb *TrialBalance) Balance(a Account) domain.Money {
	if m, ok := tb.accounts[a]; ok {
		return m
	}
	return domain.ZeroVND()
}

// Accounts lists the accounts that have postings, in report order.
func (tb *TrialBalance) Accounts() []Account {
	var out []Account
	for _, a := range Accounts {
		if _, ok := tb.accounts[a]; ok {
			out = append(out, a)
		}
	}
	for a := range tb.accounts {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// Check returns ErrUnbalanced unless the accounts net to zero.
func (tb *TrialBalance) Check() error {
	sum := domain.ZeroVND()
	for _, m := range tb.accounts {
		sum = sum.Add(m)
	}
	if !sum.IsZero() {
		return fmt.Errorf("%w: trial balance nets to %s", ErrUnbalanced, sum)
	}
	return nil
}
