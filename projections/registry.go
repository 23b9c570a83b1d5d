package projections

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// The registry read model: every beneficiary's record (with entitlements)
// and the catalogue, plus the indexes that make the registry searchable.
//
// Keys:
//
//	b/<citizen ID>                     the record (Beneficiary, binary: regcodec.go)
//	catalogue                          the programs and base levels
//	c/<citizen ID>                     index of registered beneficiaries
//	n/<name suffix>\x00<citizen ID>    one per word of the name (see below)
//	d/<district>\x00<citizen ID>       by district
//	w/<ward>\x00<citizen ID>           by ward (GSO ward codes are unique)
//	k/<category>\x00<citizen ID>       by category
//
// Every index entry's value is the filter fields of the person (district,
// ward, category, status, bank account), so a search filters on them
// without reading records.
//
// Names are indexed by registry.NameKey (no diacritics, đ as d, upper case,
// single spaces), once from each word on: "Nguyễn Văn An" is found under
// "NGUYEN VAN AN", "VAN AN" and "AN". A search folds its text the same way
// and scans the keys that start with it, so "Nguyen Van An", "nguyễn văn
// an", "van an" and "Nguyen Van A" all find "Nguyễn Văn An".
const registryName = "registry"

// maxIndexedWords bounds the index entries of one name.
const maxIndexedWords = 8

type registryProjection struct{}

func (registryProjection) Name() string { return registryName }

// Version 2 stores the record in the binary encoding (regcodec.go) instead
// of JSON: the new version makes the runner rebuild the registry into it.
func (registryProjection) Version() int { return 2 }

// ReadsVersion: version 1 differs only in its records, JSON, which
// regRecord still reads; so after the upgrade the service keeps serving
// them while it rebuilds (Upgrader).
func (registryProjection) ReadsVersion(stored int) bool { return stored == 1 }

// regRecord is the stored record, encoded by regcodec.go.
type regRecord struct{ Beneficiary }

var catalogueKey = []byte("catalogue")

func (registryProjection) Apply(tx *Tx, ev *Event) error {
	switch {
	case ev.StreamID == entitlement.CatalogueStream:
		de, err := domainEvent(ev)
		if de == nil {
			return err
		}
		c, found, err := Load[storedCatalogue](tx, catalogueKey)
		if err != nil {
			return err
		}
		var cat entitlement.Catalogue
		if found {
			cat = c.domain()
		}
		next := storeCatalogue(cat.Evolve(de))
		tx.Put(catalogueKey, &next)
		return nil
	case strings.HasPrefix(ev.StreamID, registry.StreamPrefix):
		de, err := domainEvent(ev)
		if de == nil {
			return err
		}
		return applyBeneficiary(tx, strings.TrimPrefix(ev.StreamID, registry.StreamPrefix), de)
	}
	return nil
}

func applyBeneficiary(tx *Tx, cid string, e interface{ EventType() string }) error {
	key := []byte("b/" + cid)
	rec, found, err := Load[regRecord](tx, key)
	if err != nil {
		return err
	}
	var before registry.Beneficiary
	var oldShape indexShape
	if found {
		before = rec.Domain()
		oldShape = shapeOf(&rec.Beneficiary)
	} else {
		rec = &regRecord{}
	}
	rec.Beneficiary = storeBeneficiary(before.Evolve(e))
	newShape := shapeOf(&rec.Beneficiary)
	if oldShape == newShape {
		// Most events (an entitlement, a payment method) change nothing the
		// index holds; its entries stay as they are.
		tx.Put(key, rec)
		return nil
	}
	newIdx, words := newShape.entries(nil)
	if oldShape.name != newShape.name {
		words = nil // folding a name is the costly part: only when it changed
	}
	oldIdx, _ := oldShape.entries(words)
	for _, o := range oldIdx {
		if _, keep := newIdx.find(o.key); !keep {
			tx.Delete([]byte(o.key))
		}
	}
	for _, n := range newIdx {
		if old, ok := oldIdx.find(n.key); !ok || old != n.value {
			tx.Set([]byte(n.key), []byte(n.value))
		}
	}
	tx.Put(key, rec)
	return nil
}

// Status of a beneficiary in the registry.
const (
	StatusActive    = "active"
	StatusDeceased  = "deceased"
	StatusMovedAway = "moved_away"
)

func beneficiaryStatus(b *Beneficiary) string {
	switch {
	case b.Exit == nil:
		return StatusActive
	case b.Exit.Cause == entitlement.EndedByDeath:
		return StatusDeceased
	default:
		return StatusMovedAway
	}
}

// filterInfo is the value of every index entry.
type filterInfo struct {
	district, ward, category, status string
	bank                             bool
}

func (f filterInfo) encode() string {
	bank := "0"
	if f.bank {
		bank = "1"
	}
	return strings.Join([]string{f.district, f.ward, f.category, f.status, bank}, "\x00")
}

func decodeFilterInfo(v []byte) (filterInfo, bool) {
	parts := bytes.Split(v, []byte{0})
	if len(parts) != 5 {
		return filterInfo{}, false
	}
	return filterInfo{string(parts[0]), string(parts[1]), string(parts[2]), string(parts[3]), string(parts[4]) == "1"}, true
}

// indexShape is everything of a record that its index entries depend on:
// equal shapes, equal entries.
type indexShape struct {
	registered bool
	cid, name  string
	info       filterInfo
}

func shapeOf(b *Beneficiary) indexShape {
	if !b.Registered {
		return indexShape{}
	}
	return indexShape{registered: true, cid: b.CitizenID, name: b.FullName,
		info: filterInfo{b.Address.DistrictCode, b.Address.WardCode, string(b.Category), beneficiaryStatus(b), b.BankAccount != nil}}
}

// indexEntries are a beneficiary's entries in the search index, a handful
// (four and one a word of the name, at most twelve): a slice searched end
// to end. (It replaced two maps a change; in profiles of a Hanoi-scale
// rebuild that saved nothing measurable: folding the name, in entries, is
// most of the cost.)
type indexEntries []indexEntry

type indexEntry struct{ key, value string }

func (es indexEntries) find(key string) (value string, found bool) {
	for _, e := range es {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

// entries lists the index entries of the shape, each key once, folding its
// name into words unless words (of the same name) are given; it returns
// the words too.
func (sh indexShape) entries(words []string) (indexEntries, []string) {
	if !sh.registered {
		return nil, nil
	}
	if words == nil {
		words = strings.Fields(registry.NameKey(sh.name))
	}
	v := sh.info.encode()
	idx := make(indexEntries, 0, 4+maxIndexedWords)
	idx = append(idx,
		indexEntry{"c/" + sh.cid, v},
		indexEntry{"d/" + sh.info.district + "\x00" + sh.cid, v},
		indexEntry{"w/" + sh.info.ward + "\x00" + sh.cid, v},
		indexEntry{"k/" + sh.info.category + "\x00" + sh.cid, v})
	for i := range min(len(words), maxIndexedWords) {
		// The suffixes of the words are distinct keys: each is shorter.
		idx = append(idx, indexEntry{"n/" + strings.Join(words[i:], " ") + "\x00" + sh.cid, v})
	}
	return idx, words
}

// SearchQuery selects beneficiaries. Every field is optional; the fields
// given must all match.
type SearchQuery struct {
	// Text is a name, with or without diacritics, matched from the start
	// of any word ("van an" finds "Nguyễn Văn An"); or digits, matched as
	// the start of a citizen ID.
	Text     string
	District string // district code, e.g. "004"
	Ward     string // ward code, e.g. "00118"
	Category string // a registry.Category
	Status   string // active, deceased or moved_away
	// HasBankAccount, when set, keeps only people with (true) or without
	// (false) a linked bank account.
	HasBankAccount *bool
	// Cursor continues a previous search; Limit is 1..MaxPageLimit.
	Cursor string
	Limit  int
}

// SearchHit is one beneficiary found.
type SearchHit struct {
	CitizenID      string            `json:"citizen_id"`
	FullName       string            `json:"full_name"`
	DateOfBirth    OptDate           `json:"date_of_birth"`
	Address        registry.Address  `json:"address"`
	Category       registry.Category `json:"category"`
	Status         string            `json:"status"`
	HasBankAccount bool              `json:"has_bank_account"`
}

// SearchPage is one page of a search. Next is "" at the end; Partial says
// the page stopped after MaxScanKeys index entries, not because it was full
// (continue with Next). Items are in index order: by citizen ID, or by the
// matching part of the name. A name matched by two of its words may appear
// twice across pages.
type SearchPage struct {
	Items   []SearchHit `json:"items"`
	Next    string      `json:"next"`
	Partial bool        `json:"partial,omitempty"`
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// searchPrefix picks the index that narrows the search most.
func (q SearchQuery) searchPrefix() (string, error) {
	text := strings.TrimSpace(q.Text)
	switch {
	case utf8.RuneCountInString(text) > MaxQueryRunes:
		return "", fmt.Errorf("search text: at most %d characters", MaxQueryRunes)
	case isDigits(text):
		if len(text) > 12 {
			return "", fmt.Errorf("search text: a citizen ID has 12 digits")
		}
		return "c/" + text, nil
	case text != "":
		key := registry.NameKey(text)
		if key == "" {
			return "", fmt.Errorf("search text: no letters to search for")
		}
		return "n/" + key, nil
	case q.Ward != "":
		return "w/" + q.Ward + "\x00", nil
	case q.District != "":
		return "d/" + q.District + "\x00", nil
	case q.Category != "":
		return "k/" + q.Category + "\x00", nil
	}
	return "c/", nil
}

func (q SearchQuery) matches(f filterInfo) bool {
	return (q.District == "" || q.District == f.district) &&
		(q.Ward == "" || q.Ward == f.ward) &&
		(q.Category == "" || q.Category == f.category) &&
		(q.Status == "" || q.Status == f.status) &&
		(q.HasBankAccount == nil || *q.HasBankAccount == f.bank)
}

func search(r *Reader, q SearchQuery) (SearchPage, error) {
	if err := checkLimit(q.Limit); err != nil {
		return SearchPage{}, err
	}
	prefix, err := q.searchPrefix()
	if err != nil {
		return SearchPage{}, err
	}
	lower := []byte(prefix)
	if q.Cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || !bytes.HasPrefix(c, []byte(prefix)) {
			return SearchPage{}, ErrInvalidCursor
		}
		lower = append(c, 0) // the smallest key after the cursor
	}
	var ids []string
	seen := map[string]bool{}
	var last []byte
	scanned := 0
	full, partial := false, false
	err = r.Scan(lower, prefixEnd([]byte(prefix)), func(k, v []byte) (bool, error) {
		if len(ids) == q.Limit {
			full = true
			return false, nil
		}
		if scanned == MaxScanKeys {
			partial = true
			return false, nil
		}
		scanned++
		last = append(last[:0], k...)
		f, ok := decodeFilterInfo(v)
		if !ok {
			return false, fmt.Errorf("registry index %q is corrupt", k)
		}
		if !q.matches(f) {
			return true, nil
		}
		cid := string(k[bytes.LastIndexByte(k, 0)+1:])
		if prefix[0] == 'c' {
			cid = string(k[2:])
		}
		if !seen[cid] {
			seen[cid] = true
			ids = append(ids, cid)
		}
		return true, nil
	})
	if err != nil {
		return SearchPage{}, err
	}
	page := SearchPage{Items: make([]SearchHit, 0, len(ids)), Partial: partial}
	if full || partial {
		page.Next = base64.RawURLEncoding.EncodeToString(last)
	}
	for _, cid := range ids {
		rec, found, err := Read[regRecord](r, []byte("b/"+cid))
		if err != nil {
			return SearchPage{}, err
		}
		if !found {
			return SearchPage{}, fmt.Errorf("registry: %s is indexed but has no record", cid)
		}
		b := &rec.Beneficiary
		page.Items = append(page.Items, SearchHit{
			CitizenID: b.CitizenID, FullName: b.FullName, DateOfBirth: b.DateOfBirth, Address: b.Address,
			Category: b.Category, Status: beneficiaryStatus(b), HasBankAccount: b.BankAccount != nil,
		})
	}
	return page, nil
}

// beneficiary reads one record as queries return it: status filled in and
// the account number masked.
func beneficiary(r *Reader, cid string) (*Beneficiary, bool, error) {
	rec, found, err := Read[regRecord](r, []byte("b/"+cid))
	if err != nil || !found || !rec.Registered {
		return nil, false, err
	}
	b := rec.Beneficiary
	b.Status = beneficiaryStatus(&b)
	if b.BankAccount != nil {
		a := *b.BankAccount
		a.AccountNumber = MaskAccount(a.AccountNumber)
		b.BankAccount = &a
	}
	return &b, true, nil
}

func catalogue(r *Reader) (entitlement.Catalogue, error) {
	raw, found, err := r.Get(catalogueKey)
	if err != nil || !found {
		return entitlement.Catalogue{}, err
	}
	cat, err := catalogueOf(raw)
	if err != nil {
		return entitlement.Catalogue{}, fmt.Errorf("projections: decode %q: %w", catalogueKey, err)
	}
	return cat, nil
}

// catalogueOf decodes stored catalogue bytes, or returns the catalogue
// decoded last when the bytes are the same (lastCatalogue). raw may be
// an iterator's buffer: the memo keeps a copy.
func catalogueOf(raw []byte) (entitlement.Catalogue, error) {
	if m := lastCatalogue.Load(); m != nil && bytes.Equal(m.raw, raw) {
		return m.cat, nil
	}
	var c storedCatalogue
	if err := c.UnmarshalBinary(raw); err != nil {
		return entitlement.Catalogue{}, err
	}
	cat := c.domain()
	lastCatalogue.Store(&decodedCatalogue{raw: bytes.Clone(raw), cat: cat})
	return cat, nil
}

// lastCatalogue is the catalogue catalogue() decoded last, with the bytes
// it was decoded from. Every balance needs the catalogue, which changes a
// few times a year, and decoding its JSON was an eighth of a balance
// query's CPU. It is keyed by the stored bytes, not by a position, so a
// changed catalogue, another generation's or another Set's (an as-of
// replay) is decoded afresh, never confused with this one. The maps are
// shared by every caller: they are read, never written.
var lastCatalogue atomic.Pointer[decodedCatalogue]

type decodedCatalogue struct {
	raw []byte
	cat entitlement.Catalogue
}

// rosterPage lists registered citizen IDs after `after`, ascending, of the
// given districts (all when empty): what a payout run's calculation visits.
func rosterPage(r *Reader, districts []string, after string, limit int) ([]string, error) {
	if limit < 1 || limit > 10_000 {
		return nil, fmt.Errorf("roster limit %d: want 1 to 10,000", limit)
	}
	if len(districts) > 100 {
		return nil, fmt.Errorf("roster: at most 100 districts")
	}
	collect := func(prefix string) ([]string, error) {
		var out []string
		lower := []byte(prefix)
		if after != "" {
			lower = append([]byte(prefix+after), 0)
		}
		err := r.Scan(lower, prefixEnd([]byte(prefix)), func(k, _ []byte) (bool, error) {
			out = append(out, string(k[len(prefix):]))
			return len(out) < limit, nil
		})
		return out, err
	}
	if len(districts) == 0 {
		return collect("c/")
	}
	var all []string
	for _, d := range slices.Compact(slices.Sorted(slices.Values(districts))) {
		ids, err := collect("d/" + d + "\x00")
		if err != nil {
			return nil, err
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	return all[:min(len(all), limit)], nil
}
