package disbursement

import "github.com/ansinh/ansinh/domain"

// Payment events are most of the log (three or more per obligation and
// month), so a rebuild of the read models decodes millions of them. These
// DecodeCanonicalJSON methods (domain.CanonicalDecoder) read the exact JSON
// the codec writes for them, field by field in struct order, without
// encoding/json's reflection; anything else reports false and the codec
// takes encoding/json as before. TestPaymentEventsCanonicalMatchesJSON
// keeps both paths in agreement.

func readAttemptRef(r *domain.CanonicalReader) AttemptRef {
	var a AttemptRef
	r.Key("obligation")
	r.Open()
	r.Key("citizen_id")
	a.Obligation.CitizenID = r.String()
	r.Key("program")
	a.Obligation.Program = r.String()
	r.Key("period")
	a.Obligation.Period = r.Period()
	if r.OptionalKey("top_up") {
		a.Obligation.TopUp = r.String()
	}
	r.Close()
	r.Key("attempt")
	a.Attempt = r.Int()
	r.Key("run_id")
	a.RunID = r.String()
	r.Key("payment_id")
	a.PaymentID = r.String()
	return a
}

func readAmounts(r *domain.CanonicalReader) Amounts {
	var a Amounts
	r.Key("gross")
	a.Gross = r.Money()
	if r.OptionalKey("offsets") {
		r.Array(func() {
			var o Offset
			r.Open()
			r.Key("correction_id")
			o.Correction = r.String()
			r.Key("amount")
			o.Amount = r.Money()
			r.Close()
			a.Offsets = append(a.Offsets, o)
		})
	}
	r.Key("net")
	a.Net = r.Money()
	return a
}

func readPayee(r *domain.CanonicalReader) Payee {
	var p Payee
	r.Open()
	r.Key("citizen_id")
	p.CitizenID = r.String()
	r.Key("name")
	p.Name = r.String()
	if r.OptionalKey("proxy") {
		p.Proxy = r.Bool()
	}
	r.Key("method")
	p.Method = Method(r.String())
	if r.OptionalKey("bank_code") {
		p.BankCode = r.String()
	}
	if r.OptionalKey("account_number") {
		p.AccountNumber = r.String()
	}
	r.Key("district")
	p.District = r.String()
	r.Key("ward")
	p.Ward = r.String()
	r.Close()
	return p
}

func readTrace(r *domain.CanonicalReader) Trace {
	var t Trace
	r.Open()
	r.Key("entitlement")
	t.Entitlement = r.String()
	r.Key("rule")
	t.Rule = r.String()
	if r.OptionalKey("rate") {
		m := r.Money()
		t.Rate = &m
	}
	if r.OptionalKey("decree") {
		t.Decree = r.String()
	}
	r.Close()
	return t
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentIssued) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	e.AttemptRef = readAttemptRef(&r)
	r.Key("payee")
	e.Payee = readPayee(&r)
	e.Amounts = readAmounts(&r)
	r.Key("trace")
	e.Trace = readTrace(&r)
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentCancelled) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	e.AttemptRef = readAttemptRef(&r)
	e.Amounts = readAmounts(&r)
	r.Key("reason")
	e.Reason = r.String()
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentReleased) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	e.AttemptRef = readAttemptRef(&r)
	r.Key("method")
	e.Method = Method(r.String())
	r.Key("net")
	e.Net = r.Money()
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentSettled) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	e.AttemptRef = readAttemptRef(&r)
	r.Key("method")
	e.Method = Method(r.String())
	r.Key("net")
	e.Net = r.Money()
	r.Key("reference")
	e.Reference = r.String()
	r.Key("settled_at")
	e.SettledAt = r.Time()
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentFailed) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	e.AttemptRef = readAttemptRef(&r)
	r.Key("method")
	e.Method = Method(r.String())
	e.Amounts = readAmounts(&r)
	r.Key("reason")
	e.Reason = FailureReason(r.String())
	if r.OptionalKey("detail") {
		e.Detail = r.String()
	}
	r.Key("failed_at")
	e.FailedAt = r.Time()
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentReturned) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	e.AttemptRef = readAttemptRef(&r)
	r.Key("method")
	e.Method = Method(r.String())
	e.Amounts = readAmounts(&r)
	r.Key("reference")
	e.Reference = r.String()
	r.Key("reason")
	e.Reason = FailureReason(r.String())
	if r.OptionalKey("detail") {
		e.Detail = r.String()
	}
	r.Key("returned_at")
	e.ReturnedAt = r.Time()
	r.Close()
	return r.Done()
}

// DecodeCanonicalJSON implements domain.CanonicalDecoder.
func (e *PaymentReversed) DecodeCanonicalJSON(b []byte) bool {
	r := domain.NewCanonicalReader(b)
	r.Open()
	e.AttemptRef = readAttemptRef(&r)
	r.Key("correction_id")
	e.Correction = r.String()
	r.Key("gross")
	e.Gross = r.Money()
	r.Close()
	return r.Done()
}
