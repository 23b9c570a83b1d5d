package disbursement

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/canontest"
)

// The canonical decoders must agree with encoding/json: whenever one
// accepts an input, encoding/json accepts it too and decodes the same
// value (canontest.Agrees). When it declines, the codec uses encoding/json
// itself, so rejections and their messages cannot differ.

type canonCase struct {
	name  string
	gen   func(g *canonGen) domain.Event
	agree func(t testing.TB, b []byte) bool // canontest.Agrees
	slow  func([]byte) (domain.Event, error)
}

func canonCaseOf[E domain.Event, P interface {
	*E
	domain.CanonicalDecoder
}](gen func(g *canonGen) E) canonCase {
	var zero E
	return canonCase{
		name:  zero.EventType(),
		gen:   func(g *canonGen) domain.Event { return gen(g) },
		agree: canontest.Agrees[E, P],
		slow: func(b []byte) (domain.Event, error) {
			var e E
			err := json.Unmarshal(b, &e)
			return e, err
		},
	}
}

// canonGen makes random field values; with plain false, strings may hold
// what encoding/json escapes or replaces (quotes, backslashes, control
// characters, <, invalid UTF-8, U+2028).
type canonGen struct {
	rng   *rand.Rand
	plain bool
}

func (g *canonGen) str() string { return canontest.Str(g.rng, g.plain) }

func (g *canonGen) money() domain.Money {
	switch g.rng.IntN(4) {
	case 0:
		return domain.VNDAmount(0)
	case 1:
		return domain.VNDAmount(-g.rng.Int64N(domain.MaxAmountDong))
	}
	return domain.VNDAmount(g.rng.Int64N(999_999_999_999_999))
}

func (g *canonGen) int() int {
	switch g.rng.IntN(3) {
	case 0:
		return g.rng.IntN(5)
	case 1:
		return -g.rng.IntN(1000)
	}
	if g.plain {
		return int(g.rng.Int64N(1e18)) // the canonical decoder reads up to 18 digits
	}
	return int(g.rng.Int64())
}

func (g *canonGen) period() domain.Period {
	if !g.plain && g.rng.IntN(4) == 0 {
		return domain.Period{Year: 1990 + g.rng.IntN(20), Month: time.Month(g.rng.IntN(14))} // some out of range
	}
	return domain.Period{Year: 2000 + g.rng.IntN(101), Month: time.Month(1 + g.rng.IntN(12))}
}

func (g *canonGen) time() time.Time {
	t := time.Unix(g.rng.Int64N(4_000_000_000), g.rng.Int64N(1_000_000_000)*int64(g.rng.IntN(2)))
	if g.rng.IntN(2) == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("ICT", 7*3600))
}

func (g *canonGen) ref() AttemptRef {
	k := ObligationKey{CitizenID: g.str(), Program: g.str(), Period: g.period()}
	if g.rng.IntN(3) == 0 {
		k.TopUp = g.str()
	}
	return AttemptRef{Obligation: k, Attempt: g.int(), RunID: g.str(), PaymentID: g.str()}
}

func (g *canonGen) amounts() Amounts {
	a := Amounts{Gross: g.money(), Net: g.money()}
	for range g.rng.IntN(3) {
		a.Offsets = append(a.Offsets, Offset{Correction: g.str(), Amount: g.money()})
	}
	return a
}

func (g *canonGen) method() Method {
	if g.rng.IntN(5) == 0 {
		return Method(g.str())
	}
	return []Method{MethodBank, MethodCash}[g.rng.IntN(2)]
}

var canonCases = []canonCase{
	canonCaseOf(func(g *canonGen) PaymentIssued {
		p := Payee{CitizenID: g.str(), Name: g.str(), Proxy: g.rng.IntN(2) == 0, Method: g.method(),
			BankCode: g.str(), AccountNumber: g.str(), District: g.str(), Ward: g.str()}
		tr := Trace{Entitlement: g.str(), Rule: g.str(), Decree: g.str()}
		if g.rng.IntN(2) == 0 {
			m := g.money()
			tr.Rate = &m
		}
		return PaymentIssued{AttemptRef: g.ref(), Payee: p, Amounts: g.amounts(), Trace: tr}
	}),
	canonCaseOf(func(g *canonGen) PaymentCancelled {
		return PaymentCancelled{AttemptRef: g.ref(), Amounts: g.amounts(), Reason: g.str()}
	}),
	canonCaseOf(func(g *canonGen) PaymentReleased {
		return PaymentReleased{AttemptRef: g.ref(), Method: g.method(), Net: g.money()}
	}),
	canonCaseOf(func(g *canonGen) PaymentSettled {
		return PaymentSettled{AttemptRef: g.ref(), Method: g.method(), Net: g.money(), Reference: g.str(), SettledAt: g.time()}
	}),
	canonCaseOf(func(g *canonGen) PaymentFailed {
		return PaymentFailed{AttemptRef: g.ref(), Method: g.method(), Amounts: g.amounts(), Reason: FailureReason(g.str()),
			Detail: g.str(), FailedAt: g.time()}
	}),
	canonCaseOf(func(g *canonGen) PaymentReturned {
		return PaymentReturned{AttemptRef: g.ref(), Method: g.method(), Amounts: g.amounts(), Reference: g.str(),
			Reason: FailureReason(g.str()), Detail: g.str(), ReturnedAt: g.time()}
	}),
	canonCaseOf(func(g *canonGen) PaymentReversed {
		return PaymentReversed{AttemptRef: g.ref(), Correction: g.str(), Gross: g.money()}
	}),
}

// TestPaymentEventsCanonicalMatchesJSON: what the codec writes is taken
// by the canonical decoders (when its strings need no escaping), and any
// value, written or mangled, decodes as encoding/json decodes it.
func TestPaymentEventsCanonicalMatchesJSON(t *testing.T) {
	codec := domain.NewCodec()
	RegisterEvents(codec)
	for i, c := range canonCases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			accepted, mangledAccepted, mangledValid := 0, 0, 0
			for n := range 3000 {
				g := &canonGen{rng: rng, plain: n%2 == 0}
				e := c.gen(g)
				typ, b, err := codec.Encode(e)
				if err != nil || typ != c.name {
					t.Fatalf("encode: %s %v", typ, err)
				}
				if c.agree(t, b) {
					accepted++
				} else if g.plain {
					t.Fatalf("the codec wrote %s, which the canonical decoder declines", b)
				}
				// The codec's Decode gives the same value, or the same
				// error, either way.
				got, err := codec.Decode(typ, b)
				want, wantErr := c.slow(b)
				if wantErr != nil {
					if err == nil || err.Error() != "decode "+typ+": "+wantErr.Error() {
						t.Fatalf("codec.Decode(%s) = %v, want the error of encoding/json: %v", b, err, wantErr)
					}
				} else if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("codec.Decode(%s) = %#v, %v; want %#v", b, got, err, want)
				}
				for range 1 + rng.IntN(3) {
					b = canontest.Mangle(rng, b)
				}
				if _, err := c.slow(b); err == nil {
					mangledValid++
				}
				if c.agree(t, b) {
					mangledAccepted++
				}
			}
			if accepted < 1500 {
				t.Errorf("%d of 3000 encoded values taken canonically, want at least the 1500 plain ones", accepted)
			}
			// The mangling must leave some inputs that still decode, or the
			// comparison proves little.
			if mangledValid < 30 {
				t.Errorf("only %d of 3000 mangled inputs decode: the generator is off", mangledValid)
			}
			t.Logf("%d encoded and %d mangled inputs taken canonically; %d mangled ones valid JSON events", accepted, mangledAccepted, mangledValid)
		})
	}
}

// FuzzPaymentEventsCanonical: go test -fuzz FuzzPaymentEventsCanonical
// ./domain/disbursement/ searches for an input on which a canonical
// decoder and encoding/json disagree; plain go test runs the seeds.
func FuzzPaymentEventsCanonical(f *testing.F) {
	codec := domain.NewCodec()
	RegisterEvents(codec)
	rng := rand.New(rand.NewPCG(3, 4))
	for i, c := range canonCases {
		for n := range 4 {
			_, b, err := codec.Encode(c.gen(&canonGen{rng: rng, plain: n%2 == 0}))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		canonCases[int(which)%len(canonCases)].agree(t, b)
	})
}

func BenchmarkDecodePaymentEvents(b *testing.B) {
	codec := domain.NewCodec()
	RegisterEvents(codec)
	ref := AttemptRef{Obligation: key(cidAn, "SOCIAL_MONTHLY", jan), Attempt: 1, RunID: "RUN-2024-01", PaymentID: "P-0123456789abcdef"}
	m := vnd(540_000)
	for _, e := range []domain.Event{
		PaymentIssued{AttemptRef: ref, Payee: bankPayee(cidAn), Amounts: Amounts{Gross: m, Net: m},
			Trace: Trace{Entitlement: "E1", Rule: "base_times_coefficient: SOCIAL_ASSISTANCE_BASE 360000 VND (from 2021-07) x 1.5", Rate: &m, Decree: "Decree 20/2021/ND-CP"}},
		PaymentReleased{AttemptRef: ref, Method: MethodBank, Net: m},
		PaymentSettled{AttemptRef: ref, Method: MethodBank, Net: m, Reference: "FT000000123", SettledAt: at},
	} {
		canontest.BenchDecode(b, codec, e)
	}
}
