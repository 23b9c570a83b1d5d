package domain

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/shopspring/decimal"
)

// Currency is an ISO 4217 code. ansinh pays in dong only today, but every
// amount carries its currency so that a report can never add unlike things.
type Currency string

// VND, the Vietnamese dong, has no minor unit: every amount is whole dong.
const VND Currency = "VND"

// Limits on amounts, protecting the ledger from typos and hostile input.
// The largest single amount in DOMAIN.md is 8,367,000 VND a month; a cap of
// 10^12 dong leaves room for any run total while rejecting absurd input.
const (
	MaxAmountDigits = 15 // digits in a written amount
	MaxAmountDong   = 1_000_000_000_000
)

// Money is an amount of a currency. The zero value is not valid money; build
// one with VNDAmount, ParseVND or NewMoney.
type Money struct {
	Amount   decimal.Decimal
	Currency Currency
}

// VNDAmount returns n dong.
func VNDAmount(n int64) Money { return Money{Amount: decimal.NewFromInt(n), Currency: VND} }

// ZeroVND is nothing, in dong.
func ZeroVND() Money { return VNDAmount(0) }

// ParseVND reads a whole number of dong written as digits, with an optional
// leading minus: "1250000". It refuses fractions, exponents, separators and
// more than MaxAmountDigits digits, so that what a client sends is exactly
// what is stored.
func ParseVND(s string) (Money, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > MaxAmountDigits {
		return Money{}, fmt.Errorf("amount %q: want a whole number of dong of 1 to %d digits", clip(s), MaxAmountDigits)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return Money{}, fmt.Errorf("amount %q: want a whole number of dong, digits only (no separators, decimals or exponent)", clip(s))
		}
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Money{}, fmt.Errorf("amount %q: %w", clip(s), err)
	}
	return Money{Amount: d, Currency: VND}, nil
}

// RoundToDong rounds a computed amount (base level x coefficient) to whole
// dong, half away from zero: 0.5 dong becomes 1. This is the one rounding rule
// of the ledger; it is applied once, where an amount is computed, never on
// sums.
func RoundToDong(d decimal.Decimal) Money {
	return Money{Amount: d.Round(0), Currency: VND}
}

func (m Money) Add(o Money) Money { m.mustMatch(o); return Money{m.Amount.Add(o.Amount), m.Currency} }
func (m Money) Sub(o Money) Money { m.mustMatch(o); return Money{m.Amount.Sub(o.Amount), m.Currency} }
func (m Money) Neg() Money        { return Money{m.Amount.Neg(), m.Currency} }
func (m Money) IsZero() bool      { return m.Amount.IsZero() }
func (m Money) IsPositive() bool  { return m.Amount.IsPositive() }
func (m Money) IsNegative() bool  { return m.Amount.IsNegative() }

// Cmp compares two amounts of the same currency: -1, 0, +1.
func (m Money) Cmp(o Money) int { m.mustMatch(o); return m.Amount.Cmp(o.Amount) }

// Equal reports whether m and o are the same amount of the same currency.
func (m Money) Equal(o Money) bool { return m.Currency == o.Currency && m.Amount.Equal(o.Amount) }

// IsWhole reports whether m has no fraction of a dong.
func (m Money) IsWhole() bool { return m.Amount.Equal(m.Amount.Truncate(0)) }

// Mul multiplies by a whole count (e.g. months of arrears).
func (m Money) Mul(n int64) Money { return Money{m.Amount.Mul(decimal.NewFromInt(n)), m.Currency} }

// String renders "1250000 VND".
func (m Money) String() string { return m.Amount.String() + " " + string(m.Currency) }

// mustMatch panics on mixed currencies: adding dong to another currency is a
// programming error, not a user error, since every input is checked at the
// edge to be VND.
func (m Money) mustMatch(o Money) {
	if m.Currency != o.Currency {
		panic(fmt.Sprintf("money: mixing %s and %s", m.Currency, o.Currency))
	}
}

// moneyJSON is the wire form everywhere (events and API): the amount as a
// string of whole units, the currency beside it.
type moneyJSON struct {
	Amount   string   `json:"amount"`
	Currency Currency `json:"currency"`
}

func (m Money) MarshalJSON() ([]byte, error) {
	return json.Marshal(moneyJSON{Amount: m.Amount.String(), Currency: m.Currency})
}

func (m *Money) UnmarshalJSON(b []byte) error {
	if n, ok := parseMoneyFast(b); ok {
		*m = decodedVND(n)
		return nil
	}
	return m.unmarshalJSONSlow(b)
}

// decodedAmounts remembers one decoded amount in each slot (the last one
// to land there), so that decoding an amount seen before allocates
// nothing: a new decimal costs two allocations (a big.Int and its one
// word), a tenth of all the objects a rebuild of the read models
// allocated, and the log holds the same few allowance amounts millions of
// times. Sharing the big.Int of one decimal among many is what decimal
// does itself (a copy of a Decimal shares it; Decimal "is immutable", and
// no method writes to its big.Int). Slots are replaced whole, atomically,
// so concurrent decoders need no lock; a miss costs one allocation more.
var decodedAmounts [1 << decodedAmountsBits]atomic.Pointer[decodedAmount]

const decodedAmountsBits = 10

type decodedAmount struct {
	n int64
	d decimal.Decimal
}

// decodedVND is VNDAmount(n) for a decoder: the same value, shared with
// earlier decodes of n when it is still remembered.
func decodedVND(n int64) Money {
	// Fibonacci hashing: amounts are mostly multiples of 1,000, whose low
	// bits would crowd a few slots.
	slot := &decodedAmounts[uint64(n)*0x9E3779B97F4A7C15>>(64-decodedAmountsBits)]
	if a := slot.Load(); a != nil && a.n == n {
		return Money{Amount: a.d, Currency: VND}
	}
	m := VNDAmount(n)
	slot.Store(&decodedAmount{n: n, d: m.Amount})
	return m
}

// The exact bytes MarshalJSON writes around a dong amount.
const (
	moneyFastHead = `{"amount":"`
	moneyFastTail = `","currency":"VND"}`
)

// parseMoneyFast reads the one shape MarshalJSON writes,
// {"amount":"<digits>","currency":"VND"} with no spaces, without
// reflection: decoding events spends most of its time on their amounts, and
// a rebuild decodes millions of them. It reports false for anything else,
// which unmarshalJSONSlow then judges, so that both paths accept and reject
// exactly the same inputs (TestMoneyUnmarshalFastMatchesSlow). Every amount
// it accepts (an optional minus and 1 to MaxAmountDigits = 15 digits) fits
// an int64.
func parseMoneyFast(b []byte) (int64, bool) {
	if len(b) < len(moneyFastHead)+1+len(moneyFastTail) ||
		string(b[:len(moneyFastHead)]) != moneyFastHead ||
		string(b[len(b)-len(moneyFastTail):]) != moneyFastTail {
		return 0, false
	}
	digits := b[len(moneyFastHead) : len(b)-len(moneyFastTail)]
	neg := digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > MaxAmountDigits {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// unmarshalJSONSlow accepts any JSON spelling of money that encoding/json
// reads into moneyJSON (spaces, other key order, escapes), with the same
// checks on currency and amount.
func (m *Money) unmarshalJSONSlow(b []byte) error {
	var w moneyJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("money: want {\"amount\": \"<whole dong>\", \"currency\": \"VND\"}: %w", err)
	}
	if w.Currency != VND {
		return fmt.Errorf("money: currency %q, only VND is accepted", clip(string(w.Currency)))
	}
	parsed, err := ParseVND(w.Amount)
	if err != nil {
		return err
	}
	*m = parsed
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
