package projections

import (
	"fmt"
	"math/big"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// The registry's record of a person (b/<citizen ID>) in the binary
// encoding of bincodec.go, since registry version 2. Decoding the JSON
// record was 8% of a balance query's CPU (every balance reads the
// record) and encoding it 1.2% of a rebuild's; a typical record is 251
// bytes instead of 643.
//
// Every field is written, in the order of the types in stored.go, so a
// decoded record marshals to exactly the JSON it would have been stored
// as. The encoding is deterministic, and more: each record has one
// spelling, and the decoder refuses any other (an overlong varint, a flag
// that is neither 0 nor 1, a coefficient with trailing zeros), so that
// re-encoding what it decoded gives back the same bytes
// (FuzzRegRecordDecode). verify compares stored bytes with a replay's,
// and a record the live projection read back from Pebble must encode as
// the replay's never-stored one does.
//
// Nothing is rounded: a coefficient keeps its value exactly, in the form
// JSON kept (trailing zeros dropped), and an amount that is not a whole number
// of dong, which the domain refuses anyway, is written as its currency
// and decimal rather than refused. A date or period outside the years
// 0 to 9999, or with a month outside 1 to 12 or a day outside 1 to 31,
// is refused: JSON could not have read it back either.
//
// A record written as JSON by version 1 (it starts with '{') is still
// read. None should be left, since a changed version makes the runner
// drop the old generation at start-up and replay the registry from the
// log; reading one anyway costs a byte comparison.

func (r *regRecord) AppendBinary(b []byte) ([]byte, error) {
	w := binWriter{b: append(b, binFormatV1)}
	w.beneficiary(&r.Beneficiary)
	return w.b, w.err
}

func (r *regRecord) UnmarshalBinary(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		r.Beneficiary = Beneficiary{}
		return jsonUnmarshal(b, &r.Beneficiary)
	}
	rd := recReader{binReader: binReader{b: b}, s: string(b)}
	rd.start()
	rd.beneficiary(&r.Beneficiary)
	return rd.finish()
}

func (w *binWriter) beneficiary(s *Beneficiary) {
	w.str(s.CitizenID)
	w.boolean(s.Registered)
	w.str(s.FullName)
	w.date(s.DateOfBirth.Date)
	w.str(string(s.Sex))
	a := &s.Address
	w.str(a.Street)
	w.str(a.DistrictCode)
	w.str(a.DistrictName)
	w.str(a.WardCode)
	w.str(a.WardName)
	w.str(a.Catalogue)
	w.str(string(s.Category))
	w.str(s.HouseholdID)
	w.boolean(s.Exit != nil)
	if e := s.Exit; e != nil {
		w.str(string(e.Cause))
		w.date(e.Date.Date)
		w.optPeriod(e.LastPeriod.Period)
		w.str(e.DocumentRef)
		w.str(e.Destination)
	}
	w.boolean(s.BankAccount != nil)
	if k := s.BankAccount; k != nil {
		w.str(k.BankCode)
		w.str(k.AccountNumber)
		w.str(k.HolderName)
		w.str(string(k.Holder))
		w.str(k.ProxyID)
	}
	w.str(string(s.PaymentMethod))
	// Proxies, entitlements and suspensions are omitted from JSON when
	// empty, so empty and nil are one: a count. Terms are not (null and []
	// differ), so their count is one more, and 0 is nil.
	w.uvarint(uint64(len(s.Proxies)))
	for i := range s.Proxies {
		p := &s.Proxies[i]
		w.str(p.ID)
		w.str(p.FullName)
		w.str(p.CitizenID)
		w.str(p.Relationship)
		w.str(string(p.Reason))
		w.str(p.ReasonNote)
		w.date(p.ValidFrom.Date)
		w.date(p.ValidTo.Date)
		w.str(p.DocumentRef)
		w.date(p.RevokedFrom.Date)
		w.str(p.RevokeReason)
	}
	w.uvarint(uint64(len(s.Entitlements)))
	for i := range s.Entitlements {
		w.entitlement(&s.Entitlements[i])
	}
	// Queries fill Status in on a copy; it is written so that a record
	// that had one would keep it, as JSON kept it.
	w.str(s.Status)
}

func (w *binWriter) entitlement(e *EntitlementRecord) {
	w.str(e.ID)
	w.str(e.Program)
	w.str(string(e.Kind))
	w.optPeriod(e.Start.Period)
	w.optPeriod(e.End.Period)
	w.str(string(e.EndCause))
	if e.Terms == nil {
		w.uvarint(0)
	} else {
		w.uvarint(uint64(len(e.Terms)) + 1)
	}
	for _, t := range e.Terms {
		w.optPeriod(t.From.Period)
		w.optDecimal(t.Coefficient)
		w.optMoney(t.Amount)
	}
	w.uvarint(uint64(len(e.Suspensions)))
	for _, x := range e.Suspensions {
		w.optPeriod(x.From.Period)
		w.optPeriod(x.Until.Period)
		w.str(x.Reason)
	}
}

func (w *binWriter) refuse(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

// Dates and periods are stored for the years 0 to 9999 (what
// domain.Date.String writes with four digits), with months and days
// that exist in some month; the zero value is no date or period.
const maxStoredYear = 9999

func storableDate(d domain.Date) bool {
	return d == domain.Date{} ||
		d.Year >= 0 && d.Year <= maxStoredYear && d.Month >= 1 && d.Month <= 12 && d.Day >= 1 && d.Day <= 31
}

func storablePeriod(p domain.Period) bool {
	return p.IsZero() || p.Year >= 0 && p.Year <= maxStoredYear && p.Month >= 1 && p.Month <= 12
}

// date packs a date in one varint, three bytes for a date of this era
// where JSON wrote twelve; the zero date packs as 0.
func (w *binWriter) date(d domain.Date) {
	if !storableDate(d) {
		w.refuse("date %04d-%02d-%02d cannot be stored", d.Year, int(d.Month), d.Day)
		return
	}
	w.uvarint(uint64(d.Year)<<9 | uint64(d.Month)<<5 | uint64(d.Day))
}

// optPeriod is binWriter.period for a period that may be zero, refusing
// one it could not read back.
func (w *binWriter) optPeriod(p domain.Period) {
	if !storablePeriod(p) {
		w.refuse("period %04d-%02d cannot be stored", p.Year, int(p.Month))
		return
	}
	w.period(p)
}

// Decimals are written in the one form JSON kept of them, which
// decimal's String writes and NewFromString reads back: a coefficient
// and a scale of 0 or more (the digits after the point), without
// trailing zeros after the point; 2.50 and 25e-1 are both 2.5, 1e2 is
// 100. A coefficient that fits an int64 is a varint; a larger one (none
// the domain allows) is its bytes.
const (
	decimalNil   = 0
	decimalSmall = 1 // varint coefficient, uvarint scale
	decimalBig   = 2 // sign, magnitude (big-endian, no leading zero, beyond int64), uvarint scale
)

// maxStoredScale is decimal's default MaxDecodeExponent: JSON could not
// read back a decimal with a larger exponent (either way) either.
const maxStoredScale = 10_000

// canonicalDecimal is a decimal's stored form: small holds the
// coefficient when big is nil.
type canonicalDecimal struct {
	small int64
	big   *big.Int
	scale uint64
}

var bigTen = big.NewInt(10)

func canonical(d decimal.Decimal) (canonicalDecimal, error) {
	exp := int64(d.Exponent())
	if exp > maxStoredScale || exp < -maxStoredScale {
		return canonicalDecimal{}, fmt.Errorf("decimal %s: exponent %d is beyond %d", d.String(), exp, maxStoredScale)
	}
	// Without allocating for the usual decimal: one of at most 18 digits,
	// zeros of a positive exponent included, is within an int64.
	if n := int64(d.NumDigits()); n+max(exp, 0) <= 18 {
		v := d.CoefficientInt64()
		for ; exp > 0; exp-- {
			v *= 10
		}
		for exp < 0 && v%10 == 0 {
			v /= 10
			exp++
		}
		return canonicalDecimal{small: v, scale: uint64(-exp)}, nil
	}
	c := d.Coefficient()
	switch {
	case c.Sign() == 0:
		exp = 0
	case exp > 0:
		c.Mul(c, new(big.Int).Exp(bigTen, big.NewInt(exp), nil))
		exp = 0
	default:
		q, r := new(big.Int), new(big.Int)
		for exp < 0 {
			if q.QuoRem(c, bigTen, r); r.Sign() != 0 {
				break
			}
			c.Set(q)
			exp++
		}
	}
	if c.IsInt64() {
		return canonicalDecimal{small: c.Int64(), scale: uint64(-exp)}, nil
	}
	return canonicalDecimal{big: c, scale: uint64(-exp)}, nil
}

func (w *binWriter) canonical(c canonicalDecimal) {
	if c.big == nil {
		w.uvarint(decimalSmall)
		w.varint(c.small)
	} else {
		w.uvarint(decimalBig)
		w.boolean(c.big.Sign() < 0)
		mag := c.big.Bytes()
		w.uvarint(uint64(len(mag)))
		w.b = append(w.b, mag...)
	}
	w.uvarint(c.scale)
}

func (w *binWriter) optDecimal(d *decimal.Decimal) {
	if d == nil {
		w.uvarint(decimalNil)
		return
	}
	c, err := canonical(*d)
	if err != nil {
		w.refuse("%w", err)
		return
	}
	w.canonical(c)
}

// Amounts: the domain holds whole dong only (checkAmount, and
// domain.Money's JSON), written as a varint as binWriter.money writes
// them; anything else is written exactly, currency and decimal, instead
// of being refused.
const (
	moneyNil   = 0
	moneyDong  = 1 // varint whole dong
	moneyOther = 2 // currency, then a decimal as above
)

func (w *binWriter) optMoney(m *domain.Money) {
	if m == nil {
		w.uvarint(moneyNil)
		return
	}
	c, err := canonical(m.Amount)
	if err != nil {
		w.refuse("amount: %w", err)
		return
	}
	if m.Currency == domain.VND && c.big == nil && c.scale == 0 {
		w.uvarint(moneyDong)
		w.varint(c.small)
		return
	}
	w.uvarint(moneyOther)
	w.str(string(m.Currency))
	w.canonical(c)
}

// recReader reads a record as binReader does (each value in its one
// spelling only), and takes every string from one copy of the input, s,
// instead of allocating each: a record holds some thirty strings, and the
// copy is what a record's strings would take anyway.
type recReader struct {
	binReader
	s string // the whole input; r.b is its tail
}

// count reads a number of elements, each at least one byte long, so it
// cannot be more than the bytes left: a corrupt count does not allocate.
func (r *recReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

// text reads what binWriter.str writes, as a part of r.s.
func (r *recReader) text() string {
	b := r.raw()
	at := len(r.s) - len(r.b) - len(b)
	return r.s[at : at+len(b)]
}

func (r *recReader) date() OptDate {
	v := r.uvarint()
	if v>>9 > maxStoredYear {
		r.fail()
		return OptDate{}
	}
	d := domain.Date{Year: int(v >> 9), Month: time.Month(v >> 5 & 15), Day: int(v & 31)}
	if !storableDate(d) {
		r.fail()
		return OptDate{}
	}
	return OptDate{d}
}

func (r *recReader) optPeriod() OptPeriod {
	v := r.uvarint()
	if v == 0 {
		return OptPeriod{}
	}
	v--
	if v/12 > maxStoredYear {
		r.fail()
		return OptPeriod{}
	}
	return OptPeriod{domain.Period{Year: int(v / 12), Month: time.Month(v%12 + 1)}}
}

// decimalAfter reads the rest of a decimal whose kind (decimalSmall or
// decimalBig) was read, refusing any form canonical would not write.
func (r *recReader) decimalAfter(kind uint64) decimal.Decimal {
	switch kind {
	case decimalSmall:
		v := r.varint()
		scale := r.uvarint()
		if scale > maxStoredScale || scale > 0 && v%10 == 0 {
			r.fail()
			return decimal.Decimal{}
		}
		return decimal.New(v, int32(-int64(scale)))
	case decimalBig:
		neg := r.boolean()
		mag := r.raw()
		scale := r.uvarint()
		if len(mag) == 0 || mag[0] == 0 || scale > maxStoredScale {
			r.fail()
			return decimal.Decimal{}
		}
		c := new(big.Int).SetBytes(mag)
		if neg {
			c.Neg(c)
		}
		if c.IsInt64() || scale > 0 && new(big.Int).Rem(c, bigTen).Sign() == 0 {
			r.fail()
			return decimal.Decimal{}
		}
		return decimal.NewFromBigInt(c, int32(-int64(scale)))
	}
	r.fail()
	return decimal.Decimal{}
}

func (r *recReader) optDecimal() *decimal.Decimal {
	kind := r.uvarint()
	if kind == decimalNil || r.err != nil {
		return nil
	}
	d := r.decimalAfter(kind)
	return &d
}

func (r *recReader) optMoney() *domain.Money {
	switch r.uvarint() {
	case moneyNil:
		return nil
	case moneyDong:
		m := domain.VNDAmount(r.varint())
		return &m
	case moneyOther:
		m := domain.Money{Currency: domain.Currency(r.text())}
		kind := r.uvarint()
		m.Amount = r.decimalAfter(kind)
		if m.Currency == domain.VND && kind == decimalSmall && m.Amount.Exponent() == 0 {
			r.fail() // whole dong are written as moneyDong
		}
		return &m
	}
	r.fail()
	return nil
}

func (r *recReader) beneficiary(s *Beneficiary) {
	*s = Beneficiary{CitizenID: r.text(), Registered: r.boolean(), FullName: r.text(), DateOfBirth: r.date(),
		Sex: registry.Sex(r.text())}
	s.Address = registry.Address{Street: r.text(), DistrictCode: r.text(), DistrictName: r.text(),
		WardCode: r.text(), WardName: r.text(), Catalogue: r.text()}
	s.Category = registry.Category(r.text())
	s.HouseholdID = r.text()
	if r.boolean() {
		s.Exit = &ExitRecord{Cause: entitlement.EndCause(r.text()), Date: r.date(), LastPeriod: r.optPeriod(),
			DocumentRef: r.text(), Destination: r.text()}
	}
	if r.boolean() {
		s.BankAccount = &registry.BankAccount{BankCode: r.text(), AccountNumber: r.text(), HolderName: r.text(),
			Holder: registry.HolderKind(r.text()), ProxyID: r.text()}
	}
	s.PaymentMethod = registry.PaymentMethod(r.text())
	if n := r.count(); n > 0 {
		s.Proxies = make([]ProxyRecord, n)
		for i := range s.Proxies {
			s.Proxies[i] = ProxyRecord{ID: r.text(), FullName: r.text(), CitizenID: r.text(), Relationship: r.text(),
				Reason: registry.ProxyReason(r.text()), ReasonNote: r.text(), ValidFrom: r.date(), ValidTo: r.date(),
				DocumentRef: r.text(), RevokedFrom: r.date(), RevokeReason: r.text()}
		}
	}
	if n := r.count(); n > 0 {
		s.Entitlements = make([]EntitlementRecord, n)
		for i := range s.Entitlements {
			r.entitlement(&s.Entitlements[i])
		}
	}
	s.Status = r.text()
}

func (r *recReader) entitlement(e *EntitlementRecord) {
	*e = EntitlementRecord{ID: r.text(), Program: r.text(), Kind: entitlement.Kind(r.text()), Start: r.optPeriod(),
		End: r.optPeriod(), EndCause: entitlement.EndCause(r.text())}
	if n := r.count(); n > 0 {
		e.Terms = make([]TermsRecord, n-1)
		for i := range e.Terms {
			e.Terms[i] = TermsRecord{From: r.optPeriod(), Coefficient: r.optDecimal(), Amount: r.optMoney()}
		}
	}
	if n := r.count(); n > 0 {
		e.Suspensions = make([]SuspensionRecord, n)
		for i := range e.Suspensions {
			e.Suspensions[i] = SuspensionRecord{From: r.optPeriod(), Until: r.optPeriod(), Reason: r.text()}
		}
	}
}
