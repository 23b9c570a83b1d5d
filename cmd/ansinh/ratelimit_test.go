package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRateLimitFlag(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want float64
		bad  bool
	}{
		{nil, nil, 20, false},
		{[]string{"--rate-limit", "50000"}, nil, 50_000, false},
		{nil, map[string]string{"ANSINH_RATE_LIMIT": "2.5"}, 2.5, false},
		{[]string{"--rate-limit", "100"}, map[string]string{"ANSINH_RATE_LIMIT": "7"}, 100, false}, // the flag wins
		{[]string{"--rate-limit", "0"}, nil, 0, true},
		{[]string{"--rate-limit", "0.5"}, nil, 0, true}, // a burst of one request: every retry would wait
		{[]string{"--rate-limit", "100001"}, nil, 0, true},
		{[]string{"--rate-limit", "NaN"}, nil, 0, true},
		{[]string{"--rate-limit", "-Inf"}, nil, 0, true},
		{nil, map[string]string{"ANSINH_RATE_LIMIT": "fast"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := parseServe(tt.args, &out, func(k string) string { return tt.env[k] })
			switch {
			case tt.bad && err == nil:
				t.Fatalf("accepted: %v", cfg.rateLimit)
			case tt.bad:
				if !errors.As(err, new(usageError)) {
					t.Fatalf("error %v is not a usage error", err)
				}
			case err != nil:
				t.Fatal(err)
			case cfg.rateLimit != tt.want:
				t.Fatalf("rate limit %v, want %v", cfg.rateLimit, tt.want)
			}
		})
	}
}

func TestCacheFlag(t *testing.T) {
	tests := []struct {
		args      []string
		env       map[string]string
		wantMiB   int
		wantStore int64
		bad       bool
	}{
		{nil, nil, 1024, 256 << 20, false},
		{[]string{"--cache-mib", "64"}, nil, 64, 16 << 20, false},
		{nil, map[string]string{"ANSINH_CACHE_MIB": "4096"}, 4096, 1 << 30, false},
		{[]string{"--cache-mib", "15"}, nil, 0, 0, true},
		{[]string{"--cache-mib", "65537"}, nil, 0, 0, true},
		{nil, map[string]string{"ANSINH_CACHE_MIB": "lots"}, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := parseServe(tt.args, &out, func(k string) string { return tt.env[k] })
			switch {
			case tt.bad && err == nil:
				t.Fatalf("accepted: %v", cfg.cacheMiB)
			case tt.bad:
				if !errors.As(err, new(usageError)) {
					t.Fatalf("error %v is not a usage error", err)
				}
			case err != nil:
				t.Fatal(err)
			case cfg.cacheMiB != tt.wantMiB || cfg.storeConfig.cacheBytes != tt.wantStore:
				t.Fatalf("cache %d MiB, store %d bytes; want %d MiB, %d bytes", cfg.cacheMiB, cfg.storeConfig.cacheBytes, tt.wantMiB, tt.wantStore)
			}
		})
	}
}
