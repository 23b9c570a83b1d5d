package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
)

// replayedBalance is the JSON of replay --report balances --beneficiary.
type replayedBalance struct {
	AsOf    replayHeader        `json:"as_of"`
	Balance projections.Balance `json:"balance"`
}

func replayBalance(t *testing.T, d *ledgerData, asOf string, extra ...string) replayedBalance {
	t.Helper()
	args := append([]string{"replay", "--data", d.data, "--as-of", asOf, "--beneficiary", d.an, "--format", "json"}, extra...)
	code, stdout, stderr := runCmd(t, nil, args...)
	if code != exitOK {
		t.Fatalf("%q: exit %d, stderr %s", args, code, stderr)
	}
	var got replayedBalance
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%q: %v\n%s", args, err, stdout)
	}
	return got
}

// An's January allowance was released to the bank and then settled: as of
// any point before the settlement the ledger knew it in transit, after it
// paid.
func TestReplayBalanceAsOf(t *testing.T) {
	d := newLedgerData(t)
	if !d.settled.RecordedAt.After(d.beforeSettled.RecordedAt) {
		t.Fatalf("the settlement was recorded at %s, not after the event before it (%s): the clock did not move",
			d.settled.RecordedAt, d.beforeSettled.RecordedAt)
	}
	before, after := d.beforeSettled, d.settled
	inTransit := func(b projections.Balance) bool {
		return b.Paid.Gross.IsZero() && b.InTransit.Gross.Amount.IntPart() == janAllowance && b.Outstanding.Gross.IsZero()
	}
	paid := func(b projections.Balance) bool {
		return b.Paid.Net.Amount.IntPart() == janAllowance && b.InTransit.Gross.IsZero() && b.Outstanding.Gross.IsZero()
	}
	tests := []struct {
		name  string
		asOf  string
		want  func(projections.Balance) bool
		pos   eventstore.Position
		until string
	}{
		{"position before the settlement", before.Position.String(), inTransit, before.Position, "position " + before.Position.String()},
		{"bare position number", strings.Split(before.Position.String(), "/")[0], inTransit, before.Position, "position "},
		{"instant of the event before the settlement", before.RecordedAt.Format(time.RFC3339Nano), inTransit, before.Position, vnTime(before.RecordedAt)},
		{"the same instant in Vietnam time", before.RecordedAt.In(domain.VietnamZone).Format(time.RFC3339Nano), inTransit, before.Position, vnTime(before.RecordedAt)},
		{"position of the settlement", after.Position.String(), paid, after.Position, "position " + after.Position.String()},
		{"instant of the settlement", after.RecordedAt.Format(time.RFC3339Nano), paid, after.Position, vnTime(after.RecordedAt)},
		{"the day of the last event", domain.DateOf(after.RecordedAt).String(), paid, d.head, "the end of " + domain.DateOf(after.RecordedAt).String() + " in Vietnam"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := replayBalance(t, d, tt.asOf, "--through", "2024-01")
			b := got.Balance
			if !tt.want(b) || b.CitizenID != d.an || b.Through != jan2024 || b.Accrued.Gross.Amount.IntPart() != janAllowance {
				t.Errorf("balance %s", mustJSON(t, b))
			}
			if got.AsOf.Position != tt.pos || got.AsOf.AsOf != tt.asOf || !strings.HasPrefix(got.AsOf.Until, tt.until) {
				t.Errorf("as of %+v, want position %s, until %q", got.AsOf, tt.pos, tt.until)
			}
			if got.AsOf.LastEventAt == nil {
				t.Errorf("no time for the last event")
			}
		})
	}

	t.Run("through defaults to the month of the as-of instant in Vietnam", func(t *testing.T) {
		for _, asOf := range []string{after.Position.String(), after.RecordedAt.Format(time.RFC3339Nano)} {
			got := replayBalance(t, d, asOf)
			if want := domain.DateOf(after.RecordedAt).Period(); got.Balance.Through != want {
				t.Errorf("--as-of %s: through %s, want %s", asOf, got.Balance.Through, want)
			}
		}
		day := domain.DateOf(after.RecordedAt)
		if got := replayBalance(t, d, day.String()); got.Balance.Through != day.Period() {
			t.Errorf("--as-of %s: through %s", day, got.Balance.Through)
		}
	})

	t.Run("text and csv", func(t *testing.T) {
		code, stdout, stderr := runCmd(t, nil, "replay", "--data", d.data, "--as-of", before.Position.String(), "--beneficiary", d.an, "--through", "2024-01")
		if code != exitOK || !containsLine(stdout, "in transit", "540000", "2024-01") || !containsLine(stdout, "paid", "0") ||
			!strings.HasPrefix(stdout, "as of position "+before.Position.String()+": the log up to position "+before.Position.String()+", recorded ") {
			t.Errorf("text: exit %d\n%s\nstderr %s", code, stdout, stderr)
		}
		code, stdout, stderr = runCmd(t, nil, "replay", "--data", d.data, "--as-of", after.Position.String(), "--beneficiary", d.an, "--through", "2024-01", "--format", "csv")
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if code != exitOK || err != nil || len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(balanceColumns, ",") ||
			strings.Join(rows[1], ",") != d.an+",2024-01,540000,540000,540000,540000,0,0,0,0,0" {
			t.Errorf("csv: exit %d, %v\n%s\nstderr %s", code, err, stdout, stderr)
		}
		if !strings.Contains(stderr, "as of position "+after.Position.String()) {
			t.Errorf("csv: the as-of line is not on stderr: %s", stderr)
		}
	})

	t.Run("before the first event", func(t *testing.T) {
		day := domain.DateOf(d.beforeSettled.RecordedAt)
		yesterday := time.Date(day.Year, day.Month, day.Day-1, 12, 0, 0, 0, domain.VietnamZone).Format("2006-01-02")
		code, stdout, stderr := runCmd(t, nil, "replay", "--data", d.data, "--as-of", yesterday, "--beneficiary", d.an)
		if code != exitFailure || stdout != "" || !strings.Contains(lastLine(stderr), "ansinh: beneficiary "+d.an+" was not registered as of the end of "+yesterday+" in Vietnam") ||
			!strings.Contains(lastLine(stderr), "(no event yet)") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

// As of the head, the trial balance and the district report of a replay
// are those of the live read models.
func TestReplayReportsMatchTheLiveReadModels(t *testing.T) {
	d := newLedgerData(t)
	set, done := openReadModelsForTest(t, d.data)
	ctx := context.Background()
	tb, err := set.TrialBalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := set.DistrictReport(ctx, projections.ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	done()
	if !tb.Balanced || len(tb.Accounts) == 0 || len(rep.Districts) != 1 {
		t.Fatalf("the live read models have nothing to compare: %+v %+v", tb, rep)
	}

	var gotTB struct {
		AsOf         replayHeader             `json:"as_of"`
		TrialBalance projections.TrialBalance `json:"trial_balance"`
	}
	code, stdout, stderr := runCmd(t, nil, "replay", "--data", d.data, "--as-of", d.head.String(), "--format", "json")
	if code != exitOK || json.Unmarshal([]byte(stdout), &gotTB) != nil {
		t.Fatalf("trial balance: exit %d\n%s\nstderr %s", code, stdout, stderr)
	}
	if mustJSON(t, gotTB.TrialBalance) != mustJSON(t, tb.TrialBalance) || gotTB.AsOf.Position != tb.Position {
		t.Errorf("trial balance\n%s\nwant\n%s", mustJSON(t, gotTB), mustJSON(t, tb))
	}

	var gotRep struct {
		Districts projections.DistrictReport `json:"districts"`
	}
	code, stdout, stderr = runCmd(t, nil, "replay", "--data", d.data, "--as-of", d.head.String(), "--report", "districts", "--format", "json")
	if code != exitOK || json.Unmarshal([]byte(stdout), &gotRep) != nil {
		t.Fatalf("districts: exit %d\n%s\nstderr %s", code, stdout, stderr)
	}
	if mustJSON(t, gotRep.Districts) != mustJSON(t, rep.DistrictReport) {
		t.Errorf("districts\n%s\nwant\n%s", mustJSON(t, gotRep.Districts), mustJSON(t, rep.DistrictReport))
	}

	// The text forms say the same.
	code, stdout, _ = runCmd(t, nil, "replay", "--data", d.data, "--as-of", d.head.String())
	if code != exitOK || !strings.Contains(stdout, "balanced: debits equal credits") || !containsLine(stdout, "total", amount(tb.Debits)) {
		t.Errorf("trial balance text:\n%s", stdout)
	}
	code, stdout, _ = runCmd(t, nil, "replay", "--data", d.data, "--as-of", d.head.String(), "--report", "districts", "--from", "2024-01", "--to", "2024-01")
	// Three active, two with a bank account; of three January lines one is
	// paid (An's), two are in transit.
	if code != exitOK || !containsLine(stdout, longBienDistrict+" ", "3", "2", "66.67") ||
		!containsLine(stdout, longBienDistrict+" ", "2024-01", "3 / 1620000", "1 / 540000", "2 / 1080000", "33.33") {
		t.Errorf("districts text:\n%s", stdout)
	}
}

// Without --beneficiary, balances lists every beneficiary.
func TestReplayEveryBalance(t *testing.T) {
	d := newLedgerData(t)
	code, stdout, stderr := runCmd(t, nil, "replay", "--data", d.data, "--as-of", d.head.String(), "--report", "balances", "--through", "2024-01", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if code != exitOK || err != nil {
		t.Fatalf("exit %d, %v; stderr %s", code, err, stderr)
	}
	// Citizen-ID order: 001 + century-and-sex digit + year: An (0, 50),
	// Chi (1, 35), Bình (1, 48).
	want := []string{
		strings.Join(balanceColumns, ","),
		d.an + ",2024-01,540000,540000,540000,540000,0,0,0,0,0",
		d.chi + ",2024-01,540000,540000,0,0,540000,540000,0,0,0",
		d.binh + ",2024-01,540000,540000,0,0,540000,540000,0,0,0",
	}
	if len(rows) != len(want) {
		t.Fatalf("rows:\n%s", stdout)
	}
	for i, r := range rows {
		if got := strings.Join(r, ","); got != want[i] {
			t.Errorf("row %d: %s, want %s", i, got, want[i])
		}
	}

	var doc struct {
		Through  domain.Period         `json:"through"`
		Balances []projections.Balance `json:"balances"`
	}
	code, stdout, _ = runCmd(t, nil, "replay", "--data", d.data, "--as-of", d.head.String(), "--report", "balances", "--through", "2024-01", "--format", "json")
	if code != exitOK || json.Unmarshal([]byte(stdout), &doc) != nil || doc.Through != jan2024 || len(doc.Balances) != 3 || doc.Balances[0].CitizenID != d.an {
		t.Errorf("json: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCmd(t, nil, "replay", "--data", d.data, "--as-of", d.head.String(), "--report", "balances", "--through", "2024-01")
	if code != exitOK || !strings.Contains(stdout, "\n3 beneficiaries\n") || !containsLine(stdout, d.binh, "540000") {
		t.Errorf("text:\n%s", stdout)
	}
}

func TestParseAsOf(t *testing.T) {
	tests := []struct {
		in      string
		instant string // RFC 3339 in UTC; "" for a position
		pos     eventstore.Position
		err     string
	}{
		// The end of the day in Vietnam is 16:59:59.999999999 UTC.
		{in: "2024-01-31", instant: "2024-01-31T16:59:59.999999999Z"},
		{in: "2024-02-29", instant: "2024-02-29T16:59:59.999999999Z"},
		{in: "2024-12-31", instant: "2024-12-31T16:59:59.999999999Z"},
		{in: "2024-01-31T17:00:00+07:00", instant: "2024-01-31T10:00:00Z"},
		{in: "2024-01-31T10:00:00.5Z", instant: "2024-01-31T10:00:00.5Z"},
		{in: "57", pos: eventstore.Position{Commit: 57, Prepare: 57}},
		{in: "57/56", pos: eventstore.Position{Commit: 57, Prepare: 56}},
		{in: "2023-02-29", err: "2023-02-29"},
		{in: "2024-01-31T17:00:00", err: "with its offset"},
		{in: "31/01/2024T", err: "RFC 3339"},
		{in: "0", err: "position 0 is before the first event"},
		{in: "0/0", err: "position 0 is before the first event"},
		{in: "yesterday", err: "want a date YYYY-MM-DD"},
		{in: "-5", err: "want a date YYYY-MM-DD"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := parseAsOf(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.instant != "" {
				if got := a.until.Time.UTC().Format(time.RFC3339Nano); got != tt.instant || !a.until.Position.IsStart() || !a.instant.Equal(a.until.Time) {
					t.Errorf("until %+v (%s), want %s", a.until, got, tt.instant)
				}
				return
			}
			if a.until.Position != tt.pos || !a.until.Time.IsZero() || !a.instant.IsZero() {
				t.Errorf("until %+v, want %s", a.until, tt.pos)
			}
		})
	}
}

func TestReplayUsage(t *testing.T) {
	data := t.TempDir()
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"no as-of", []string{}, "--as-of is required"},
		{"bad as-of", []string{"--as-of", "soon"}, `--as-of "soon"`},
		{"position 0", []string{"--as-of", "0"}, "positions start at 1"},
		{"unknown report", []string{"--as-of", "1", "--report", "ledger"}, `--report "ledger"`},
		{"unknown format", []string{"--as-of", "1", "--format", "xml"}, `--format "xml"`},
		{"beneficiary with another report", []string{"--as-of", "1", "--beneficiary", "001050000001", "--report", "districts"}, "--beneficiary goes with --report balances"},
		{"bad citizen ID", []string{"--as-of", "1", "--beneficiary", "12345"}, "--beneficiary"},
		{"through with another report", []string{"--as-of", "1", "--through", "2024-01"}, "--through goes with --report balances"},
		{"bad through", []string{"--as-of", "1", "--beneficiary", "001050000001", "--through", "2024-13"}, "--through"},
		{"district with another report", []string{"--as-of", "1", "--district", "004"}, "go with --report districts"},
		{"bad district", []string{"--as-of", "1", "--report", "districts", "--district", "4,x"}, `--district "4"`},
		{"periods backwards", []string{"--as-of", "1", "--report", "districts", "--from", "2024-02", "--to", "2024-01"}, "--to 2024-01 is before --from 2024-02"},
		{"stray argument", []string{"--as-of", "1", "now"}, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"replay", "--data", data}, tt.args...)
			code, stdout, stderr := runCmd(t, nil, args...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.err) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stdout %q, stderr %q (want %q)", code, stdout, stderr, tt.err)
			}
		})
	}
}
