package disbursement

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ansinh/ansinh/domain"
)

func releasedRunForFiles(t *testing.T) Run {
	t.Helper()
	r := openedRun(t, OpenRun{RunID: "R1", Scope: scopeJanFeb()})
	bank := bankPayee(cidAn)
	cash := cashPayee(cidDung)
	cash.Name, cash.Proxy = "=HYPERLINK(\"x\")", true
	other := cashPayee(cidBinh)
	other.Ward = "00121"
	kept := Payee{CitizenID: cidChi, Name: "Lê Chí", Method: MethodOffset, District: "004", Ward: "00118"}
	line := func(cid, prog string, n int64) RunLine {
		return RunLine{Obligation: key(cid, prog, jan), Attempt: 1, Gross: vnd(n), Net: vnd(n)}
	}
	r = applyRun(r, PayoutRunPaymentsCalculated{RunID: "R1", Page: 1, Part: 1, Cursor: cidDung, Payments: []RunPayment{
		{PaymentID: PaymentID("R1", bank), Payee: bank, Lines: []RunLine{line(cidAn, "SOCIAL_MONTHLY", 540_000), line(cidAn, "TET_GIFT", 600_000)}},
		{PaymentID: PaymentID("R1", cash), Payee: cash, Lines: []RunLine{line(cidChi, "SOCIAL_MONTHLY", 720_000), line(cidDung, "SOCIAL_MONTHLY", 360_000)}},
		{PaymentID: PaymentID("R1", other), Payee: other, Lines: []RunLine{line(cidBinh, "SOCIAL_MONTHLY", 540_000)}},
		{PaymentID: PaymentID("R1", kept), Payee: kept, Lines: []RunLine{{Obligation: key(cidChi, "TET_GIFT", jan), Attempt: 1, Gross: vnd(300_000), Net: vnd(0)}}},
	}})
	r.Status = RunReleased
	return r
}

func TestBankFile(t *testing.T) {
	r := releasedRunForFiles(t)
	var buf bytes.Buffer
	mustNoErr(t, WriteBankFile(&buf, r))
	want := "payment_id,payee_name,payee_citizen_id,bank_code,account_number,amount,currency,reference,description\n" +
		PaymentID("R1", bankPayee(cidAn)) + ",Nguyễn Văn An,001150000001,VCB,0011001234567,1140000,VND," + PaymentID("R1", bankPayee(cidAn)) + ",ANSINH R1 2024-01 2024-02\n"
	if buf.String() != want {
		t.Fatalf("bank file:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestCashList(t *testing.T) {
	r := releasedRunForFiles(t)
	if w := Wards(r); len(w) != 2 || w[0] != "00118" || w[1] != "00121" {
		t.Fatalf("wards: %v", w)
	}
	var buf bytes.Buffer
	mustNoErr(t, WriteCashList(&buf, r, "00118"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("cash list of ward 00118:\n%s", buf.String())
	}
	want := PaymentID("R1", r.Payments[r.PaymentIDs[1]].Payee) + `,"'=HYPERLINK(""x"")",001085000004,yes,001150000003 001085000004,004,00118,1080000,VND,`
	if lines[1] != want {
		t.Fatalf("cash line:\n%s\nwant\n%s", lines[1], want)
	}
}

func TestParseSettlements(t *testing.T) {
	pid := "R1-001150000001-b123456"
	file := "\ufeffpayment_id,outcome,reference,occurred_at,amount,reason,detail\n" +
		pid + ",settled,FT24020001,2024-01-20T09:30:00+07:00,1140000,,\n" +
		pid + ",failed,,2024-01-20T09:30:00+07:00,,account_closed,closed 2023\n" +
		pid + ",settled,,2024-01-20T09:30:00+07:00,,,\n" + // no reference
		pid + ",settled,FT1,yesterday,,,\n" +
		pid + ",failed,,2024-01-20T09:30:00+07:00,,lost,\n" +
		"nonsense,settled,FT1,2024-01-20T09:30:00+07:00,,,\n" +
		pid + ",paid,FT1,2024-01-20T09:30:00+07:00,,,\n" +
		pid + ",settled,FT1,2024-01-20T09:30:00+07:00,1.5,,\n"
	got, rejected, err := ParseSettlements(strings.NewReader(file))
	mustNoErr(t, err)
	if len(got) != 2 || got[0].Line != 2 || got[1].Line != 3 || got[0].Amount == nil || !got[0].Amount.Equal(vnd(1_140_000)) || got[1].Reason != ReasonAccountClosed {
		t.Fatalf("parsed: %+v", got)
	}
	wantCodes := map[int]string{4: "required", 5: "invalid_time", 6: "invalid_reason", 7: "invalid_payment_id", 8: "invalid_outcome", 9: "invalid_amount"}
	if len(rejected) != len(wantCodes) {
		t.Fatalf("rejected: %+v", rejected)
	}
	for _, r := range rejected {
		if wantCodes[r.Line] != r.Code {
			t.Errorf("line %d: %s, want %s (%s)", r.Line, r.Code, wantCodes[r.Line], r.Message)
		}
	}
	for _, bad := range []string{
		"",
		"payment_id,outcome\n",
		"payment_id,outcome,reference,occurred_at,amount,reason,detail\nx,y\n",
		"id,outcome,reference,occurred_at,amount,reason,detail\n",
	} {
		if _, _, err := ParseSettlements(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseStatement(t *testing.T) {
	ok := "reference,amount,value_date,bank_transaction\nR1-001150000001-b123456,1140000,2024-01-20,T1\n"
	lines, err := ParseStatement(strings.NewReader(ok))
	mustNoErr(t, err)
	if len(lines) != 1 || !lines[0].Amount.Equal(vnd(1_140_000)) || lines[0].ValueDate != domain.MustDate("2024-01-20") || lines[0].Line != 2 {
		t.Fatalf("lines: %+v", lines)
	}
	for _, bad := range []string{
		"reference,amount,value_date,bank_transaction\nR1,0,2024-01-20,T1\n",
		"reference,amount,value_date,bank_transaction\nR1,100,2024-02-30,T1\n",
		"reference,amount,value_date,bank_transaction\nR1,100,2024-01-20,\n",
		"reference,amount,value_date,bank_transaction\nR1,100,2024-01-20,T 1\n",
	} {
		if _, err := ParseStatement(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestFileLimits(t *testing.T) {
	head := strings.Join(SettlementHeader, ",") + "\n"
	row := func(int, []string) {}
	err := readCSV(strings.NewReader(head+strings.Repeat("x", 100)), SettlementHeader, 10, 64, row)
	if !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("a file over the byte limit: %v", err)
	}
	line := "a,b,c,d,e,f,g\n"
	err = readCSV(strings.NewReader(head+strings.Repeat(line, 3)), SettlementHeader, 2, 1<<20, row)
	wantRule(t, err, domain.Invalid, "too_many_lines")
	mustNoErr(t, readCSV(strings.NewReader(head+strings.Repeat(line, 2)), SettlementHeader, 2, 1<<20, row))
	err = readCSV(strings.NewReader(head+"a,b,c,"+strings.Repeat("d", maxCellBytes+1)+",e,f,g\n"), SettlementHeader, 2, 1<<20, row)
	wantRule(t, err, domain.Invalid, "invalid_file")
}
