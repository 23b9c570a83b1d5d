package api

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// The district report (the "unified report template" the districts asked
// for): per district and for the city, the active beneficiaries by
// category, how many have a bank account linked (and the share, 87.44%
// city-wide in January 2024), and per period the payments due, paid,
// failed, in transit and reversed, with the completion rate. JSON, or with
// ?format=csv a spreadsheet download. Served by the districts read model.
//
// Beneficiaries count where they live now and are not split by period;
// payments count in the district of the payee record (the beneficiary's at
// calculation). Each district names the administrative-units catalogue its
// code comes from. Any role: the report holds only counts and sums.
func (s *Server) reportRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/v1/reports/districts", Handler: s.districtReport, Roles: AllRoles},
	}
}

// maxReportDistricts bounds ?district= (Hanoi has 30).
const maxReportDistricts = 100

type (
	statusTotalJSON struct {
		Lines int       `json:"lines"`
		Gross moneyJSON `json:"gross"`
		Net   moneyJSON `json:"net"`
	}
	periodFiguresJSON struct {
		Period    *string         `json:"period"` // null in totals
		Due       statusTotalJSON `json:"due"`
		Paid      statusTotalJSON `json:"paid"`
		Failed    statusTotalJSON `json:"failed"`
		InTransit statusTotalJSON `json:"in_transit"`
		Reversed  statusTotalJSON `json:"reversed"`
		// Completion is paid lines / due lines in percent, two decimals;
		// "" when nothing is due.
		Completion string `json:"completion"`
	}
	districtFiguresJSON struct {
		District     string         `json:"district"` // "" for the city
		DistrictName string         `json:"district_name"`
		Catalogue    string         `json:"catalogue"`
		Active       int            `json:"active"`
		ByCategory   map[string]int `json:"by_category"`
		WithBank     int            `json:"with_bank_account"`
		// BankAccountShare is with_bank_account / active in percent, two
		// decimals ("87.44"); "" without active beneficiaries.
		BankAccountShare string              `json:"bank_account_share"`
		Deceased         int                 `json:"deceased"`
		MovedAway        int                 `json:"moved_away"`
		Periods          []periodFiguresJSON `json:"periods"`
		Totals           periodFiguresJSON   `json:"totals"`
	}
	districtReportJSON struct {
		From      *string               `json:"from"`
		To        *string               `json:"to"`
		City      districtFiguresJSON   `json:"city"`
		Districts []districtFiguresJSON `json:"districts"`
		Position  eventstore.Position   `json:"position"`
	}
)

func (s *Server) districtReport(c echo.Context) error {
	q, csvOut, err := parseReportQuery(c)
	if err != nil {
		return err
	}
	set, err := s.liveReadModels(c)
	if err != nil {
		return err
	}
	rep, err := set.DistrictReport(c.Request().Context(), q)
	if err != nil {
		return readError(err)
	}
	if csvOut {
		return writeReportCSV(c, q, rep)
	}
	out := districtReportJSON{From: periodOrNil(q.From), To: periodOrNil(q.To), City: toDistrictJSON(rep.City),
		Districts: make([]districtFiguresJSON, len(rep.Districts)), Position: rep.Position}
	for i, d := range rep.Districts {
		out.Districts[i] = toDistrictJSON(d)
	}
	return c.JSON(http.StatusOK, out)
}

// parseReportQuery reads ?district= (repeated), ?period= or ?from= and
// ?to=, and ?format=json|csv.
func parseReportQuery(c echo.Context) (q projections.ReportQuery, csvOut bool, err error) {
	f := fieldErrors{code: "bad_request"}
	params := c.QueryParams()
	districts := params["district"]
	if len(districts) > maxReportDistricts {
		f.add("district", fmt.Sprintf("at most %d districts; leave it out for all", maxReportDistricts))
		districts = nil
	}
	for _, d := range districts {
		if !validCode(d, 10) {
			f.add("district", "want district codes, e.g. district=268&district=004")
			break
		}
	}
	q.Districts = slices.Compact(slices.Sorted(slices.Values(districts)))
	if p := c.QueryParam("period"); p != "" {
		if c.QueryParam("from") != "" || c.QueryParam("to") != "" {
			f.add("period", "send either period or from/to, not both")
		}
		q.From = f.period("period", p)
		q.To = q.From
	} else {
		q.From = f.period("from", c.QueryParam("from"))
		q.To = f.period("to", c.QueryParam("to"))
		if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
			f.add("to", "is before from")
		}
	}
	switch c.QueryParam("format") {
	case "", "json":
	case "csv":
		csvOut = true
	default:
		f.add("format", "want json or csv")
	}
	return q, csvOut, f.err()
}

func toStatusTotalJSON(t projections.StatusTotal) statusTotalJSON {
	return statusTotalJSON{Lines: t.Lines, Gross: toMoneyJSON(t.Gross), Net: toMoneyJSON(t.Net)}
}

func toPeriodFiguresJSON(p projections.PeriodFigures) periodFiguresJSON {
	return periodFiguresJSON{
		Period: periodOrNil(p.Period), Due: toStatusTotalJSON(p.Due), Paid: toStatusTotalJSON(p.Paid), Failed: toStatusTotalJSON(p.Failed),
		InTransit: toStatusTotalJSON(p.InTransit), Reversed: toStatusTotalJSON(p.Reversed), Completion: p.Completion,
	}
}

func toDistrictJSON(d projections.DistrictFigures) districtFiguresJSON {
	out := districtFiguresJSON{
		District: d.District, DistrictName: d.DistrictName, Catalogue: d.Catalogue, Active: d.Active, ByCategory: map[string]int{},
		WithBank: d.WithBank, BankAccountShare: d.BankAccountShare, Deceased: d.Deceased, MovedAway: d.MovedAway,
		Periods: make([]periodFiguresJSON, len(d.Periods)), Totals: toPeriodFiguresJSON(d.Totals),
	}
	for c, n := range d.ByCategory {
		out.ByCategory[string(c)] = n
	}
	for i, p := range d.Periods {
		out.Periods[i] = toPeriodFiguresJSON(p)
	}
	return out
}

// reportCSVHeader is the layout of the CSV report (docs/api.md): one row
// per district and period, then the city's rows (district "all"). The
// beneficiary counts are today's and repeat on each period row; a district
// with no payments in the periods listed has one row with an empty period.
var reportCSVHeader = func() []string {
	h := []string{"district", "district_name", "catalogue", "period", "active"}
	for _, c := range registry.Categories {
		h = append(h, "active_"+string(c))
	}
	h = append(h, "with_bank_account", "bank_account_share", "deceased", "moved_away")
	for _, s := range []string{"due", "paid", "failed", "in_transit", "reversed"} {
		h = append(h, s+"_lines", s+"_gross", s+"_net")
	}
	return append(h, "completion")
}()

func writeReportCSV(c echo.Context, q projections.ReportQuery, rep projections.DistrictReportResult) error {
	name := "district-report.csv"
	switch {
	case !q.From.IsZero() && q.From == q.To:
		name = "district-report-" + q.From.String() + ".csv"
	case !q.From.IsZero() || !q.To.IsZero():
		name = "district-report-" + periodOrEmpty(q.From) + "_" + periodOrEmpty(q.To) + ".csv"
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	h.Set(HeaderPosition, rep.Position.String())
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	if err := w.Write(reportCSVHeader); err != nil {
		return err
	}
	// Every district lists the same periods: the city's (every period with
	// a payment in range), zero where the district has none, so that the
	// sheet can be sorted and summed by period.
	periods := make([]domain.Period, len(rep.City.Periods))
	for i, p := range rep.City.Periods {
		periods[i] = p.Period
	}
	for _, d := range rep.Districts {
		if err := writeDistrictRows(w, d.District, d, periods); err != nil {
			return err
		}
	}
	if err := writeDistrictRows(w, "all", rep.City, periods); err != nil {
		return err
	}
	w.Flush()
	return w.Error()
}

func writeDistrictRows(w *csv.Writer, code string, d projections.DistrictFigures, periods []domain.Period) error {
	counts := []string{code, d.DistrictName, d.Catalogue}
	people := []string{strconv.Itoa(d.Active)}
	for _, c := range registry.Categories {
		people = append(people, strconv.Itoa(d.ByCategory[c]))
	}
	people = append(people, strconv.Itoa(d.WithBank), d.BankAccountShare, strconv.Itoa(d.Deceased), strconv.Itoa(d.MovedAway))
	byPeriod := map[domain.Period]projections.PeriodFigures{}
	for _, p := range d.Periods {
		byPeriod[p.Period] = p
	}
	row := func(period string, p projections.PeriodFigures) error {
		rec := append(append(append([]string{}, counts...), period), people...)
		for _, t := range []projections.StatusTotal{p.Due, p.Paid, p.Failed, p.InTransit, p.Reversed} {
			rec = append(rec, strconv.Itoa(t.Lines), amountOrZero(t.Gross), amountOrZero(t.Net))
		}
		return w.Write(append(rec, p.Completion))
	}
	if len(periods) == 0 {
		return row("", projections.PeriodFigures{})
	}
	for _, per := range periods {
		if err := row(per.String(), byPeriod[per]); err != nil {
			return err
		}
	}
	return nil
}

// amountOrZero is an amount's digits, "0" for an unset one (a period a
// district has no payment in).
func amountOrZero(m domain.Money) string {
	if m.Currency == "" {
		return "0"
	}
	return m.Amount.String()
}

func periodOrEmpty(p domain.Period) string {
	if p.IsZero() {
		return ""
	}
	return p.String()
}
