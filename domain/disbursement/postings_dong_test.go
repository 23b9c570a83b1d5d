package disbursement

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/shopspring/decimal"
	"pgregory.net/rapid"

	"github.com/ansinh/ansinh/domain"
)

// PostingsDong must answer exactly what Postings answers: the same lines
// in the same order with the same amounts, the same error word for word,
// or ErrPostingRange for an amount Postings accepts and an int64 of at
// most MaxPostingDong cannot hold.
// fataler is what a *testing.T and a *rapid.T share.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func checkPostingsDongAgrees(t fataler, ev domain.Event, buf []PostingDong) {
	t.Helper()
	want, wantErr := Postings(ev)
	got, err := PostingsDong(ev, buf)
	if wantErr != nil {
		if err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("%T %+v: PostingsDong error %v, Postings error %v", ev, ev, err, wantErr)
		}
		return
	}
	limit := big.NewInt(MaxPostingDong)
	for _, p := range want {
		if n := p.Amount.Amount.BigInt(); n.CmpAbs(limit) > 0 {
			if !errors.Is(err, ErrPostingRange) {
				t.Fatalf("%T %+v: amount %s beyond the range, PostingsDong answered %v, %v", ev, ev, p.Amount, got, err)
			}
			return
		}
	}
	if err != nil {
		t.Fatalf("%T %+v: PostingsDong error %v, Postings none", ev, ev, err)
	}
	// nil or empty alike: callers range over the lines.
	if len(want) != len(got) {
		t.Fatalf("%T %+v: PostingsDong %v, Postings %v", ev, ev, got, want)
	}
	for i, p := range want {
		g := got[i]
		if g.Account != p.Account || g.CitizenID != p.CitizenID || g.Program != p.Program ||
			!decimal.NewFromInt(g.Amount).Equal(p.Amount.Amount) || p.Amount.Currency != domain.VND {
			t.Fatalf("%T %+v: line %d is %+v, Postings says %+v", ev, ev, i, g, p)
		}
	}
}

func TestPostingsDongPerEvent(t *testing.T) {
	k := key(cidAn, "SOCIAL_MONTHLY", jan)
	ref := AttemptRef{Obligation: k, Attempt: 1, RunID: "R1", PaymentID: "R1-001150000001-b000000"}
	off := Amounts{Gross: vnd(540_000), Offsets: []Offset{{Correction: "C1", Amount: vnd(40_000)}}, Net: vnd(500_000)}
	full := Amounts{Gross: vnd(540_000), Net: vnd(540_000)}
	// 54e4 is 540,000 with an exponent: the slow path's case, same answer.
	spelled := Amounts{Gross: domain.Money{Amount: decimal.New(54, 4), Currency: domain.VND}, Net: vnd(540_000)}
	huge := domain.Money{Amount: decimal.RequireFromString("123456789012345678901234567890"), Currency: domain.VND}
	edge := vnd(MaxPostingDong)
	for _, ev := range []domain.Event{
		PaymentIssued{AttemptRef: ref, Amounts: full},
		PaymentIssued{AttemptRef: ref, Amounts: off},
		PaymentIssued{AttemptRef: ref, Amounts: spelled},
		PaymentCancelled{AttemptRef: ref, Amounts: off},
		PaymentReleased{AttemptRef: ref, Method: MethodBank, Net: vnd(500_000)},
		PaymentReleased{AttemptRef: ref, Method: MethodOffset, Net: vnd(0)},
		PaymentSettled{AttemptRef: ref, Method: MethodCash, Net: vnd(500_000)},
		PaymentFailed{AttemptRef: ref, Method: MethodBank, Amounts: off},
		PaymentReturned{AttemptRef: ref, Method: MethodBank, Amounts: full},
		RecoveryRaised{CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Amount: vnd(180_000)},
		RecoveryRaised{CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Amount: edge},
		RecoveryRaised{CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Amount: vnd(MaxPostingDong + 1)},
		RecoveryRaised{CitizenID: cidAn, Program: "SOCIAL_MONTHLY", Amount: huge},
		// Refused by Postings: unbalanced, negative, not whole, not VND, unset.
		PaymentIssued{AttemptRef: ref, Amounts: Amounts{Gross: vnd(540_000), Net: vnd(500_000)}},
		RecoveryRaised{Amount: vnd(-5)},
		RecoveryRaised{Amount: domain.Money{Amount: decimal.RequireFromString("5.5"), Currency: domain.VND}},
		RecoveryRaised{Amount: domain.Money{Amount: decimal.NewFromInt(5), Currency: "USD"}},
		PaymentSettled{AttemptRef: ref, Method: MethodBank},
		// No money moves.
		PaymentReversed{AttemptRef: ref, Gross: vnd(540_000)},
		TopUpGranted{},
	} {
		t.Run(ev.EventType(), func(t *testing.T) { checkPostingsDongAgrees(t, ev, nil) })
	}
}

// TestPostingsDongRange: the bound is inclusive, and one dong past it is
// ErrPostingRange, not a wrong amount.
func TestPostingsDongRange(t *testing.T) {
	ps, err := PostingsDong(RecoveryRaised{CitizenID: cidAn, Program: "P", Amount: vnd(MaxPostingDong)}, nil)
	mustNoErr(t, err)
	if len(ps) != 2 || ps[0].Amount != MaxPostingDong || ps[1].Amount != -MaxPostingDong {
		t.Fatalf("postings %+v", ps)
	}
	_, err = PostingsDong(RecoveryRaised{CitizenID: cidAn, Program: "P", Amount: vnd(MaxPostingDong + 1)}, nil)
	if !errors.Is(err, ErrPostingRange) {
		t.Fatalf("one past the bound: %v, want ErrPostingRange", err)
	}
}

// TestPostingsDongReusesBuffer: lines of an earlier call left in the
// buffer do not show up in the next answer.
func TestPostingsDongReusesBuffer(t *testing.T) {
	ref := AttemptRef{Obligation: key(cidAn, "P", jan), Attempt: 1}
	buf := make([]PostingDong, 0, 8)
	first, err := PostingsDong(PaymentIssued{AttemptRef: ref, Amounts: Amounts{Gross: vnd(9), Offsets: []Offset{{Amount: vnd(4)}}, Net: vnd(5)}}, buf)
	mustNoErr(t, err)
	if len(first) != 3 {
		t.Fatalf("first entry %+v", first)
	}
	checkPostingsDongAgrees(t, PaymentReleased{AttemptRef: ref, Net: vnd(5)}, first)
	checkPostingsDongAgrees(t, PaymentReleased{AttemptRef: ref, Net: vnd(5), Method: MethodBank}, first[:0])
	checkPostingsDongAgrees(t, PaymentSettled{AttemptRef: ref, Net: vnd(-5), Method: MethodBank}, first)
}

// TestPostingsDongAgreesWithPostings draws money events of every kind with
// amounts of every shape (usual, zero, negative, around the bound, beyond
// an int64, spelled with an exponent, fractions, other currencies), mostly
// balanced, and compares the two.
func TestPostingsDongAgreesWithPostings(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ev := drawMoneyEvent(t)
		var buf []PostingDong
		if rapid.Bool().Draw(t, "reuse") {
			buf = []PostingDong{{Account: "stale", Amount: 77}, {Account: "stale", Amount: -77}}
		}
		checkPostingsDongAgrees(t, ev, buf)
	})
}

func drawAmount(t *rapid.T, label string) domain.Money {
	var a decimal.Decimal
	switch rapid.IntRange(0, 9).Draw(t, label+"_shape") {
	case 0, 1, 2, 3:
		a = decimal.NewFromInt(rapid.Int64Range(0, 5_000_000).Draw(t, label))
	case 4:
		a = decimal.NewFromInt(0)
	case 5:
		a = decimal.NewFromInt(-rapid.Int64Range(1, 1_000_000).Draw(t, label))
	case 6:
		a = decimal.NewFromInt(MaxPostingDong + rapid.Int64Range(-3, 3).Draw(t, label))
	case 7:
		s := rapid.StringMatching(`[1-9][0-9]{15,30}`).Draw(t, label)
		a = decimal.RequireFromString(s)
	case 8:
		a = decimal.New(rapid.Int64Range(-1000, 1000).Draw(t, label), rapid.Int32Range(-3, 3).Draw(t, label+"_exp"))
	default:
		a = decimal.NewFromInt(domain.MaxAmountDong - rapid.Int64Range(0, 3).Draw(t, label))
	}
	cur := domain.VND
	switch rapid.IntRange(0, 19).Draw(t, label+"_currency") {
	case 0:
		cur = ""
	case 1:
		cur = "USD"
	}
	return domain.Money{Amount: a, Currency: cur}
}

// drawAmounts draws an attempt's amounts, gross the sum of the others
// unless the draw says otherwise.
func drawAmounts(t *rapid.T) Amounts {
	var am Amounts
	am.Net = drawAmount(t, "net")
	sum := am.Net.Amount
	for i := range rapid.IntRange(0, 3).Draw(t, "offsets") {
		o := drawAmount(t, fmt.Sprintf("offset%d", i))
		am.Offsets = append(am.Offsets, Offset{Correction: "C", Amount: o})
		sum = sum.Add(o.Amount)
	}
	if rapid.IntRange(0, 4).Draw(t, "unbalanced") == 0 {
		am.Gross = drawAmount(t, "gross")
	} else {
		am.Gross = domain.Money{Amount: sum, Currency: am.Net.Currency}
	}
	return am
}

func drawMoneyEvent(t *rapid.T) domain.Event {
	ref := AttemptRef{Obligation: key(rapid.SampledFrom([]string{cidAn, "001150000002"}).Draw(t, "cid"), "SOCIAL_MONTHLY", jan), Attempt: 1}
	method := rapid.SampledFrom([]Method{MethodBank, MethodCash, MethodOffset}).Draw(t, "method")
	switch rapid.IntRange(0, 8).Draw(t, "type") {
	case 0:
		return PaymentIssued{AttemptRef: ref, Amounts: drawAmounts(t)}
	case 1:
		return PaymentCancelled{AttemptRef: ref, Amounts: drawAmounts(t)}
	case 2:
		return PaymentReleased{AttemptRef: ref, Method: method, Net: drawAmount(t, "net")}
	case 3:
		return PaymentSettled{AttemptRef: ref, Method: method, Net: drawAmount(t, "net")}
	case 4:
		return PaymentFailed{AttemptRef: ref, Method: method, Amounts: drawAmounts(t)}
	case 5:
		return PaymentReturned{AttemptRef: ref, Method: method, Amounts: drawAmounts(t)}
	case 6:
		return RecoveryRaised{CitizenID: ref.Obligation.CitizenID, Program: "SOCIAL_MONTHLY", Amount: drawAmount(t, "amount")}
	case 7:
		return PaymentReversed{AttemptRef: ref, Gross: drawAmount(t, "gross")}
	default:
		return TopUpGranted{}
	}
}

func BenchmarkPostings(b *testing.B) {
	// An interface value, as the read models hold it: converting inside
	// the loop would measure the conversion's allocation.
	var ev domain.Event = PaymentIssued{AttemptRef: AttemptRef{Obligation: key(cidAn, "SOCIAL_MONTHLY", jan), Attempt: 1},
		Amounts: Amounts{Gross: vnd(540_000), Offsets: []Offset{{Correction: "C1", Amount: vnd(40_000)}}, Net: vnd(500_000)}}
	b.Run("decimal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Postings(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dong", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]PostingDong, 0, 4)
		for b.Loop() {
			if _, err := PostingsDong(ev, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
