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

// TestBinReaderTakesOneSpellingOnly: the reader refuses an overlong varint
// and a flag other than 0 or 1, which would decode to what the writer
// spells otherwise (verify compares stored bytes with a replay's); the
// writer's own spellings read back. A payment row whose first length is
// overlong is refused whole.
func TestBinReaderTakesOneSpellingOnly(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		read func(r *binReader) any
		want any // nil: refused
	}{
		{"uvarint", []byte{0x0c}, func(r *binReader) any { return r.uvarint() }, uint64(12)},
		{"uvarint of two bytes", []byte{0x80, 0x01}, func(r *binReader) any { return r.uvarint() }, uint64(128)},
		{"zero", []byte{0x00}, func(r *binReader) any { return r.uvarint() }, uint64(0)},
		{"overlong uvarint", []byte{0x8c, 0x00}, func(r *binReader) any { return r.uvarint() }, nil},
		{"overlong varint", []byte{0x81, 0x80, 0x00}, func(r *binReader) any { return r.varint() }, nil},
		{"varint", []byte{0x03}, func(r *binReader) any { return r.varint() }, int64(-2)},
		{"true", []byte{1}, func(r *binReader) any { return r.boolean() }, true},
		{"false", []byte{0}, func(r *binReader) any { return r.boolean() }, false},
		{"a flag of 2", []byte{2}, func(r *binReader) any { return r.boolean() }, nil},
	} {
		r := binReader{b: c.b}
		got := c.read(&r)
		if err := r.finish(); c.want == nil {
			if err == nil {
				t.Errorf("%s (% x): read as %v, want refused", c.name, c.b, got)
			}
		} else if err != nil || got != c.want {
			t.Errorf("%s (% x): %v, %v; want %v", c.name, c.b, got, err, c.want)
		}
	}
	row := PaymentRow{Obligation: disbursement.ObligationKey{CitizenID: "001030000000", Program: "SOCIAL_MONTHLY"}, RunID: "R1", PaymentID: "P1"}
	b, err := row.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b[1] != 12 { // after the format byte, the citizen ID's length
		t.Fatalf("unexpected encoding % x", b[:4])
	}
	overlong := append([]byte{b[0], 12 | 0x80, 0x00}, b[2:]...)
	var back PaymentRow
	if err := back.UnmarshalBinary(overlong); err == nil {
		t.Errorf("a payment row with an overlong length read back as %+v", back)
	}
	if err := back.UnmarshalBinary(b); err != nil || back.PaymentID != "P1" {
		t.Errorf("the row as written: %+v, %v", back, err)
	}
}
