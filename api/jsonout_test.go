package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// reference is what Echo's default serializer wrote: encoding/json with
// HTML escaping, one value and a newline.
func reference(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "Nguyễn Văn An", `quote " and \ back`, "<script>&amp;</script>",
		"\x00\x01\x1f\t\n\r", "bad \xff utf8 \xc3", "line\u2028sep\u2029", "emoji 🙂", "\x7f"} {
		got := append(appendJSONString(nil, s), '\n')
		if want := reference(t, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "s")
		if rapid.Bool().Draw(t, "raw bytes") {
			s = string(rapid.SliceOf(rapid.Byte()).Draw(t, "b"))
		}
		got := append(appendJSONString(nil, s), '\n')
		var buf bytes.Buffer
		_ = json.NewEncoder(&buf).Encode(s)
		if !bytes.Equal(got, buf.Bytes()) {
			t.Fatalf("%q: got %s want %s", s, got, buf.Bytes())
		}
	})
}

func TestAppendAmountMatchesToMoneyJSON(t *testing.T) {
	for _, a := range []string{"0", "1", "-1", "2160000", "999999999999999999", "-999999999999999999",
		"1000000000000000000", "123456789012345678901234567890", "1.5", "-0.001"} {
		m := domain.Money{Amount: decimal.RequireFromString(a), Currency: domain.VND}
		got := append(appendAmount(nil, m), '\n')
		if want := reference(t, toMoneyJSON(m)); !bytes.Equal(got, want) {
			t.Errorf("%s: got %s want %s", a, got, want)
		}
	}
	for _, m := range []domain.Money{{}, {Amount: decimal.New(5, 3), Currency: domain.VND}, {Amount: decimal.New(-7, 20), Currency: domain.VND}} {
		got := append(appendAmount(nil, m), '\n')
		if want := reference(t, toMoneyJSON(m)); !bytes.Equal(got, want) {
			t.Errorf("%v: got %s want %s", m, got, want)
		}
	}
}

// TestBalanceAnswerMatches: the hand-written balance is byte for byte what
// encoding/json writes for toBalanceJSON, for balances of every shape.
func TestBalanceAnswerMatches(t *testing.T) {
	vnd := func(n int64) domain.Money { return domain.VNDAmount(n) }
	asOf := "2025-01-01T00:00:00Z"
	full := projections.BalanceResult{
		Balance: projections.Balance{
			CitizenID: "001145012345", Through: domain.Period{Year: 2024, Month: 7},
			Accrued: projections.BalanceBucket{Gross: vnd(1_080_000), Net: vnd(1_080_000),
				Periods: []domain.Period{{Year: 2024, Month: 6}, {Year: 2024, Month: 7}},
				Lines: []projections.BalanceLine{
					{Program: "SOCIAL_MONTHLY", Period: domain.Period{Year: 2024, Month: 6}, Gross: vnd(540_000), Net: vnd(540_000), Status: disbursement.StatusSettled, RunID: "run-2024-06", PaymentID: "p-1"},
					{Program: "SOCIAL_MONTHLY", Period: domain.Period{Year: 2024, Month: 7}, TopUp: "c-9", Gross: vnd(540_000), Net: vnd(500_000)},
				}},
			Paid:        projections.BalanceBucket{Gross: vnd(0), Net: vnd(0), Periods: []domain.Period{}, Lines: []projections.BalanceLine{}},
			InTransit:   projections.BalanceBucket{Gross: vnd(0), Net: vnd(0), Periods: []domain.Period{}, Lines: []projections.BalanceLine{}},
			Outstanding: projections.BalanceBucket{Gross: vnd(-5), Net: vnd(0), Periods: []domain.Period{}, Lines: []projections.BalanceLine{}},
			Overpaid:    vnd(40_000),
			Recoveries:  []projections.Recovery{{Correction: "c-1", Kind: "recovery", Program: "SOCIAL_MONTHLY", Amount: vnd(40_000), Mode: "offset"}, {Correction: "c<2>", Amount: vnd(1)}},
			TopUps:      []projections.TopUp{{Correction: "c-9", Obligation: disbursement.ObligationKey{CitizenID: "001145012345", Program: "SOCIAL_MONTHLY", Period: domain.Period{Year: 2024, Month: 7}}, Amount: vnd(40_000), Reason: "thiếu \"tháng\" 7"}},
			Accounts: map[disbursement.Account]domain.Money{
				disbursement.BeneficiaryReceivable: vnd(40_000), "z-last": vnd(-1), "a-first": vnd(7),
			},
		},
		Position: eventstore.Position{Commit: 123, Prepare: 456},
	}
	empty := projections.BalanceResult{Balance: projections.Balance{CitizenID: "001", Recoveries: []projections.Recovery{}, TopUps: []projections.TopUp{},
		Accounts: map[disbursement.Account]domain.Money{}}}
	for name, tc := range map[string]struct {
		b    projections.BalanceResult
		asOf *string
	}{"full": {full, nil}, "full as of": {full, &asOf}, "empty": {empty, nil}} {
		got := append(balanceAnswer{tc.b, tc.asOf}.appendJSON(nil), '\n')
		want := reference(t, toBalanceJSON(tc.b, tc.asOf))
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

// TestSerializerWritesOnePieceAndHonoursPretty: the serializer sets
// Content-Length, and a hand-written answer asked for with ?pretty comes
// out indented like any other (not as the empty object its unexported
// fields would make of it).
func TestSerializerWritesOnePieceAndHonoursPretty(t *testing.T) {
	e := echo.New()
	e.JSONSerializer = jsonSerializer{}
	b := projections.BalanceResult{Balance: projections.Balance{CitizenID: "001", Recoveries: []projections.Recovery{}, TopUps: []projections.TopUp{},
		Accounts: map[disbursement.Account]domain.Money{"a": domain.VNDAmount(5)}}}
	for _, target := range []string{"/", "/?pretty"} {
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodGet, target, nil), rec)
		if err := c.JSON(http.StatusOK, balanceAnswer{b, nil}); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		if target != "/" {
			enc.SetIndent("", "  ")
		}
		if err := enc.Encode(toBalanceJSON(b, nil)); err != nil {
			t.Fatal(err)
		}
		if rec.Body.String() != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", target, rec.Body, want.String())
		}
		if cl := rec.Header().Get(echo.HeaderContentLength); cl != strconv.Itoa(rec.Body.Len()) {
			t.Errorf("%s: Content-Length %q for %d bytes", target, cl, rec.Body.Len())
		}
	}
}
