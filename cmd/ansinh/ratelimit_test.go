package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestServeTuningFlags: the rate limit and the cache size, from flags and
// the environment (the flag wins), with their bounds.
func TestServeTuningFlags(t *testing.T) {
	rate := func(want float64) func(serveConfig) error {
		return func(c serveConfig) error {
			if c.rateLimit != want {
				return fmt.Errorf("rate limit %v, want %v", c.rateLimit, want)
			}
			return nil
		}
	}
	cache := func(mib int, store int64) func(serveConfig) error {
		return func(c serveConfig) error {
			if c.cacheMiB != mib || c.storeConfig.cacheBytes != store {
				return fmt.Errorf("cache %d MiB, store %d bytes; want %d MiB, %d bytes", c.cacheMiB, c.storeConfig.cacheBytes, mib, store)
			}
			return nil
		}
	}
	tests := []struct {
		args  []string
		env   map[string]string
		check func(serveConfig) error // nil: refused with a usage error
	}{
		{nil, nil, rate(20)},
		{[]string{"--rate-limit", "50000"}, nil, rate(50_000)},
		{nil, map[string]string{"ANSINH_RATE_LIMIT": "2.5"}, rate(2.5)},
		{[]string{"--rate-limit", "100"}, map[string]string{"ANSINH_RATE_LIMIT": "7"}, rate(100)},
		{[]string{"--rate-limit", "0"}, nil, nil},
		{[]string{"--rate-limit", "0.5"}, nil, nil}, // a burst of one request: every retry would wait
		{[]string{"--rate-limit", "100001"}, nil, nil},
		{[]string{"--rate-limit", "NaN"}, nil, nil},
		{[]string{"--rate-limit", "-Inf"}, nil, nil},
		{nil, map[string]string{"ANSINH_RATE_LIMIT": "fast"}, nil},
		{nil, nil, cache(1024, 256<<20)},
		{[]string{"--cache-mib", "64"}, nil, cache(64, 16<<20)},
		{nil, map[string]string{"ANSINH_CACHE_MIB": "4096"}, cache(4096, 1<<30)},
		{[]string{"--cache-mib", "15"}, nil, nil},
		{[]string{"--cache-mib", "65537"}, nil, nil},
		{nil, map[string]string{"ANSINH_CACHE_MIB": "lots"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+fmt.Sprint(tt.env), func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := parseServe(tt.args, &out, func(k string) string { return tt.env[k] })
			switch {
			case tt.check == nil && err == nil:
				t.Fatalf("accepted: %+v", cfg)
			case tt.check == nil:
				if !errors.As(err, new(usageError)) {
					t.Fatalf("error %v is not a usage error", err)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if err := tt.check(cfg); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
