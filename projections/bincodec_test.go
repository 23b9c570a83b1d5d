package projections

import (
	"fmt"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

// moneyBefore is binWriter.money as it was before its allocation-free
// path: the reference the new one must match byte for byte, error for
// error.
func moneyBefore(w *binWriter, m domain.Money) {
	m = zeroIfUnset(m)
	if m.Currency != domain.VND || !m.IsWhole() || !m.Amount.Equal(decimal.NewFromInt(m.Amount.IntPart())) {
		if w.err == nil {
			w.err = fmt.Errorf("amount %s is not a whole number of dong", m)
		}
		return
	}
	w.varint(m.Amount.IntPart())
}

func TestBinWriterMoneyAsBefore(t *testing.T) {
	var ms []domain.Money
	for _, s := range []string{
		"0", "1", "-1", "540000", "-1860000", "999999999999999999", "-999999999999999999",
		"1000000000000000000", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
		"123456789012345678901234567890", "0.5", "-0.5", "540000.00", "1e3", "54e4", "1.5e1", "1.25e1",
	} {
		ms = append(ms, domain.Money{Amount: decimal.RequireFromString(s), Currency: domain.VND})
	}
	ms = append(ms,
		domain.Money{Amount: decimal.New(54, 4), Currency: domain.VND},
		domain.Money{Amount: decimal.New(5400, -2), Currency: domain.VND},
		domain.Money{Amount: decimal.New(5401, -2), Currency: domain.VND},
		domain.Money{Amount: decimal.NewFromInt(5), Currency: "USD"},
		domain.Money{Amount: decimal.NewFromInt(5), Currency: ""}, // unset: zero
		domain.Money{},
	)
	for _, m := range ms {
		var got, want binWriter
		got.money(m)
		moneyBefore(&want, m)
		if string(got.b) != string(want.b) || (got.err == nil) != (want.err == nil) ||
			(got.err != nil && got.err.Error() != want.err.Error()) {
			t.Errorf("%s (exponent %d): wrote %x, %v; before %x, %v", m, m.Amount.Exponent(), got.b, got.err, want.b, want.err)
		}
	}
}
