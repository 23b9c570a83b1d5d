package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/registry"
)

func TestLoopbackURL(t *testing.T) {
	tests := []struct {
		raw, want string // want "" means refused
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"https://127.9.9.9:443", "https://127.9.9.9:443"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://localhost:8080", "http://localhost:8080"},
		{"http://10.0.0.5:8080", ""},
		{"http://[::ffff:10.0.0.5]:8080", ""},
		{"http://0.0.0.0:8080", ""}, // "any address", which connects to the machine's own but names none
		{"http://example.com", ""},
		{"http://localhost.example.com:8080", ""},
		{"http://127.0.0.1.nip.io:8080", ""},
		{"ftp://127.0.0.1", ""},
		{"127.0.0.1:8080", ""},
		{"http://user:pw@127.0.0.1:8080", ""},
		{"http://127.0.0.1:8080/v1", ""},
		{"http://127.0.0.1:8080?x=1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := loopbackURL(tt.raw)
			switch {
			case tt.want == "" && err == nil:
				t.Fatalf("accepted as %s", u)
			case tt.want != "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && u.String() != tt.want:
				t.Fatalf("got %s, want %s", u, tt.want)
			}
		})
	}
}

func TestDialerRefusesOtherHosts(t *testing.T) {
	// TEST-NET-1 (RFC 5737): never routed. The check runs before connect,
	// so nothing leaves the machine either way.
	_, err := loopbackDialer().DialContext(context.Background(), "tcp", "192.0.2.1:80")
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("dial 192.0.2.1: %v", err)
	}
}

func TestParseLoad(t *testing.T) {
	env := func(k string) string { return map[string]string{"ANSINH_TOKEN": "ans_env"}[k] }
	cfg, err := parseLoad([]string{"--scenario", "register", "--concurrency", "8"}, &bytes.Buffer{}, env)
	if err != nil || cfg.token != "ans_env" || cfg.concurrency != 8 || cfg.duration != 20*time.Second {
		t.Fatalf("%+v, %v", cfg, err)
	}
	for _, args := range [][]string{
		{"--concurrency", "0"}, {"--concurrency", "1025"}, {"--duration", "0s"}, {"--duration", "2h"},
		{"--warmup", "-1s"}, {"--requests", "-1"}, {"--timeout", "0s"}, {"--first-serial", "1000000"}, {"extra"},
	} {
		if _, err := parseLoad(args, &bytes.Buffer{}, env); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseLoad(nil, &bytes.Buffer{}, func(string) string { return "" }); err == nil {
		t.Error("no token accepted")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ids.csv")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadIDs(t *testing.T) {
	ids, err := readIDs(writeFile(t, "\ufeffCitizen_ID,full_name,bank_code,payment_method\n"+
		"001083000000,A,VCB,\n"+ // a bank and no method: bank transfer
		"001164000001,B,,\n"+
		"001083000002,C,VCB,cash\n"+
		"001083000003,D,BIDV,bank_transfer\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids.all, " "); got != "001083000000 001164000001 001083000002 001083000003" {
		t.Errorf("all: %s", got)
	}
	if got := strings.Join(ids.banked, " "); got != "001083000000 001083000003" {
		t.Errorf("banked: %s", got)
	}
	for name, content := range map[string]string{
		"no citizen_id column": "full_name\nA\n",
		"short ID":             "citizen_id\n00108300000\n",
		"letters":              "citizen_id\n00108300000x\n",
		"path in the ID":       "citizen_id\n001/../00000\n",
		"empty file":           "",
	} {
		if _, err := readIDs(writeFile(t, content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// fakeAPI answers the routes the scenarios call and checks what an ansinh
// server would: the token, the idempotency keys, the citizen IDs.
type fakeAPI struct {
	t        *testing.T
	missing  string // a citizen ID whose balance is 404
	mu       sync.Mutex
	requests int
	keys     map[string]bool
	cids     map[string]bool   // registered
	methods  map[string]string // last payment method per citizen ID
	bad      []string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	return &fakeAPI{t: t, keys: map[string]bool{}, cids: map[string]bool{}, methods: map[string]string{}}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	fail := func(why string) {
		f.bad = append(f.bad, r.Method+" "+r.URL.Path+": "+why)
		w.WriteHeader(http.StatusBadRequest)
	}
	if r.Header.Get("Authorization") != "Bearer ans_test" {
		fail("no token")
		return
	}
	if r.Method == http.MethodPost {
		key := r.Header.Get("Idempotency-Key")
		if key == "" || f.keys[key] {
			fail("missing or repeated Idempotency-Key")
			return
		}
		f.keys[key] = true
	}
	parts := strings.Split(r.URL.Path, "/") // "", v1, beneficiaries, cid, what
	switch {
	case r.Method == http.MethodGet && len(parts) == 5 && parts[4] == "balance":
		if parts[3] == f.missing {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"citizen_id":"` + parts[3] + `"}`))
	case r.Method == http.MethodPost && r.URL.Path == "/v1/beneficiaries":
		var b registerBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			fail(err.Error())
			return
		}
		dob, err := domain.ParseDate(b.DateOfBirth)
		if err != nil {
			fail(err.Error())
			return
		}
		if err := registry.CheckCitizenIDMatches("citizen_id", b.CitizenID, dob, registry.Sex(b.Sex)); err != nil {
			fail(err.Error())
			return
		}
		if _, ok := registry.HanoiAdminUnits().Ward(b.Address.DistrictCode, b.Address.WardCode); !ok {
			fail("no such ward")
			return
		}
		if f.cids[b.CitizenID] {
			w.WriteHeader(http.StatusConflict) // citizen_id_taken
			return
		}
		f.cids[b.CitizenID] = true
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && len(parts) == 5 && parts[4] == "payment-method":
		var b struct{ Method string }
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			fail(err.Error())
			return
		}
		last, ok := f.methods[parts[3]]
		if !ok {
			last = "bank_transfer" // as imported
		}
		if b.Method == last {
			fail("method unchanged: nothing would be written")
			return
		}
		f.methods[parts[3]] = b.Method
		w.Write([]byte(`{}`))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func loadOnce(t *testing.T, srvURL string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"--url", srvURL, "--warmup", "0s", "--duration", "1m"}, args...)
	code := run(context.Background(), args, &stdout, &stderr, func(k string) string {
		return map[string]string{"ANSINH_TOKEN": "ans_test"}[k]
	})
	return code, stdout.String(), stderr.String()
}

func TestLoadAgainstFakeServer(t *testing.T) {
	ids := "citizen_id,bank_code\n"
	for i := range 40 {
		bank := ""
		if i%2 == 0 {
			bank = "VCB"
		}
		ids += registry.MakeCitizenID("001", registry.Male, 1950, i) + "," + bank + "\n"
	}
	idsFile := writeFile(t, ids)
	tests := []struct {
		name     string
		args     []string
		missing  string
		code     int
		want     []string
		requests int
	}{
		{"balance", []string{"--scenario", "balance", "--ids", idsFile, "--requests", "300", "--concurrency", "4"}, "",
			exitOK, []string{"requests: 300\n", "ok_2xx: 300\n", "failed: 0\n", "status 200: 300\n"}, 300},
		{"balance of someone missing", []string{"--scenario", "balance", "--ids", idsFile, "--requests", "400", "--concurrency", "4"},
			registry.MakeCitizenID("001", registry.Male, 1950, 7),
			exitFailure, []string{"requests: 400\n", "status 404: ", "latency_ms (all): "}, 400},
		{"register", []string{"--scenario", "register", "--requests", "250", "--concurrency", "8"}, "",
			exitOK, []string{"requests: 250\n", "status 201: 250\n"}, 250},
		{"register until the serials run out", []string{"--scenario", "register", "--first-serial", "999990", "--concurrency", "3"}, "",
			exitOK, []string{"requests: 10\n", "status 201: 10\n"}, 10},
		// Each worker owns 20/4 = 5 people and switches each back and forth.
		{"payment-method", []string{"--scenario", "payment-method", "--ids", idsFile, "--requests", "200", "--concurrency", "4"}, "",
			exitOK, []string{"requests: 200\n", "status 200: 200\n"}, 200},
	}
	for _, client := range []string{"direct", "stdlib"} {
		for _, tt := range tests {
			t.Run(client+"/"+tt.name, func(t *testing.T) {
				api := newFakeAPI(t)
				api.missing = tt.missing
				srv := httptest.NewServer(api)
				defer srv.Close()
				code, out, errOut := loadOnce(t, srv.URL, append([]string{"--client", client}, tt.args...)...)
				if code != tt.code {
					t.Errorf("exit %d, want %d; %s", code, tt.code, errOut)
				}
				for _, w := range tt.want {
					if !strings.Contains(out, w) {
						t.Errorf("report lacks %q:\n%s", w, out)
					}
				}
				api.mu.Lock()
				defer api.mu.Unlock()
				if api.requests != tt.requests {
					t.Errorf("the server saw %d requests, want %d", api.requests, tt.requests)
				}
				if len(api.bad) > 0 {
					t.Errorf("bad requests: %v", api.bad[:min(5, len(api.bad))])
				}
			})
		}
	}
}

// TestDirectClientKeepsAndRedialsConnections: one connection per worker
// while the server keeps it, a new one after the server closes it, and
// every answer read whole in between.
func TestDirectClientKeepsAndRedialsConnections(t *testing.T) {
	var served, closing atomic.Int64
	conns := map[string]bool{}
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		if served.Add(1)%10 == 0 {
			closing.Add(1)
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.Repeat("x", 20_000))) // chunked: no Content-Length
	}))
	srv.Start()
	defer srv.Close()
	code, out, errOut := loadOnce(t, srv.URL, "--client", "direct", "--scenario", "me", "--requests", "100", "--concurrency", "2", "--warmup", "0s")
	if code != exitOK || !strings.Contains(out, "status 200: 100\n") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	// Two workers' first connections, and one more after each close.
	if want := 2 + int(closing.Load()); len(conns) > want || len(conns) < 2+int(closing.Load())-2 {
		t.Errorf("%d connections for %d closes by the server, want about %d", len(conns), closing.Load(), want)
	}
}

func TestLoadStopsAtDuration(t *testing.T) {
	srv := httptest.NewServer(newFakeAPI(t))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--url", srv.URL, "--scenario", "register", "--warmup", "50ms", "--duration", "100ms", "--concurrency", "2"},
		&stdout, &stderr, func(k string) string { return "ans_test" })
	if code != exitOK || !strings.Contains(stdout.String(), "failed: 0\n") {
		t.Fatalf("exit %d: %s %s", code, stdout.String(), stderr.String())
	}
}

func TestLoadRefusesRemoteURL(t *testing.T) {
	code, _, errOut := loadOnce(t, "http://192.0.2.1:8080", "--scenario", "register")
	if code != exitUsage || !strings.Contains(errOut, "not a loopback address") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestTransportErrorsCounted(t *testing.T) {
	srv := httptest.NewServer(newFakeAPI(t))
	url := srv.URL
	srv.Close() // nothing listens there now
	code, out, _ := loadOnce(t, url, "--scenario", "register", "--requests", "5", "--concurrency", "1")
	if code != exitFailure || !strings.Contains(out, "requests: 5\n") || !strings.Contains(out, "ok_2xx: 0\n") || !strings.Contains(out, "error ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestGenCSV(t *testing.T) {
	out := filepath.Join(t.TempDir(), "people.csv")
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"gen-csv", "--lines", "100", "--out", out}, &bytes.Buffer{}, &stderr, os.Getenv); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	ids, err := readIDs(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range ids.all {
		if err := registry.ValidateCitizenID("citizen_id", id); err != nil || seen[id] {
			t.Fatalf("ID %s: %v, seen %v", id, err, seen[id])
		}
		seen[id] = true
	}
	if len(ids.all) != 100 || len(ids.banked) != 50 {
		t.Fatalf("%d IDs, %d with a bank", len(ids.all), len(ids.banked))
	}
}

func TestWaitForReady(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.URL.Path != "/readyz" || calls < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"wait", "--url", srv.URL, "--timeout", "1m"}, &bytes.Buffer{}, &stderr, os.Getenv); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Fatalf("%d calls to /readyz, want 3", calls)
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		line string
		want time.Duration // -1: an error
	}{
		{"4242 (ansinh) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 567 0 0 20 0 9 0 100 1000 200 18446744073709551615", 18010 * time.Millisecond},
		{"7 (a) b) (c) R 1 7 7 0 -1 0 0 0 0 0 10 20 0 0", 300 * time.Millisecond}, // a name with spaces and parentheses
		{"7 (ansinh) S 1 7 7 0 -1 0 0 0 0 0 10", -1},                              // cut short
		{"7 (ansinh) S 1 7 7 0 -1 0 0 0 0 0 x 20", -1},
		{"7 ansinh S", -1},
	}
	for _, tt := range tests {
		got, err := parseProcStat([]byte(tt.line))
		switch {
		case tt.want < 0 && err == nil:
			t.Errorf("%q: %v, want an error", tt.line, got)
		case tt.want >= 0 && (err != nil || got != tt.want):
			t.Errorf("%q: %v, %v; want %v", tt.line, got, err, tt.want)
		}
	}
	// This process: some CPU time, and never less later.
	a, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b, err := processCPU(os.Getpid())
	if err != nil || b < a {
		t.Fatalf("%v then %v, %v", a, b, err)
	}
}

func TestServerCPUReported(t *testing.T) {
	srv := httptest.NewServer(newFakeAPI(t))
	defer srv.Close()
	code, out, errOut := loadOnce(t, srv.URL, "--scenario", "register", "--requests", "50", "--concurrency", "2",
		"--server-pid", strconv.Itoa(os.Getpid())) // the fake server runs in this process
	if code != exitOK || !strings.Contains(out, "server_cpu_us_per_request: ") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if code, _, _ := loadOnce(t, srv.URL, "--scenario", "register", "--requests", "5", "--server-pid", "999999999"); code != exitFailure {
		t.Fatalf("no such process: exit %d", code)
	}
}
