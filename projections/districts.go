package projections

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/registry"
)

// The district report: per district, the beneficiaries by category, how
// many have a bank account (the share Hanoi tracked: 87.44% city-wide in
// January 2024), and per period the payments due, paid, failed, in transit
// and reversed, with the completion rate (Long Bien reached 100%).
//
// A person counts where they live now (a correction that moves them moves
// their count); a payment counts in the district its payee record names,
// which is the beneficiary's at calculation. Only active beneficiaries
// (neither deceased nor moved away) are counted by category and for the bank
// share; "has a bank account" means an account is linked for payment.
//
//	b/<citizen ID>            the person's contribution (person)
//	c/<district>              DistrictCounts
//	o/<obligation stream>     the obligation's latest attempt (obligationState)
//	p/<district>/<period>     PeriodTotals
const districtsName = "districts"

type districtsProjection struct{}

func (districtsProjection) Name() string { return districtsName }
func (districtsProjection) Version() int { return 1 }

type person struct {
	District  string            `json:"district"`
	Name      string            `json:"district_name"`
	Catalogue string            `json:"catalogue"`
	Category  registry.Category `json:"category"`
	Status    string            `json:"status"`
	Bank      bool              `json:"bank"`
}

func (p *person) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, p) }
func (p *person) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, p) }

// DistrictCounts are a district's beneficiaries.
type DistrictCounts struct {
	District     string                    `json:"district"`
	DistrictName string                    `json:"district_name"`
	Catalogue    string                    `json:"catalogue"`
	Active       int                       `json:"active"`
	ByCategory   map[registry.Category]int `json:"by_category"`
	WithBank     int                       `json:"with_bank_account"`
	Deceased     int                       `json:"deceased"`
	MovedAway    int                       `json:"moved_away"`
}

func (c *DistrictCounts) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, c) }
func (c *DistrictCounts) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, c) }

type obligationState struct {
	District string              `json:"district"`
	Period   domain.Period       `json:"period"`
	Attempt  int                 `json:"attempt"`
	Status   disbursement.Status `json:"status"`
	Gross    dong                `json:"gross"`
	Net      dong                `json:"net"`
}

// PeriodTotals are the obligations of one district and period, by where
// their latest attempt stands. Due is every obligation a run issued and did
// not withdraw: Due = Paid + Failed + InTransit + Reversed. Failed ones are
// owed again (the next run reissues them).
type PeriodTotals struct {
	Due       StatusTotal `json:"due"`
	Paid      StatusTotal `json:"paid"`
	Failed    StatusTotal `json:"failed"`
	InTransit StatusTotal `json:"in_transit"`
	Reversed  StatusTotal `json:"reversed"`
}

func newPeriodTotals() *PeriodTotals {
	z := StatusTotal{Gross: domain.ZeroVND(), Net: domain.ZeroVND()}
	return &PeriodTotals{Due: z, Paid: z, Failed: z, InTransit: z, Reversed: z}
}

func (t *PeriodTotals) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, t) }
func (t *PeriodTotals) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, t) }

// periodTotals are PeriodTotals while Apply counts into them, in dong (see
// dong); they are stored byte for byte as the PeriodTotals the report
// reads.
type periodTotals struct {
	Due       statusCount `json:"due"`
	Paid      statusCount `json:"paid"`
	Failed    statusCount `json:"failed"`
	InTransit statusCount `json:"in_transit"`
	Reversed  statusCount `json:"reversed"`
}

// statusCount is a StatusTotal in dong.
type statusCount struct {
	Lines int  `json:"lines"`
	Gross dong `json:"gross"`
	Net   dong `json:"net"`
}

func (t *periodTotals) AppendBinary(b []byte) ([]byte, error) { return appendJSON(b, t) }
func (t *periodTotals) UnmarshalBinary(b []byte) error        { return jsonUnmarshal(b, t) }

// add counts one line (sign +1) or takes one away (-1).
func (s *statusCount) add(sign int, gross, net dong) error {
	if sign < 0 {
		gross, net = -gross, -net
	}
	var err1, err2 error
	s.Lines += sign
	s.Gross, err1 = s.Gross.plus(gross)
	s.Net, err2 = s.Net.plus(net)
	return errors.Join(err1, err2)
}

func (districtsProjection) Apply(tx *Tx, ev *Event) error {
	de, err := domainEvent(ev)
	if de == nil {
		return err
	}
	if ch, ok := ev.payment(); ok {
		return applyObligation(tx, ch)
	}
	if !strings.HasPrefix(ev.StreamID, registry.StreamPrefix) {
		return nil
	}
	cid := strings.TrimPrefix(ev.StreamID, registry.StreamPrefix)
	key := []byte("b/" + cid)
	p, found, err := Load[person](tx, key)
	if err != nil {
		return err
	}
	var before *person
	if found {
		b := *p
		before = &b
	}
	switch e := de.(type) {
	case registry.BeneficiaryRegistered:
		p = &person{District: e.Address.DistrictCode, Name: e.Address.DistrictName, Catalogue: e.Address.Catalogue,
			Category: e.Category, Status: StatusActive}
	case registry.BeneficiaryDetailsCorrected:
		if p == nil {
			return nil
		}
		if e.Address != nil {
			p.District, p.Name, p.Catalogue = e.Address.DistrictCode, e.Address.DistrictName, e.Address.Catalogue
		}
		if e.Category != nil {
			p.Category = *e.Category
		}
	case registry.BeneficiaryDied:
		if p == nil {
			return nil
		}
		p.Status = StatusDeceased
	case registry.BeneficiaryMovedAway:
		if p == nil {
			return nil
		}
		p.Status = StatusMovedAway
	case registry.BankAccountLinked, registry.BankAccountReplaced:
		if p == nil {
			return nil
		}
		p.Bank = true
	case registry.BankAccountUnlinked:
		if p == nil {
			return nil
		}
		p.Bank = false
	default:
		return nil
	}
	if err := countPerson(tx, before, -1); err != nil {
		return err
	}
	if err := countPerson(tx, p, +1); err != nil {
		return err
	}
	tx.Put(key, p)
	return nil
}

func countPerson(tx *Tx, p *person, sign int) error {
	if p == nil {
		return nil
	}
	key := []byte("c/" + p.District)
	c, found, err := Load[DistrictCounts](tx, key)
	if err != nil {
		return err
	}
	if !found {
		c = &DistrictCounts{District: p.District, ByCategory: map[registry.Category]int{}}
	}
	if sign > 0 && p.Name != "" {
		c.DistrictName, c.Catalogue = p.Name, p.Catalogue
	}
	switch p.Status {
	case StatusActive:
		c.Active += sign
		c.ByCategory[p.Category] += sign
		if c.ByCategory[p.Category] == 0 {
			delete(c.ByCategory, p.Category)
		}
		if p.Bank {
			c.WithBank += sign
		}
	case StatusDeceased:
		c.Deceased += sign
	case StatusMovedAway:
		c.MovedAway += sign
	}
	tx.Put(key, c)
	return nil
}

func applyObligation(tx *Tx, ch *attemptChange) error {
	var kb [keyBytes]byte
	key := joinKey(kb[:0], "o/", ch.stream)
	o, found, err := Load[obligationState](tx, key)
	if err != nil {
		return err
	}
	var before *obligationState
	if found {
		b := *o
		before = &b
	}
	switch {
	case ch.issued != nil:
		gross, err := dongOf(ch.issued.Gross)
		if err != nil {
			return err
		}
		net, err := dongOf(ch.issued.Net)
		if err != nil {
			return err
		}
		o = &obligationState{District: ch.issued.Payee.District, Period: ch.ref.Obligation.Period, Attempt: ch.ref.Attempt,
			Status: ch.status, Gross: gross, Net: net}
	case found && o.Attempt == ch.ref.Attempt:
		o.Status = ch.status
	default:
		return nil
	}
	if err := countObligation(tx, before, -1); err != nil {
		return err
	}
	if err := countObligation(tx, o, +1); err != nil {
		return err
	}
	tx.Put(key, o)
	return nil
}

func countObligation(tx *Tx, o *obligationState, sign int) error {
	if o == nil || o.Status == disbursement.StatusCancelled {
		return nil // a withdrawn attempt is not due
	}
	var kb [keyBytes]byte
	key := appendPeriod(joinKey(kb[:0], "p/", o.District, "/"), o.Period)
	t, found, err := Load[periodTotals](tx, key)
	if err != nil {
		return err
	}
	if !found {
		t = &periodTotals{}
	}
	var s *statusCount
	switch o.Status {
	case disbursement.StatusSettled:
		s = &t.Paid
	case disbursement.StatusFailed, disbursement.StatusReturned:
		s = &t.Failed
	case disbursement.StatusReversed:
		s = &t.Reversed
	default:
		s = &t.InTransit
	}
	if err := errors.Join(t.Due.add(sign, o.Gross, o.Net), s.add(sign, o.Gross, o.Net)); err != nil {
		return fmt.Errorf("districts: %s: %w", string(key), err)
	}
	tx.Put(key, t)
	return nil
}

// ReportQuery selects a district report. Empty Districts means every
// district; From and To (both optional) bound the periods listed.
type ReportQuery struct {
	Districts []string
	From, To  domain.Period
}

// DistrictFigures are one district's (or the city's) figures.
type DistrictFigures struct {
	DistrictCounts
	// BankAccountShare is WithBank / Active in percent, two decimals
	// ("87.44"); "" without active beneficiaries.
	BankAccountShare string          `json:"bank_account_share"`
	Periods          []PeriodFigures `json:"periods"`
	// Totals over the listed periods.
	Totals PeriodFigures `json:"totals"`
}

// PeriodFigures are the payments of one period, with the completion rate:
// the share of due lines that are paid, in percent, two decimals ("" when
// nothing is due).
type PeriodFigures struct {
	Period domain.Period `json:"period,omitzero"`
	PeriodTotals
	Completion string `json:"completion"`
}

// DistrictReport is the report, per district and for the city.
type DistrictReport struct {
	City      DistrictFigures   `json:"city"`
	Districts []DistrictFigures `json:"districts"`
}

// percent is part/whole in percent, rounded half away from zero to two
// decimals; "" when whole is zero.
func percent(part, whole int) string {
	if whole == 0 {
		return ""
	}
	return decimal.NewFromInt(int64(part)).Mul(decimal.NewFromInt(100)).
		DivRound(decimal.NewFromInt(int64(whole)), 2).StringFixed(2)
}

func districtReport(r *Reader, q ReportQuery) (DistrictReport, error) {
	if len(q.Districts) > 100 {
		return DistrictReport{}, fmt.Errorf("report: at most 100 districts")
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return DistrictReport{}, fmt.Errorf("report: period %s is after %s", q.From, q.To)
	}
	want := func(d string) bool { return len(q.Districts) == 0 || slices.Contains(q.Districts, d) }
	figures := map[string]*DistrictFigures{}
	get := func(d string) *DistrictFigures {
		f := figures[d]
		if f == nil {
			f = &DistrictFigures{DistrictCounts: DistrictCounts{District: d, ByCategory: map[registry.Category]int{}}}
			figures[d] = f
		}
		return f
	}
	err := r.Scan([]byte("c/"), prefixEnd([]byte("c/")), func(k, v []byte) (bool, error) {
		if d := string(k[2:]); want(d) {
			var c DistrictCounts
			if err := c.UnmarshalBinary(v); err != nil {
				return false, err
			}
			get(d).DistrictCounts = c
		}
		return true, nil
	})
	if err != nil {
		return DistrictReport{}, err
	}
	periods := map[string]map[domain.Period]*PeriodTotals{}
	err = r.Scan([]byte("p/"), prefixEnd([]byte("p/")), func(k, v []byte) (bool, error) {
		d, ps, ok := strings.Cut(string(k[2:]), "/")
		if !ok {
			return false, fmt.Errorf("districts: key %q is corrupt", k)
		}
		p, err := domain.ParsePeriod(ps)
		if err != nil {
			return false, fmt.Errorf("districts: key %q: %w", k, err)
		}
		if !want(d) || (!q.From.IsZero() && p.Before(q.From)) || (!q.To.IsZero() && p.After(q.To)) {
			return true, nil
		}
		var t PeriodTotals
		if err := t.UnmarshalBinary(v); err != nil {
			return false, err
		}
		if periods[d] == nil {
			periods[d] = map[domain.Period]*PeriodTotals{}
		}
		periods[d][p] = &t
		get(d)
		return true, nil
	})
	if err != nil {
		return DistrictReport{}, err
	}
	rep := DistrictReport{Districts: []DistrictFigures{}}
	city := DistrictFigures{DistrictCounts: DistrictCounts{ByCategory: map[registry.Category]int{}}}
	cityPeriods := map[domain.Period]*PeriodTotals{}
	for _, d := range slices.Sorted(maps.Keys(figures)) {
		f := figures[d]
		for _, p := range slices.SortedFunc(maps.Keys(periods[d]), domain.Period.Compare) {
			t := periods[d][p]
			f.Periods = append(f.Periods, PeriodFigures{Period: p, PeriodTotals: *t})
			f.Totals.PeriodTotals.plus(t)
			if cityPeriods[p] == nil {
				cityPeriods[p] = newPeriodTotals()
			}
			cityPeriods[p].plus(t)
		}
		f.finish()
		city.Active += f.Active
		city.WithBank += f.WithBank
		city.Deceased += f.Deceased
		city.MovedAway += f.MovedAway
		for c, n := range f.ByCategory {
			city.ByCategory[c] += n
		}
		city.Totals.PeriodTotals.plus(&f.Totals.PeriodTotals)
		rep.Districts = append(rep.Districts, *f)
	}
	for _, p := range slices.SortedFunc(maps.Keys(cityPeriods), domain.Period.Compare) {
		city.Periods = append(city.Periods, PeriodFigures{Period: p, PeriodTotals: *cityPeriods[p]})
	}
	city.finish()
	rep.City = city
	return rep, nil
}

func (f *DistrictFigures) finish() {
	f.BankAccountShare = percent(f.WithBank, f.Active)
	for i := range f.Periods {
		f.Periods[i].finish()
	}
	if f.Periods == nil {
		f.Periods = []PeriodFigures{}
	}
	f.Totals.finish()
}

func (p *PeriodFigures) finish() {
	for _, s := range []*StatusTotal{&p.Due, &p.Paid, &p.Failed, &p.InTransit, &p.Reversed} {
		s.Gross, s.Net = zeroIfUnset(s.Gross), zeroIfUnset(s.Net)
	}
	p.Completion = percent(p.Paid.Lines, p.Due.Lines)
}

func (t *PeriodTotals) plus(o *PeriodTotals) {
	for _, pair := range [][2]*StatusTotal{{&t.Due, &o.Due}, {&t.Paid, &o.Paid}, {&t.Failed, &o.Failed}, {&t.InTransit, &o.InTransit}, {&t.Reversed, &o.Reversed}} {
		pair[0].Lines += pair[1].Lines
		pair[0].Gross = add(pair[0].Gross, pair[1].Gross)
		pair[0].Net = add(pair[0].Net, pair[1].Net)
	}
}
