package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles ansinh once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ansinh")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// server is a running `ansinh serve`.
type server struct {
	cmd        *exec.Cmd
	addr       string
	adminToken string // empty when the store already had users
	lines      chan string
	early      []string // stderr up to the "listening" line
}

// startServer starts the binary on a free port and reads its stderr until
// it says where it listens. The deadline guards against a hang; it is not a
// performance assertion.
func startServer(t *testing.T, bin, data string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", data, "--log-format", "json")
	cmd.Env = append(os.Environ(), "ANSINH_ADDR=", "ANSINH_STORE=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.After(60 * time.Second)
	for s.addr == "" {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatal("the server exited before listening")
			}
			s.early = append(s.early, line)
			if tok, found := strings.CutPrefix(line, "admin token: "); found {
				s.adminToken = tok
			}
			var entry struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "listening" {
				s.addr = entry.Addr
			}
		case <-deadline:
			t.Fatal("the server did not report its address within 60s")
		}
	}
	return s
}

// stop sends SIGTERM and returns the exit code and the rest of stderr.
func (s *server) stop(t *testing.T) (int, string) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for line := range s.lines {
		rest = append(rest, line)
	}
	err := s.cmd.Wait()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), strings.Join(rest, "\n")
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, strings.Join(rest, "\n")
}

func (s *server) get(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServeEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	t.Setenv("ANSINH_SEAL_EVERY", "2") // seals within the test (readmodels_test.go)

	srv := startServer(t, bin, data)
	if !strings.HasPrefix(srv.adminToken, "ans_") {
		t.Fatalf("no admin token printed on first start (got %q)", srv.adminToken)
	}
	if code, body := srv.get(t, "/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := srv.get(t, "/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, _ := srv.get(t, "/v1/me", ""); code != 401 {
		t.Fatalf("me without a token: %d", code)
	}
	code, body := srv.get(t, "/v1/me", srv.adminToken)
	if code != 200 || !strings.Contains(body, `"user_id":"admin"`) || !strings.Contains(body, `"role":"admin"`) {
		t.Fatalf("me: %d %s", code, body)
	}
	keyID := checkReadModels(t, srv, data, srv.adminToken)
	exit, logs := srv.stop(t)
	if exit != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr:\n%s", exit, logs)
	}
	if !strings.Contains(logs, `"msg":"shutting down"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Fatalf("no graceful shutdown in the log:\n%s", logs)
	}
	// The token is printed in the banner only, never in a log line.
	for _, line := range append(srv.early, strings.Split(logs, "\n")...) {
		if strings.Contains(line, srv.adminToken) && !strings.HasPrefix(line, "admin token: ") {
			t.Fatalf("the admin token leaked into: %s", line)
		}
	}

	// The store outlives the process: a restart on the same directory
	// creates no second admin, and the first token still works. That it
	// opens at all shows the first process released the directory.
	again := startServer(t, bin, data)
	if again.adminToken != "" {
		t.Fatal("a second admin was created on restart")
	}
	if code, _ := again.get(t, "/v1/me", srv.adminToken); code != 200 {
		t.Fatalf("the admin token after a restart: %d", code)
	}
	// The read models and the seal key outlive the process too.
	if again := checkReadModels(t, again, data, srv.adminToken); again != keyID {
		t.Fatalf("seal key %s after a restart, was %s", again, keyID)
	}
	if exit, logs := again.stop(t); exit != 0 {
		t.Fatalf("second run: exit %d\n%s", exit, logs)
	}
}
