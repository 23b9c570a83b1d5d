package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
)

// A compact binary encoding for the values written on every payment event
// (payment rows, obligations, account balances). JSON is kept for the
// rest: these few were a fifth of a rebuild's CPU in JSON, mostly in
// domain.Money's marshaller. The encoding is deterministic (verify compares
// stored bytes) and starts with a format byte so it can change later.
//
// Amounts are whole dong (the domain guarantees it for every amount a
// payment event carries); an amount that is not is refused, never rounded.

const binFormatV1 = 1

var errShortValue = errors.New("stored value is truncated or corrupt")

type binWriter struct {
	b   []byte
	err error
}

func (w *binWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *binWriter) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }

func (w *binWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *binWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *binWriter) money(m domain.Money) {
	if m.Currency == "" {
		w.varint(0) // unset is zero, as zeroIfUnset has it
		return
	}
	// The usual amount without allocating: no exponent, at most 18 digits
	// (so within an int64). The check below allocates twice.
	if a := m.Amount; m.Currency == domain.VND && a.Exponent() == 0 && a.NumDigits() <= 18 {
		w.varint(a.CoefficientInt64())
		return
	}
	if m.Currency != domain.VND || !m.IsWhole() || !m.Amount.Equal(decimal.NewFromInt(m.Amount.IntPart())) {
		if w.err == nil {
			w.err = fmt.Errorf("amount %s is not a whole number of dong", m)
		}
		return
	}
	w.varint(m.Amount.IntPart())
}

func (w *binWriter) period(p domain.Period) { w.uvarint(uint64(p.Year*12 + int(p.Month) - 1 + 1)) } // 0: no period

func (w *binWriter) time(t time.Time) {
	if t.IsZero() {
		w.uvarint(0)
		return
	}
	w.uvarint(1)
	w.varint(t.UnixNano())
}

func (w *binWriter) obligation(k disbursement.ObligationKey) {
	w.str(k.CitizenID)
	w.str(k.Program)
	w.period(k.Period)
	w.str(k.TopUp)
}

type binReader struct {
	b   []byte
	err error
}

func (r *binReader) fail() {
	if r.err == nil {
		r.err = errShortValue
	}
}

// The reader accepts each value in the one spelling the writer gives it,
// and refuses any other (an overlong varint, a flag that is neither 0 nor
// 1): what it decodes then encodes back to the same bytes, which verify's
// byte comparison of a read model with a replay relies on (a value the live
// projection read back from Pebble must encode as the replay's never-stored
// one does), and a corrupt value fails instead of passing for another.

// uvarint refuses an overlong varint (one that ends with a zero byte),
// which would decode to the same number.
func (r *binReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n > 1 && r.b[n-1] == 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint: binary.Varint is Uvarint zig-zagged, so overlong the same way.
func (r *binReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 || n > 1 && r.b[n-1] == 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *binReader) str() string { return string(r.raw()) }

// raw reads what str writes, as bytes valid until r's input changes.
func (r *binReader) raw() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

// account reads what str writes, sharing the name of a known account
// instead of allocating it: a person's account sums, decoded when read back
// from disk, hold four or five of them, and the kept ones stay in memory.
func (r *binReader) account() disbursement.Account {
	b := r.raw()
	for _, a := range disbursement.Accounts {
		if string(b) == string(a) {
			return a
		}
	}
	return disbursement.Account(b)
}

func (r *binReader) boolean() bool {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

func (r *binReader) money() domain.Money { return domain.VNDAmount(r.varint()) }

// dong reads what money and dong write, refusing a value out of dong's
// range.
func (r *binReader) dong() dong {
	v := r.varint()
	if v > maxDongSum || v < -maxDongSum {
		r.fail()
		return 0
	}
	return dong(v)
}

func (r *binReader) period() domain.Period {
	v := r.uvarint()
	if v == 0 {
		return domain.Period{}
	}
	v--
	return domain.Period{Year: int(v / 12), Month: time.Month(v%12 + 1)}
}

func (r *binReader) time() time.Time {
	if r.uvarint() == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.varint()).UTC()
}

func (r *binReader) obligation() disbursement.ObligationKey {
	return disbursement.ObligationKey{CitizenID: r.str(), Program: r.str(), Period: r.period(), TopUp: r.str()}
}

func (r *binReader) start() {
	if len(r.b) == 0 || r.b[0] != binFormatV1 {
		r.err = fmt.Errorf("stored value: unknown format")
		return
	}
	r.b = r.b[1:]
}

func (r *binReader) finish() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("stored value: %d trailing bytes", len(r.b))
	}
	return r.err
}

// AppendBinary encodes a payment row.
func (p *PaymentRow) AppendBinary(b []byte) ([]byte, error) {
	w := binWriter{b: append(b, binFormatV1)}
	w.obligation(p.Obligation)
	w.uvarint(uint64(p.Attempt))
	w.str(p.RunID)
	w.str(p.PaymentID)
	y := p.Payee
	w.str(y.CitizenID)
	w.str(y.Name)
	w.boolean(y.Proxy)
	w.str(string(y.Method))
	w.str(y.BankCode)
	w.str(y.AccountMasked)
	w.str(y.District)
	w.str(y.Ward)
	w.money(p.Gross)
	w.money(p.Net)
	w.uvarint(uint64(len(p.Offsets)))
	for _, o := range p.Offsets {
		w.str(o.Correction)
		w.money(o.Amount)
	}
	w.str(string(p.Status))
	w.str(p.Reference)
	w.str(p.Reason)
	w.str(p.Detail)
	w.time(p.IssuedAt)
	w.time(p.UpdatedAt)
	w.time(p.AnsweredAt)
	w.str(p.Trace.Entitlement)
	w.str(p.Trace.Rule)
	w.boolean(p.Trace.Rate != nil)
	if p.Trace.Rate != nil {
		w.money(*p.Trace.Rate)
	}
	w.str(p.Trace.Decree)
	return w.b, w.err
}

// UnmarshalBinary decodes a payment row.
func (p *PaymentRow) UnmarshalBinary(b []byte) error {
	r := binReader{b: b}
	r.start()
	*p = PaymentRow{Obligation: r.obligation(), Attempt: int(r.uvarint()), RunID: r.str(), PaymentID: r.str()}
	p.Payee = PaymentPayee{CitizenID: r.str(), Name: r.str(), Proxy: r.boolean(), Method: disbursement.Method(r.str()),
		BankCode: r.str(), AccountMasked: r.str(), District: r.str(), Ward: r.str()}
	p.Gross, p.Net = r.money(), r.money()
	if n := r.uvarint(); n > 0 && n <= uint64(len(r.b)) {
		p.Offsets = make([]disbursement.Offset, n)
		for i := range p.Offsets {
			p.Offsets[i] = disbursement.Offset{Correction: r.str(), Amount: r.money()}
		}
	} else if n > 0 {
		r.fail()
	}
	p.Status = disbursement.Status(r.str())
	p.Reference, p.Reason, p.Detail = r.str(), r.str(), r.str()
	p.IssuedAt, p.UpdatedAt, p.AnsweredAt = r.time(), r.time(), r.time()
	p.Trace.Entitlement, p.Trace.Rule = r.str(), r.str()
	if r.boolean() {
		m := r.money()
		p.Trace.Rate = &m
	}
	p.Trace.Decree = r.str()
	return r.finish()
}

func (o *obligationBalance) AppendBinary(b []byte) ([]byte, error) {
	w := binWriter{b: append(b, binFormatV1)}
	w.obligation(o.Key)
	w.uvarint(uint64(o.Attempt))
	w.str(string(o.Status))
	w.money(o.Gross)
	w.money(o.Net)
	w.str(o.RunID)
	w.str(o.PaymentID)
	return w.b, w.err
}

func (o *obligationBalance) UnmarshalBinary(b []byte) error {
	r := binReader{b: b}
	r.start()
	*o = obligationBalance{Key: r.obligation(), Attempt: int(r.uvarint()), Status: disbursement.Status(r.str()),
		Gross: r.money(), Net: r.money(), RunID: r.str(), PaymentID: r.str()}
	return r.finish()
}

func (o *obligationState) AppendBinary(b []byte) ([]byte, error) {
	w := binWriter{b: append(b, binFormatV1)}
	w.str(o.District)
	w.period(o.Period)
	w.uvarint(uint64(o.Attempt))
	w.str(string(o.Status))
	w.varint(int64(o.Gross)) // as w.money writes the same amount
	w.varint(int64(o.Net))
	return w.b, w.err
}

func (o *obligationState) UnmarshalBinary(b []byte) error {
	r := binReader{b: b}
	r.start()
	*o = obligationState{District: r.str(), Period: r.period(), Attempt: int(r.uvarint()), Status: disbursement.Status(r.str()),
		Gross: r.dong(), Net: r.dong()}
	return r.finish()
}

// accounts are written sorted by name: deterministic, like a sorted map.
func (a *accounts) AppendBinary(b []byte) ([]byte, error) {
	w := binWriter{b: append(b, binFormatV1)}
	w.uvarint(uint64(len(*a)))
	for _, name := range sortedAccounts(*a) {
		w.str(string(name))
		w.money((*a)[name])
	}
	return w.b, w.err
}

func (a *accounts) UnmarshalBinary(b []byte) error {
	r := binReader{b: b}
	r.start()
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return r.err
	}
	*a = make(accounts, n)
	for range n {
		name := r.account()
		(*a)[name] = r.money()
	}
	return r.finish()
}

func sortedAccounts(a accounts) []disbursement.Account {
	out := make([]disbursement.Account, 0, len(a))
	for name := range a {
		out = append(out, name)
	}
	// A handful of accounts: insertion sort by name.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
