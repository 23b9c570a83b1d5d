package projections

import (
	"reflect"
	"testing"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/entitlement"
)

// The balance query keeps the last catalogue it decoded (catalogue() in
// registry.go). It must hand back that catalogue only for the same stored
// bytes: a new rate, or another read model's catalogue, is decoded afresh.
func TestCatalogueIsDecodedAgainWhenItChanges(t *testing.T) {
	db := openMemDB(t)
	put := func(prefix string, c entitlement.Catalogue) {
		t.Helper()
		s := storeCatalogue(c)
		b, err := s.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.pdb.Set(append([]byte(prefix), catalogueKey...), b, nil); err != nil {
			t.Fatal(err)
		}
	}
	rate := func(from string, amount int64) entitlement.Rate {
		p, err := domain.ParsePeriod(from)
		if err != nil {
			t.Fatal(err)
		}
		return entitlement.Rate{From: p, Amount: domain.VNDAmount(amount), DecreeRef: "test"}
	}
	catalogueWith := func(rates ...entitlement.Rate) entitlement.Catalogue {
		return entitlement.Catalogue{
			Programs:   map[string]entitlement.Program{"P": {Code: "P", Name: "P", Kind: entitlement.Monthly}},
			BaseLevels: map[string]entitlement.BaseLevel{"B": {Code: "B", Name: "B", Rates: rates}},
		}
	}
	ratesOf := func(r *Reader) []entitlement.Rate {
		t.Helper()
		c, err := catalogue(r)
		if err != nil {
			t.Fatal(err)
		}
		return c.BaseLevels["B"].Rates
	}
	one, two := catalogueWith(rate("2021-07", 360_000)), catalogueWith(rate("2021-07", 360_000), rate("2024-07", 500_000))
	a := &Reader{r: db.pdb, prefix: []byte("s/a/")}
	b := &Reader{r: db.pdb, prefix: []byte("s/b/")}

	put("s/a/", one)
	put("s/b/", two)
	if got := ratesOf(a); len(got) != 1 {
		t.Fatalf("a: %v, want one rate", got)
	}
	if got := ratesOf(b); len(got) != 2 {
		t.Fatalf("b (another read model's catalogue): %v, want two rates", got)
	}
	if got := ratesOf(a); len(got) != 1 {
		t.Fatalf("a again: %v, want one rate", got)
	}
	put("s/a/", two) // a new rate in a's catalogue
	if got := ratesOf(a); len(got) != 2 || !got[1].Amount.Equal(domain.VNDAmount(500_000)) {
		t.Fatalf("a after a new rate: %v", got)
	}

	// The same bytes again are not decoded again: the same maps come back.
	first, err := catalogue(a)
	if err != nil {
		t.Fatal(err)
	}
	second, err := catalogue(a)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(first.BaseLevels).Pointer() != reflect.ValueOf(second.BaseLevels).Pointer() {
		t.Error("an unchanged catalogue was decoded again")
	}

	// No catalogue stored: none, whatever was decoded before.
	empty := &Reader{r: db.pdb, prefix: []byte("s/none/")}
	if c, err := catalogue(empty); err != nil || c.Programs != nil || c.BaseLevels != nil {
		t.Fatalf("no catalogue: %+v, %v", c, err)
	}
}
