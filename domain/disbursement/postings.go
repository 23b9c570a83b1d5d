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

// PostingDong is a Posting with its amount in whole dong, as an int64 that
// callers can add without allocating: the read models sum the postings of
// every money event of the log, and on decimal (big.Int) that cost six or
// seven allocations an event.
type PostingDong struct {
	Account   Account
	CitizenID string
	Program   string
	Amount    int64 // debit positive, credit negative
}

// MaxPostingDong bounds a PostingDong's amount (either sign). It is far
// above any amount the domain accepts (MaxAmountDong) and low enough that a
// few thousand of them sum in an int64 without overflow.
const MaxPostingDong = 1 << 50

// ErrPostingRange: an amount of an entry is a whole number of dong beyond
// MaxPostingDong, which PostingsDong cannot hold. The domain never writes
// one; it means a damaged or foreign log.
var ErrPostingRange = errors.New("posting amount is out of range")

// PostingsDong returns exactly the entry Postings returns (the same lines,
// in the same order, with the same amounts) in int64 dong, appended to
// buf[:0]; or the error Postings returns, word for word; or ErrPostingRange
// when Postings accepts the entry but an amount is beyond MaxPostingDong.
//
// Only the common case is computed here: every amount VND, with no
// exponent and within range, no amount negative. Anything else (a refused
// entry, an amount spelled with an exponent) is handed to Postings and its
// answer converted, so that the two can never disagree on what they
// accept (TestPostingsDongAgreesWithPostings).
func PostingsDong(e domain.Event, buf []PostingDong) ([]PostingDong, error) {
	j := journalDong{lines: buf[:0]}
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
	if !j.slow && j.sum == 0 {
		return j.lines, nil
	}
	return postingsDongSlow(e, j.lines[:0])
}

// postingsDongSlow converts what Postings answers.
func postingsDongSlow(e domain.Event, buf []PostingDong) ([]PostingDong, error) {
	ps, err := Postings(e)
	if err != nil {
		return nil, err
	}
	out := buf[:0]
	for _, p := range ps {
		// Postings checked that each amount is a whole number of dong.
		n := p.Amount.Amount.BigInt()
		if !n.IsInt64() || n.Int64() > MaxPostingDong || n.Int64() < -MaxPostingDong {
			return nil, fmt.Errorf("postings of %s: %s: %w: %s", e.EventType(), p.Account, ErrPostingRange, p.Amount)
		}
		out = append(out, PostingDong{Account: p.Account, CitizenID: p.CitizenID, Program: p.Program, Amount: n.Int64()})
	}
	return out, nil
}

// journalDong is journal in int64. slow says an amount is not the common
// case; the entry is then computed again by Postings.
type journalDong struct {
	citizen, program string
	lines            []PostingDong
	sum              int64
	slow             bool
}

func (j *journalDong) at(k ObligationKey) { j.citizen, j.program = k.CitizenID, k.Program }

// dongOf is m in int64 when m is VND, has no exponent and is within
// ±MaxPostingDong; ok false otherwise.
func dongOf(m domain.Money) (n int64, ok bool) {
	a := m.Amount
	// NumDigits first: CoefficientInt64 is undefined beyond an int64.
	if m.Currency != domain.VND || a.Exponent() != 0 || a.NumDigits() > 16 {
		return 0, false
	}
	n = a.CoefficientInt64()
	return n, n <= MaxPostingDong && n >= -MaxPostingDong
}

// post adds signed amount n (|n| <= MaxPostingDong, so the sum of a few
// lines cannot overflow) unless it is zero, as journal.post does.
func (j *journalDong) post(a Account, n int64) {
	if n == 0 {
		return
	}
	j.sum += n
	j.lines = append(j.lines, PostingDong{Account: a, CitizenID: j.citizen, Program: j.program, Amount: n})
}

func (j *journalDong) debit(a Account, m domain.Money) {
	n, ok := dongOf(m)
	if !ok || n < 0 || len(j.lines) >= maxFastLines {
		j.slow = true
		return
	}
	j.post(a, n)
}

func (j *journalDong) credit(a Account, m domain.Money) {
	n, ok := dongOf(m)
	if !ok || n < 0 || len(j.lines) >= maxFastLines {
		j.slow = true
		return
	}
	j.post(a, -n)
}

// maxFastLines keeps the fast path's sum far from overflowing: 2^50 times
// 2^10 lines is 2^60. An entry of more lines (an attempt with over a
// thousand offsets) is left to Postings.
const maxFastLines = 1 << 10

func (j *journalDong) offsets(sign int, os []Offset) {
	for _, o := range os {
		if sign < 0 {
			j.credit(BeneficiaryReceivable, o.Amount)
		} else {
			j.debit(BeneficiaryReceivable, o.Amount)
		}
	}
}
