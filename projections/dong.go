package projections

import (
	"fmt"
	"strconv"

	"github.com/ansinh/ansinh/domain"
)

// dong is an amount of whole VND held as an int64 in the state that read
// models add to on every payment event (the books' balances, the district
// totals). Adding two domain.Money values (decimal on big.Int) allocates;
// adding two dong does not, and a rebuild adds amounts millions of times.
//
// A dong is stored exactly as the domain.Money it stands for
// ({"amount":"<n>","currency":"VND"} in JSON, a varint in the binary
// values), so state written before with domain.Money reads back the same
// and is written back byte for byte the same (TestDongStoredLikeMoney):
// the read models' stored layout did not change. Queries turn it back into
// domain.Money.
type dong int64

// maxDongSum bounds every dong: 2^62, far above any real sum (a million
// payments of the largest allowed amount, domain.MaxAmountDong, would not
// reach it) and low enough that adding two cannot overflow an int64 before
// the check sees it.
const maxDongSum = 1 << 62

// dongOf converts m, which must be VND and whole (as every amount the
// domain puts in an event is): anything else is an error, never rounded or
// cut.
func dongOf(m domain.Money) (dong, error) {
	a := m.Amount
	if m.Currency != domain.VND || !a.IsInteger() {
		return 0, fmt.Errorf("amount %s is not a whole number of dong", m)
	}
	// The usual case, without allocating: a coefficient of at most 18
	// digits (below 2^62) and no exponent.
	if a.Exponent() == 0 && a.NumDigits() <= 18 {
		return dong(a.CoefficientInt64()), nil
	}
	n := a.BigInt() // exact: a is whole
	if !n.IsInt64() || n.Int64() > maxDongSum || n.Int64() < -maxDongSum {
		return 0, fmt.Errorf("amount %s is out of range", m)
	}
	return dong(n.Int64()), nil
}

// plus returns d+e; both are sums (|x| <= maxDongSum) or amounts, and a
// result beyond maxDongSum is an error rather than a wrong total.
func (d dong) plus(e dong) (dong, error) {
	if e > maxDongSum || e < -maxDongSum || d > maxDongSum || d < -maxDongSum {
		return 0, fmt.Errorf("sum of %d and %d dong is out of range", d, e)
	}
	s := d + e // |d|, |e| <= 2^62: cannot overflow an int64
	if s > maxDongSum || s < -maxDongSum {
		return 0, fmt.Errorf("sum of %d and %d dong is out of range", d, e)
	}
	return s, nil
}

func (d dong) money() domain.Money { return domain.VNDAmount(int64(d)) }

// MarshalJSON writes what domain.Money.MarshalJSON writes for the same
// amount.
func (d dong) MarshalJSON() ([]byte, error) { return d.appendJSON(nil), nil }

func (d dong) appendJSON(b []byte) []byte {
	b = append(b, `{"amount":"`...)
	b = strconv.AppendInt(b, int64(d), 10)
	return append(b, `","currency":"VND"}`...)
}

// UnmarshalJSON reads any money domain.Money reads, if it is a whole
// amount within range.
func (d *dong) UnmarshalJSON(b []byte) error {
	var m domain.Money
	if err := m.UnmarshalJSON(b); err != nil {
		return err
	}
	n, err := dongOf(m)
	if err != nil {
		return err
	}
	*d = n
	return nil
}
