package registry

import (
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
)

var (
	date  = domain.MustDate
	per   = domain.MustPeriod
	today = date("2024-06-15")
	env   = Env{Today: today}
	// An (female, born 1945 in Hanoi): the beneficiary of most tests.
	anID = MakeCitizenID("001", Female, 1945, 12345)
	// Binh, her son, the proxy of most tests.
	binhID = MakeCitizenID("001", Male, 1970, 777)
)

func register() Register {
	return Register{
		CitizenID: anID, FullName: "Nguyễn Thị An", DateOfBirth: date("1945-03-02"), Sex: Female,
		Address:  AddressInput{Street: "12 ngõ 5 Hà Cầu", DistrictCode: "268", WardCode: "09556"},
		Category: SocialProtection,
	}
}

func authorizeBinh() AuthorizeProxy {
	return AuthorizeProxy{
		FullName: "Trần Văn Bình", CitizenID: binhID, Relationship: "con trai", Reason: IllnessOrImmobility,
		ValidFrom: date("2024-01-01"), ValidTo: date("2024-12-31"), DocumentRef: "UQ-2024/015",
	}
}

// fold decides each command in turn, failing on a rejection.
func fold(t testing.TB, b Beneficiary, cmds ...Command) Beneficiary {
	t.Helper()
	for _, c := range cmds {
		evs, err := Decide(b, env, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range evs {
			b = b.Evolve(e)
		}
	}
	return b
}

func registered(t testing.TB) Beneficiary { return fold(t, Beneficiary{}, register()) }

func wantRule(t testing.TB, err error, kind domain.Kind, code string) {
	t.Helper()
	re, ok := domain.AsRuleError(err)
	if !ok {
		t.Fatalf("want RuleError %s/%s, got %v", kind, code, err)
	}
	if re.Kind != kind || re.Code != code || re.Message == "" {
		t.Fatalf("want RuleError %s/%s, got %s/%s: %q", kind, code, re.Kind, re.Code, re.Message)
	}
}

func TestReferenceData(t *testing.T) {
	u := HanoiAdminUnits()
	wards := 0
	for _, d := range u.Districts {
		wards += len(d.Wards)
	}
	if len(u.Districts) != 30 || wards != 526 {
		t.Fatalf("got %d districts and %d wards, want 30 and 526", len(u.Districts), wards)
	}
	if d, ok := u.District("268"); !ok || d.Name != "Quận Hà Đông" {
		t.Errorf("Hà Đông: %v %v", d, ok)
	}
	if _, ok := u.Ward("268", "00001"); ok {
		t.Error("Phúc Xá (Ba Đình) found in Hà Đông")
	}
	if w, ok := u.Ward("001", "00001"); !ok || w.Name != "Phường Phúc Xá" {
		t.Errorf("Phúc Xá: %v %v", w, ok)
	}
	if u.Version != AdminCatalogueVersion || u.Effective != date("2025-03-01") {
		t.Errorf("version %s %s", u.Version, u.Effective)
	}
	seen := map[string]bool{}
	for _, b := range Banks() {
		if seen[b.Code] || b.Code == "" || b.Name == "" {
			t.Errorf("bank %+v duplicate or empty", b)
		}
		seen[b.Code] = true
	}
	for _, c := range []string{"VCB", "BIDV", "CTG", "VBA", "TCB", "MB", "ACB", "VPB", "STB", "SHB"} {
		if _, ok := BankByCode(c); !ok {
			t.Errorf("bank %s missing", c)
		}
	}
}

func TestCitizenID(t *testing.T) {
	dob := date("1945-03-02")
	cases := []struct {
		id   string
		sex  Sex
		code string // "" valid
	}{
		{"001145012345", Female, ""},
		{"001045012345", Male, ""},
		{"079203000001", Male, "citizen_id_mismatch"}, // born 2003, not 1945
		{"00114501234", Female, "invalid_citizen_id"},
		{"0011450123456", Female, "invalid_citizen_id"},
		{"00114501234a", Female, "invalid_citizen_id"},
		{"003145012345", Female, "invalid_citizen_id"}, // 003 is no province
		{"001045012345", Female, "citizen_id_mismatch"},
		{"001146012345", Female, "citizen_id_mismatch"},
	}
	for _, tc := range cases {
		err := CheckCitizenIDMatches("citizen_id", tc.id, dob, tc.sex)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.id, err)
			}
			continue
		}
		wantRule(t, err, domain.Invalid, tc.code)
	}
	if id := MakeCitizenID("079", Female, 2003, 42); id != "079303000042" {
		t.Errorf("MakeCitizenID: %s", id)
	}
}

func TestNameKey(t *testing.T) {
	for _, tc := range [][2]string{
		{"Nguyễn Văn An", "NGUYEN VAN AN"},
		{"  Đặng   thị  Hà ", "DANG THI HA"},
		{norm.NFD.String("Trần Văn Bình"), "TRAN VAN BINH"},
	} {
		if got := NameKey(tc[0]); got != tc[1] {
			t.Errorf("NameKey(%q) = %q, want %q", tc[0], got, tc[1])
		}
	}
}

func TestRegister(t *testing.T) {
	cmd := register()
	cmd.FullName = "  " + norm.NFD.String("Nguyễn  Thị An") + " "
	evs, err := Decide(Beneficiary{}, env, cmd)
	if err != nil {
		t.Fatal(err)
	}
	e := evs[0].(BeneficiaryRegistered)
	if e.FullName != "Nguyễn Thị An" || !norm.NFC.IsNormalString(e.FullName) {
		t.Errorf("name not cleaned to NFC: %q", e.FullName)
	}
	want := Address{Street: "12 ngõ 5 Hà Cầu", DistrictCode: "268", DistrictName: "Quận Hà Đông", WardCode: "09556", WardName: e.Address.WardName, Catalogue: AdminCatalogueVersion}
	if e.Address != want || e.Address.WardName == "" {
		t.Errorf("address %+v", e.Address)
	}
	b := Beneficiary{}.Evolve(e)
	if !b.Registered || b.PaymentMethod != Cash || b.CitizenID != anID {
		t.Errorf("state %+v", b)
	}
}

func TestRegisterRejections(t *testing.T) {
	mod := func(f func(*Register)) Register { c := register(); f(&c); return c }
	cases := []struct {
		name string
		b    Beneficiary
		cmd  Register
		kind domain.Kind
		code string
	}{
		{"already registered", registered(t), register(), domain.Conflict, "citizen_id_taken"},
		{"bad citizen ID", Beneficiary{}, mod(func(c *Register) { c.CitizenID = "12345" }), domain.Invalid, "invalid_citizen_id"},
		{"ID disagrees with sex", Beneficiary{}, mod(func(c *Register) { c.Sex = Male }), domain.Invalid, "citizen_id_mismatch"},
		{"empty name", Beneficiary{}, mod(func(c *Register) { c.FullName = " \t" }), domain.Invalid, "required"},
		{"name too long", Beneficiary{}, mod(func(c *Register) { c.FullName = strings.Repeat("a", 201) }), domain.Invalid, "too_long"},
		{"name with digits", Beneficiary{}, mod(func(c *Register) { c.FullName = "An 2" }), domain.Invalid, "invalid_name"},
		{"name with control", Beneficiary{}, mod(func(c *Register) { c.FullName = "An\x00" }), domain.Invalid, "invalid_text"},
		{"no date of birth", Beneficiary{}, mod(func(c *Register) { c.DateOfBirth = domain.Date{} }), domain.Invalid, "required"},
		{"born in the future", Beneficiary{}, mod(func(c *Register) { c.DateOfBirth = date("2024-06-16") }), domain.Invalid, "invalid_date"},
		{"bad sex", Beneficiary{}, mod(func(c *Register) { c.Sex = "x" }), domain.Invalid, "invalid_sex"},
		{"unknown district", Beneficiary{}, mod(func(c *Register) { c.Address.DistrictCode = "999" }), domain.Invalid, "unknown_district"},
		{"ward of another district", Beneficiary{}, mod(func(c *Register) { c.Address.WardCode = "00001" }), domain.Invalid, "unknown_ward"},
		{"bad category", Beneficiary{}, mod(func(c *Register) { c.Category = "rich" }), domain.Invalid, "invalid_category"},
		{"near-poor without household", Beneficiary{}, mod(func(c *Register) { c.Category = NearPoor }), domain.Invalid, "required"},
		{"bad household ID", Beneficiary{}, mod(func(c *Register) { c.HouseholdID = "HH 1;" }), domain.Invalid, "invalid_household_id"},
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

func TestCommandsNeedARegistration(t *testing.T) {
	for _, cmd := range []Command{
		CorrectDetails{Reason: "r"}, RecordDeath{}, RecordMoveAway{}, LinkBankAccount{}, ReplaceBankAccount{},
		UnlinkBankAccount{}, ChoosePaymentMethod{}, authorizeBinh(), RevokeProxy{},
	} {
		_, err := Decide(Beneficiary{}, env, cmd)
		wantRule(t, err, domain.NotFound, "beneficiary_not_found")
	}
	_, err := DecideEntitlement(Beneficiary{}, entitlement.Env{}, entitlement.End{})
	wantRule(t, err, domain.NotFound, "beneficiary_not_found")
}

func TestCorrectDetails(t *testing.T) {
	b := registered(t)
	name, hh, cat := "Nguyễn Thị Ân", "HN-268-0042", NearPoor
	evs, err := Decide(b, env, CorrectDetails{FullName: &name, Category: &cat, HouseholdID: &hh, Reason: "typo in the paper form"})
	if err != nil {
		t.Fatal(err)
	}
	e := evs[0].(BeneficiaryDetailsCorrected)
	if e.DateOfBirth != nil || e.Sex != nil || e.Address != nil || *e.FullName != name || e.Reason != "typo in the paper form" {
		t.Errorf("event %+v", e)
	}
	b2 := b.Evolve(e)
	if b2.FullName != name || b2.Category != NearPoor || b2.HouseholdID != hh || b.FullName != "Nguyễn Thị An" {
		t.Errorf("state %+v (before: %+v)", b2, b)
	}

	dob, male, noHH := date("1946-03-02"), Male, ""
	cases := []struct {
		name string
		cmd  CorrectDetails
		kind domain.Kind
		code string
	}{
		{"no reason", CorrectDetails{FullName: &name}, domain.Invalid, "required"},
		{"nothing changes", CorrectDetails{FullName: &name, Category: &cat, Reason: "r"}, domain.Conflict, "no_change"},
		{"year disagrees with ID", CorrectDetails{DateOfBirth: &dob, Reason: "r"}, domain.Invalid, "citizen_id_mismatch"},
		{"sex disagrees with ID", CorrectDetails{Sex: &male, Reason: "r"}, domain.Invalid, "citizen_id_mismatch"},
		{"near-poor loses household", CorrectDetails{HouseholdID: &noHH, Reason: "r"}, domain.Invalid, "required"},
		{"unknown ward", CorrectDetails{Address: &AddressInput{DistrictCode: "268", WardCode: "1"}, Reason: "r"}, domain.Invalid, "unknown_ward"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decide(b2, env, tc.cmd)
			if len(evs) != 0 {
				t.Fatalf("rejected command decided %v", evs)
			}
			wantRule(t, err, tc.kind, tc.code)
		})
	}
}

func TestDeathEndsEntitlementsFromTheNextPeriod(t *testing.T) {
	b := registered(t)
	var cat entitlement.Catalogue
	for _, cmd := range entitlement.StarterCatalogue() {
		evs, _ := entitlement.DecideCatalogue(cat, cmd, entitlement.DefaultLimits())
		for _, e := range evs {
			cat = cat.Evolve(e)
		}
	}
	ee := entitlement.Env{Catalogue: cat, Limits: entitlement.DefaultLimits()}
	c := decimalOf("1.5")
	evs, err := DecideEntitlement(b, ee, entitlement.Grant{Program: entitlement.SocialMonthly, Start: per("2024-01"), Coefficient: &c})
	if err != nil {
		t.Fatal(err)
	}
	b = b.Evolve(evs[0])

	evs, err = Decide(b, env, RecordDeath{DateOfDeath: date("2024-04-20"), DocumentRef: "GCT-123"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("want the death and the end of E1, got %+v", evs)
	}
	if d := evs[0].(BeneficiaryDied); d.LastPeriod != per("2024-04") {
		t.Errorf("died %+v", d)
	}
	for _, e := range evs {
		b = b.Evolve(e)
	}
	lines, err := b.OwedThrough(cat, per("2024-12"), ee.Limits)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 || lines[3].Period != per("2024-04") {
		t.Fatalf("owed January to April only, got %d lines", len(lines))
	}
	_, err = DecideEntitlement(b, ee, entitlement.Grant{Program: entitlement.SocialMonthly, Start: per("2024-05"), Coefficient: &c})
	wantRule(t, err, domain.Conflict, "beneficiary_exited")

	for _, tc := range []struct {
		cmd  Command
		kind domain.Kind
		code string
	}{
		{RecordDeath{DateOfDeath: date("2024-04-20"), DocumentRef: "x"}, domain.Conflict, "beneficiary_exited"},
		{RecordMoveAway{MovedOn: date("2024-05-01"), Destination: "Hải Phòng"}, domain.Conflict, "beneficiary_exited"},
		{authorizeBinh(), domain.Conflict, "beneficiary_deceased"},
	} {
		_, err := Decide(b, env, tc.cmd)
		wantRule(t, err, tc.kind, tc.code)
	}
}

func TestExitRejections(t *testing.T) {
	b := registered(t)
	for _, tc := range []struct {
		name string
		cmd  Command
		code string
	}{
		{"death in the future", RecordDeath{DateOfDeath: date("2024-06-16"), DocumentRef: "x"}, "invalid_date"},
		{"death before birth", RecordDeath{DateOfDeath: date("1940-01-01"), DocumentRef: "x"}, "invalid_date"},
		{"death without certificate", RecordDeath{DateOfDeath: date("2024-01-01")}, "required"},
		{"move without destination", RecordMoveAway{MovedOn: date("2024-01-01")}, "required"},
		{"move without date", RecordMoveAway{Destination: "Huế"}, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Decide(b, env, tc.cmd)
			if len(evs) != 0 {
				t.Fatal("rejected command decided events")
			}
			wantRule(t, err, domain.Invalid, tc.code)
		})
	}
	b = fold(t, b, RecordMoveAway{MovedOn: date("2024-02-10"), Destination: "Thành phố Hải Phòng"})
	if b.Exit == nil || b.Exit.Cause != entitlement.EndedByMove || b.Holder().LastPeriod != per("2024-02") {
		t.Errorf("exit %+v", b.Exit)
	}
}
