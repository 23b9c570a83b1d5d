package registry

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
)

func decimalOf(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestBankAccounts(t *testing.T) {
	b := registered(t)
	withProxy := fold(t, b, authorizeBinh())
	linked := fold(t, b, LinkBankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN THI AN"})
	paidByBank := fold(t, linked, ChoosePaymentMethod{Method: BankTransfer})

	if a := linked.BankAccount; a == nil || a.Holder != HolderBeneficiary || a.HolderName != "NGUYEN THI AN" {
		t.Fatalf("linked %+v", a)
	}
	proxyLinked := fold(t, withProxy, LinkBankAccount{BankCode: "VBA", AccountNumber: "1500205123456", HolderName: "Tran Van Binh"})
	if a := proxyLinked.BankAccount; a.Holder != HolderProxy || a.ProxyID != "P1" {
		t.Fatalf("proxy's account %+v", a)
	}
	replaced := fold(t, paidByBank, ReplaceBankAccount{BankCode: "BIDV", AccountNumber: "21510000123456", HolderName: "Nguyễn Thị An", Reason: "VCB account closed"})
	if replaced.BankAccount.BankCode != "BIDV" || replaced.PaymentMethod != BankTransfer {
		t.Errorf("replaced %+v", replaced.BankAccount)
	}
	unlinked := fold(t, linked, UnlinkBankAccount{Reason: "account closed"})
	if unlinked.BankAccount != nil {
		t.Error("still linked")
	}
	if evs, err := Decide(paidByBank, env, ChoosePaymentMethod{Method: BankTransfer}); err != nil || len(evs) != 0 {
		t.Errorf("choosing the current method: %v %v", evs, err)
	}

	cases := []struct {
		name string
		b    Beneficiary
		cmd  Command
		kind domain.Kind
		code string
	}{
		{"unknown bank", b, LinkBankAccount{BankCode: "XYZ", AccountNumber: "123456", HolderName: "Nguyễn Thị An"}, domain.Invalid, "unknown_bank"},
		{"short account", b, LinkBankAccount{BankCode: "VCB", AccountNumber: "12345", HolderName: "Nguyễn Thị An"}, domain.Invalid, "invalid_account_number"},
		{"account with dashes", b, LinkBankAccount{BankCode: "VCB", AccountNumber: "0011-0012", HolderName: "Nguyễn Thị An"}, domain.Invalid, "invalid_account_number"},
		{"someone else's account", b, LinkBankAccount{BankCode: "VCB", AccountNumber: "123456", HolderName: "Lê Văn Cường"}, domain.Invalid, "holder_not_allowed"},
		{"proxy without authorization", b, LinkBankAccount{BankCode: "VCB", AccountNumber: "123456", HolderName: "Trần Văn Bình"}, domain.Invalid, "holder_not_allowed"},
		{"link twice", linked, LinkBankAccount{BankCode: "VCB", AccountNumber: "123456", HolderName: "Nguyễn Thị An"}, domain.Conflict, "bank_account_linked"},
		{"replace nothing", b, ReplaceBankAccount{BankCode: "VCB", AccountNumber: "123456", HolderName: "Nguyễn Thị An", Reason: "r"}, domain.Conflict, "no_bank_account"},
		{"replace with the same", linked, ReplaceBankAccount{BankCode: "VCB", AccountNumber: "0011001234567", HolderName: "NGUYEN THI AN", Reason: "r"}, domain.Conflict, "no_change"},
		{"replace without reason", linked, ReplaceBankAccount{BankCode: "VCB", AccountNumber: "123456", HolderName: "Nguyễn Thị An"}, domain.Invalid, "required"},
		{"unlink while paid by bank", paidByBank, UnlinkBankAccount{Reason: "r"}, domain.Conflict, "account_in_use"},
		{"unlink nothing", b, UnlinkBankAccount{Reason: "r"}, domain.Conflict, "no_bank_account"},
		{"bank transfer without account", b, ChoosePaymentMethod{Method: BankTransfer}, domain.Conflict, "no_bank_account"},
		{"unknown method", b, ChoosePaymentMethod{Method: "cheque"}, domain.Invalid, "invalid_method"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decide(tc.b, env, tc.cmd)
			if len(evs) != 0 {
				t.Fatalf("rejected command decided %v", evs)
			}
			wantRule(t, err, tc.kind, tc.code)
		})
	}
}

func TestProxies(t *testing.T) {
	b := fold(t, registered(t), authorizeBinh())
	p, ok := b.ActiveProxy(today)
	if !ok || p.ID != "P1" || p.FullName != "Trần Văn Bình" {
		t.Fatalf("active %+v %v", p, ok)
	}
	// An expired authorization stops applying on its own.
	if _, ok := b.ActiveProxy(date("2025-01-01")); ok {
		t.Error("active after valid_to")
	}
	if _, ok := b.ActiveProxy(date("2023-12-31")); ok {
		t.Error("active before valid_from")
	}
	next := authorizeBinh()
	next.ValidFrom, next.ValidTo = date("2025-01-01"), date("2025-12-31")
	b2 := fold(t, b, next) // starts after the first ends: allowed
	if p, _ := b2.ActiveProxy(date("2025-06-01")); p.ID != "P2" {
		t.Errorf("second authorization %+v", p)
	}
	revoked := fold(t, b, RevokeProxy{ProxyID: "P1", Reason: "the son moved abroad"})
	if _, ok := revoked.ActiveProxy(today); ok {
		t.Error("active on the day of revocation")
	}
	if _, ok := revoked.ActiveProxy(today.AddDays(-1)); !ok {
		t.Error("revocation reached back in time")
	}
	// After revocation a new authorization may start at once.
	third := authorizeBinh()
	third.FullName, third.CitizenID, third.ValidFrom = "Lê Thị Cúc", MakeCitizenID("001", Female, 1975, 9), today
	fold(t, revoked, third)

	overlapping := authorizeBinh()
	overlapping.ValidFrom = date("2024-12-31")
	overlapping.ValidTo = date("2025-06-30")
	other := authorizeBinh()
	other.Reason, other.ValidFrom = OtherReason, date("2025-01-01")
	other.ValidTo = date("2025-02-01")
	self := authorizeBinh()
	self.CitizenID, self.ValidFrom = anID, date("2025-01-01")
	long := authorizeBinh()
	long.ValidFrom, long.ValidTo = date("2025-01-01"), date("2035-01-02")
	past := authorizeBinh()
	past.ValidFrom, past.ValidTo = date("2020-01-01"), date("2020-12-31")
	cases := []struct {
		name string
		b    Beneficiary
		cmd  Command
		kind domain.Kind
		code string
	}{
		{"overlapping", b, overlapping, domain.Conflict, "proxy_overlap"},
		{"other without note", b, other, domain.Invalid, "required"},
		{"self as proxy", b, self, domain.Invalid, "proxy_is_beneficiary"},
		{"more than ten years", b, long, domain.Invalid, "invalid_date"},
		{"already expired", b, past, domain.Invalid, "invalid_date"},
		{"bad reason", b, AuthorizeProxy{FullName: "X", CitizenID: binhID, Relationship: "r", Reason: "bored", DocumentRef: "d"}, domain.Invalid, "invalid_reason"},
		{"revoke unknown", b, RevokeProxy{ProxyID: "P7", Reason: "r"}, domain.NotFound, "proxy_not_found"},
		{"revoke twice", revoked, RevokeProxy{ProxyID: "P1", Reason: "r"}, domain.Conflict, "proxy_revoked"},
		{"revoke after expiry", b, RevokeProxy{ProxyID: "P1", From: date("2025-01-01"), Reason: "r"}, domain.Conflict, "proxy_expired"},
		{"revoke without reason", b, RevokeProxy{ProxyID: "P1"}, domain.Invalid, "required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decide(tc.b, env, tc.cmd)
			if len(evs) != 0 {
				t.Fatalf("rejected command decided %v", evs)
			}
			wantRule(t, err, tc.kind, tc.code)
		})
	}
}

func TestPayeeOn(t *testing.T) {
	b := registered(t)
	withProxy := fold(t, b, authorizeBinh())
	proxyAccount := fold(t, withProxy,
		LinkBankAccount{BankCode: "VBA", AccountNumber: "1500205123456", HolderName: "TRAN VAN BINH"},
		ChoosePaymentMethod{Method: BankTransfer})
	cases := []struct {
		name   string
		b      Beneficiary
		on     domain.Date
		method PaymentMethod
		payee  string
		code   string
	}{
		{"cash to the beneficiary", b, today, Cash, "Nguyễn Thị An", ""},
		{"cash to the active proxy", withProxy, today, Cash, "Trần Văn Bình", ""},
		{"cash after the proxy expired", withProxy, date("2025-02-01"), Cash, "Nguyễn Thị An", ""},
		{"transfer to the proxy's account", proxyAccount, today, BankTransfer, "TRAN VAN BINH", ""},
		{"proxy's account after expiry", proxyAccount, date("2025-02-01"), "", "", "account_holder_not_authorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.b.PayeeOn(tc.on)
			if tc.code != "" {
				wantRule(t, err, domain.Conflict, tc.code)
				return
			}
			if err != nil || p.Method != tc.method || p.Name != tc.payee {
				t.Fatalf("got %+v %v", p, err)
			}
		})
	}
}
