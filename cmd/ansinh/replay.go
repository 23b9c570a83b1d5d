package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
	"github.com/ansinh/ansinh/projections"
)

const replayAbout = `
Replays the event log from its first event up to --as-of into fresh read
models in memory, and prints one view of them: what the ledger knew then.
The live read models and the log are not touched.

--as-of is one of:
  2024-01-31                  a date: the end of that day in Vietnam
                              (23:59:59.999999999 UTC+7)
  2024-01-31T17:00:00+07:00   an instant, RFC 3339 with its offset
  1234 or 1234/1234           a position of the log (as ansinh export and
                              ansinh verify print them): up to and
                              including that event
An instant covers the events the store recorded at or before it: the log's
order is the order in which the ledger learnt things.

Reports:
  balances        one beneficiary's balance with --beneficiary, else every
                  beneficiary's (accrued, paid, in transit, outstanding,
                  overpaid), accrued through --through
  trial-balance   the double-entry accounts; they must net to zero
  districts       beneficiaries, bank-account share and payments per
                  district and period

It reads the event store directly (--data, --store): with the embedded
store, stop the server first. See docs/audit.md.
`

// Report names.
const (
	reportBalances     = "balances"
	reportTrialBalance = "trial-balance"
	reportDistricts    = "districts"
)

// replayMaxDistricts is the districts report's own bound.
const replayMaxDistricts = 100

type replayConfig struct {
	store       storeConfig
	asOf        asOf
	beneficiary string
	report      string
	format      string
	through     domain.Period
	districts   []string
	from, to    domain.Period
}

func parseReplay(args []string, stdout io.Writer, getenv func(string) string) (replayConfig, error) {
	var cfg replayConfig
	var asOfArg, through, districts, from, to string
	fs := newFlagSet("replay", stdout)
	addStoreFlags(fs, &cfg.store)
	fs.StringVar(&asOfArg, "as-of", "", "replay up to here: YYYY-MM-DD (end of that day in Vietnam), an RFC 3339 instant, or a log position (required)")
	fs.StringVar(&cfg.beneficiary, "beneficiary", "", "the citizen ID (CCCD, 12 digits) of one beneficiary, for --report balances")
	fs.StringVar(&cfg.report, "report", "", "balances, trial-balance or districts (default: balances with --beneficiary, else trial-balance)")
	fs.StringVar(&cfg.format, "format", "text", "text, json or csv")
	fs.StringVar(&through, "through", "", "balances: compute what is accrued through this period, YYYY-MM (default: the month of --as-of in Vietnam)")
	fs.StringVar(&districts, "district", "", "districts: only these district codes, comma-separated (default: every district)")
	fs.StringVar(&from, "from", "", "districts: payments from this period, YYYY-MM")
	fs.StringVar(&to, "to", "", "districts: payments up to this period, YYYY-MM")
	if err := fs.parse(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, replayAbout)
		}
		return cfg, err
	}
	if asOfArg == "" {
		return cfg, usagef("replay: --as-of is required: a date (YYYY-MM-DD), an RFC 3339 instant or a log position")
	}
	var err error
	if cfg.asOf, err = parseAsOf(asOfArg); err != nil {
		return cfg, err
	}
	if cfg.report == "" {
		cfg.report = reportTrialBalance
		if cfg.beneficiary != "" {
			cfg.report = reportBalances
		}
	}
	switch cfg.report {
	case reportBalances, reportTrialBalance, reportDistricts:
	default:
		return cfg, usagef("--report %q: want balances, trial-balance or districts", clipText(cfg.report))
	}
	switch cfg.format {
	case "text", "json", "csv":
	default:
		return cfg, usagef("--format %q: want text, json or csv", clipText(cfg.format))
	}
	if cfg.beneficiary != "" {
		if cfg.report != reportBalances {
			return cfg, usagef("--beneficiary goes with --report balances")
		}
		if err := registry.ValidateCitizenID("beneficiary", cfg.beneficiary); err != nil {
			return cfg, usagef("--beneficiary: %v", err)
		}
	}
	if through != "" {
		if cfg.report != reportBalances {
			return cfg, usagef("--through goes with --report balances")
		}
		if cfg.through, err = domain.ParsePeriod(through); err != nil {
			return cfg, usagef("--through: %v", err)
		}
	}
	if districts != "" || from != "" || to != "" {
		if cfg.report != reportDistricts {
			return cfg, usagef("--district, --from and --to go with --report districts")
		}
	}
	if err := cfg.parseDistrictFlags(districts, from, to); err != nil {
		return cfg, err
	}
	return cfg, cfg.store.validate()
}

var districtCodePattern = regexp.MustCompile(`^[0-9]{3}$`)

func (cfg *replayConfig) parseDistrictFlags(districts, from, to string) error {
	if districts != "" {
		for d := range strings.SplitSeq(districts, ",") {
			d = strings.TrimSpace(d)
			if !districtCodePattern.MatchString(d) {
				return usagef("--district %q: want district codes of 3 digits, comma-separated (e.g. 004,268)", clipText(d))
			}
			if !slices.Contains(cfg.districts, d) {
				cfg.districts = append(cfg.districts, d)
			}
		}
		if len(cfg.districts) > replayMaxDistricts {
			return usagef("--district: %d districts, at most %d", len(cfg.districts), replayMaxDistricts)
		}
	}
	var err error
	if from != "" {
		if cfg.from, err = domain.ParsePeriod(from); err != nil {
			return usagef("--from: %v", err)
		}
	}
	if to != "" {
		if cfg.to, err = domain.ParsePeriod(to); err != nil {
			return usagef("--to: %v", err)
		}
	}
	if !cfg.from.IsZero() && !cfg.to.IsZero() && cfg.to.Before(cfg.from) {
		return usagef("--to %s is before --from %s", cfg.to, cfg.from)
	}
	return nil
}

// asOf is where a replay stops, as the command line said it.
type asOf struct {
	arg   string
	until projections.Until
	// instant is the end of the replay in time (zero for a position): the
	// month of the default --through.
	instant time.Time
	// describe says in words where the replay stops.
	describe string
}

var datePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// parseAsOf reads a date (the end of that day in Vietnam), an RFC 3339
// instant, or a position of the log.
func parseAsOf(s string) (asOf, error) {
	a := asOf{arg: s}
	switch {
	case datePattern.MatchString(s):
		d, err := domain.ParseDate(s)
		if err != nil {
			return a, usagef("--as-of %q: %v", s, err)
		}
		// The last instant of the day: the replay takes every event
		// recorded at or before it. Vietnam has one zone, UTC+7, and no
		// daylight saving.
		a.instant = time.Date(d.Year, d.Month, d.Day+1, 0, 0, 0, 0, domain.VietnamZone).Add(-time.Nanosecond)
		a.until = projections.UntilTime(a.instant)
		a.describe = fmt.Sprintf("the end of %s in Vietnam (%s)", s, vnTime(a.instant))
	case strings.ContainsAny(s, "T:"):
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return a, usagef("--as-of %q: want an RFC 3339 instant with its offset, e.g. 2024-01-31T17:00:00+07:00", clipText(s))
		}
		a.instant = t
		a.until = projections.UntilTime(t)
		a.describe = vnTime(t)
	default:
		p, err := eventstore.ParsePosition(s)
		if err != nil {
			return a, usagef("--as-of %q: want a date YYYY-MM-DD, an RFC 3339 instant or a log position (a number, or commit/prepare)", clipText(s))
		}
		if p.IsStart() {
			return a, usagef("--as-of %q: position 0 is before the first event; positions start at 1", s)
		}
		a.until = projections.UntilPosition(p)
		a.describe = "position " + p.String()
	}
	return a, nil
}

// replayHeader is what a replayed answer reflects.
type replayHeader struct {
	AsOf string `json:"as_of"` // as given on the command line
	// Until says in words where the replay stopped.
	Until string `json:"until"`
	// Position is the last event applied (0/0: none), and LastEventAt
	// when the store recorded it.
	Position    eventstore.Position `json:"position"`
	LastEventAt *time.Time          `json:"last_event_at,omitempty"`
}

func (h replayHeader) String() string {
	if h.Position.IsStart() {
		return fmt.Sprintf("as of %s: no event yet", h.Until)
	}
	s := fmt.Sprintf("as of %s: the log up to position %s", h.Until, h.Position)
	if h.LastEventAt != nil {
		s += ", recorded " + vnTime(*h.LastEventAt)
	}
	return s
}

func replayCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	cfg, err := parseReplay(args, stdout, getenv)
	if err != nil {
		return err
	}
	if err := requireLog(cfg.store); err != nil {
		return err
	}
	store, err := openStore(ctx, cfg.store, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer closeInto(&err, "event store", store)
	head, err := headOf(ctx, store)
	if err != nil {
		return err
	}
	total := eventsInLog(cfg.store, head)
	if p := cfg.asOf.until.Position; !p.IsStart() && total > 0 {
		total = min(total, int64(p.Commit))
	}
	prog := newProgress(stderr, isTerminal(stderr), time.Now, "replay", "events", total, total)
	ws := &watchedStore{Store: store, until: cfg.asOf.until, prog: prog}
	stop := prog.run(ctx)
	set, err := projections.AsOf(ctx, ws, ledger.NewCodec(), cfg.asOf.until, projections.SetOptions{Runner: readModelOptions(cfg.store)})
	stop()
	prog.finish()
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer func() { err = errors.Join(err, set.Close()) }()

	h := replayHeader{AsOf: cfg.asOf.arg, Until: cfg.asOf.describe, Position: set.Position()}
	if last, at := ws.lastEvent(); !h.Position.IsStart() && last == h.Position {
		h.LastEventAt = &at
	}
	if cfg.format == "csv" {
		// CSV has one header row; what the figures reflect goes to stderr.
		fmt.Fprintln(stderr, h.String())
	}
	out := &replayOutput{w: stdout, format: cfg.format, header: h}
	switch cfg.report {
	case reportBalances:
		through := cfg.through
		if through.IsZero() {
			through = defaultThrough(cfg.asOf, h)
		}
		if cfg.beneficiary != "" {
			return out.balance(ctx, set, cfg.beneficiary, through)
		}
		return out.balances(ctx, set, through)
	case reportTrialBalance:
		return out.trialBalance(ctx, set)
	default:
		return out.districts(ctx, set, projections.ReportQuery{Districts: cfg.districts, From: cfg.from, To: cfg.to})
	}
}

// defaultThrough is the month the ledger would have computed balances
// through on the as-of day: the month of the as-of instant in Vietnam, or
// for a position the month of that event.
func defaultThrough(a asOf, h replayHeader) domain.Period {
	switch {
	case !a.instant.IsZero():
		return domain.DateOf(a.instant).Period()
	case h.LastEventAt != nil:
		return domain.DateOf(*h.LastEventAt).Period()
	}
	return domain.DateOf(time.Now()).Period()
}

// replayOutput prints the views of a replay in one format.
type replayOutput struct {
	w      io.Writer
	format string
	header replayHeader
}

func (o *replayOutput) json(key string, v any) error {
	doc := map[string]any{"as_of": o.header, key: v}
	enc := json.NewEncoder(o.w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// amount is a sum of money as a plain number of dong, for tables and CSV.
func amount(m domain.Money) string {
	if m.Currency == "" {
		return "0"
	}
	return m.Amount.String()
}

func (o *replayOutput) balance(ctx context.Context, set *projections.Set, cid string, through domain.Period) error {
	b, err := set.Balance(ctx, cid, through)
	if errors.Is(err, projections.ErrNotFound) {
		return fmt.Errorf("beneficiary %s was not registered as of %s (%s)", cid, o.header.Until, positionPhrase(o.header.Position))
	}
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		return o.json("balance", b.Balance)
	case "csv":
		w := csv.NewWriter(o.w)
		_ = w.Write(balanceColumns)
		_ = w.Write(balanceRow(b.Balance))
		w.Flush()
		return w.Error()
	}
	fmt.Fprintln(o.w, o.header)
	fmt.Fprintf(o.w, "balance of %s, accrued through %s\n\n", b.CitizenID, b.Through)
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tGROSS\tNET\tPERIODS")
	for _, row := range []struct {
		name string
		b    projections.BalanceBucket
	}{{"accrued", b.Accrued}, {"paid", b.Paid}, {"in transit", b.InTransit}, {"outstanding", b.Outstanding}} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.name, amount(row.b.Gross), amount(row.b.Net), periodList(row.b.Periods))
	}
	fmt.Fprintf(tw, "overpaid\t%s\n", amount(b.Overpaid))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(b.Accounts) > 0 {
		fmt.Fprintln(o.w, "\nshare of the books (debit positive):")
		tw = tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
		for _, a := range slices.Sorted(maps.Keys(b.Accounts)) {
			fmt.Fprintf(tw, "  %s\t%s\n", a, amount(b.Accounts[a]))
		}
		return tw.Flush()
	}
	return nil
}

func positionPhrase(p eventstore.Position) string {
	if p.IsStart() {
		return "no event yet"
	}
	return "the log up to position " + p.String()
}

func periodList(ps []domain.Period) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, " ")
}

var balanceColumns = []string{"citizen_id", "through",
	"accrued_gross", "accrued_net", "paid_gross", "paid_net", "in_transit_gross", "in_transit_net",
	"outstanding_gross", "outstanding_net", "overpaid"}

func balanceRow(b projections.Balance) []string {
	return []string{b.CitizenID, b.Through.String(),
		amount(b.Accrued.Gross), amount(b.Accrued.Net), amount(b.Paid.Gross), amount(b.Paid.Net),
		amount(b.InTransit.Gross), amount(b.InTransit.Net), amount(b.Outstanding.Gross), amount(b.Outstanding.Net),
		amount(b.Overpaid)}
}

// balancesPage is the roster page of a listing of every balance: the
// listing holds one page of IDs in memory whatever the register's size.
const balancesPage = 1000

// balances lists every registered beneficiary's balance, in citizen-ID
// order, one page at a time.
func (o *replayOutput) balances(ctx context.Context, set *projections.Set, through domain.Period) error {
	var (
		cw    *csv.Writer
		tw    *tabwriter.Writer
		enc   *json.Encoder
		first = true
	)
	switch o.format {
	case "csv":
		cw = csv.NewWriter(o.w)
		_ = cw.Write(balanceColumns)
	case "json":
		// A document of its own shape, written as it goes: an object with
		// the header and the array of balances.
		h, err := json.Marshal(o.header)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.w, "{\n  \"as_of\": %s,\n  \"through\": %q,\n  \"balances\": [\n", h, through)
		enc = json.NewEncoder(o.w)
		enc.SetEscapeHTML(false)
	default:
		fmt.Fprintln(o.w, o.header)
		fmt.Fprintf(o.w, "balances accrued through %s\n\n", through)
		tw = tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CITIZEN ID\tACCRUED\tPAID\tIN TRANSIT\tOUTSTANDING\tOVERPAID")
	}
	n := 0
	for after := ""; ; {
		ids, err := set.CitizenIDs(ctx, nil, after, balancesPage)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		for _, cid := range ids {
			b, err := set.Balance(ctx, cid, through)
			if errors.Is(err, projections.ErrNotFound) {
				continue // on the roster, not (or no longer) registered
			}
			if err != nil {
				return err
			}
			n++
			switch {
			case cw != nil:
				if err := cw.Write(balanceRow(b.Balance)); err != nil {
					return err
				}
			case enc != nil:
				sep := "    "
				if !first {
					sep = "   ,"
				}
				first = false
				fmt.Fprint(o.w, sep)
				if err := enc.Encode(b.Balance); err != nil {
					return err
				}
			default:
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cid, amount(b.Accrued.Gross), amount(b.Paid.Net),
					amount(b.InTransit.Gross), amount(b.Outstanding.Gross), amount(b.Overpaid))
			}
		}
		after = ids[len(ids)-1]
	}
	switch {
	case cw != nil:
		cw.Flush()
		return cw.Error()
	case enc != nil:
		_, err := fmt.Fprint(o.w, "  ]\n}\n")
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(o.w, "\n%d beneficiaries\n", n)
	return err
}

func (o *replayOutput) trialBalance(ctx context.Context, set *projections.Set) error {
	tb, err := set.TrialBalance(ctx)
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		return o.json("trial_balance", tb.TrialBalance)
	case "csv":
		w := csv.NewWriter(o.w)
		_ = w.Write([]string{"account", "program", "debit", "credit", "balance"})
		for _, a := range tb.Accounts {
			_ = w.Write([]string{string(a.Account), "", amount(a.Debit), amount(a.Credit), amount(a.Balance)})
			for _, p := range slices.Sorted(maps.Keys(a.ByProgram)) {
				m := a.ByProgram[p]
				d, c := sides(m)
				_ = w.Write([]string{string(a.Account), p, d, c, amount(m)})
			}
		}
		_ = w.Write([]string{"total", "", amount(tb.Debits), amount(tb.Credits), amount(tb.Total)})
		w.Flush()
		return w.Error()
	}
	fmt.Fprintln(o.w, o.header)
	fmt.Fprintln(o.w)
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tPROGRAM\tDEBIT\tCREDIT")
	for _, a := range tb.Accounts {
		fmt.Fprintf(tw, "%s\t\t%s\t%s\n", a.Account, amount(a.Debit), amount(a.Credit))
		for _, p := range slices.Sorted(maps.Keys(a.ByProgram)) {
			d, c := sides(a.ByProgram[p])
			fmt.Fprintf(tw, "\t%s\t%s\t%s\n", p, d, c)
		}
	}
	fmt.Fprintf(tw, "total\t\t%s\t%s\n", amount(tb.Debits), amount(tb.Credits))
	if err := tw.Flush(); err != nil {
		return err
	}
	if tb.Balanced {
		_, err = fmt.Fprintln(o.w, "\nbalanced: debits equal credits")
	} else {
		_, err = fmt.Fprintf(o.w, "\nNOT BALANCED: the accounts net to %s\n", amount(tb.Total))
	}
	return err
}

// sides splits a signed balance (debit positive) into debit and credit.
func sides(m domain.Money) (debit, credit string) {
	if m.IsNegative() {
		return "0", amount(m.Neg())
	}
	return amount(m), "0"
}

func (o *replayOutput) districts(ctx context.Context, set *projections.Set, q projections.ReportQuery) error {
	rep, err := set.DistrictReport(ctx, q)
	if err != nil {
		return err
	}
	all := append([]projections.DistrictFigures{rep.City}, rep.Districts...)
	switch o.format {
	case "json":
		return o.json("districts", rep.DistrictReport)
	case "csv":
		w := csv.NewWriter(o.w)
		_ = w.Write(districtColumns())
		for _, f := range all {
			for _, p := range append(slices.Clone(f.Periods), f.Totals) {
				_ = w.Write(districtRow(f, p))
			}
		}
		w.Flush()
		return w.Error()
	}
	fmt.Fprintln(o.w, o.header)
	fmt.Fprintln(o.w)
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISTRICT\tNAME\tACTIVE\tWITH BANK ACCOUNT\tSHARE %\tDECEASED\tMOVED AWAY")
	for _, f := range all {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%d\n", districtLabel(f), f.DistrictName, f.Active, f.WithBank, dash(f.BankAccountShare), f.Deceased, f.MovedAway)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(o.w, "\npayments (lines, gross VND):")
	tw = tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISTRICT\tPERIOD\tDUE\tPAID\tFAILED\tIN TRANSIT\tREVERSED\tCOMPLETION %")
	for _, f := range all {
		for _, p := range append(slices.Clone(f.Periods), f.Totals) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", districtLabel(f), periodLabel(p),
				lines(p.Due), lines(p.Paid), lines(p.Failed), lines(p.InTransit), lines(p.Reversed), dash(p.Completion))
		}
	}
	return tw.Flush()
}

func districtLabel(f projections.DistrictFigures) string {
	if f.District == "" {
		return "city"
	}
	return f.District
}

func periodLabel(p projections.PeriodFigures) string {
	if p.Period.IsZero() {
		return "total"
	}
	return p.Period.String()
}

func lines(s projections.StatusTotal) string {
	return strconv.Itoa(s.Lines) + " / " + amount(s.Gross)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func districtColumns() []string {
	cols := []string{"district", "district_name", "catalogue", "active", "with_bank_account", "bank_account_share", "deceased", "moved_away", "period"}
	for _, s := range []string{"due", "paid", "failed", "in_transit", "reversed"} {
		cols = append(cols, s+"_lines", s+"_gross", s+"_net")
	}
	return append(cols, "completion")
}

func districtRow(f projections.DistrictFigures, p projections.PeriodFigures) []string {
	row := []string{districtLabel(f), f.DistrictName, f.Catalogue, strconv.Itoa(f.Active), strconv.Itoa(f.WithBank),
		f.BankAccountShare, strconv.Itoa(f.Deceased), strconv.Itoa(f.MovedAway), periodLabel(p)}
	for _, s := range []projections.StatusTotal{p.Due, p.Paid, p.Failed, p.InTransit, p.Reversed} {
		row = append(row, strconv.Itoa(s.Lines), amount(s.Gross), amount(s.Net))
	}
	return append(row, p.Completion)
}
