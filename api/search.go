package api

import (
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ansinh/ansinh/domain/registry"
	"github.com/ansinh/ansinh/eventstore"
	"github.com/ansinh/ansinh/projections"
	"github.com/labstack/echo/v4"
)

// Searching the registry: GET /v1/beneficiaries (declared with the
// registry's routes in beneficiaries.go), served by the registry read model.
// A name matches with or without diacritics ("nguyen thi an" finds "Nguyễn
// Thị An"), from the start of any word, the last word as a prefix; digits
// match the start of a citizen ID. Filters: district, ward, category,
// status, has_bank_account. Any role: registrars look people up at the ward
// desk, and the answer holds no account numbers.

type (
	searchHitJSON struct {
		CitizenID      string      `json:"citizen_id"`
		FullName       string      `json:"full_name"`
		DateOfBirth    *string     `json:"date_of_birth"`
		Address        addressJSON `json:"address"`
		Category       string      `json:"category"`
		Status         string      `json:"status"`
		HasBankAccount bool        `json:"has_bank_account"`
	}
	searchPageJSON struct {
		Items      []searchHitJSON `json:"items"`
		NextCursor string          `json:"next_cursor,omitempty"`
		// Partial: the page stopped after looking at
		// projections.MaxScanKeys index entries, not because it was
		// full; more may follow at next_cursor.
		Partial  bool                `json:"partial"`
		Position eventstore.Position `json:"position"`
	}
)

// registryStatuses are the values of ?status=.
var registryStatuses = []string{projections.StatusActive, projections.StatusDeceased, projections.StatusMovedAway}

func (s *Server) searchBeneficiaries(c echo.Context) error {
	q, err := parseSearch(c)
	if err != nil {
		return err
	}
	set, err := s.liveReadModels(c)
	if err != nil {
		return err
	}
	res, err := set.Search(c.Request().Context(), q)
	if err != nil {
		return readError(err)
	}
	out := searchPageJSON{Items: make([]searchHitJSON, len(res.Items)), NextCursor: nextCursor(res.Next), Partial: res.Partial, Position: res.Position}
	for i, h := range res.Items {
		a := h.Address
		out.Items[i] = searchHitJSON{
			CitizenID: h.CitizenID, FullName: h.FullName, DateOfBirth: dateOrNil(h.DateOfBirth.Date),
			Address: addressJSON{Street: a.Street, DistrictCode: a.DistrictCode, DistrictName: a.DistrictName,
				WardCode: a.WardCode, WardName: a.WardName, Catalogue: a.Catalogue},
			Category: string(h.Category), Status: h.Status, HasBankAccount: h.HasBankAccount,
		}
	}
	return c.JSON(http.StatusOK, out)
}

// parseSearch checks every parameter before the read model sees it, so
// that a bad one is a 400 naming the parameter.
func parseSearch(c echo.Context) (projections.SearchQuery, error) {
	page, err := parseReadPage(c)
	if err != nil {
		return projections.SearchQuery{}, err
	}
	q := projections.SearchQuery{
		Text: strings.TrimSpace(c.QueryParam("q")), District: c.QueryParam("district"), Ward: c.QueryParam("ward"),
		Category: c.QueryParam("category"), Status: c.QueryParam("status"), Cursor: page.After, Limit: page.Limit,
	}
	f := fieldErrors{code: "bad_request"}
	digits := validCode(q.Text, len(q.Text))
	switch {
	case utf8.RuneCountInString(q.Text) > projections.MaxQueryRunes:
		f.add("q", "at most 100 characters")
	case digits && len(q.Text) > 12:
		f.add("q", "a citizen ID has 12 digits; send all or the first few of them")
	case q.Text != "" && !digits && registry.NameKey(q.Text) == "":
		f.add("q", "has no letters to search for; send a name or the digits of a citizen ID")
	}
	if q.District != "" && !validCode(q.District, 10) {
		f.add("district", "want the district's code, e.g. 268")
	}
	if q.Ward != "" && !validCode(q.Ward, 10) {
		f.add("ward", "want the ward's code, e.g. 09556")
	}
	if q.Category != "" && !slices.Contains(registry.Categories, registry.Category(q.Category)) {
		f.add("category", "want one of meritorious, meritorious_relative, resistance_one_time, martyr_worship, social_protection, near_poor, other")
	}
	if q.Status != "" && !slices.Contains(registryStatuses, q.Status) {
		f.add("status", "want active, deceased or moved_away")
	}
	switch c.QueryParam("has_bank_account") {
	case "":
	case "true":
		q.HasBankAccount = new(bool)
		*q.HasBankAccount = true
	case "false":
		q.HasBankAccount = new(bool)
	default:
		f.add("has_bank_account", "want true or false")
	}
	return q, f.err()
}
