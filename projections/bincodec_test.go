package projections

import (
	"fmt"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
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

// TestPaymentStateStoredAsPaymentRow: the payouts' row while applying is
// stored byte for byte as the PaymentRow the queries read, and reads its
// amounts back in dong.
func TestPaymentStateStoredAsPaymentRow(t *testing.T) {
	row := PaymentRow{RunID: "R1", PaymentID: "P1", Gross: domain.VNDAmount(540_000), Net: domain.VNDAmount(360_000),
		Offsets: []disbursement.Offset{{Correction: "C1", Amount: domain.VNDAmount(180_000)}}, Status: disbursement.StatusSettled}
	want, err := row.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	st := paymentState{PaymentRow: row}
	got, err := st.AppendBinary(nil)
	if err != nil || string(got) != string(want) {
		t.Fatalf("paymentState wrote %x, PaymentRow %x (%v)", got, want, err)
	}
	var back paymentState
	if err := back.UnmarshalBinary(want); err != nil {
		t.Fatal(err)
	}
	if back.gross != 540_000 || back.net != 360_000 || back.RunID != "R1" {
		t.Errorf("read back %+v", back)
	}
	half := paymentState{PaymentRow: PaymentRow{Gross: domain.Money{Amount: decimal.RequireFromString("0.5"), Currency: domain.VND}, Net: domain.VNDAmount(0)}}
	if err := half.setAmounts(); err == nil {
		t.Error("half a dong accepted")
	}
}
