package disbursement

import (
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
)

func TestObligationStreamNames(t *testing.T) {
	cases := []struct {
		key  ObligationKey
		want string
	}{
		{key(cidAn, "SOCIAL_MONTHLY", jan), "payment-001150000001-SOCIAL_MONTHLY-2024-01"},
		{ObligationKey{CitizenID: cidAn, Program: "TET_GIFT", Period: feb, TopUp: "C-7"}, "payment-001150000001-TET_GIFT-2024-02-topup-C-7"},
	}
	for _, c := range cases {
		if got := c.key.Stream(); got != c.want {
			t.Errorf("Stream() = %q, want %q", got, c.want)
		}
		if err := eventstore.ValidateStreamName(c.key.Stream()); err != nil {
			t.Errorf("%s is not a valid stream name: %v", c.key.Stream(), err)
		}
	}
	// The longest possible stream still fits the store's limit.
	long := ObligationKey{CitizenID: cidAn, Program: strings.Repeat("P", MaxProgramCodeBytes), Period: jan, TopUp: strings.Repeat("c", MaxIDBytes)}
	mustNoErr(t, long.Validate())
	if err := eventstore.ValidateStreamName(long.Stream()); err != nil {
		t.Fatalf("longest obligation stream: %v", err)
	}
}

func TestObligationKeyValidate(t *testing.T) {
	cases := []struct {
		name string
		key  ObligationKey
		code string
	}{
		{"ok", key(cidAn, "SOCIAL_MONTHLY", jan), ""},
		{"short citizen ID", key("00115000001", "SOCIAL_MONTHLY", jan), "invalid_citizen_id"},
		{"letter in citizen ID", key("00115000000A", "SOCIAL_MONTHLY", jan), "invalid_citizen_id"},
		{"hyphen in program", key(cidAn, "SOCIAL-MONTHLY", jan), "invalid_program"},
		{"no program", key(cidAn, "", jan), "required"},
		{"no period", key(cidAn, "X", domain.Period{}), "required"},
		{"bad top-up", ObligationKey{CitizenID: cidAn, Program: "X", Period: jan, TopUp: "a b"}, "invalid_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.key.Validate()
			if c.code == "" {
				mustNoErr(t, err)
				return
			}
			wantRule(t, err, domain.Invalid, c.code)
		})
	}
}

func TestPaymentIDRoundTrip(t *testing.T) {
	for _, run := range []string{"R1", "2024-01-LB", "a.b_c"} {
		for _, p := range []Payee{bankPayee(cidAn), cashPayee(cidChi), {CitizenID: cidBinh, Method: MethodOffset}} {
			id := PaymentID(run, p)
			got, err := RunOfPayment(id)
			if err != nil || got != run {
				t.Errorf("RunOfPayment(%q) = %q, %v; want %q", id, got, err, run)
			}
			if PaymentID(run, p) != id {
				t.Errorf("PaymentID is not deterministic")
			}
		}
	}
	// Another account of the same payee is another payment.
	a, b := bankPayee(cidAn), bankPayee(cidAn)
	b.AccountNumber = "0011009999999"
	if PaymentID("R1", a) == PaymentID("R1", b) {
		t.Error("two accounts of one payee share a payment ID")
	}
	for _, bad := range []string{"", "R1", "R1-001150000001", "R1-00115000000-b123456", "-001150000001-b123456", "R 1-001150000001-b123456"} {
		if _, err := RunOfPayment(bad); err == nil {
			t.Errorf("RunOfPayment(%q) accepted", bad)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"R1", "2024-01", "a.b_c-d"} {
		mustNoErr(t, ValidateID("id", ok))
	}
	for _, bad := range []string{"", "-R1", ".x", "a b", "a:b", "a@b", strings.Repeat("x", MaxIDBytes+1), "Đ"} {
		if ValidateID("id", bad) == nil {
			t.Errorf("ValidateID(%q) accepted", bad)
		}
	}
}
