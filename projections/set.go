package projections

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections/audit"
)

// ReadModels returns the read models, in the order they are applied.
func ReadModels() []Projection {
	return []Projection{registryProjection{}, balancesProjection{}, payoutsProjection{}, districtsProjection{}, booksProjection{}}
}

// ErrNotFound: no such beneficiary or run (as of the read models' position).
var ErrNotFound = errors.New("not found")

// SetOptions configure a Set.
type SetOptions struct {
	// Runner options; Decoder is always the codec's.
	Runner Options
	// Limits of the entitlement rules, for the accrued amounts of
	// balances. Zero means entitlement.DefaultLimits().
	Limits entitlement.Limits
}

// Set is the query side of ansinh: the read models kept by one Runner, and
// every query the API serves. Each query reads one consistent snapshot of
// all read models and says which position of the log it reflects.
type Set struct {
	r     *Runner
	db    *DB
	ownDB bool
	lim   entitlement.Limits
}

// NewSet opens the read models stored in db. Call Run to keep them up to
// date; they answer queries from their stored state at once, without
// replaying the log.
func NewSet(db *DB, store eventstore.Store, codec *domain.Codec, opts SetOptions) (*Set, error) {
	ro := opts.Runner
	ro.Decoder = NewDecoder(codec)
	r, err := NewRunner(db, store, ReadModels(), ro)
	if err != nil {
		return nil, err
	}
	return newSet(r, db, false, opts.Limits), nil
}

func newSet(r *Runner, db *DB, own bool, lim entitlement.Limits) *Set {
	if lim.AmountCap.Currency == "" {
		lim = entitlement.DefaultLimits()
	}
	return &Set{r: r, db: db, ownDB: own, lim: lim}
}

// AsOf computes the read models as the ledger knew them at a past position
// or instant, by replaying the log up to there into memory. It does not
// touch the live read models. Close the result when done: it holds the
// whole replayed state in memory.
func AsOf(ctx context.Context, store eventstore.Store, codec *domain.Codec, until Until, opts SetOptions) (*Set, error) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		return nil, err
	}
	ro := opts.Runner
	ro.Decoder = NewDecoder(codec)
	r, err := Replay(ctx, store, db, ReadModels(), ro, until)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("projections: as of %+v: %w", until, err)
	}
	return newSet(r, db, true, opts.Limits), nil
}

// Close releases a Set made by AsOf; for one made by NewSet it does nothing
// (the caller owns the database).
func (s *Set) Close() error {
	if s.ownDB {
		return s.db.Close()
	}
	return nil
}

// Run keeps the read models up to date until ctx ends (see Runner.Run).
func (s *Set) Run(ctx context.Context) error { return s.r.Run(ctx) }

// Runner gives access to rebuilds and the details of each projection.
func (s *Set) Runner() *Runner { return s.r }

// Position, WaitFor and Lag: see Runner. A Set is the API's Waiter.
func (s *Set) Position() eventstore.Position { return s.r.Position() }

func (s *Set) WaitFor(ctx context.Context, pos eventstore.Position) error {
	return s.r.WaitFor(ctx, pos)
}

func (s *Set) Lag(ctx context.Context) (Lag, error) { return s.r.Lag(ctx) }

// view runs f on one snapshot and returns the position it reflects: the
// lowest of the projections f read.
func (s *Set) view(f func(v *View) error, names ...string) (eventstore.Position, error) {
	v := s.r.View()
	defer v.Close()
	var pos eventstore.Position
	for i, n := range names {
		p, err := v.Position(n)
		if err != nil {
			return pos, err
		}
		if i == 0 || p.Compare(pos) < 0 {
			pos = p
		}
	}
	return pos, f(v)
}

// Beneficiary returns one person's record with their entitlements, the
// account number masked. ErrNotFound if they are not registered.
func (s *Set) Beneficiary(ctx context.Context, citizenID string) (Beneficiary, eventstore.Position, error) {
	var out Beneficiary
	pos, err := s.view(func(v *View) error {
		b, found, err := beneficiary(v.Reader(registryName), citizenID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("beneficiary %s: %w", citizenID, ErrNotFound)
		}
		out = *b
		return nil
	}, registryName)
	return out, pos, err
}

// SearchResult is a page of a search and the position it reflects.
type SearchResult struct {
	SearchPage
	Position eventstore.Position `json:"position"`
}

// Search finds beneficiaries by name (with or without diacritics), citizen
// ID, district, ward, category, status and bank account.
func (s *Set) Search(ctx context.Context, q SearchQuery) (SearchResult, error) {
	var out SearchResult
	pos, err := s.view(func(v *View) (err error) {
		out.SearchPage, err = search(v.Reader(registryName), q)
		return err
	}, registryName)
	out.Position = pos
	return out, err
}

// BalanceResult is a balance and the position it reflects.
type BalanceResult struct {
	Balance
	Position eventstore.Position `json:"position"`
}

// Balance says where a beneficiary stands, with what is accrued computed
// through the given period (normally the current one).
func (s *Set) Balance(ctx context.Context, citizenID string, through domain.Period) (out BalanceResult, err error) {
	if through.IsZero() {
		return out, errors.New("balance: a period to compute through is required")
	}
	v := s.r.View()
	defer v.Close()
	reg, bal := v.Reader(registryName), v.Reader(balancesName)
	// One iterator over the view's snapshot for every read of the query
	// (two checkpoints, the catalogue, the person's record and balance
	// records): each point Get built an iterator stack of its own, and
	// five of them were a fifth of a balance's CPU.
	it, err := reg.r.NewIter(nil)
	if err != nil {
		return out, fmt.Errorf("projections: balance of %s: %w", citizenID, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("projections: balance of %s: %w", citizenID, cerr)
		}
	}()
	for i, rd := range []*Reader{reg, bal} {
		p, err := rd.Position() // from the runner, or read through the snapshot
		if err != nil {
			return out, err
		}
		if i == 0 || p.Compare(out.Position) < 0 {
			out.Position = p
		}
	}
	b, found, err := balance(it, reg, bal, citizenID, through, s.lim)
	if err != nil {
		return out, err
	}
	if !found {
		return out, fmt.Errorf("beneficiary %s: %w", citizenID, ErrNotFound)
	}
	out.Balance = b
	return out, nil
}

// HistoryResult is a page of a beneficiary's payments and its position.
type HistoryResult struct {
	HistoryPage
	Position eventstore.Position `json:"position"`
}

// History lists a beneficiary's payment attempts, each with its status and
// bank or cash details (masked), by program and period.
func (s *Set) History(ctx context.Context, citizenID, cursor string, limit int) (HistoryResult, error) {
	var out HistoryResult
	pos, err := s.view(func(v *View) (err error) {
		out.HistoryPage, err = paymentHistory(v.Reader(payoutsName), citizenID, cursor, limit)
		return err
	}, payoutsName)
	out.Position = pos
	return out, err
}

// PayoutRun returns a run's summary. ErrNotFound if there is no such run.
func (s *Set) PayoutRun(ctx context.Context, runID string) (PayoutRun, eventstore.Position, error) {
	var out PayoutRun
	pos, err := s.view(func(v *View) error {
		r, found, err := payoutRun(v.Reader(payoutsName), runID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("run %s: %w", runID, ErrNotFound)
		}
		out = *r
		return nil
	}, payoutsName)
	return out, pos, err
}

// RunPaymentsResult is a page of a run's payments and its position.
type RunPaymentsResult struct {
	RunPaymentsPage
	Position eventstore.Position `json:"position"`
}

// RunPayments lists a run's payments with their lines.
func (s *Set) RunPayments(ctx context.Context, runID, cursor string, limit int) (RunPaymentsResult, error) {
	var out RunPaymentsResult
	pos, err := s.view(func(v *View) (err error) {
		out.RunPaymentsPage, err = runPayments(v.Reader(payoutsName), runID, cursor, limit)
		return err
	}, payoutsName)
	out.Position = pos
	return out, err
}

// DistrictReportResult is the report and its position.
type DistrictReportResult struct {
	DistrictReport
	Position eventstore.Position `json:"position"`
}

// DistrictReport returns beneficiaries, bank share and payments per
// district and period, with the city totals.
func (s *Set) DistrictReport(ctx context.Context, q ReportQuery) (DistrictReportResult, error) {
	var out DistrictReportResult
	pos, err := s.view(func(v *View) (err error) {
		out.DistrictReport, err = districtReport(v.Reader(districtsName), q)
		return err
	}, districtsName)
	out.Position = pos
	return out, err
}

// TrialBalanceResult is the trial balance and its position.
type TrialBalanceResult struct {
	TrialBalance
	Position eventstore.Position `json:"position"`
}

// TrialBalance returns the double-entry accounts; they must net to zero.
func (s *Set) TrialBalance(ctx context.Context) (TrialBalanceResult, error) {
	var out TrialBalanceResult
	pos, err := s.view(func(v *View) (err error) {
		out.TrialBalance, err = trialBalance(v.Reader(booksName))
		return err
	}, booksName)
	out.Position = pos
	return out, err
}

// CitizenIDs implements ledger.Roster: registered citizen IDs after
// `after`, ascending, of the given districts (every district when empty).
func (s *Set) CitizenIDs(ctx context.Context, districts []string, after string, limit int) ([]string, error) {
	var out []string
	_, err := s.view(func(v *View) (err error) {
		out, err = rosterPage(v.Reader(registryName), districts, after, limit)
		return err
	}, registryName)
	return out, err
}

// AuditReport is what Verify found.
type AuditReport struct {
	// Chain: the log against its seals.
	Chain audit.Report `json:"chain"`
	// TrialBalance of the live books; Balanced must be true.
	TrialBalance TrialBalance `json:"trial_balance"`
	// Projections: each live read model against a fresh replay of the log
	// up to the same position.
	Projections []ProjectionCheck `json:"projections"`
}

// ProjectionCheck compares one live read model with a fresh replay.
type ProjectionCheck struct {
	Name     string              `json:"name"`
	Position eventstore.Position `json:"position"`
	Matches  bool                `json:"matches"`
	// Difference names the first key that differs, when one does.
	Difference string `json:"difference,omitempty"`
}

// OK reports whether everything checked out.
func (r *AuditReport) OK() bool {
	if !r.Chain.OK() || !r.TrialBalance.Balanced {
		return false
	}
	for _, p := range r.Projections {
		if !p.Matches {
			return false
		}
	}
	return true
}

// Verify is the auditor's check of everything: it re-reads the log and
// checks every seal and signature (audit.Verify), that the trial balance
// nets to zero, and that every read model equals a fresh replay of the log
// up to the position it has reached. The error is for failures to read;
// findings are in the report.
func (s *Set) Verify(ctx context.Context, store eventstore.Store, codec *domain.Codec, trusted []ed25519.PublicKey, opts audit.VerifyOptions) (AuditReport, error) {
	var rep AuditReport
	var err error
	if rep.Chain, err = audit.Verify(ctx, store, trusted, opts); err != nil {
		return rep, err
	}
	v := s.r.View()
	defer v.Close()
	if rep.TrialBalance, err = trialBalance(v.Reader(booksName)); err != nil {
		return rep, err
	}
	// Replay once per distinct position (normally one: the read models
	// commit together).
	byPos := map[eventstore.Position][]Projection{}
	var order []eventstore.Position
	for _, p := range ReadModels() {
		pos, err := v.Position(p.Name())
		if err != nil {
			return rep, err
		}
		if byPos[pos] == nil {
			order = append(order, pos)
		}
		byPos[pos] = append(byPos[pos], p)
	}
	for _, pos := range order {
		checks, err := s.compareWithReplay(ctx, store, codec, v, pos, byPos[pos])
		if err != nil {
			return rep, err
		}
		rep.Projections = append(rep.Projections, checks...)
	}
	return rep, nil
}

func (s *Set) compareWithReplay(ctx context.Context, store eventstore.Store, codec *domain.Codec, live *View, pos eventstore.Position, projs []Projection) ([]ProjectionCheck, error) {
	db, err := OpenDB("", DBOptions{InMemory: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ro := s.r.opts
	ro.Decoder = NewDecoder(codec)
	until := UntilPosition(pos)
	fresh, err := NewRunner(db, store, projs, ro)
	if err != nil {
		return nil, err
	}
	members := fresh.liveMembers()
	if !pos.IsStart() { // at the start nothing is applied: the replay stays empty
		if err := fresh.replay(ctx, members, until, false); err != nil {
			return nil, fmt.Errorf("projections: verify: replay: %w", err)
		}
	}
	fv := fresh.View()
	defer fv.Close()
	var out []ProjectionCheck
	for i, p := range projs {
		c := ProjectionCheck{Name: p.Name(), Position: pos}
		if f := members[i].failure; f != nil {
			// The live one applied these events; a replay cannot.
			c.Difference = "a fresh replay stops: " + f.Error()
			out = append(out, c)
			continue
		}
		if v := s.r.storedVersion(p.Name()); v != p.Version() {
			// Served after an upgrade (Upgrader) until its rebuild has
			// switched: read right, but not written byte for byte as a
			// replay of this version writes it.
			c.Difference = fmt.Sprintf("stored by version %d, which version %d reads until its rebuild has switched: rebuild it to compare", v, p.Version())
			out = append(out, c)
			continue
		}
		diff, err := firstDifference(live.Reader(p.Name()), fv.Reader(p.Name()))
		if err != nil {
			return nil, err
		}
		c.Matches, c.Difference = diff == "", diff
		out = append(out, c)
	}
	return out, nil
}

// firstDifference walks two readers' keyspaces in step and describes the
// first key whose presence or value differs; "" when they are equal.
func firstDifference(a, b *Reader) (string, error) {
	ia, err := a.iter()
	if err != nil {
		return "", err
	}
	defer ia.Close()
	ib, err := b.iter()
	if err != nil {
		return "", err
	}
	defer ib.Close()
	okA, okB := ia.First(), ib.First()
	for okA || okB {
		var ka, kb []byte
		if okA {
			ka = ia.Key()[len(a.prefix):]
		}
		if okB {
			kb = ib.Key()[len(b.prefix):]
		}
		switch {
		case !okB || (okA && bytes.Compare(ka, kb) < 0):
			return fmt.Sprintf("key %q is in the live read model but not in the replay", ka), nil
		case !okA || bytes.Compare(ka, kb) > 0:
			return fmt.Sprintf("key %q is in the replay but not in the live read model", kb), nil
		}
		va, err := ia.ValueAndErr()
		if err != nil {
			return "", err
		}
		vb, err := ib.ValueAndErr()
		if err != nil {
			return "", err
		}
		if !bytes.Equal(va, vb) {
			return fmt.Sprintf("key %q differs: live %q, replay %q", ka, clipBytes(va), clipBytes(vb)), nil
		}
		okA, okB = ia.Next(), ib.Next()
	}
	if err := errors.Join(ia.Error(), ib.Error()); err != nil {
		return "", err
	}
	return "", nil
}

func clipBytes(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
