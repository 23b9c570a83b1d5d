package disbursement

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ansinh/ansinh/domain"
)

// RunStatus is where a payout run stands:
//
//	opened -> calculated -> approved -> released -> closed
//	   \__________\______________\-> cancelled (only before release)
type RunStatus string

const (
	RunOpened     RunStatus = "opened"
	RunCalculated RunStatus = "calculated"
	RunApproved   RunStatus = "approved"
	RunReleased   RunStatus = "released"
	RunClosed     RunStatus = "closed"
	RunCancelled  RunStatus = "cancelled"
)

// Bounds on a run's scope. A run pays at most a few months together (Long
// Bien paid January and February 2024 at once); arrears reach back at most
// two years, so that a calculation reads a bounded number of streams per
// beneficiary.
const (
	MaxRunPeriods    = 12
	MaxRunPrograms   = 20
	MaxRunDistricts  = 30 // Hanoi has 30 district-level units
	MaxArrearsMonths = 24
	MaxNoteRunes     = 500
)

// Scope is what a run pays: periods, programs, districts.
type Scope struct {
	Periods  []domain.Period `json:"periods"`
	Programs []string        `json:"programs"`
	// Districts limits the run to beneficiaries living in these districts;
	// empty means the whole city.
	Districts []string `json:"districts,omitempty"`
	// ArrearsFrom, when set, adds every period from it up to the last run
	// period: obligations there that are still owed (never paid, or failed)
	// are paid as arrears. It is explicit because the ledger has no record of
	// what was paid before it existed: a default look-back would pay those
	// months again.
	ArrearsFrom domain.Period `json:"arrears_from,omitzero"`
	// CashOnly pays every payment of the run in cash (a reissue run for
	// failed transfers).
	CashOnly bool `json:"cash_only,omitempty"`
}

// Covers reports whether the run pays obligations of program prog for
// period p.
func (s Scope) Covers(prog string, p domain.Period) bool {
	if !slices.Contains(s.Programs, prog) {
		return false
	}
	if slices.Contains(s.Periods, p) {
		return true
	}
	return !s.ArrearsFrom.IsZero() && !p.Before(s.ArrearsFrom) && !p.After(s.Last())
}

// AllPeriods lists every period the run may pay, arrears first, in order.
func (s Scope) AllPeriods() []domain.Period {
	var out []domain.Period
	if !s.ArrearsFrom.IsZero() {
		for p := s.ArrearsFrom; !p.After(s.Last()); p = p.Next() {
			out = append(out, p)
		}
	}
	for _, p := range s.Periods {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, domain.Period.Compare)
	return out
}

// Last is the latest run period.
func (s Scope) Last() domain.Period {
	var last domain.Period
	for _, p := range s.Periods {
		if last.IsZero() || p.After(last) {
			last = p
		}
	}
	return last
}

func (s Scope) validate() (Scope, error) {
	if len(s.Periods) == 0 || len(s.Periods) > MaxRunPeriods {
		return s, domain.Reject("invalid_periods", "periods", "must list 1 to %d periods", MaxRunPeriods)
	}
	if len(s.Programs) == 0 || len(s.Programs) > MaxRunPrograms {
		return s, domain.Reject("invalid_programs", "programs", "must list 1 to %d programs", MaxRunPrograms)
	}
	if len(s.Districts) > MaxRunDistricts {
		return s, domain.Reject("invalid_districts", "districts", "may list at most %d districts", MaxRunDistricts)
	}
	s.Periods = slices.Clone(s.Periods)
	for i, p := range s.Periods {
		if p.IsZero() {
			return s, domain.Reject("invalid_periods", fmt.Sprintf("periods[%d]", i), "is not a period")
		}
	}
	slices.SortFunc(s.Periods, domain.Period.Compare)
	if len(slices.Compact(slices.Clone(s.Periods))) != len(s.Periods) {
		return s, domain.Reject("invalid_periods", "periods", "lists a period twice")
	}
	s.Programs = slices.Sorted(slices.Values(s.Programs))
	for i, p := range s.Programs {
		if err := ValidateProgramCode(fmt.Sprintf("programs[%d]", i), p); err != nil {
			return s, err
		}
		if i > 0 && s.Programs[i-1] == p {
			return s, domain.Reject("invalid_programs", "programs", "lists %s twice", p)
		}
	}
	s.Districts = slices.Sorted(slices.Values(s.Districts))
	for i, d := range s.Districts {
		if err := validateCode(fmt.Sprintf("districts[%d]", i), d, MaxUnitCodeBytes); err != nil {
			return s, err
		}
		if i > 0 && s.Districts[i-1] == d {
			return s, domain.Reject("invalid_districts", "districts", "lists %s twice", d)
		}
	}
	if !s.ArrearsFrom.IsZero() {
		first := s.Periods[0]
		if !s.ArrearsFrom.Before(first) {
			return s, domain.Reject("invalid_arrears", "arrears_from", "must be before the first run period %s", first)
		}
		if s.ArrearsFrom.MonthsUntil(first)-1 > MaxArrearsMonths {
			return s, domain.Reject("invalid_arrears", "arrears_from", "may reach back at most %d months before %s", MaxArrearsMonths, first)
		}
	}
	return s, nil
}

func (s Scope) equal(o Scope) bool {
	return slices.Equal(s.Periods, o.Periods) && slices.Equal(s.Programs, o.Programs) &&
		slices.Equal(s.Districts, o.Districts) && s.ArrearsFrom == o.ArrearsFrom && s.CashOnly == o.CashOnly
}

// Budget is the envelope a run must fit: at most so many payments and so
// much money (zero values mean no limit). Approval checks it.
type Budget struct {
	MaxPayments int           `json:"max_payments,omitempty"`
	MaxAmount   *domain.Money `json:"max_amount,omitempty"`
}

func (b Budget) validate() error {
	if b.MaxPayments < 0 {
		return domain.Reject("invalid_budget", "budget.max_payments", "must not be negative")
	}
	if b.MaxAmount != nil {
		m := *b.MaxAmount
		if m.Currency != domain.VND || !m.IsWhole() || !m.IsPositive() || m.Amount.GreaterThanOrEqual(domain.VNDAmount(domain.MaxAmountDong).Amount) {
			return domain.Reject("invalid_budget", "budget.max_amount", "must be a positive whole number of dong below %d", int64(domain.MaxAmountDong))
		}
	}
	return nil
}

func (b Budget) equal(o Budget) bool {
	if b.MaxPayments != o.MaxPayments || (b.MaxAmount == nil) != (o.MaxAmount == nil) {
		return false
	}
	return b.MaxAmount == nil || b.MaxAmount.Equal(*o.MaxAmount)
}

// RunLine is one obligation attempt as the run records it.
type RunLine struct {
	Obligation ObligationKey `json:"obligation"`
	Attempt    int           `json:"attempt"`
	Gross      domain.Money  `json:"gross"`
	Net        domain.Money  `json:"net"`
}

// Problem is a beneficiary a calculation could not pay, and why (no usable
// payee, entitlements that do not compute). It is recorded in the run, never
// dropped silently; once the data is fixed, a later run pays them.
type Problem struct {
	CitizenID string `json:"citizen_id"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// RunPayment is one transfer or cash handout of a run: one payee, one
// destination, the lines it pays. Lines of one payee may come from several
// beneficiaries (a guardian for two children) and so from several pages.
type RunPayment struct {
	PaymentID string    `json:"payment_id"`
	Payee     Payee     `json:"payee"`
	Lines     []RunLine `json:"lines"`
}

// Net is the amount handed over.
func (p RunPayment) Net() domain.Money {
	t := domain.ZeroVND()
	for _, l := range p.Lines {
		t = t.Add(l.Net)
	}
	return t
}

// Run events, in the run's stream (run-<runID>).
type (
	PayoutRunOpened struct {
		RunID    string `json:"run_id"`
		Scope    Scope  `json:"scope"`
		Budget   Budget `json:"budget"`
		Note     string `json:"note,omitempty"`
		OpenedBy string `json:"opened_by"`
	}
	// PayoutRunPageStarted records which beneficiaries a page calculates,
	// before any of their obligations is claimed. A calculation resumed
	// after a crash redoes exactly these beneficiaries, whatever the roster
	// says by then, so no claim of this run is left out of its record.
	PayoutRunPageStarted struct {
		RunID      string   `json:"run_id"`
		Page       int      `json:"page"`
		After      string   `json:"after"` // the cursor before the page
		CitizenIDs []string `json:"citizen_ids"`
		By         string   `json:"by"` // who calculates it: four eyes covers every calculator
	}
	// PayoutRunPaymentsCalculated records one page of the calculation (in
	// parts when the page is too big for one event): the lines this run
	// claimed, grouped by payment, and the cursor after the page.
	PayoutRunPaymentsCalculated struct {
		RunID         string       `json:"run_id"`
		Page          int          `json:"page"`
		Part          int          `json:"part"`
		Cursor        string       `json:"cursor"`                  // last citizen ID of the page
		Beneficiaries int          `json:"beneficiaries,omitempty"` // in the page, on part 0
		Skipped       int          `json:"skipped,omitempty"`       // lines not claimed (paid or in another run), on part 0
		Problems      []Problem    `json:"problems,omitempty"`      // beneficiaries not paid, on part 0
		Payments      []RunPayment `json:"payments"`
	}
	PayoutRunCalculated struct {
		RunID        string       `json:"run_id"`
		CalculatedBy string       `json:"calculated_by"`
		Payments     int          `json:"payments"`
		Lines        int          `json:"lines"`
		Gross        domain.Money `json:"gross"`
		Net          domain.Money `json:"net"`
	}
	PayoutRunApproved struct {
		RunID      string       `json:"run_id"`
		ApprovedBy string       `json:"approved_by"`
		Payments   int          `json:"payments"`
		Net        domain.Money `json:"net"`
	}
	PayoutRunReleased struct {
		RunID      string       `json:"run_id"`
		ReleasedBy string       `json:"released_by"`
		Payments   int          `json:"payments"`
		Net        domain.Money `json:"net"`
	}
	PayoutRunCancelled struct {
		RunID       string `json:"run_id"`
		CancelledBy string `json:"cancelled_by"`
		Reason      string `json:"reason"`
	}
	PayoutRunClosed struct {
		RunID    string `json:"run_id"`
		ClosedBy string `json:"closed_by"`
	}
	// PaymentsReconciled marks payments of the run as matched by a bank
	// statement, so that a later statement contradicting them is refused.
	PaymentsReconciled struct {
		RunID          string              `json:"run_id"`
		Reconciliation string              `json:"reconciliation_id"`
		Payments       []ReconciledPayment `json:"payments"`
	}
)

// ReconciledPayment is what a statement said about a matched payment.
type ReconciledPayment struct {
	PaymentID   string       `json:"payment_id"`
	Amount      domain.Money `json:"amount"`
	Transaction string       `json:"bank_transaction"`
}

func (PayoutRunOpened) EventType() string             { return "PayoutRunOpened.v1" }
func (PayoutRunPageStarted) EventType() string        { return "PayoutRunPageStarted.v1" }
func (PayoutRunPaymentsCalculated) EventType() string { return "PayoutRunPaymentsCalculated.v1" }
func (PayoutRunCalculated) EventType() string         { return "PayoutRunCalculated.v1" }
func (PayoutRunApproved) EventType() string           { return "PayoutRunApproved.v1" }
func (PayoutRunReleased) EventType() string           { return "PayoutRunReleased.v1" }
func (PayoutRunCancelled) EventType() string          { return "PayoutRunCancelled.v1" }
func (PayoutRunClosed) EventType() string             { return "PayoutRunClosed.v1" }
func (PaymentsReconciled) EventType() string          { return "PaymentsReconciled.v1" }

// Run is the state of a run stream.
type Run struct {
	ID           string
	Status       RunStatus // "" before it is opened
	Scope        Scope
	Budget       Budget
	Note         string
	OpenedBy     string
	CalculatedBy string
	ApprovedBy   string
	ReleasedBy   string
	CancelledBy  string
	Pages        int
	Cursor       string // last citizen ID calculated; "" before the first page
	// Pending is the page started and not yet recorded (a crash between).
	Pending *PayoutRunPageStarted
	// Calculators are the users who started pages or completed the
	// calculation; none of them may approve.
	Calculators                   []string
	Beneficiaries, Skipped, Lines int
	Problems                      []Problem
	Gross, Net                    domain.Money
	// Payments by ID, and their IDs in the order first recorded (the order
	// of the bank file and the cash lists).
	Payments   map[string]*RunPayment
	PaymentIDs []string
	Reconciled map[string]ReconciledPayment
}

// Evolve returns the run after e. The maps are shared with earlier states,
// unlike the other aggregates: a run of 300,000 payments is folded once per
// command and never kept in several versions.
func (r Run) Evolve(e domain.Event) Run {
	switch e := e.(type) {
	case PayoutRunOpened:
		r = Run{ID: e.RunID, Status: RunOpened, Scope: e.Scope, Budget: e.Budget, Note: e.Note, OpenedBy: e.OpenedBy,
			Gross: domain.ZeroVND(), Net: domain.ZeroVND(), Payments: map[string]*RunPayment{}, Reconciled: map[string]ReconciledPayment{}}
	case PayoutRunPageStarted:
		r.Pending = &e
		r.Calculators = addUser(r.Calculators, e.By)
	case PayoutRunPaymentsCalculated:
		if r.Pending != nil && r.Pending.Page == e.Page {
			r.Pending = nil
		}
		if e.Part == 0 {
			r.Pages = e.Page
			r.Beneficiaries += e.Beneficiaries
			r.Skipped += e.Skipped
			r.Problems = append(r.Problems, e.Problems...)
		}
		r.Cursor = e.Cursor
		for _, p := range e.Payments {
			have, ok := r.Payments[p.PaymentID]
			if !ok {
				have = &RunPayment{PaymentID: p.PaymentID, Payee: p.Payee}
				r.Payments[p.PaymentID] = have
				r.PaymentIDs = append(r.PaymentIDs, p.PaymentID)
			}
			have.Lines = append(have.Lines, p.Lines...)
			for _, l := range p.Lines {
				r.Lines++
				r.Gross = r.Gross.Add(l.Gross)
				r.Net = r.Net.Add(l.Net)
			}
		}
	case PayoutRunCalculated:
		r.Status, r.CalculatedBy = RunCalculated, e.CalculatedBy
		r.Calculators = addUser(r.Calculators, e.CalculatedBy)
	case PayoutRunApproved:
		r.Status, r.ApprovedBy = RunApproved, e.ApprovedBy
	case PayoutRunReleased:
		r.Status, r.ReleasedBy = RunReleased, e.ReleasedBy
	case PayoutRunCancelled:
		r.Status, r.CancelledBy = RunCancelled, e.CancelledBy
	case PayoutRunClosed:
		r.Status = RunClosed
	case PaymentsReconciled:
		for _, p := range e.Payments {
			r.Reconciled[p.PaymentID] = p
		}
	}
	return r
}

func addUser(users []string, u string) []string {
	if u == "" || slices.Contains(users, u) {
		return users
	}
	return append(slices.Clip(users), u)
}

// Exists reports whether the run was opened.
func (r Run) Exists() bool { return r.Status != "" }

// OpenRun is the command that opens a run.
type OpenRun struct {
	RunID  string
	Scope  Scope
	Budget Budget
	Note   string
}

// Roles that may manage runs, approve them, and answer for the bank. Four
// eyes compares users; roles keep registrars, auditors and the service itself
// out of money decisions.
func canManage(r domain.Role) bool  { return r == domain.RoleFinanceOfficer || r == domain.RoleAdmin }
func canApprove(r domain.Role) bool { return r == domain.RoleApprover || r == domain.RoleAdmin }

// CanRecordSettlement reports whether an actor may record the bank's
// answers: finance staff, or the service itself for an automated bank feed.
func CanRecordSettlement(r domain.Role) bool { return canManage(r) || r == domain.RoleSystem }

func forbidRole(a domain.Actor, what string) error {
	return domain.Rejectf(domain.Forbidden, "role_forbidden", "", "a %s may not %s", a.Role, what)
}

func checkActor(a domain.Actor) error {
	if a.UserID == "" {
		return domain.Rejectf(domain.Forbidden, "no_actor", "", "the command has no user")
	}
	return nil
}

// Open decides OpenRun. Re-sending the same command is a read (nil, nil);
// the same run ID with other content is a Conflict.
func (r Run) Open(cmd OpenRun, by domain.Actor) ([]domain.Event, error) {
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canManage(by.Role) {
		return nil, forbidRole(by, "open a payout run")
	}
	if err := ValidateID("run_id", cmd.RunID); err != nil {
		return nil, err
	}
	scope, err := cmd.Scope.validate()
	if err != nil {
		return nil, err
	}
	if err := cmd.Budget.validate(); err != nil {
		return nil, err
	}
	note, err := domain.CleanText("note", cmd.Note, 0, MaxNoteRunes)
	if err != nil {
		return nil, err
	}
	if r.Exists() {
		if r.Scope.equal(scope) && r.Budget.equal(cmd.Budget) && r.Note == note {
			return nil, nil
		}
		return nil, domain.Rejectf(domain.Conflict, "run_exists", "run_id", "run %s already exists with another scope, budget or note", cmd.RunID)
	}
	return []domain.Event{PayoutRunOpened{RunID: cmd.RunID, Scope: scope, Budget: cmd.Budget, Note: note, OpenedBy: by.UserID}}, nil
}

func (r Run) mustExist() error {
	if !r.Exists() {
		return domain.Rejectf(domain.NotFound, "run_not_found", "run_id", "no payout run %s", r.ID)
	}
	return nil
}

// CanCalculate checks that a calculation page may be recorded.
func (r Run) CanCalculate(by domain.Actor) error {
	if err := r.mustExist(); err != nil {
		return err
	}
	if err := checkActor(by); err != nil {
		return err
	}
	if !canManage(by.Role) {
		return forbidRole(by, "calculate a payout run")
	}
	if r.Status != RunOpened {
		return domain.Rejectf(domain.Conflict, "not_open", "run_id", "run %s is %s; only an opened run is calculated", r.ID, r.Status)
	}
	return nil
}

// CompleteCalculation decides the end of the calculation. Nothing to do
// when it is already calculated (a resent command).
func (r Run) CompleteCalculation(by domain.Actor) ([]domain.Event, error) {
	switch r.Status {
	case RunCalculated, RunApproved, RunReleased, RunClosed:
		return nil, nil
	}
	if err := r.CanCalculate(by); err != nil {
		return nil, err
	}
	return []domain.Event{PayoutRunCalculated{RunID: r.ID, CalculatedBy: by.UserID, Payments: len(r.Payments), Lines: r.Lines, Gross: r.Gross, Net: r.Net}}, nil
}

// Approve decides approval: by another user than the one who opened and the
// one who calculated the run, within the budget.
func (r Run) Approve(by domain.Actor) ([]domain.Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canApprove(by.Role) {
		return nil, forbidRole(by, "approve a payout run")
	}
	switch r.Status {
	case RunCalculated:
	case RunApproved, RunReleased, RunClosed:
		if r.ApprovedBy == by.UserID {
			return nil, nil // a resent approval
		}
		return nil, domain.Rejectf(domain.Conflict, "already_approved", "run_id", "run %s was already approved by %s", r.ID, r.ApprovedBy)
	default:
		return nil, domain.Rejectf(domain.Conflict, "not_calculated", "run_id", "run %s is %s; only a calculated run is approved", r.ID, r.Status)
	}
	if by.UserID == r.OpenedBy || slices.Contains(r.Calculators, by.UserID) {
		return nil, domain.Rejectf(domain.Forbidden, "self_approval", "", "run %s was opened by %s and calculated by %s; another person must approve it",
			r.ID, r.OpenedBy, strings.Join(r.Calculators, ", "))
	}
	if b := r.Budget; b.MaxPayments > 0 && len(r.Payments) > b.MaxPayments {
		return nil, domain.Reject("over_budget", "budget.max_payments", "run %s has %d payments, the budget allows %d", r.ID, len(r.Payments), b.MaxPayments)
	}
	if b := r.Budget; b.MaxAmount != nil && r.Net.Cmp(*b.MaxAmount) > 0 {
		return nil, domain.Reject("over_budget", "budget.max_amount", "run %s pays %s, the budget allows %s", r.ID, r.Net, *b.MaxAmount)
	}
	return []domain.Event{PayoutRunApproved{RunID: r.ID, ApprovedBy: by.UserID, Payments: len(r.Payments), Net: r.Net}}, nil
}

// Release decides release to the bank. Nothing to do when already released
// (the ledger then re-drives the release of the payments, which is
// idempotent).
func (r Run) Release(by domain.Actor) ([]domain.Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canManage(by.Role) {
		return nil, forbidRole(by, "release a payout run")
	}
	switch r.Status {
	case RunApproved:
		return []domain.Event{PayoutRunReleased{RunID: r.ID, ReleasedBy: by.UserID, Payments: len(r.Payments), Net: r.Net}}, nil
	case RunReleased:
		return nil, nil
	}
	return nil, domain.Rejectf(domain.Conflict, "not_approved", "run_id", "run %s is %s; only an approved run is released", r.ID, r.Status)
}

// Cancel decides cancellation, allowed until release. Nothing to do when
// already cancelled (the ledger then re-drives the cancellation of the
// payments).
func (r Run) Cancel(by domain.Actor, reason string) ([]domain.Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canManage(by.Role) {
		return nil, forbidRole(by, "cancel a payout run")
	}
	reason, err := domain.CleanText("reason", reason, 1, MaxReasonRunes)
	if err != nil {
		return nil, err
	}
	switch r.Status {
	case RunOpened, RunCalculated, RunApproved:
		return []domain.Event{PayoutRunCancelled{RunID: r.ID, CancelledBy: by.UserID, Reason: reason}}, nil
	case RunCancelled:
		return nil, nil
	}
	return nil, domain.Rejectf(domain.Conflict, "already_released", "run_id", "run %s is %s; a released run cannot be cancelled, failed payments are reissued and wrong ones corrected", r.ID, r.Status)
}

// Close decides closing a released run; pending counts its payments still
// awaiting the bank's answer, which must be none.
func (r Run) Close(by domain.Actor, pending int) ([]domain.Event, error) {
	if err := r.mustExist(); err != nil {
		return nil, err
	}
	if err := checkActor(by); err != nil {
		return nil, err
	}
	if !canManage(by.Role) {
		return nil, forbidRole(by, "close a payout run")
	}
	switch r.Status {
	case RunReleased:
	case RunClosed:
		return nil, nil
	default:
		return nil, domain.Rejectf(domain.Conflict, "not_released", "run_id", "run %s is %s; only a released run is closed", r.ID, r.Status)
	}
	if pending > 0 {
		return nil, domain.Rejectf(domain.Conflict, "payments_pending", "run_id", "run %s still has %d payment lines without the bank's answer", r.ID, pending)
	}
	return []domain.Event{PayoutRunClosed{RunID: r.ID, ClosedBy: by.UserID}}, nil
}
