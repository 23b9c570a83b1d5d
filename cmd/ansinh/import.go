package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"golang.org/x/text/unicode/norm"

	"github.com/ansinh/ansinh/api/users"
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/ledger"
)

const importUsage = `usage: ansinh import beneficiaries --file F.csv [flags]

Registers the beneficiaries of a CSV file (layout: docs/import.md). Each line
is all or nothing: the registration, bank account, payment method and grant
of one person are written together or not at all. Bad lines are rejected and
listed (on stderr, or in --report F.csv); the others are imported. Running
the same file again is safe: lines already imported count as unchanged.
The last line on stdout is "imported N, unchanged M, rejected K"; the exit
code is 1 if any line was rejected.

It works on the event store directly (--data, --store). The embedded store
is held by a running server: stop it first.
`

// Limits of an import. Everything a file controls is bounded.
const (
	importMaxFileBytes = 512 << 20
	// importMaxLineBytes bounds one line: a full line is about 300 bytes,
	// and the longest fields (name, street: 200 characters of up to 4
	// bytes) fit several times over.
	importMaxLineBytes = 16 << 10
	// importMaxLines bounds the data lines of one file: Hanoi has about
	// 300,000 beneficiaries; a bigger file is split.
	importMaxLines = 1_000_000
	// importWorkersDefault lines are written at once. The embedded store
	// commits concurrent appends together (one fsync per group), so the
	// rate grows with the workers until the disk or the CPU is busy.
	importWorkersDefault = 16
	importWorkersMax     = 64
	// importWindowPerWorker bounds the lines in flight per worker, and so
	// the buffer that puts results back in file order for the report.
	importWindowPerWorker = 8
	// importCommandIDPrefix marks command IDs derived from a CSV record.
	importCommandIDPrefix = "import:"
)

// importConfig is what the command line says.
type importConfig struct {
	store   storeConfig
	file    string
	report  string
	as      string
	grant   string
	dryRun  bool
	workers int
}

func importCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usagef("import: want what to import: beneficiaries (see ansinh import -h)")
	}
	switch args[0] {
	case "beneficiaries":
		return importBeneficiaries(ctx, args[1:], stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, importUsage)
		return nil
	}
	return usagef("import: unknown kind %q; want beneficiaries", args[0])
}

func parseImport(args []string, stdout io.Writer, getenv func(string) string) (importConfig, error) {
	var cfg importConfig
	fs := newFlagSet("import beneficiaries", stdout)
	addStoreFlags(fs, &cfg.store)
	fs.StringVar(&cfg.file, "file", "", "the CSV file to import, UTF-8 (required; layout in docs/import.md)")
	fs.StringVar(&cfg.report, "report", "", "write the rejected lines to this CSV file instead of stderr")
	fs.StringVar(&cfg.as, "as", "", "the user recorded as the registrar (a registrar or admin of `ansinh users list`); default: the operating-system account, as an admin")
	fs.StringVar(&cfg.grant, "grant", "", "PROGRAM:COEFFICIENT_OR_AMOUNT:START_PERIOD granted to every line without a program of its own, e.g. SOCIAL_MONTHLY:1.5:2024-07")
	fs.BoolVar(&cfg.dryRun, "dry-run", false, "check every line against the rules and the store, and write nothing")
	fs.IntVar(&cfg.workers, "workers", importWorkersDefault, fmt.Sprintf("lines written at once, 1 to %d", importWorkersMax))
	if err := fs.parse(args, getenv); err != nil {
		return cfg, err
	}
	switch {
	case cfg.file == "":
		return cfg, usagef("import beneficiaries: --file is required")
	case cfg.workers < 1 || cfg.workers > importWorkersMax:
		return cfg, usagef("--workers %d: want 1 to %d", cfg.workers, importWorkersMax)
	}
	if cfg.grant != "" {
		if _, err := parseGrantFlag(cfg.grant); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.store.validate()
}

func importBeneficiaries(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	cfg, err := parseImport(args, stdout, getenv)
	if err != nil {
		return err
	}
	src, err := openImportFile(cfg.file)
	if err != nil {
		return err
	}
	defer src.f.Close()
	if cfg.report != "" && sameFile(cfg.report, cfg.file) {
		return usagef("--report %s is the file being imported", cfg.report)
	}

	quiet := slog.New(slog.DiscardHandler)
	store, err := openStore(ctx, cfg.store, quiet)
	if err != nil {
		return err
	}
	defer closeInto(&err, "event store", store)
	led := ledger.New(store, ledger.DefaultConfig())
	actor, err := importActor(ctx, store, cfg.as)
	if err != nil {
		return err
	}
	cat, err := importCatalogue(ctx, led, cfg.dryRun)
	if err != nil {
		return err
	}
	var defaultGrant *entitlement.Grant
	if cfg.grant != "" {
		g, _ := parseGrantFlag(cfg.grant) // checked by parseImport
		if defaultGrant, err = g.resolve(cat); err != nil {
			return err
		}
	}

	prog := newProgress(stderr, isTerminal(stderr), time.Now, "import", "lines", src.dataLines, src.dataLines)
	sink, err := newRejectionSink(cfg.report, prog)
	if err != nil {
		return err
	}
	im := &importer{
		led: led, store: store, actor: actor, cat: cat, dryRun: cfg.dryRun, workers: cfg.workers,
		header: src.header, defaultGrant: defaultGrant, sink: sink, prog: prog,
		reason:      "import of " + printable(filepath.Base(cfg.file), 100),
		correlation: "import:" + uuid.NewString(),
	}
	stop := prog.run(ctx)
	counts, runErr := im.run(ctx, src.lines)
	stop()
	prog.finish()
	if err := sink.close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("report %s: %w", cfg.report, err)
	}

	fmt.Fprintln(stdout, counts.summary(cfg.dryRun))
	switch {
	case runErr != nil:
		return fmt.Errorf("import stopped: %w; run the same file again to go on: lines already imported count as unchanged", runErr)
	case counts.rejected > 0:
		where := "listed above"
		if cfg.report != "" {
			where = "listed in " + cfg.report
		}
		return fmt.Errorf("rejected %d of %d lines (%s); correct them and run the file again: lines already imported count as unchanged",
			counts.rejected, counts.total(), where)
	}
	return nil
}

// importCounts are what an import did with the lines of its file.
type importCounts struct {
	imported, unchanged, rejected, notProcessed int
}

func (c importCounts) total() int { return c.imported + c.unchanged + c.rejected + c.notProcessed }

func (c importCounts) summary(dryRun bool) string {
	verb := "imported"
	if dryRun {
		verb = "would import"
	}
	s := fmt.Sprintf("%s %d, unchanged %d, rejected %d", verb, c.imported, c.unchanged, c.rejected)
	if c.notProcessed > 0 {
		s += fmt.Sprintf(", not processed %d", c.notProcessed)
	}
	if dryRun {
		s += " (dry run: nothing was written)"
	}
	return s
}

// importActor is who the events name as their author: a registrar or admin
// of the users directory (--as), or the operating-system account acting as
// an admin, as for `ansinh users`.
func importActor(ctx context.Context, store eventstore.Store, name string) (domain.Actor, error) {
	if name == "" {
		return operator(), nil
	}
	dir, err := users.Open(ctx, store, nil)
	if err != nil {
		return domain.Actor{}, err
	}
	u, ok := dir.Get(name)
	switch {
	case !ok:
		return domain.Actor{}, usagef("--as %q: no such user (see ansinh users list)", clipText(name))
	case u.Disabled:
		return domain.Actor{}, usagef("--as %s: the user is disabled", u.Name)
	case u.Role != domain.RoleRegistrar && u.Role != domain.RoleAdmin:
		return domain.Actor{}, usagef("--as %s: the user is a %s; registering beneficiaries needs a registrar or an admin", u.Name, u.Role)
	}
	return u.Actor(), nil
}

// importCatalogue is the catalogue grants are decided against. As `ansinh
// serve` does on every start, the starter catalogue is seeded first, so that
// a fresh store knows its programs; a dry run writes nothing, so it applies
// the starter catalogue to what it read, in memory only.
func importCatalogue(ctx context.Context, led *ledger.Ledger, dryRun bool) (entitlement.Catalogue, error) {
	if !dryRun {
		if _, err := led.SeedCatalogue(ctx); err != nil {
			return entitlement.Catalogue{}, err
		}
		cat, _, err := led.Catalogue(ctx)
		return cat, err
	}
	cat, _, err := led.Catalogue(ctx)
	if err != nil {
		return cat, err
	}
	for _, cmd := range entitlement.StarterCatalogue() {
		events, err := entitlement.DecideCatalogue(cat, cmd, led.Limits())
		if err != nil {
			return cat, fmt.Errorf("starter catalogue: %w", err)
		}
		for _, ev := range events {
			cat = cat.Evolve(ev)
		}
	}
	return cat, nil
}

// grantFlag is --grant before the catalogue says what its number is.
type grantFlag struct {
	program string
	value   string // a coefficient or an amount, as the program's rule says
	start   domain.Period
}

func parseGrantFlag(s string) (grantFlag, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return grantFlag{}, usagef("--grant %q: want PROGRAM:COEFFICIENT_OR_AMOUNT:START_PERIOD, e.g. SOCIAL_MONTHLY:1.5:2024-07", clipText(s))
	}
	g := grantFlag{program: strings.ToUpper(strings.TrimSpace(parts[0])), value: strings.TrimSpace(parts[1])}
	if err := entitlement.ValidateCode("program", g.program); err != nil {
		return g, usagef("--grant: %v", err)
	}
	p, err := parsePeriodField(strings.TrimSpace(parts[2]))
	if err != nil {
		return g, usagef("--grant: start period: %v", err)
	}
	g.start = p
	return g, nil
}

// resolve reads the flag's number as the program's rule wants it: a
// coefficient of a base level, or a fixed amount (empty: the program's
// default amount).
func (g grantFlag) resolve(cat entitlement.Catalogue) (*entitlement.Grant, error) {
	prog, ok := cat.Programs[g.program]
	if !ok {
		return nil, usagef("--grant: program %s is not in the catalogue", g.program)
	}
	out := &entitlement.Grant{Program: prog.Code, Start: g.start}
	if prog.Rule.Kind == entitlement.BaseTimesCoefficient {
		c, err := parseCoefficient(g.value)
		if err != nil {
			return nil, usagef("--grant: %s pays a coefficient of a base level: %v", prog.Code, err)
		}
		out.Coefficient = &c
		return out, nil
	}
	if g.value != "" {
		m, err := parseAmountField(g.value)
		if err != nil {
			return nil, usagef("--grant: %s pays a fixed amount: %v", prog.Code, err)
		}
		out.Amount = &m
	}
	return out, nil
}

// importFile is the opened CSV file: its header read, its lines counted.
type importFile struct {
	f         *os.File
	header    *csvHeader
	lines     *lineReader // positioned after the header
	dataLines int64       // lines after the header, blank ones included
}

// openImportFile opens the file, checks its size, counts its lines (so that
// a file over the limit is refused before anything is written, and the
// progress knows the total) and reads its header.
func openImportFile(path string) (*importFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	st, err := f.Stat()
	switch {
	case err != nil:
		return nil, fmt.Errorf("--file: %w", err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("--file %s: not a regular file", path)
	case st.Size() > importMaxFileBytes:
		return nil, fmt.Errorf("--file %s: %d bytes, more than the %d MiB an import takes; split the file", path, st.Size(), importMaxFileBytes>>20)
	case st.Size() == 0:
		return nil, fmt.Errorf("--file %s: the file is empty; it needs a header row (see docs/import.md)", path)
	}
	lines, err := countLines(f)
	if err != nil {
		return nil, fmt.Errorf("--file %s: %w", path, err)
	}
	if lines-1 > importMaxLines {
		return nil, fmt.Errorf("--file %s: %d lines, more than the %d an import takes; split the file", path, lines-1, importMaxLines)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("--file %s: %w", path, err)
	}
	// Read exactly the bytes counted, even if the file grows meanwhile.
	lr := &lineReader{r: bufio.NewReaderSize(io.LimitReader(f, st.Size()), importMaxLineBytes)}
	text, tooLong, err := lr.next()
	switch {
	case err != nil:
		return nil, fmt.Errorf("--file %s: header: %w", path, err)
	case tooLong:
		return nil, fmt.Errorf("--file %s: the header row is longer than %d bytes", path, importMaxLineBytes)
	}
	h, err := parseHeader(text)
	if err != nil {
		return nil, fmt.Errorf("--file %s: line 1: %w", path, err)
	}
	ok = true
	return &importFile{f: f, header: h, lines: lr, dataLines: lines - 1}, nil
}

// countLines counts the lines of r: its newlines, plus one for a last line
// without a newline.
func countLines(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	last := byte('\n')
	for {
		k, err := r.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if last != '\n' {
		n++
	}
	return n, nil
}

// lineReader reads physical lines of at most importMaxLineBytes. A CSV
// field may not hold a line break, so that a line number is the row the
// office sees in its spreadsheet and one line is one record.
type lineReader struct {
	r    *bufio.Reader
	line int // number of the last line read, from 1
}

// next returns the next line without its line ending, or io.EOF. A line
// longer than the limit is skipped to its end and reported as tooLong.
func (lr *lineReader) next() (text string, tooLong bool, err error) {
	b, err := lr.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		lr.line++
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = lr.r.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return "", false, err
		}
		return "", true, nil
	}
	if err == io.EOF && len(b) == 0 {
		return "", false, io.EOF
	}
	if err != nil && err != io.EOF {
		return "", false, err
	}
	lr.line++
	text = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if lr.line == 1 {
		text = strings.TrimPrefix(text, "\uFEFF") // Excel's "CSV UTF-8" starts with a byte-order mark
	}
	return text, false, nil
}

// The columns of the CSV layout (docs/import.md).
type column int

const (
	colCitizenID column = iota
	colFullName
	colDateOfBirth
	colSex
	colStreet
	colDistrictCode
	colWardCode
	colCategory
	colHouseholdID
	colBankCode
	colAccountNumber
	colAccountHolder
	colPaymentMethod
	colProgram
	colCoefficient
	colAmount
	colStartPeriod
	numColumns
)

var columnNames = [numColumns]string{
	"citizen_id", "full_name", "date_of_birth", "sex", "street", "district_code", "ward_code", "category", "household_id",
	"bank_code", "account_number", "account_holder", "payment_method",
	"program", "coefficient", "amount", "start_period",
}

var requiredColumns = []column{colCitizenID, colFullName, colDateOfBirth, colSex, colDistrictCode, colWardCode, colCategory}

// csvHeader says where each column is in a line.
type csvHeader struct {
	index  [numColumns]int // field index of each column; -1 when absent
	fields int             // fields of the header, which every line must have
	delim  byte
}

// parseHeader reads the header row. Column names are matched without case;
// an unknown or repeated column refuses the whole file, since a misspelt
// column would otherwise be dropped silently. Excel saves CSV with ';' where
// the decimal separator is ',' (as in Vietnam): a header with ';' and no ','
// is read that way.
func parseHeader(text string) (*csvHeader, error) {
	h := &csvHeader{delim: ','}
	if strings.Contains(text, ";") && !strings.Contains(text, ",") {
		h.delim = ';'
	}
	names, err := splitCSVLine(nil, text, h.delim)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	for i := range h.index {
		h.index[i] = -1
	}
	for i, raw := range names {
		name := strings.ToLower(strings.TrimSpace(raw))
		c := columnByName(name)
		switch {
		case name == "":
			return nil, fmt.Errorf("header: column %d has no name", i+1)
		case c < 0:
			return nil, fmt.Errorf("header: unknown column %q; the columns are %s", clipText(name), strings.Join(columnNames[:], ", "))
		case h.index[c] >= 0:
			return nil, fmt.Errorf("header: column %s appears twice", name)
		}
		h.index[c] = i
	}
	var missing []string
	for _, c := range requiredColumns {
		if h.index[c] < 0 {
			missing = append(missing, columnNames[c])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("header: required column(s) missing: %s", strings.Join(missing, ", "))
	}
	if h.index[colCoefficient] >= 0 || h.index[colAmount] >= 0 || h.index[colStartPeriod] >= 0 {
		if h.index[colProgram] < 0 {
			return nil, errors.New("header: coefficient, amount and start_period need a program column")
		}
	}
	h.fields = len(names)
	return h, nil
}

func columnByName(name string) column {
	for c, n := range columnNames {
		if n == name {
			return column(c)
		}
	}
	return -1
}

// splitCSVLine splits one line into fields (RFC 4180, without line breaks
// inside fields), appending to dst. A quoted field may hold the delimiter
// and "" for a quote.
func splitCSVLine(dst []string, line string, delim byte) ([]string, error) {
	dst = dst[:0]
	for {
		if !strings.HasPrefix(line, `"`) {
			i := strings.IndexByte(line, delim)
			if i < 0 {
				return append(dst, line), nil
			}
			dst = append(dst, line[:i])
			line = line[i+1:]
			continue
		}
		var b strings.Builder
		i := 1
		for {
			j := strings.IndexByte(line[i:], '"')
			if j < 0 {
				return nil, errors.New("a quoted field has no closing quote (a field may not hold a line break)")
			}
			b.WriteString(line[i : i+j])
			i += j + 1
			if i < len(line) && line[i] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			break
		}
		dst = append(dst, b.String())
		line = line[i:]
		if line == "" {
			return dst, nil
		}
		if line[0] != delim {
			return nil, errors.New("text after the closing quote of a field")
		}
		line = line[1:]
	}
}

// enrolment is one CSV line as commands: a registration, and as the line
// says, a bank account, a payment method and a grant. Deciding it yields the
// events of them all, appended to the person's stream in one append: all or
// nothing.
type enrolment struct {
	Register registry.Register
	Account  *registry.LinkBankAccount
	Method   registry.PaymentMethod
	Grant    *entitlement.Grant
}

// decide runs the domain's deciders one after the other, each on the state
// the previous one's events left.
func (e enrolment) decide(b registry.Beneficiary, reg registry.Env, ent entitlement.Env) ([]domain.Event, error) {
	var out []domain.Event
	apply := func(events []domain.Event, err error) error {
		if err != nil {
			return err
		}
		for _, ev := range events {
			b = b.Evolve(ev)
		}
		out = append(out, events...)
		return nil
	}
	if err := apply(registry.Decide(b, reg, e.Register)); err != nil {
		return nil, err
	}
	if e.Account != nil {
		if err := apply(registry.Decide(b, reg, *e.Account)); err != nil {
			return nil, err
		}
	}
	if e.Method != "" {
		if err := apply(registry.Decide(b, reg, registry.ChoosePaymentMethod{Method: e.Method})); err != nil {
			return nil, err
		}
	}
	if e.Grant != nil {
		if err := apply(registry.DecideEntitlement(b, ent, *e.Grant)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// importRecord is a line's normalised content, in a shape of its own so
// that it does not change when the domain's command types do. The command
// ID is its digest, and the ledger stores a hash of it (with its type
// name) in every event's metadata, to tell a re-run of the line from
// another command with the same ID: the type's name and JSON fields are
// therefore part of what is stored; never rename them, or lines imported
// before would be refused as "command_id_reused" instead of unchanged.
type importRecord struct {
	CitizenID     string `json:"citizen_id"`
	FullName      string `json:"full_name"`
	DateOfBirth   string `json:"date_of_birth"`
	Sex           string `json:"sex"`
	Street        string `json:"street"`
	DistrictCode  string `json:"district_code"`
	WardCode      string `json:"ward_code"`
	Category      string `json:"category"`
	HouseholdID   string `json:"household_id"`
	BankCode      string `json:"bank_code"`
	AccountNumber string `json:"account_number"`
	AccountHolder string `json:"account_holder"`
	PaymentMethod string `json:"payment_method"`
	Program       string `json:"program"`
	Coefficient   string `json:"coefficient"`
	Amount        string `json:"amount"`
	StartPeriod   string `json:"start_period"`
}

// record is e's normalised content.
func (e enrolment) record() importRecord {
	r := e.Register
	rec := importRecord{
		CitizenID: r.CitizenID, FullName: r.FullName, DateOfBirth: r.DateOfBirth.String(), Sex: string(r.Sex),
		Street: r.Address.Street, DistrictCode: r.Address.DistrictCode, WardCode: r.Address.WardCode,
		Category: string(r.Category), HouseholdID: r.HouseholdID, PaymentMethod: string(e.Method),
	}
	if a := e.Account; a != nil {
		rec.BankCode, rec.AccountNumber, rec.AccountHolder = a.BankCode, a.AccountNumber, a.HolderName
	}
	if g := e.Grant; g != nil {
		rec.Program, rec.StartPeriod = g.Program, g.Start.String()
		if g.Coefficient != nil {
			rec.Coefficient = g.Coefficient.String()
		}
		if g.Amount != nil {
			rec.Amount = g.Amount.Amount.String()
		}
	}
	return rec
}

// commandID is the ledger command ID of the line: a digest of its
// normalised content, so that the same person with the same details gets
// the same ID however the file spells them (quotes, spaces, NFC or NFD,
// DD/MM/YYYY or YYYY-MM-DD), and any real change gets another.
func (rec importRecord) commandID() (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return importCommandIDPrefix + hex.EncodeToString(sum[:16]), nil
}

// csvRecord is one data line split into fields.
type csvRecord struct {
	h      *csvHeader
	fields []string
}

func (r csvRecord) get(c column) string {
	i := r.h.index[c]
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

func (r csvRecord) blank() bool {
	for _, f := range r.fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// badField is a line's value the import cannot read, named by its column.
func badField(c column, code, format string, args ...any) error {
	return domain.Reject(code, columnNames[c], format, args...)
}

// citizenID reads the citizen ID column. Spreadsheets drop the leading
// zeros of a number (Hanoi's IDs start with 001), so a short all-digit ID
// gets a hint; it is not padded, since a digit lost elsewhere would make
// another person's ID.
func (r csvRecord) citizenID() (string, error) {
	id := r.get(colCitizenID)
	if err := registry.ValidateCitizenID(columnNames[colCitizenID], id); err != nil {
		if id != "" && len(id) < registry.CitizenIDLen && strings.Trim(id, "0123456789") == "" {
			return "", badField(colCitizenID, "invalid_citizen_id",
				"%s has %d digits, not %d; a spreadsheet may have dropped its leading zeros: format the column as text", id, len(id), registry.CitizenIDLen)
		}
		return "", err
	}
	return id, nil
}

// enrolment reads a data line into the commands it stands for. Values are
// cleaned as the domain will clean them, so that the command ID does not
// depend on spelling; the domain's deciders check everything else.
func (r csvRecord) enrolment(id string, defaultGrant *entitlement.Grant) (enrolment, error) {
	var e enrolment
	reg := registry.Register{CitizenID: id, Category: registry.Category(strings.ToLower(r.get(colCategory)))}
	var err error
	if reg.FullName, err = cleanField(r, colFullName, registry.MaxNameRunes); err != nil {
		return e, err
	}
	if reg.DateOfBirth, err = parseDateField(r.get(colDateOfBirth)); err != nil {
		return e, badField(colDateOfBirth, "invalid_date", "%v", err)
	}
	if reg.Sex, err = parseSex(r.get(colSex)); err != nil {
		return e, err
	}
	if reg.Address.Street, err = cleanField(r, colStreet, registry.MaxStreetRunes); err != nil {
		return e, err
	}
	reg.Address.DistrictCode = padCode(r.get(colDistrictCode), 3)
	reg.Address.WardCode = padCode(r.get(colWardCode), 5)
	if reg.HouseholdID, err = cleanField(r, colHouseholdID, registry.MaxHouseholdIDLen); err != nil {
		return e, err
	}
	e.Register = reg
	if e.Account, err = r.account(reg.FullName); err != nil {
		return e, err
	}
	// The method is always recorded in the enrolment, so that "cash" said
	// and "cash" by default are the same record. With an account the
	// default is bank transfer: that is why the account is given (the
	// 2024 cashless campaign).
	switch m := strings.ToLower(r.get(colPaymentMethod)); {
	case m != "":
		e.Method = registry.PaymentMethod(m)
	case e.Account != nil:
		e.Method = registry.BankTransfer
	default:
		e.Method = registry.Cash
	}
	if e.Grant, err = r.grant(defaultGrant); err != nil {
		return e, err
	}
	return e, nil
}

// account reads the bank columns: none, or a bank and an account number;
// the holder defaults to the beneficiary (banks write the name without
// diacritics; the domain compares it so).
func (r csvRecord) account(fullName string) (*registry.LinkBankAccount, error) {
	bank, number := strings.ToUpper(r.get(colBankCode)), r.get(colAccountNumber)
	holder, err := cleanField(r, colAccountHolder, registry.MaxNameRunes)
	if err != nil {
		return nil, err
	}
	switch {
	case bank == "" && number == "" && holder == "":
		return nil, nil
	case bank == "":
		return nil, badField(colBankCode, "required", "is required with an account number (e.g. VCB, BIDV, CTG, VBA)")
	case number == "":
		return nil, badField(colAccountNumber, "required", "is required with a bank code")
	}
	if holder == "" {
		holder = fullName
	}
	return &registry.LinkBankAccount{BankCode: bank, AccountNumber: number, HolderName: holder}, nil
}

// grant reads the entitlement columns, or takes --grant when the line names
// no program.
func (r csvRecord) grant(defaultGrant *entitlement.Grant) (*entitlement.Grant, error) {
	program := strings.ToUpper(r.get(colProgram))
	coef, amount, start := r.get(colCoefficient), r.get(colAmount), r.get(colStartPeriod)
	if program == "" {
		if coef != "" || amount != "" || start != "" {
			return nil, badField(colProgram, "required", "is required with coefficient, amount or start_period")
		}
		if defaultGrant == nil {
			return nil, nil
		}
		g := *defaultGrant // pointers are shared but never written
		return &g, nil
	}
	g := &entitlement.Grant{Program: program}
	if start == "" {
		return nil, badField(colStartPeriod, "required", "is required with a program: the first period owed (YYYY-MM)")
	}
	p, err := parsePeriodField(start)
	if err != nil {
		return nil, badField(colStartPeriod, "invalid_period", "%v", err)
	}
	g.Start = p
	if coef != "" {
		c, err := parseCoefficient(coef)
		if err != nil {
			return nil, badField(colCoefficient, "invalid_coefficient", "%v", err)
		}
		g.Coefficient = &c
	}
	if amount != "" {
		m, err := parseAmountField(amount)
		if err != nil {
			return nil, badField(colAmount, "invalid_amount", "%v", err)
		}
		g.Amount = &m
	}
	return g, nil
}

func cleanField(r csvRecord, c column, maxRunes int) (string, error) {
	return domain.CleanText(columnNames[c], r.get(c), 0, maxRunes)
}

// parseDateField reads YYYY-MM-DD, or DD/MM/YYYY as Vietnamese forms and
// spreadsheets write dates.
func parseDateField(s string) (domain.Date, error) {
	if s == "" {
		return domain.Date{}, errors.New("is required (YYYY-MM-DD or DD/MM/YYYY)")
	}
	if parts := strings.Split(s, "/"); len(parts) == 3 && len(parts[0]) <= 2 && len(parts[1]) <= 2 && len(parts[2]) == 4 {
		s = parts[2] + "-" + leftPad(parts[1], 2) + "-" + leftPad(parts[0], 2)
	}
	d, err := domain.ParseDate(s)
	if err != nil {
		return d, fmt.Errorf("%q is not an existing day written YYYY-MM-DD or DD/MM/YYYY", clipText(s))
	}
	return d, nil
}

// parsePeriodField reads YYYY-MM, or MM/YYYY.
func parsePeriodField(s string) (domain.Period, error) {
	if m, y, ok := strings.Cut(s, "/"); ok && len(m) <= 2 && len(y) == 4 {
		s = y + "-" + leftPad(m, 2)
	}
	p, err := domain.ParsePeriod(s)
	if err != nil {
		return p, fmt.Errorf("%q is not a period written YYYY-MM or MM/YYYY", clipText(s))
	}
	return p, nil
}

// parseSex reads the sex as the card writes it, in English or Vietnamese.
func parseSex(s string) (registry.Sex, error) {
	switch strings.ToLower(norm.NFC.String(s)) {
	case "male", "m", "nam":
		return registry.Male, nil
	case "female", "f", "nữ", "nu":
		return registry.Female, nil
	case "":
		return "", badField(colSex, "required", "is required: male or female (nam, nữ)")
	}
	return "", badField(colSex, "invalid_sex", "%q: want male or female (nam, nữ)", clipText(s))
}

// parseCoefficient reads a coefficient such as 1.5; "1,5" is read the same
// (a decimal comma, as Vietnamese spreadsheets write it).
func parseCoefficient(s string) (decimal.Decimal, error) {
	t := s
	if strings.Count(t, ",") == 1 && !strings.Contains(t, ".") {
		t = strings.Replace(t, ",", ".", 1)
	}
	if t == "" || strings.Count(t, ".") > 1 || strings.Trim(t, "0123456789.") != "" || len(t) > 12 {
		return decimal.Decimal{}, fmt.Errorf("%q: want a number such as 1.5", clipText(s))
	}
	d, err := decimal.NewFromString(t)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%q: want a number such as 1.5", clipText(s))
	}
	return d, nil
}

// parseAmountField reads whole dong: 600000, or with thousands separators
// as spreadsheets write them (600.000, 600,000, 600 000).
func parseAmountField(s string) (domain.Money, error) {
	if groups := splitThousands(s); groups != "" {
		s = groups
	}
	m, err := domain.ParseVND(s)
	if err != nil {
		return m, fmt.Errorf("%q: want whole dong, e.g. 600000", clipText(s))
	}
	return m, nil
}

// splitThousands returns s without its thousands separators if s is
// digits in groups of three after the first, all separated by the same
// one of '.', ',' or ' '; otherwise "".
func splitThousands(s string) string {
	var sep byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == ',' || c == ' ' {
			sep = c
			break
		}
	}
	if sep == 0 {
		return ""
	}
	groups := strings.Split(s, string(sep))
	if len(groups[0]) < 1 || len(groups[0]) > 3 {
		return ""
	}
	for i, g := range groups {
		if strings.Trim(g, "0123456789") != "" || i > 0 && len(g) != 3 {
			return ""
		}
	}
	return strings.Join(groups, "")
}

// padCode restores the leading zeros a spreadsheet drops from a numeric
// code of fixed width (district 001, ward 00004).
func padCode(s string, width int) string {
	if s == "" || len(s) >= width || strings.Trim(s, "0123456789") != "" {
		return s
	}
	return leftPad(s, width)
}

func leftPad(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// outcome is what became of one line.
type outcome int

const (
	outcomeImported outcome = iota + 1
	outcomeUnchanged
	outcomeRejected
	outcomeNotProcessed // the import stopped before the line was done
)

// lineJob is one data line on its way through the import.
type lineJob struct {
	seq       int // order in which the line was read
	line      int // line number in the file, from 1 (the header)
	citizenID string
	enrol     enrolment
	record    importRecord // what the ledger hashes to recognise a re-run
	commandID string

	outcome outcome
	reject  error // why the line was rejected
	fatal   error // why the import must stop
}

// importer writes the lines of one file through the ledger.
type importer struct {
	led          *ledger.Ledger
	store        eventstore.Store
	actor        domain.Actor
	cat          entitlement.Catalogue
	dryRun       bool
	workers      int
	header       *csvHeader
	defaultGrant *entitlement.Grant
	sink         rejectionSink
	prog         *progress
	reason       string // recorded in the metadata, with the line number
	correlation  string // ties together the events of this run
}

// run reads the lines, hands them to the workers and takes the results back
// in file order (so the report is in file order, with a bounded buffer: a
// line is read only when a slot is free, and a slot is freed when its line
// is reported). A failure that is not the line's fault (the store, the
// report file) stops the import.
func (im *importer) run(ctx context.Context, lr *lineReader) (importCounts, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	window := im.workers * importWindowPerWorker
	slots := make(chan struct{}, window)
	jobs := make(chan *lineJob, window)
	results := make(chan *lineJob, window)

	var readErr error
	var reader, workers sync.WaitGroup
	reader.Go(func() {
		defer close(jobs)
		readErr = im.read(ctx, lr, slots, jobs)
	})
	for range im.workers {
		workers.Go(func() {
			for j := range jobs {
				if j.outcome == 0 {
					im.process(ctx, j)
				}
				results <- j
			}
		})
	}
	go func() {
		workers.Wait()
		close(results)
	}()

	var counts importCounts
	var stopErr error
	pending := make(map[int]*lineJob, window)
	next := 0
	for j := range results {
		pending[j.seq] = j
		for {
			j, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-slots
			if err := im.report(j, &counts); err != nil && stopErr == nil {
				stopErr = err
				cancel()
			}
		}
	}
	reader.Wait()
	if stopErr == nil && readErr != nil && !errors.Is(readErr, context.Canceled) {
		stopErr = readErr
	}
	if stopErr == nil && ctx.Err() != nil {
		stopErr = errors.New("interrupted")
	}
	return counts, stopErr
}

// report counts a line in file order, lists it if it was rejected, and says
// whether the import must stop.
func (im *importer) report(j *lineJob, counts *importCounts) error {
	im.prog.add(1, 1)
	switch j.outcome {
	case outcomeImported:
		counts.imported++
	case outcomeUnchanged:
		counts.unchanged++
	case outcomeRejected:
		counts.rejected++
		column, code, reason := describeRejection(j.reject)
		if err := im.sink.reject(j.line, j.citizenID, column, code, reason); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	default:
		counts.notProcessed++
		if j.fatal != nil {
			return fmt.Errorf("line %d: %w", j.line, j.fatal)
		}
	}
	return nil
}

// read reads the data lines, parses them and hands them out. Lines that
// cannot be read into commands go out already rejected, so that the report
// keeps file order.
func (im *importer) read(ctx context.Context, lr *lineReader, slots chan<- struct{}, jobs chan<- *lineJob) error {
	firstLine := make(map[uint64]int32) // citizen ID -> line where it first appears
	fields := make([]string, 0, numColumns)
	for seq := 0; ; {
		text, tooLong, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", lr.line+1, err)
		}
		j := &lineJob{line: lr.line}
		switch {
		case tooLong:
			j.reject = domain.Reject("line_too_long", "", "the line is longer than %d bytes", importMaxLineBytes)
		case !utf8.ValidString(text):
			j.reject = domain.Reject("not_utf8", "", "the line is not UTF-8 text; save the file as \"CSV UTF-8\"")
		default:
			var blank bool
			fields, blank, err = im.parse(j, text, fields, firstLine)
			if blank {
				continue // an empty row, as spreadsheets leave at the end
			}
			j.reject = err
		}
		if j.reject != nil {
			j.outcome = outcomeRejected
		}
		j.seq = seq
		seq++
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		jobs <- j // never blocks: jobs has as many places as there are slots
	}
}

// parse fills j from a line; blank reports an empty row.
func (im *importer) parse(j *lineJob, text string, fields []string, firstLine map[uint64]int32) (_ []string, blank bool, _ error) {
	fields, err := splitCSVLine(fields, text, im.header.delim)
	if err != nil {
		return fields, false, domain.Reject("invalid_csv", "", "%v", err)
	}
	rec := csvRecord{h: im.header, fields: fields}
	if len(fields) != im.header.fields {
		if rec.blank() {
			return fields, true, nil
		}
		return fields, false, domain.Reject("field_count", "",
			"the line has %d fields and the header %d; check for a missing or extra separator (a value holding %q needs quotes)",
			len(fields), im.header.fields, im.header.delim)
	}
	if rec.blank() {
		return fields, true, nil
	}
	j.citizenID = rec.get(colCitizenID)
	id, err := rec.citizenID()
	if err != nil {
		return fields, false, err
	}
	key, _ := strconv.ParseUint(id, 10, 64) // 12 digits: checked
	if first, dup := firstLine[key]; dup {
		return fields, false, domain.Reject("duplicate_in_file", columnNames[colCitizenID],
			"%s is also on line %d; a person is imported once: merge the two lines", id, first)
	}
	firstLine[key] = int32(j.line)
	if j.enrol, err = rec.enrolment(id, im.defaultGrant); err != nil {
		return fields, false, err
	}
	j.record = j.enrol.record()
	if j.commandID, err = j.record.commandID(); err != nil {
		return fields, false, fmt.Errorf("command ID: %w", err)
	}
	return fields, false, nil
}

// process decides one line, and writes it unless this is a dry run.
func (im *importer) process(ctx context.Context, j *lineJob) {
	reg := registry.Env{Today: im.led.Today()}
	ent := entitlement.Env{Catalogue: im.cat, Limits: im.led.Limits()}
	stream := registry.Stream(j.citizenID)
	if im.dryRun {
		b, applied, err := im.loadForDryRun(ctx, stream, j.commandID)
		switch {
		case err != nil:
			im.classify(ctx, j, false, err)
		case applied:
			j.outcome = outcomeUnchanged
		default:
			_, err = j.enrol.decide(b, reg, ent)
			im.classify(ctx, j, false, err)
		}
		return
	}
	req := ledger.Request{
		Actor: im.actor, CommandID: j.commandID, CorrelationID: im.correlation,
		Reason: fmt.Sprintf("%s, line %d", im.reason, j.line),
	}
	res, err := ledger.Handle(ctx, im.led, stream, req, j.record, func(b registry.Beneficiary) ([]domain.Event, error) {
		return j.enrol.decide(b, reg, ent)
	})
	im.classify(ctx, j, res.Replayed, err)
}

// classify sorts a line's result: a rule the line breaks rejects it; a
// failure of the store or an interruption stops the import.
func (im *importer) classify(ctx context.Context, j *lineJob, replayed bool, err error) {
	_, isRule := domain.AsRuleError(err)
	switch {
	case err == nil && replayed:
		j.outcome = outcomeUnchanged
	case err == nil:
		j.outcome = outcomeImported
	case isRule:
		j.outcome, j.reject = outcomeRejected, err
	case errors.Is(err, ledger.ErrTooManyConflicts):
		j.outcome, j.reject = outcomeRejected, domain.Rejectf(domain.Conflict, "busy", "",
			"the record was being changed by someone else at the same time; run the file again")
	case ctx.Err() != nil:
		j.outcome = outcomeNotProcessed
	default:
		j.outcome, j.fatal = outcomeNotProcessed, err
	}
}

// loadForDryRun reads a beneficiary's stream as the ledger would, and
// reports whether a command with this ID was already applied to it (the
// ledger records the command ID in each event's metadata).
func (im *importer) loadForDryRun(ctx context.Context, stream, commandID string) (registry.Beneficiary, bool, error) {
	const page = 1000
	var b registry.Beneficiary
	applied := false
	for from := uint64(0); ; {
		recs, err := im.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Direction: eventstore.Forwards, From: from, Limit: page})
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return b, applied, nil
		}
		if err != nil {
			return b, false, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range recs {
			ev, err := im.led.Codec().Decode(rec.Type, rec.Data)
			if err != nil {
				return b, false, fmt.Errorf("load %s at revision %d: %w", stream, rec.Revision, err)
			}
			b = b.Evolve(ev)
			if !applied && bytes.Contains(rec.Metadata, []byte(commandID)) {
				var m domain.Metadata
				applied = json.Unmarshal(rec.Metadata, &m) == nil && m.CommandID == commandID
			}
		}
		if len(recs) < page {
			return b, applied, nil
		}
		from = recs[len(recs)-1].Revision + 1
		if from > ledger.MaxStreamEvents {
			return b, false, fmt.Errorf("load %s: %w", stream, ledger.ErrStreamTooLong)
		}
	}
}

// describeRejection splits a rejection into the report's column, code and
// reason. The domain names its inputs as the API does; the report names
// the CSV column the office must correct.
func describeRejection(err error) (column, code, reason string) {
	re, ok := domain.AsRuleError(err)
	if !ok {
		return "", "error", err.Error()
	}
	column = re.Field
	switch re.Field {
	case "address.street":
		column = "street"
	case "address.district_code":
		column = "district_code"
	case "address.ward_code":
		column = "ward_code"
	case "holder_name":
		column = "account_holder"
	case "method":
		column = "payment_method"
	}
	return column, re.Code, re.Message
}

// rejectionSink lists rejected lines.
type rejectionSink interface {
	reject(line int, citizenID, column, code, reason string) error
	close() error
}

// newRejectionSink lists rejected lines in the CSV file at path, or, when
// path is empty, on stderr above the progress.
func newRejectionSink(path string, prog *progress) (rejectionSink, error) {
	if path == "" {
		return &stderrSink{prog: prog}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("--report: %w", err)
	}
	s := &csvSink{f: f, buf: bufio.NewWriter(f)}
	s.buf.WriteString("\uFEFF") // so that Excel reads the Vietnamese in it as UTF-8
	s.w = csv.NewWriter(s.buf)
	if err := s.w.Write([]string{"line", "citizen_id", "column", "code", "reason"}); err != nil {
		f.Close()
		return nil, fmt.Errorf("--report: %w", err)
	}
	return s, nil
}

// stderrSink writes one line per rejected line, above the progress bar.
type stderrSink struct{ prog *progress }

func (s *stderrSink) reject(line int, citizenID, column, _, reason string) error {
	msg := fmt.Sprintf("rejected line %d", line)
	if citizenID != "" {
		msg += " (citizen ID " + printable(citizenID, 40) + ")"
	}
	msg += ": "
	if column != "" {
		msg += column + ": "
	}
	msg += oneLine(reason)
	s.prog.println(msg)
	return nil
}

func (s *stderrSink) close() error { return nil }

// csvSink writes the rejected lines to a CSV file.
type csvSink struct {
	f   *os.File
	buf *bufio.Writer
	w   *csv.Writer
}

func (s *csvSink) reject(line int, citizenID, column, code, reason string) error {
	return s.w.Write([]string{strconv.Itoa(line), cell(printable(citizenID, 40)), column, code, cell(oneLine(reason))})
}

func (s *csvSink) close() error {
	s.w.Flush()
	err := s.w.Error()
	if err == nil {
		err = s.buf.Flush()
	}
	if err == nil {
		err = s.f.Sync()
	}
	return errors.Join(err, s.f.Close())
}

// cell keeps a spreadsheet from running a value as a formula: text that
// came from the file is quoted with an apostrophe if it starts like one.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// printable keeps the printable characters of s, at most max of them: for
// names taken from a file into messages and metadata.
func printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func clipText(s string) string { return printable(s, 40) }

// sameFile reports whether two paths name the same existing file.
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
