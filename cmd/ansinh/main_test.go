package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func TestExitCodesAndOneLineErrors(t *testing.T) {
	data := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		err  string // in stderr
	}{
		{"no command", nil, exitUsage, "usage: ansinh"},
		{"unknown command", []string{"launch"}, exitUsage, `unknown command "launch"`},
		{"unknown flag", []string{"serve", "--port", "1"}, exitUsage, "flag provided but not defined: -port"},
		{"stray argument", []string{"serve", "now"}, exitUsage, `unexpected argument "now"`},
		{"bad store", []string{"serve", "--store", "postgres://x"}, exitUsage, "want empty (the embedded store) or an esdb://"},
		{"bad shutdown", []string{"serve", "--shutdown-timeout", "0s"}, exitUsage, "--shutdown-timeout"},
		{"issuer without key", []string{"serve", "--jwt-issuer", "x"}, exitUsage, "need --jwt-key"},
		{"bad log level", []string{"serve", "--data", data, "--log-level", "loud"}, exitUsage, "--log-level"},
		{"missing jwt key file", []string{"serve", "--data", data, "--jwt-key", filepath.Join(data, "nope.pem")}, exitFailure, "--jwt-key"},
		{"users without subcommand", []string{"users"}, exitUsage, "want a subcommand"},
		{"users add without role", []string{"users", "add", "--name", "lan", "--data", data}, exitUsage, "--role is required"},
		{"users token without name", []string{"users", "token", "--data", data}, exitUsage, "--name is required"},
		{"users add bad role", []string{"users", "add", "--name", "lan", "--role", "boss", "--data", data}, exitFailure, `role "boss"`},
		{"users disable unknown", []string{"users", "disable", "--name", "ghost", "--data", data}, exitFailure, `no user named "ghost"`},
		{"help", []string{"serve", "-h"}, exitOK, ""},
		{"version", []string{"version"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.err) {
				t.Fatalf("stderr %q lacks %q", stderr, tt.err)
			}
			if tt.code != exitOK && tt.args != nil && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("the error is not one line: %q", stderr)
			}
		})
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	env := map[string]string{"ANSINH_ADDR": "127.0.0.1:9000", "ANSINH_DATA": "/env/data", "ANSINH_LOG_FORMAT": "text"}
	get := func(k string) string { return env[k] }
	var out bytes.Buffer

	cfg, err := parseServe(nil, &out, get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != "127.0.0.1:9000" || cfg.storeConfig.data != "/env/data" || cfg.logFormat != "text" {
		t.Fatalf("environment not applied: %+v", cfg)
	}
	cfg, err = parseServe([]string{"--addr", ":7000", "--data", "/flag/data"}, &out, get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != ":7000" || cfg.storeConfig.data != "/flag/data" || cfg.logFormat != "text" {
		t.Fatalf("flags did not win: %+v", cfg)
	}
	cfg, err = parseServe(nil, &out, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != ":8080" || cfg.storeConfig.data != "./data" || cfg.storeConfig.store != "" || cfg.shutdownTimeout != 15*time.Second {
		t.Fatalf("defaults: %+v", cfg)
	}
	// An environment value is checked like a flag.
	if _, err := parseServe(nil, &out, func(k string) string {
		if k == "ANSINH_STORE" {
			return "mysql://x"
		}
		return ""
	}); err == nil {
		t.Fatal("a bad ANSINH_STORE was accepted")
	}
}

func TestStoreDescriptionHidesCredentials(t *testing.T) {
	got := storeConfig{store: "esdb://admin:changeit@node1:2113?tls=false"}.describe()
	if strings.Contains(got, "changeit") || !strings.Contains(got, "node1:2113") {
		t.Fatalf("describe = %q", got)
	}
}

func TestUsersCommands(t *testing.T) {
	data := t.TempDir()
	code, token, stderr := runCmd(t, nil, "users", "add", "--name", "lan", "--role", "registrar", "--data", data)
	if code != exitOK || !strings.HasPrefix(token, "ans_") || strings.Count(token, "\n") != 1 {
		t.Fatalf("add: exit %d, stdout %q, stderr %q", code, token, stderr)
	}
	env := map[string]string{"ANSINH_DATA": data}
	code, list, _ := runCmd(t, env, "users", "list")
	if code != exitOK || !strings.Contains(list, "lan") || !strings.Contains(list, "registrar") || !strings.Contains(list, "active") {
		t.Fatalf("list: exit %d\n%s", code, list)
	}
	code, token2, _ := runCmd(t, env, "users", "token", "--name", "lan")
	if code != exitOK || token2 == token || !strings.HasPrefix(token2, "ans_") {
		t.Fatalf("token: exit %d, %q", code, token2)
	}
	if code, _, _ := runCmd(t, env, "users", "disable", "--name", "lan"); code != exitOK {
		t.Fatalf("disable: exit %d", code)
	}
	if _, list, _ := runCmd(t, env, "users", "list"); !strings.Contains(list, "disabled") {
		t.Fatalf("list after disable:\n%s", list)
	}
	if code, _, stderr := runCmd(t, env, "users", "token", "--name", "lan"); code != exitFailure || !strings.Contains(stderr, "disabled") {
		t.Fatalf("token for a disabled user: exit %d, %q", code, stderr)
	}
}
