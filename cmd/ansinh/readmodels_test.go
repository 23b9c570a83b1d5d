package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ansinh/ansinh/projections/audit"
)

func TestSealFlags(t *testing.T) {
	tests := []struct {
		args     []string
		env      map[string]string
		every    int
		interval time.Duration
		bad      bool
	}{
		{nil, nil, 10_000, 5 * time.Minute, false},
		{[]string{"--seal-every", "500", "--seal-interval", "30s"}, nil, 500, 30 * time.Second, false},
		{nil, map[string]string{"ANSINH_SEAL_EVERY": "2", "ANSINH_SEAL_INTERVAL": "1s"}, 2, time.Second, false},
		{[]string{"--seal-every", "1"}, nil, 0, 0, true}, // it would seal its own seals forever
		{[]string{"--seal-every", "20001"}, nil, 0, 0, true},
		{[]string{"--seal-interval", "500ms"}, nil, 0, 0, true},
		{[]string{"--data", ""}, nil, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := parseServe(tt.args, &out, func(k string) string { return tt.env[k] })
			switch {
			case tt.bad && err == nil:
				t.Fatalf("accepted: %+v", cfg)
			case tt.bad:
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("error %v is not a usage error", err)
				}
			case err != nil:
				t.Fatal(err)
			case cfg.sealEvery != tt.every || cfg.sealInterval != tt.interval:
				t.Fatalf("every %d, interval %s", cfg.sealEvery, cfg.sealInterval)
			}
		})
	}
}

// do sends a request to a running server and decodes a JSON answer into
// out (when not nil).
func (s *server) do(t *testing.T, method, path, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", "e2e-"+path+"-"+time.Now().Format(time.RFC3339Nano))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// eventually polls cond until it holds; the deadline guards against a
// hang and is not a timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkReadModels is the read side of a running `ansinh serve` (started
// with ANSINH_SEAL_EVERY=2): the read models catch up and /readyz reports
// them; the seal key is on disk with mode 0600 and is the one the API
// hands out; seals are written and a verification of the log is ok. It
// returns the seal key's ID.
func checkReadModels(t *testing.T, srv *server, data, token string) string {
	t.Helper()
	var status struct {
		Behind bool `json:"behind"`
		Live   bool `json:"live"`
		Sealer *struct {
			LastSeal uint64 `json:"last_seal"`
		} `json:"sealer"`
	}
	eventually(t, "the read models catch up and the sealer seals", func() bool {
		code := srv.do(t, http.MethodGet, "/v1/projections", token, "", &status)
		return code == 200 && !status.Behind && status.Live && status.Sealer != nil && status.Sealer.LastSeal > 0
	})
	var ready struct {
		Status string `json:"status"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	if code := srv.do(t, http.MethodGet, "/readyz", "", "", &ready); code != 200 || len(ready.Checks) != 2 ||
		ready.Checks[1].Name != "projections" || !ready.Checks[1].OK {
		t.Fatalf("readyz: %d %+v", code, ready)
	}
	if code, body := srv.get(t, "/metrics", ""); code != 200 || !strings.Contains(body, "ansinh_projection_lag_seconds ") {
		t.Fatalf("metrics without the projection lag: %d", code)
	}

	// The key: private 0600, public beside it, the one the API serves.
	st, err := os.Stat(filepath.Join(data, audit.PrivateKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seal key: %v, mode %v", err, st.Mode())
	}
	pemBytes, err := os.ReadFile(filepath.Join(data, audit.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	var keys struct {
		Keys []struct {
			KeyID string `json:"key_id"`
		} `json:"keys"`
	}
	if code := srv.do(t, http.MethodGet, "/v1/seals/public-key", token, "", &keys); code != 200 || len(keys.Keys) != 1 || keys.Keys[0].KeyID != audit.KeyID(pub) {
		t.Fatalf("public key: %d %+v, file's key %s", code, keys, audit.KeyID(pub))
	}

	// The books net to zero; a search answers.
	var tb struct {
		Balanced bool `json:"balanced"`
	}
	if code := srv.do(t, http.MethodGet, "/v1/trial-balance", token, "", &tb); code != 200 || !tb.Balanced {
		t.Fatalf("trial balance: %d, balanced %v", code, tb.Balanced)
	}
	if code := srv.do(t, http.MethodGet, "/v1/beneficiaries?q=nguyen", token, "", nil); code != 200 {
		t.Fatalf("search: %d", code)
	}

	// A verification of the log, in the background.
	var v struct {
		ID     string `json:"verification_id"`
		State  string `json:"state"`
		Report *struct {
			OK    bool `json:"ok"`
			Seals int  `json:"seals"`
		} `json:"report"`
	}
	if code := srv.do(t, http.MethodPost, "/v1/verifications", token, "", &v); code != 202 {
		t.Fatalf("start verification: %d", code)
	}
	eventually(t, "the verification finishes", func() bool {
		return srv.do(t, http.MethodGet, "/v1/verifications/"+v.ID, token, "", &v) == 200 && v.State != "running"
	})
	if v.State != "succeeded" || v.Report == nil || !v.Report.OK || v.Report.Seals == 0 {
		t.Fatalf("verification: %+v %+v", v, v.Report)
	}
	return keys.Keys[0].KeyID
}
