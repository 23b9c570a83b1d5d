package domain

import (
	"fmt"
	"time"
)

// Date is a calendar day without a time of day: a date of birth, of death,
// the first and last day of an authorization. Business dates are dates in
// Vietnam, so converting an instant to a Date happens once, at the edge, in
// the service's zone (see DateOf). The zero value is not a valid date.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Dates outside this range are typos: nobody alive in the registry was born
// before 1900, and no authorization runs past 2100.
const (
	MinDateYear = 1900
	MaxDateYear = 2100
)

// VietnamZone is UTC+7, Vietnam's only time zone (no daylight saving). It is
// fixed here rather than loaded from tzdata so that the domain needs no files.
var VietnamZone = time.FixedZone("ICT", 7*60*60)

// ParseDate reads "YYYY-MM-DD" and refuses days that do not exist (2023-02-29).
func ParseDate(s string) (Date, error) {
	if len(s) != 10 {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD, e.g. 1950-07-27", clip(s))
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want an existing day written YYYY-MM-DD, e.g. 1950-07-27", clip(s))
	}
	if t.Year() < MinDateYear || t.Year() > MaxDateYear {
		return Date{}, fmt.Errorf("date %q: year must be %d to %d", s, MinDateYear, MaxDateYear)
	}
	return Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}, nil
}

// dateOf reads an existing day written "YYYY-MM-DD" in the years
// ParseDate accepts, with the value ParseDate returns, and reports false
// for anything else (which ParseDate may still accept or not).
func dateOf(b []byte) (Date, bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return Date{}, false
	}
	y, ok1 := digits(b[:4])
	m, ok2 := digits(b[5:7])
	d, ok3 := digits(b[8:])
	if !ok1 || !ok2 || !ok3 || y < MinDateYear || y > MaxDateYear || m < 1 || m > 12 || d < 1 || d > daysIn(time.Month(m), y) {
		return Date{}, false
	}
	return Date{Year: y, Month: time.Month(m), Day: d}, true
}

// daysIn is the number of days in month m of year y (Gregorian, as time
// counts them).
func daysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// MustDate is ParseDate for literals in code and tests.
func MustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// DateOf is the day on which instant t falls in Vietnam.
func DateOf(t time.Time) Date {
	t = t.In(VietnamZone)
	return Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}
}

func (d Date) String() string {
	// Without fmt, like Period.String.
	if d.Year >= 0 && d.Year <= 9999 && d.Month >= 0 && d.Month <= 99 && d.Day >= 0 && d.Day <= 99 {
		var b [10]byte
		put4(b[0:4], d.Year)
		b[4] = '-'
		put2(b[5:7], int(d.Month))
		b[7] = '-'
		put2(b[8:10], d.Day)
		return string(b[:])
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// IsZero reports whether d is the zero value (no date).
func (d Date) IsZero() bool { return d == Date{} }

// Period is the month d falls in.
func (d Date) Period() Period { return Period{Year: d.Year, Month: d.Month} }

// Time is midnight at the start of d in Vietnam.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, VietnamZone) }

// AddDays returns the date n days later (earlier for negative n).
func (d Date) AddDays(n int) Date { return DateOf(d.Time().AddDate(0, 0, n)) }

// Compare returns -1, 0 or +1 as d is before, on, or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmpInt(d.Year, e.Year)
	case d.Month != e.Month:
		return cmpInt(int(d.Month), int(e.Month))
	}
	return cmpInt(d.Day, e.Day)
}

func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }
func (d Date) After(e Date) bool  { return d.Compare(e) > 0 }

func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Date) UnmarshalText(b []byte) error {
	// Without a copy of b or time.Parse for a valid date, like
	// Period.UnmarshalText; ParseDate judges anything else.
	if e, ok := dateOf(b); ok {
		*d = e
		return nil
	}
	e, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = e
	return nil
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
