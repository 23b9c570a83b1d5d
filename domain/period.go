package domain

import (
	"fmt"
	"time"
)

// Period is a calendar month, written YYYY-MM; allowances are owed per period.
// The zero value is not a valid period.
type Period struct {
	Year  int
	Month time.Month
}

// Periods outside this range are typos: the ledger starts long after 2000 and
// no decree schedules payments a century ahead.
const (
	MinPeriodYear = 2000
	MaxPeriodYear = 2100
)

// ParsePeriod reads "YYYY-MM".
func ParsePeriod(s string) (Period, error) {
	if len(s) != 7 || s[4] != '-' {
		return Period{}, fmt.Errorf("period %q: want YYYY-MM, e.g. 2024-01", clip(s))
	}
	var y, m int
	for i, c := range s {
		if i == 4 {
			continue
		}
		if c < '0' || c > '9' {
			return Period{}, fmt.Errorf("period %q: want YYYY-MM, e.g. 2024-01", clip(s))
		}
		if i < 4 {
			y = y*10 + int(c-'0')
		} else {
			m = m*10 + int(c-'0')
		}
	}
	if m < 1 || m > 12 {
		return Period{}, fmt.Errorf("period %q: month must be 01 to 12", s)
	}
	if y < MinPeriodYear || y > MaxPeriodYear {
		return Period{}, fmt.Errorf("period %q: year must be %d to %d", s, MinPeriodYear, MaxPeriodYear)
	}
	return Period{Year: y, Month: time.Month(m)}, nil
}

// periodOf reads a valid period, "YYYY-MM", as ParsePeriod does, and
// reports false for anything ParsePeriod refuses.
func periodOf(b []byte) (Period, bool) {
	if len(b) != 7 || b[4] != '-' {
		return Period{}, false
	}
	y, ok1 := digits(b[:4])
	m, ok2 := digits(b[5:])
	if !ok1 || !ok2 || m < 1 || m > 12 || y < MinPeriodYear || y > MaxPeriodYear {
		return Period{}, false
	}
	return Period{Year: y, Month: time.Month(m)}, true
}

// digits is the number b writes in ASCII digits only (a few of them), or
// false.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// MustPeriod is ParsePeriod for literals in code and tests.
func MustPeriod(s string) Period {
	p, err := ParsePeriod(s)
	if err != nil {
		panic(err)
	}
	return p
}

// PeriodOf is the period that contains t (in t's location).
func PeriodOf(t time.Time) Period { return Period{Year: t.Year(), Month: t.Month()} }

func (p Period) String() string {
	// Without fmt for every valid period (and anything else of that width):
	// stream names and keys of projections are built from periods, millions
	// of times in a rebuild. TestPeriodDateStringMatchesSprintf.
	if p.Year >= MinPeriodYear && p.Year <= MaxPeriodYear && p.Month >= 1 && p.Month <= 12 {
		// Valid periods without even an allocation: a piece of periodText.
		i := p.index() - MinPeriodYear*12
		return periodText[i*periodLen : (i+1)*periodLen]
	}
	if p.Year >= 0 && p.Year <= 9999 && p.Month >= 0 && p.Month <= 99 {
		var b [7]byte
		put4(b[0:4], p.Year)
		b[4] = '-'
		put2(b[5:7], int(p.Month))
		return string(b[:])
	}
	return fmt.Sprintf("%04d-%02d", p.Year, int(p.Month))
}

// periodText is every valid period written out, back to back in order
// (8.5 KB): Period.String was 2% of all the objects a rebuild of the read
// models allocated.
var periodText = func() string {
	b := make([]byte, 0, (MaxPeriodYear-MinPeriodYear+1)*12*periodLen)
	for y := MinPeriodYear; y <= MaxPeriodYear; y++ {
		for m := 1; m <= 12; m++ {
			var p [periodLen]byte
			put4(p[0:4], y)
			p[4] = '-'
			put2(p[5:7], m)
			b = append(b, p[:]...)
		}
	}
	return string(b)
}()

const periodLen = len("2024-01")

// put4 and put2 write n (0 to 9999, 0 to 99) as zero-padded digits.
func put4(b []byte, n int) {
	b[0], b[1], b[2], b[3] = byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10)
}

func put2(b []byte, n int) { b[0], b[1] = byte('0'+n/10), byte('0'+n%10) }

// IsZero reports whether p is the zero value (no period).
func (p Period) IsZero() bool { return p.Year == 0 && p.Month == 0 }

// index counts months from year 0, so periods compare and subtract as ints.
func (p Period) index() int { return p.Year*12 + int(p.Month) - 1 }

func periodFromIndex(i int) Period { return Period{Year: i / 12, Month: time.Month(i%12 + 1)} }

// AddMonths returns the period n months later (earlier for negative n).
func (p Period) AddMonths(n int) Period { return periodFromIndex(p.index() + n) }

// Next is the following month.
func (p Period) Next() Period { return p.AddMonths(1) }

func (p Period) Before(q Period) bool { return p.index() < q.index() }
func (p Period) After(q Period) bool  { return p.index() > q.index() }

// Compare returns -1, 0 or +1.
func (p Period) Compare(q Period) int {
	switch {
	case p.index() < q.index():
		return -1
	case p.index() > q.index():
		return 1
	}
	return 0
}

// MonthsUntil counts the periods from p to q inclusive (0 if q is before p).
func (p Period) MonthsUntil(q Period) int {
	if q.Before(p) {
		return 0
	}
	return q.index() - p.index() + 1
}

// FirstDay is midnight on the first day of the period, in loc.
func (p Period) FirstDay(loc *time.Location) time.Time {
	return time.Date(p.Year, p.Month, 1, 0, 0, 0, 0, loc)
}

func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p *Period) UnmarshalText(b []byte) error {
	// Without a copy of b for a valid period: every payment event holds
	// one. ParsePeriod judges (and words the error for) anything else.
	if q, ok := periodOf(b); ok {
		*p = q
		return nil
	}
	q, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
