package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/text/unicode/norm"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/eventstore/pebble"
	"github.com/ansinh/ansinh/ledger"
)

const sampleFile = "testdata/import/sample.csv"

// The rejected lines of testdata/import/sample.csv, in file order.
var sampleRejections = [][]string{
	// line, citizen_id, column, code
	{"5", "00105000000X", "citizen_id", "invalid_citizen_id"},
	{"6", "001052000005", "ward_code", "unknown_ward"},
	{"7", "001050000001", "citizen_id", "duplicate_in_file"},
	{"8", "001153000007", "full_name", "required"},
	{"9", "001060000008", "bank_code", "unknown_bank"},
}

// inspect opens the embedded store of a data directory after a command
// has closed it, and closes it again before the next command.
func inspect(t *testing.T, data string, f func(led *ledger.Ledger, s eventstore.Store)) {
	t.Helper()
	s, err := pebble.Open(filepath.Join(data, "events"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f(ledger.New(s, ledger.DefaultConfig()), s)
}

func head(t *testing.T, data string) eventstore.Position {
	t.Helper()
	var h eventstore.Position
	inspect(t, data, func(_ *ledger.Ledger, s eventstore.Store) {
		var err error
		if h, err = s.Head(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	return h
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// readReport reads a --report file: a byte-order mark, then CSV.
func readReport(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\uFEFF")) {
		t.Fatalf("report has no byte-order mark: %q", b[:min(len(b), 20)])
	}
	rows, err := csv.NewReader(bytes.NewReader(b[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"line", "citizen_id", "column", "code", "reason"}; !slices.Equal(rows[0], want) {
		t.Fatalf("report header %q, want %q", rows[0], want)
	}
	return rows[1:]
}

// reportKeys drops the reason (words, checked elsewhere) from report rows.
func reportKeys(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = r[:4]
	}
	return out
}

func TestImportSampleFile(t *testing.T) {
	data := t.TempDir()
	report := filepath.Join(t.TempDir(), "rejected.csv")
	code, stdout, stderr := runCmd(t, nil, "import", "beneficiaries", "--file", sampleFile, "--data", data, "--report", report)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d (lines were rejected); stderr %q", code, exitFailure, stderr)
	}
	if got, want := lastLine(stdout), "imported 4, unchanged 0, rejected 5"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	if !strings.Contains(lastLine(stderr), "rejected 5 of 9 lines (listed in "+report+")") {
		t.Fatalf("last line of stderr %q", lastLine(stderr))
	}
	rows := readReport(t, report)
	if got := reportKeys(rows); !slices.EqualFunc(got, sampleRejections, slices.Equal) {
		t.Fatalf("report:\n%q\nwant\n%q", got, sampleRejections)
	}
	if !strings.Contains(rows[2][4], "also on line 2") || !strings.Contains(rows[1][4], "99999") {
		t.Fatalf("reasons do not say what is wrong: %q", rows)
	}

	inspect(t, data, func(led *ledger.Ledger, s eventstore.Store) {
		ctx := context.Background()
		an := loadBeneficiary(t, led, "001050000001")
		if an.FullName != "Nguyễn Văn An" || an.Address.Street != "12 Quang Trung, tổ 5" || an.Address.WardCode != "09538" ||
			an.Category != registry.Meritorious || an.PaymentMethod != registry.BankTransfer ||
			an.BankAccount == nil || an.BankAccount.BankCode != "VCB" || an.BankAccount.Holder != registry.HolderBeneficiary {
			t.Fatalf("An: %+v", an)
		}
		checkGrant(t, an, entitlement.MeritMonthly, "2024-07", "1", "")

		binh := loadBeneficiary(t, led, "001148000002")
		if binh.DateOfBirth != domain.MustDate("1948-03-15") || binh.Sex != registry.Female || binh.PaymentMethod != registry.Cash {
			t.Fatalf("Bình: %+v", binh)
		}
		checkGrant(t, binh, entitlement.SocialMonthly, "2024-07", "1.5", "")

		cuong := loadBeneficiary(t, led, "001045000003")
		if cuong.Address.DistrictCode != "001" || cuong.Address.WardCode != "00001" || cuong.HouseholdID != "HN-2024-0001" ||
			len(cuong.Entitlements.Entitlements) != 0 {
			t.Fatalf("Cường: %+v", cuong)
		}
		hoa := loadBeneficiary(t, led, "001140000009")
		checkGrant(t, hoa, entitlement.PresidentTetGift, "2024-02", "", "600000")

		// A rejected line wrote nothing, not even the parts that were right
		// (line 9 registers a person and links an unknown bank).
		for _, id := range []string{"001052000005", "001153000007", "001060000008"} {
			if _, err := led.LoadBeneficiary(ctx, id); err == nil {
				t.Errorf("%s was registered from a rejected line", id)
			}
		}

		// One line, one append: An's four events are consecutive in the
		// log and carry the line's command ID and the actor.
		recs, err := s.ReadStream(ctx, registry.Stream("001050000001"), eventstore.ReadStreamOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		types := []string{"BeneficiaryRegistered.v2", "BankAccountLinked.v1", "PaymentMethodChosen.v1", "EntitlementGranted.v1"}
		if len(recs) != len(types) {
			t.Fatalf("An's stream has %d events, want %d", len(recs), len(types))
		}
		var commandID string
		for i, rec := range recs {
			var m domain.Metadata
			if err := json.Unmarshal(rec.Metadata, &m); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				commandID = m.CommandID
			}
			if rec.Type != types[i] || rec.Position.Commit != recs[0].Position.Commit+uint64(i) ||
				m.CommandID != commandID || !strings.HasPrefix(m.CommandID, importCommandIDPrefix) ||
				m.Actor.Role != domain.RoleAdmin || !strings.HasPrefix(m.Actor.UserID, "os:") ||
				m.Reason != "import of sample.csv, line 2" {
				t.Fatalf("event %d: %s at %s, metadata %+v", i, rec.Type, rec.Position, m)
			}
		}
	})
}

func loadBeneficiary(t *testing.T, led *ledger.Ledger, id string) registry.Beneficiary {
	t.Helper()
	ld, err := led.LoadBeneficiary(context.Background(), id)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return ld.State
}

func checkGrant(t *testing.T, b registry.Beneficiary, program, start, coefficient, amount string) {
	t.Helper()
	es := b.Entitlements.Entitlements
	if len(es) != 1 || es[0].Program != program || es[0].Start != domain.MustPeriod(start) {
		t.Fatalf("%s: entitlements %+v, want one %s from %s", b.CitizenID, es, program, start)
	}
	terms := es[0].Terms[0]
	if coefficient != "" && (terms.Coefficient == nil || !terms.Coefficient.Equal(decimal.RequireFromString(coefficient))) {
		t.Fatalf("%s: coefficient %v, want %s", b.CitizenID, terms.Coefficient, coefficient)
	}
	if amount != "" && (terms.Amount == nil || terms.Amount.Amount.String() != amount) {
		t.Fatalf("%s: amount %v, want %s", b.CitizenID, terms.Amount, amount)
	}
}

// Running a file again writes nothing, and so does running it spelt
// otherwise: a byte-order mark, CRLF line ends, names in NFD, other spaces,
// dates as DD/MM/YYYY, ward codes without their leading zeros, "1.0" for
// "1" and "600000" for "600.000" are the same records.
func TestImportIsIdempotent(t *testing.T) {
	data := t.TempDir()
	if code, _, stderr := runCmd(t, nil, "import", "beneficiaries", "--file", sampleFile, "--data", data); code != exitFailure {
		t.Fatalf("first run: exit %d; %s", code, stderr)
	}
	before := head(t, data)

	code, stdout, stderr := runCmd(t, nil, "import", "beneficiaries", "--file", sampleFile, "--data", data)
	if code != exitFailure || lastLine(stdout) != "imported 0, unchanged 4, rejected 5" {
		t.Fatalf("second run: exit %d, summary %q; stderr %s", code, lastLine(stdout), stderr)
	}
	if got := strings.Count(stderr, "rejected line "); got != len(sampleRejections) {
		t.Fatalf("stderr lists %d rejected lines, want %d:\n%s", got, len(sampleRejections), stderr)
	}
	for _, r := range sampleRejections {
		if !strings.Contains(stderr, "rejected line "+r[0]+" (citizen ID "+r[1]+"): "+r[2]+": ") {
			t.Errorf("stderr does not list line %s:\n%s", r[0], stderr)
		}
	}

	respelt := "\uFEFF" + strings.Join([]string{
		"Citizen_ID;Full_Name;date_of_birth;sex;street;district_code;ward_code;category;household_id;bank_code;account_number;account_holder;payment_method;program;coefficient;amount;start_period",
		"001050000001;" + norm.NFD.String("  Nguyễn   Văn An ") + ";27/07/1950;Male;12 Quang Trung,  tổ 5;268;9538;Meritorious;;vcb;0011001234567;NGUYEN VAN AN;bank_transfer;merit_monthly;1.0;;07/2024",
		"001148000002;Trần Thị Bình;1948-03-15;Nữ;Ngõ 4 Văn Quán;268;09542;social_protection;;;;;;SOCIAL_MONTHLY;1.50;;2024-07",
		"001045000003;Lê Văn Cường;02/01/1945;nam;;001;00001;near_poor;HN-2024-0001;;;;;;;;",
		`001140000009;"Đỗ Thị Hoa";31/12/1940;F;;2;37;other;;;;;;PRESIDENT_TET_GIFT;;600000;2024-02`,
	}, "\r\n") + "\r\n"
	file := filepath.Join(t.TempDir(), "respelt.csv")
	if err := os.WriteFile(file, []byte(respelt), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCmd(t, nil, "import", "beneficiaries", "--file", file, "--data", data)
	if code != exitOK || lastLine(stdout) != "imported 0, unchanged 4, rejected 0" {
		t.Fatalf("respelt file: exit %d, summary %q; stderr %s", code, lastLine(stdout), stderr)
	}
	if after := head(t, data); after != before {
		t.Fatalf("re-runs wrote events: head %s, was %s", after, before)
	}

	// The same person with other details is not taken for the same line:
	// the registry refuses a second registration.
	changed := strings.Replace(respelt, "Lê Văn Cường", "Lê Văn Cương", 1)
	if err := os.WriteFile(file, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCmd(t, nil, "import", "beneficiaries", "--file", file, "--data", data)
	if code != exitFailure || lastLine(stdout) != "imported 0, unchanged 3, rejected 1" || !strings.Contains(stderr, "already registered") {
		t.Fatalf("changed line: exit %d, summary %q; stderr %s", code, lastLine(stdout), stderr)
	}
}

func TestImportDryRunWritesNothing(t *testing.T) {
	data := t.TempDir()
	code, stdout, stderr := runCmd(t, nil, "import", "beneficiaries", "--file", sampleFile, "--data", data, "--dry-run")
	if code != exitFailure || lastLine(stdout) != "would import 4, unchanged 0, rejected 5 (dry run: nothing was written)" {
		t.Fatalf("dry run: exit %d, summary %q; stderr %s", code, lastLine(stdout), stderr)
	}
	// The deciders ran: rejections that only the domain knows are listed.
	for _, want := range []string{"rejected line 6 (citizen ID 001052000005): ward_code:", "rejected line 9 (citizen ID 001060000008): bank_code:"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("dry run does not list %q:\n%s", want, stderr)
		}
	}
	if h := head(t, data); !h.IsStart() {
		t.Fatalf("dry run on an empty store wrote up to %s (not even the catalogue may be seeded)", h)
	}

	if code, _, _ := runCmd(t, nil, "import", "beneficiaries", "--file", sampleFile, "--data", data); code != exitFailure {
		t.Fatalf("import: exit %d", code)
	}
	before := head(t, data)
	code, stdout, _ = runCmd(t, nil, "import", "beneficiaries", "--file", sampleFile, "--data", data, "--dry-run")
	if code != exitFailure || lastLine(stdout) != "would import 0, unchanged 4, rejected 5 (dry run: nothing was written)" {
		t.Fatalf("dry run after import: exit %d, summary %q", code, lastLine(stdout))
	}
	if after := head(t, data); after != before {
		t.Fatalf("dry run wrote: head %s, was %s", after, before)
	}
}

// Each bad line is rejected with the column and the code of what is wrong,
// and the good line after them is imported.
func TestImportRejectsEachBadLine(t *testing.T) {
	hdr := "citizen_id,full_name,date_of_birth,sex,district_code,ward_code,category,household_id,bank_code,account_number,account_holder,payment_method,program,coefficient,amount,start_period"
	id := func(serial int) string { return registry.MakeCitizenID("001", registry.Male, 1950, serial) }
	// base returns a good line for serial, with fields changed by name.
	base := func(serial int, changes ...string) string {
		f := map[string]string{
			"citizen_id": id(serial), "full_name": "Nguyễn Văn Ba", "date_of_birth": "1950-02-03", "sex": "male",
			"district_code": "268", "ward_code": "09538", "category": "other",
		}
		for i := 0; i < len(changes); i += 2 {
			f[changes[i]] = changes[i+1]
		}
		var out []string
		for _, c := range strings.Split(hdr, ",") {
			out = append(out, f[c])
		}
		return strings.Join(out, ",")
	}
	future := time.Now().In(domain.VietnamZone).AddDate(0, 0, 2)
	tests := []struct {
		line         string
		column, code string
	}{
		{base(1, "citizen_id", "00105000000A"), "citizen_id", "invalid_citizen_id"},
		{base(2, "citizen_id", "1050000002"), "citizen_id", "invalid_citizen_id"}, // leading zeros lost
		{base(3, "citizen_id", registry.MakeCitizenID("001", registry.Female, 1950, 3)), "citizen_id", "citizen_id_mismatch"},
		{base(4, "date_of_birth", "1950-02-30"), "date_of_birth", "invalid_date"},
		{base(5, "date_of_birth", future.Format(time.DateOnly), "citizen_id", registry.MakeCitizenID("001", registry.Male, future.Year(), 5)), "date_of_birth", "invalid_date"},
		{base(6, "sex", "x"), "sex", "invalid_sex"},
		{base(7, "district_code", "999"), "district_code", "unknown_district"},
		{base(8, "ward_code", "00001"), "ward_code", "unknown_ward"}, // a ward of another district
		{base(9, "category", "veteran"), "category", "invalid_category"},
		{base(10, "category", "near_poor"), "household_id", "required"},
		{base(11, "bank_code", "VCB"), "account_number", "required"},
		{base(12, "account_number", "123456789"), "bank_code", "required"},
		{base(13, "bank_code", "VCB", "account_number", "123456789", "account_holder", "LE THI C"), "account_holder", "holder_not_allowed"},
		{base(14, "payment_method", "bank_transfer"), "payment_method", "no_bank_account"},
		{base(15, "payment_method", "cheque"), "payment_method", "invalid_method"},
		{base(16, "program", "NO_SUCH", "start_period", "2024-07"), "program", "program_not_found"},
		{base(17, "program", "SOCIAL_MONTHLY", "coefficient", "1.5"), "start_period", "required"},
		{base(18, "coefficient", "1.5"), "program", "required"},
		{base(19, "program", "SOCIAL_MONTHLY", "coefficient", "1e3", "start_period", "2024-07"), "coefficient", "invalid_coefficient"},
		{base(20, "program", "SOCIAL_MONTHLY", "amount", "500000", "start_period", "2024-07"), "amount", "amount_not_allowed"},
		{base(21, "program", "PRESIDENT_TET_GIFT", "amount", "500000", "start_period", "2024-02"), "amount", "not_a_tier"},
		{base(22, "program", "PRESIDENT_TET_GIFT", "amount", "1.5", "start_period", "2024-02"), "amount", "invalid_amount"},
		{base(23, "program", "SOCIAL_MONTHLY", "coefficient", "1.5", "start_period", "2024-13"), "start_period", "invalid_period"},
		{base(24, "full_name", "Nguyễn Văn 3"), "full_name", "invalid_name"},
		{base(25) + ",", "", "field_count"},
		{`"` + base(26), "", "invalid_csv"},
		{base(27, "full_name", strings.Repeat("A", importMaxLineBytes)), "", "line_too_long"},
		{base(28, "full_name", "Nguy\xe1n"), "", "not_utf8"},
	}
	lines := []string{hdr, base(100)}
	for _, tt := range tests {
		lines = append(lines, tt.line)
	}
	lines = append(lines, base(100, "full_name", "Trần Văn Ba"), base(101)) // a duplicate, then a good line
	file := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o600); err != nil { // no newline at the end
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.csv")
	code, stdout, stderr := runCmd(t, nil, "import", "beneficiaries", "--file", file, "--data", t.TempDir(), "--report", report, "--workers", "3")
	want := fmt.Sprintf("imported 2, unchanged 0, rejected %d", len(tests)+1)
	if code != exitFailure || lastLine(stdout) != want {
		t.Fatalf("exit %d, summary %q, want %q; stderr %s", code, lastLine(stdout), want, stderr)
	}
	rows := readReport(t, report)
	if len(rows) != len(tests)+1 {
		t.Fatalf("report has %d rows, want %d:\n%q", len(rows), len(tests)+1, rows)
	}
	for i, tt := range tests {
		r := rows[i]
		if r[0] != fmt.Sprint(i+3) || r[2] != tt.column || r[3] != tt.code || r[4] == "" {
			t.Errorf("line %d: reported %q, want column %q code %q", i+3, r, tt.column, tt.code)
		}
	}
	if dup := rows[len(tests)]; dup[3] != "duplicate_in_file" || !strings.Contains(dup[4], "line 2") {
		t.Errorf("duplicate reported as %q", dup)
	}
	if !strings.Contains(rows[1][4], "leading zeros") {
		t.Errorf("a short citizen ID gets no hint: %q", rows[1][4])
	}
}

func TestImportDefaultGrantAndActor(t *testing.T) {
	data := t.TempDir()
	if code, _, stderr := runCmd(t, nil, "users", "add", "--name", "lan", "--role", "registrar", "--data", data); code != exitOK {
		t.Fatalf("users add: %s", stderr)
	}
	if code, _, stderr := runCmd(t, nil, "users", "add", "--name", "kiem", "--role", "auditor", "--data", data); code != exitOK {
		t.Fatalf("users add: %s", stderr)
	}
	a, b := registry.MakeCitizenID("001", registry.Male, 1940, 1), registry.MakeCitizenID("001", registry.Female, 1941, 2)
	file := filepath.Join(t.TempDir(), "grant.csv")
	content := "citizen_id,full_name,date_of_birth,sex,district_code,ward_code,category,program,coefficient,start_period\n" +
		a + ",Phan Văn Một,1940-01-01,male,268,09538,social_protection,,,\n" +
		b + ",Phan Thị Hai,1941-01-01,female,268,09538,social_protection,SOCIAL_MONTHLY,3,2024-01\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ANSINH_DATA": data}
	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--as", "kiem"}, exitUsage, "needs a registrar or an admin"},
		{[]string{"--as", "ghost"}, exitUsage, "no such user"},
		{[]string{"--grant", "NO_SUCH:1:2024-07"}, exitUsage, "not in the catalogue"},
		{[]string{"--grant", "SOCIAL_MONTHLY:lots:2024-07"}, exitUsage, "coefficient"},
	} {
		code, _, stderr := runCmd(t, env, append([]string{"import", "beneficiaries", "--file", file}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.err) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.err)
		}
	}
	code, stdout, stderr := runCmd(t, env, "import", "beneficiaries", "--file", file, "--as", "lan", "--grant", "SOCIAL_MONTHLY:2:2024-07")
	if code != exitOK || lastLine(stdout) != "imported 2, unchanged 0, rejected 0" {
		t.Fatalf("exit %d, %q; %s", code, stdout, stderr)
	}
	inspect(t, data, func(led *ledger.Ledger, s eventstore.Store) {
		checkGrant(t, loadBeneficiary(t, led, a), entitlement.SocialMonthly, "2024-07", "2", "") // from --grant
		checkGrant(t, loadBeneficiary(t, led, b), entitlement.SocialMonthly, "2024-01", "3", "") // its own
		recs, err := s.ReadStream(context.Background(), registry.Stream(a), eventstore.ReadStreamOptions{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var m domain.Metadata
		if err := json.Unmarshal(recs[0].Metadata, &m); err != nil {
			t.Fatal(err)
		}
		if m.Actor != (domain.Actor{UserID: "lan", Role: domain.RoleRegistrar}) {
			t.Fatalf("actor %+v, want lan the registrar", m.Actor)
		}
	})
}

// A file the import cannot take is refused whole, before anything is
// written.
func TestImportRefusesFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "citizen_id,full_name,date_of_birth,sex,district_code,ward_code,category\n"
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no file flag", nil, exitUsage, "--file is required"},
		{"no kind", []string{"--file", "x"}, exitUsage, `unknown kind "--file"`},
		{"workers", []string{"--file", sampleFile, "--workers", "0"}, exitUsage, "--workers 0"},
		{"grant syntax", []string{"--file", sampleFile, "--grant", "SOCIAL_MONTHLY:1.5"}, exitUsage, "want PROGRAM:COEFFICIENT_OR_AMOUNT:START_PERIOD"},
		{"grant period", []string{"--file", sampleFile, "--grant", "SOCIAL_MONTHLY:1.5:2024"}, exitUsage, "start period"},
		{"missing", []string{"--file", filepath.Join(dir, "nope.csv")}, exitFailure, "no such file"},
		{"directory", []string{"--file", dir}, exitFailure, "not a regular file"},
		{"empty", []string{"--file", write("empty.csv", "")}, exitFailure, "the file is empty"},
		{"unknown column", []string{"--file", write("unknown.csv", strings.TrimSuffix(good, "\n")+",acount_number\n")}, exitFailure, `unknown column "acount_number"`},
		{"twice", []string{"--file", write("twice.csv", strings.TrimSuffix(good, "\n")+",SEX\n")}, exitFailure, "column sex appears twice"},
		{"missing column", []string{"--file", write("missing.csv", "citizen_id,full_name\n")}, exitFailure, "missing: date_of_birth, sex, district_code, ward_code, category"},
		{"coefficient without program", []string{"--file", write("coef.csv", strings.TrimSuffix(good, "\n")+",coefficient\n")}, exitFailure, "need a program column"},
		{"too many lines", []string{"--file", write("long.csv", good+strings.Repeat("\n", importMaxLines+1))}, exitFailure, "more than the 1000000"},
		{"report is the file", []string{"--file", sampleFile, "--report", sampleFile}, exitUsage, "is the file being imported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"import", "beneficiaries", "--data", data}, tt.args...)
			if tt.name == "no kind" {
				args = append([]string{"import"}, tt.args...)
			}
			code, _, stderr := runCmd(t, nil, args...)
			if code != tt.code || !strings.Contains(stderr, tt.err) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.err)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("the error is not one line: %q", stderr)
			}
			if _, err := os.Stat(data); err == nil {
				t.Fatal("a refused file opened the store")
			}
		})
	}
}

func TestSplitCSVLine(t *testing.T) {
	tests := []struct {
		line  string
		delim byte
		want  []string
		err   bool
	}{
		{"a,b,c", ',', []string{"a", "b", "c"}, false},
		{"a,,", ',', []string{"a", "", ""}, false},
		{"", ',', []string{""}, false},
		{`"12 Quang Trung, tổ 5",268`, ',', []string{"12 Quang Trung, tổ 5", "268"}, false},
		{`"say ""hi""",x`, ',', []string{`say "hi"`, "x"}, false},
		{`a,"b"`, ',', []string{"a", "b"}, false},
		{`"",`, ',', []string{"", ""}, false},
		{"1,5;2", ';', []string{"1,5", "2"}, false},
		{`it's,x`, ',', []string{"it's", "x"}, false},
		{`"open,x`, ',', nil, true},
		{`"a"b,x`, ',', nil, true},
	}
	for _, tt := range tests {
		got, err := splitCSVLine(nil, tt.line, tt.delim)
		if (err != nil) != tt.err || !tt.err && !slices.Equal(got, tt.want) {
			t.Errorf("splitCSVLine(%q) = %q, %v; want %q (error %v)", tt.line, got, err, tt.want, tt.err)
		}
	}
}

func TestFieldParsers(t *testing.T) {
	dates := map[string]string{"1950-07-27": "1950-07-27", "27/07/1950": "1950-07-27", "5/3/1948": "1948-03-05", "1950-02-30": "", "07/27/1950": "", "27.07.1950": "", "": ""}
	for in, want := range dates {
		d, err := parseDateField(in)
		if got := d.String(); want == "" && err == nil || want != "" && (err != nil || got != want) {
			t.Errorf("parseDateField(%q) = %s, %v; want %q", in, got, err, want)
		}
	}
	periods := map[string]string{"2024-07": "2024-07", "07/2024": "2024-07", "7/2024": "2024-07", "2024-7": "", "13/2024": ""}
	for in, want := range periods {
		p, err := parsePeriodField(in)
		if want == "" && err == nil || want != "" && (err != nil || p.String() != want) {
			t.Errorf("parsePeriodField(%q) = %s, %v; want %q", in, p, err, want)
		}
	}
	amounts := map[string]string{"600000": "600000", "600.000": "600000", "600,000": "600000", "1 250 000": "1250000",
		"1.250.000": "1250000", "1.5": "", "1.250,000": "", "60.00": "", "-600000": "-600000", "6e5": "", "1000.000.000.000.000": ""}
	for in, want := range amounts {
		m, err := parseAmountField(in)
		if want == "" && err == nil || want != "" && (err != nil || m.Amount.String() != want) {
			t.Errorf("parseAmountField(%q) = %v, %v; want %q", in, m, err, want)
		}
	}
	coefficients := map[string]string{"1.5": "1.5", "1,5": "1.5", "2": "2", "1.50": "1.5", "1e3": "", "1.5.1": "", "-1": "", "1,5.0": "", "": ""}
	for in, want := range coefficients {
		c, err := parseCoefficient(in)
		if want == "" && err == nil || want != "" && (err != nil || c.String() != want) {
			t.Errorf("parseCoefficient(%q) = %s, %v; want %q", in, c, err, want)
		}
	}
	sexes := map[string]registry.Sex{"male": registry.Male, "Nam": registry.Male, "NỮ": registry.Female, norm.NFD.String("nữ"): registry.Female, "nu": registry.Female, "F": registry.Female, "x": "", "": ""}
	for in, want := range sexes {
		s, err := parseSex(in)
		if s != want || (want == "") != (err != nil) {
			t.Errorf("parseSex(%q) = %q, %v; want %q", in, s, err, want)
		}
	}
	codes := []struct {
		in    string
		width int
		want  string
	}{{"1", 3, "001"}, {"268", 3, "268"}, {"9538", 5, "09538"}, {"", 5, ""}, {"A1", 3, "A1"}, {"123456", 5, "123456"}}
	for _, c := range codes {
		if got := padCode(c.in, c.width); got != c.want {
			t.Errorf("padCode(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	h, err := parseHeader(" Category ;CITIZEN_ID;full_name;date_of_birth;sex;district_code;ward_code")
	if err != nil {
		t.Fatal(err)
	}
	if h.delim != ';' || h.fields != 7 || h.index[colCategory] != 0 || h.index[colCitizenID] != 1 || h.index[colBankCode] != -1 {
		t.Fatalf("header %+v", h)
	}
	// A header with both separators is read with commas.
	h, err = parseHeader("citizen_id,full_name,date_of_birth,sex,district_code,ward_code,category,street")
	if err != nil || h.delim != ',' || h.index[colStreet] != 7 {
		t.Fatalf("header %+v, %v", h, err)
	}
	if _, err := parseHeader("citizen_id,,full_name"); err == nil || !strings.Contains(err.Error(), "column 2 has no name") {
		t.Fatalf("an unnamed column: %v", err)
	}
}

// The command ID is the digest of the normalised record: the same record
// spelt otherwise has the same one, any change another.
func TestEnrolmentCommandID(t *testing.T) {
	h, err := parseHeader("citizen_id,full_name,date_of_birth,sex,district_code,ward_code,category,program,coefficient,start_period")
	if err != nil {
		t.Fatal(err)
	}
	idOf := func(line string) string {
		t.Helper()
		fields, err := splitCSVLine(nil, line, ',')
		if err != nil {
			t.Fatal(err)
		}
		rec := csvRecord{h: h, fields: fields}
		e, err := rec.enrolment(rec.get(colCitizenID), nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := e.record().commandID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) > ledger.MaxCommandIDLen {
			t.Fatalf("command ID %q is longer than the ledger takes", id)
		}
		return id
	}
	base := idOf("001050000001,Nguyễn Văn An,1950-07-27,male,268,09538,other,SOCIAL_MONTHLY,1.5,2024-07")
	same := idOf("001050000001, " + norm.NFD.String("Nguyễn  Văn An") + " ,27/07/1950,Nam,268,9538,OTHER,social_monthly,\"1,50\",07/2024")
	if same != base {
		t.Fatalf("the same record spelt otherwise has another command ID: %s, %s", same, base)
	}
	for _, other := range []string{
		"001050000001,Nguyễn Văn Ân,1950-07-27,male,268,09538,other,SOCIAL_MONTHLY,1.5,2024-07",
		"001050000001,Nguyễn Văn An,1950-07-27,male,268,09538,other,SOCIAL_MONTHLY,2,2024-07",
		"001050000001,Nguyễn Văn An,1950-07-27,male,268,09538,other,SOCIAL_MONTHLY,1.5,2024-08",
		"001050000001,Nguyễn Văn An,1950-07-27,male,268,09538,other,,,",
	} {
		if idOf(other) == base {
			t.Errorf("%q has the command ID of another record", other)
		}
	}
}

// writeImportFile writes a CSV of n beneficiaries with real districts and
// wards, half of them paid into a bank account, most with a monthly
// allowance: the shape of a district office's list.
func writeImportFile(t testing.TB, w io.Writer, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	type place struct{ district, ward string }
	var places []place
	for _, d := range registry.HanoiAdminUnits().Districts {
		for _, wd := range d.Wards {
			places = append(places, place{d.Code, wd.Code})
		}
	}
	family := []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"}
	given := []string{"Văn An", "Thị Bình", "Văn Cường", "Thị Dung", "Văn Đức", "Thị Hoa", "Minh Khôi", "Thu Lan"}
	fmt.Fprintln(w, "citizen_id,full_name,date_of_birth,sex,street,district_code,ward_code,category,household_id,bank_code,account_number,payment_method,program,coefficient,start_period")
	for i := range n {
		sex := registry.Male
		if i%2 == 1 {
			sex = registry.Female
		}
		year := 1930 + rng.IntN(70)
		p := places[rng.IntN(len(places))]
		bank, account := "", ""
		if i%2 == 0 {
			bank, account = "VCB", fmt.Sprintf("%013d", 1_000_000_000+i)
		}
		program, coef, start := "SOCIAL_MONTHLY", "1.5", "2024-07"
		if i%10 == 9 {
			program, coef, start = "", "", ""
		}
		fmt.Fprintf(w, "%s,%s %s,%04d-%02d-%02d,%s,Số %d ngõ %d,%s,%s,social_protection,,%s,%s,,%s,%s,%s\n",
			registry.MakeCitizenID("001", sex, year, i), family[i%len(family)], given[i%len(given)], year, 1+rng.IntN(12), 1+rng.IntN(28),
			sex, 1+rng.IntN(200), 1+rng.IntN(50), p.district, p.ward, bank, account, program, coef, start)
	}
}

func TestGeneratedFileImports(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gen.csv")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	writeImportFile(t, f, 300)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, nil, "import", "beneficiaries", "--file", file, "--data", t.TempDir())
	if code != exitOK || lastLine(stdout) != "imported 300, unchanged 0, rejected 0" {
		t.Fatalf("exit %d, %q; %s", code, stdout, stderr)
	}
}

// BenchmarkImport imports a generated file into a fresh embedded store on
// disk (fsync included) and reports lines per second. 10,000 lines by
// default; ANSINH_BENCH_IMPORT_LINES=300000 measures a city-sized file.
func BenchmarkImport(b *testing.B) {
	n := 10_000
	if v := os.Getenv("ANSINH_BENCH_IMPORT_LINES"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 || n > importMaxLines {
			b.Fatalf("ANSINH_BENCH_IMPORT_LINES=%q", v)
		}
	}
	file := filepath.Join(b.TempDir(), "bench.csv")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	writeImportFile(b, f, n)
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		data := b.TempDir()
		var stdout, stderr bytes.Buffer
		b.StartTimer()
		start := time.Now()
		code := run(context.Background(), []string{"import", "beneficiaries", "--file", file, "--data", data}, &stdout, &stderr, func(string) string { return "" })
		elapsed += time.Since(start)
		if code != exitOK {
			b.Fatalf("exit %d: %s", code, stderr.String())
		}
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "lines/s")
}

// stoppingStore lets the first appends through, then fails them (a full
// disk) or cancels the import (Ctrl-C).
type stoppingStore struct {
	eventstore.Store
	allowed int64
	appends atomic.Int64
	cancel  context.CancelFunc // nil: fail instead
}

func (s *stoppingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	n := s.appends.Add(1)
	if n <= s.allowed {
		return s.Store.Append(ctx, stream, expected, events...)
	}
	if s.cancel == nil {
		return eventstore.AppendResult{}, errors.New("no space left on device")
	}
	s.cancel()
	return eventstore.AppendResult{}, context.Canceled
}

// A failure that is not the line's fault stops the import: nothing more is
// read, the lines not finished are counted, and what was imported before
// stays imported (and is unchanged on a re-run).
func TestImportStops(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gen.csv")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	const lines = 2000
	writeImportFile(t, f, lines)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, interrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("interrupt=%v", interrupt), func(t *testing.T) {
			mem, err := pebble.Open("", pebble.Options{InMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			defer mem.Close()
			led := ledger.New(mem, ledger.DefaultConfig())
			cat, err := importCatalogue(context.Background(), led, false)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := &stoppingStore{Store: mem, allowed: 100}
			if interrupt {
				store.cancel = cancel
			}
			src, err := openImportFile(file)
			if err != nil {
				t.Fatal(err)
			}
			defer src.f.Close()
			var stderr bytes.Buffer
			prog := newProgress(&stderr, false, time.Now, "import", "lines", src.dataLines, src.dataLines)
			sink, _ := newRejectionSink("", prog)
			im := &importer{
				led: ledger.New(store, ledger.DefaultConfig()), store: store, actor: operator(), cat: cat, workers: 4,
				header: src.header, sink: sink, prog: prog, reason: "test", correlation: "test",
			}
			counts, err := im.run(ctx, src.lines)
			want := "no space left on device"
			if interrupt {
				want = "interrupted"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("run: %v, want %q", err, want)
			}
			// Appends let through may still be cut off by the stop (a line
			// in flight when the import stops is not counted, though its
			// events may have been written): at most one per worker.
			allowed := int(store.allowed)
			if counts.rejected != 0 || counts.imported > allowed || counts.imported < allowed-im.workers ||
				counts.notProcessed < 1 || counts.total() >= lines {
				t.Fatalf("counts %+v after %d appends were let through", counts, allowed)
			}
			h, err := mem.Head(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// The lines counted as imported are in the store, and nothing
			// beyond the appends let through.
			recs, err := mem.ReadAll(context.Background(), eventstore.Start, eventstore.MaxReadLimit)
			if err != nil {
				t.Fatal(err)
			}
			streams := map[string]bool{}
			for _, r := range recs {
				if strings.HasPrefix(r.StreamID, registry.StreamPrefix) {
					streams[r.StreamID] = true
				}
			}
			if len(streams) < counts.imported || len(streams) > allowed || h.IsStart() {
				t.Fatalf("%d beneficiaries in the store, %d counted as imported", len(streams), counts.imported)
			}
		})
	}
}
