package projections

import (
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/shopspring/decimal"
)

// TestDongSumIsExact: the int64 fast path gives what decimal addition
// gives, also past int64, with fractions and with unset amounts.
func TestDongSumIsExact(t *testing.T) {
	m := func(s string) domain.Money {
		return domain.Money{Amount: decimal.RequireFromString(s), Currency: domain.VND}
	}
	maxInt := m("9223372036854775807")
	tests := []struct {
		name string
		in   []domain.Money
		want string
	}{
		{"nothing", nil, "0"},
		{"unset only", []domain.Money{{}, {}}, "0"},
		{"whole dong", []domain.Money{m("540000"), m("540000"), m("-40000"), {}}, "1040000"},
		{"18 digits", []domain.Money{m("999999999999999999"), m("1")}, "1000000000000000000"},
		{"19 digits go decimal", []domain.Money{m("1"), maxInt, m("1")}, "9223372036854775809"},
		{"overflow in int64", []domain.Money{m("900000000000000000"), m("900000000000000000"), m("900000000000000000"),
			m("900000000000000000"), m("900000000000000000"), m("900000000000000000"), m("900000000000000000"),
			m("900000000000000000"), m("900000000000000000"), m("900000000000000000"), m("900000000000000000")}, "9900000000000000000"},
		{"negative overflow", []domain.Money{m("-900000000000000000"), m("-900000000000000000"), m("-900000000000000000"),
			m("-900000000000000000"), m("-900000000000000000"), m("-900000000000000000"), m("-900000000000000000"),
			m("-900000000000000000"), m("-900000000000000000"), m("-900000000000000000"), m("-900000000000000000")}, "-9900000000000000000"},
		{"fraction", []domain.Money{m("10"), m("0.5"), m("1")}, "11.5"},
		{"exponent", []domain.Money{{Amount: decimal.New(5, 3), Currency: domain.VND}, m("1")}, "5001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s dongSum
			want := domain.ZeroVND()
			for _, x := range tt.in {
				s.add(x)
				want = add(want, x)
			}
			got := s.money()
			if got.Currency != domain.VND || !got.Amount.Equal(want.Amount) || got.Amount.String() != tt.want {
				t.Fatalf("sum %s %s, decimal %s, want %s", got.Amount, got.Currency, want.Amount, tt.want)
			}
		})
	}
}

func TestDongSumRefusesMixedCurrencies(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("adding another currency to dong did not panic, as Money.Add does")
		}
	}()
	var s dongSum
	s.add(domain.VNDAmount(1))
	s.add(domain.Money{Amount: decimal.NewFromInt(1), Currency: "USD"})
	s.money()
}
