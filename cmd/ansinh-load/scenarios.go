package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/ansinh/ansinh/domain/registry"
)

// A scenario makes the requests of a run. Each worker gets its own request
// source from newWorker and is the only one to call it, so a source may
// keep state (a cursor, what it changed) without locks.
type scenario interface {
	newWorker(id, workers int, rng *rand.Rand) (requestSource, error)
}

// requestSource returns the next request to send, or errExhausted when the
// scenario has nothing left for this worker.
type requestSource func() (*http.Request, error)

var errExhausted = errors.New("scenario exhausted")

// target is the server under load and the credential sent.
type target struct {
	base  *url.URL // scheme and host only
	token string
}

func (t target) request(method, path string, body []byte) (*http.Request, error) {
	u := *t.base
	u.Path = path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("request %s %s: %w", method, path, err)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPost {
		// One key per operation, as a client sends it: the server keeps
		// every key's answer, so this load exercises that bookkeeping too.
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	return req, nil
}

// balanceScenario reads the balance of beneficiaries picked at random from
// the imported set: every request is a different person, as at a ward desk.
type balanceScenario struct {
	target
	ids []string
}

func (s *balanceScenario) newWorker(_, _ int, rng *rand.Rand) (requestSource, error) {
	if len(s.ids) == 0 {
		return nil, errors.New("balance: no citizen IDs; pass --ids with the imported CSV")
	}
	return func() (*http.Request, error) {
		cid := s.ids[rng.IntN(len(s.ids))]
		return s.request(http.MethodGet, "/v1/beneficiaries/"+cid+"/balance", nil)
	}, nil
}

// meScenario is GET /v1/me: authentication, rate limit and logging without
// the store or the read models, the floor under every other route.
type meScenario struct{ target }

func (s *meScenario) newWorker(_, _ int, _ *rand.Rand) (requestSource, error) {
	return func() (*http.Request, error) { return s.request(http.MethodGet, "/v1/me", nil) }, nil
}

// registerScenario registers new beneficiaries, each with a citizen ID no
// one has: serials from firstSerial up, which the generated import file
// (serials 0 to its line count) never reaches. Each answer is a new stream
// written durably (the embedded store answers after its fsync).
type registerScenario struct {
	target
	firstSerial int
	next        atomic.Int64 // serials handed out so far
	places      []place
}

type place struct{ district, ward string }

// maxSerial: the serial is the last 6 digits of a citizen ID.
const maxSerial = 999_999

func newRegisterScenario(t target, firstSerial int) *registerScenario {
	return &registerScenario{target: t, firstSerial: firstSerial, places: hanoiPlaces()}
}

func hanoiPlaces() []place {
	var out []place
	for _, d := range registry.HanoiAdminUnits().Districts {
		for _, w := range d.Wards {
			out = append(out, place{d.Code, w.Code})
		}
	}
	return out
}

type registerBody struct {
	CitizenID   string `json:"citizen_id"`
	FullName    string `json:"full_name"`
	DateOfBirth string `json:"date_of_birth"`
	Sex         string `json:"sex"`
	Address     struct {
		Street       string `json:"street"`
		DistrictCode string `json:"district_code"`
		WardCode     string `json:"ward_code"`
	} `json:"address"`
	Category string `json:"category"`
}

var (
	familyNames = []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"}
	givenNames  = []string{"Văn An", "Thị Bình", "Văn Cường", "Thị Dung", "Văn Đức", "Thị Hoa", "Minh Khôi", "Thu Lan"}
)

func (s *registerScenario) newWorker(_, _ int, rng *rand.Rand) (requestSource, error) {
	return func() (*http.Request, error) {
		n := int(s.next.Add(1)) - 1
		serial := s.firstSerial + n
		if serial > maxSerial {
			return nil, errExhausted
		}
		sex, year := registry.Male, 1930+rng.IntN(70)
		if n%2 == 1 {
			sex = registry.Female
		}
		p := s.places[rng.IntN(len(s.places))]
		var b registerBody
		b.CitizenID = registry.MakeCitizenID("001", sex, year, serial)
		b.FullName = familyNames[n%len(familyNames)] + " " + givenNames[n%len(givenNames)]
		b.DateOfBirth = fmt.Sprintf("%04d-%02d-%02d", year, 1+rng.IntN(12), 1+rng.IntN(28))
		b.Sex = string(sex)
		b.Address.Street = fmt.Sprintf("Số %d ngõ %d", 1+rng.IntN(200), 1+rng.IntN(50))
		b.Address.DistrictCode, b.Address.WardCode = p.district, p.ward
		b.Category = "social_protection"
		body, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("register body: %w", err)
		}
		return s.request(http.MethodPost, "/v1/beneficiaries", body)
	}, nil
}

// paymentMethodScenario switches beneficiaries with a bank account between
// cash and bank transfer. Each worker owns every workers-th of them, so two
// workers never write the same stream (no conflicts to retry), and knows
// what it set last, so every request changes the method and writes one
// event: a command that decides "nothing to do" would not measure a
// durable write.
type paymentMethodScenario struct {
	target
	banked []string // citizen IDs whose method is bank_transfer at the start
}

func (s *paymentMethodScenario) newWorker(id, workers int, _ *rand.Rand) (requestSource, error) {
	var mine []string
	for i := id; i < len(s.banked); i += workers {
		mine = append(mine, s.banked[i])
	}
	if len(mine) == 0 {
		return nil, fmt.Errorf("payment-method: %d beneficiaries with a bank account for %d workers; pass --ids with the imported CSV", len(s.banked), workers)
	}
	cash := make([]bool, len(mine)) // the method this worker set last
	next := 0
	return func() (*http.Request, error) {
		i := next
		next = (next + 1) % len(mine)
		cash[i] = !cash[i]
		method := "bank_transfer"
		if cash[i] {
			method = "cash"
		}
		return s.request(http.MethodPost, "/v1/beneficiaries/"+mine[i]+"/payment-method", []byte(`{"method":"`+method+`"}`))
	}, nil
}

// Limits of an --ids file: the import takes at most a million lines.
const (
	maxIDs       = 1_000_000
	maxIDsBytes  = 512 << 20
	citizenIDLen = 12
)

// idSet is what the load needs of an import file: every citizen ID, and
// those paid by bank transfer (a bank account, no other method chosen).
type idSet struct {
	all    []string
	banked []string
}

// readIDs reads the citizen IDs of an import CSV (docs/import.md): the
// column citizen_id, and bank_code and payment_method when present.
func readIDs(path string) (idSet, error) {
	var out idSet
	f, err := os.Open(path)
	if err != nil {
		return out, fmt.Errorf("--ids: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(io.LimitReader(f, maxIDsBytes))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return out, fmt.Errorf("--ids %s: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	cidCol, ok := col["citizen_id"]
	if !ok {
		return out, fmt.Errorf("--ids %s: no citizen_id column in the header", path)
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("--ids %s: %w", path, err)
		}
		if len(out.all) == maxIDs {
			return out, fmt.Errorf("--ids %s: more than %d lines", path, maxIDs)
		}
		var cid string
		if cidCol < len(rec) {
			cid = strings.TrimSpace(rec[cidCol])
		}
		if !isCitizenID(cid) {
			return out, fmt.Errorf("--ids %s: line %d: want a 12-digit citizen_id", path, line)
		}
		out.all = append(out.all, cid)
		if m := field(rec, "payment_method"); field(rec, "bank_code") != "" && (m == "" || m == "bank_transfer") {
			out.banked = append(out.banked, cid)
		}
	}
	return out, nil
}

// isCitizenID: 12 digits, so that it goes into a URL path as it is.
func isCitizenID(s string) bool {
	if len(s) != citizenIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
