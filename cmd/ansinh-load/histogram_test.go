package main

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	values := []uint64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 999_999, 1_000_000, 123_456_789, 1<<40 - 1}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		values = append(values, rng.Uint64N(1<<40))
	}
	for _, v := range values {
		i := bucketOf(v)
		hi := bucketMax(i)
		// The bucket holds v, and is at most 1/128 of v wide.
		if hi < v || float64(hi-v) > float64(v)/histSub {
			t.Errorf("value %d: bucket %d ends at %d", v, i, hi)
		}
		if i > 0 && bucketMax(i-1) >= v {
			t.Errorf("value %d: the bucket before, %d, ends at %d, past it", v, i-1, bucketMax(i-1))
		}
	}
	if got := bucketOf(1 << 50); got != histBuckets-1 {
		t.Errorf("a value past the range is in bucket %d, want the last, %d", got, histBuckets-1)
	}
}

// exactQuantile is the q-quantile by sorting: the value of 1-based rank
// ceil(q*n).
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(float64(len(sorted))*q + 0.999999999)
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

func TestQuantiles(t *testing.T) {
	uniform := func(n int, lo, hi time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = lo + time.Duration(i)*(hi-lo)/time.Duration(n-1)
		}
		return out
	}
	rng := rand.New(rand.NewPCG(5, 6))
	skewed := make([]time.Duration, 10_000)
	for i := range skewed {
		skewed[i] = time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond)) // a long tail, as latencies have
	}
	tests := []struct {
		name   string
		values []time.Duration
	}{
		{"one value", []time.Duration{3 * time.Millisecond}},
		{"two values", []time.Duration{time.Millisecond, 9 * time.Millisecond}},
		{"uniform 1..1000 ms", uniform(1000, time.Millisecond, time.Second)},
		{"sub-microsecond", uniform(100, 0, 127)},
		{"exponential", skewed},
		{"one slow request in 1000", append(uniform(999, time.Millisecond, 2*time.Millisecond), 5*time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.record(v)
			}
			sorted := slices.Sorted(slices.Values(tt.values))
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				want := exactQuantile(sorted, q)
				got := h.quantile(q)
				// Never under the true value, at most a bucket's width over.
				if got < want || float64(got-want) > float64(want)/histSub {
					t.Errorf("q %v: %v, want %v (to +0.8%%)", q, got, want)
				}
			}
			if h.max != sorted[len(sorted)-1] || h.min != sorted[0] || h.n != uint64(len(sorted)) {
				t.Errorf("min %v max %v n %d", h.min, h.max, h.n)
			}
		})
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.99) != 0 || h.mean() != 0 {
		t.Fatalf("empty histogram: p99 %v, mean %v", h.quantile(0.99), h.mean())
	}
}

func TestMergeEqualsRecordingAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var all, a, b histogram
	for i := range 5000 {
		d := time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var merged histogram
	merged.merge(&a)
	merged.merge(&b)
	merged.merge(&histogram{}) // an idle worker changes nothing
	if merged != all {
		t.Fatalf("merged: n %d min %v max %v p99 %v; recorded: n %d min %v max %v p99 %v",
			merged.n, merged.min, merged.max, merged.quantile(0.99), all.n, all.min, all.max, all.quantile(0.99))
	}
}

func TestReportWrite(t *testing.T) {
	r := &report{scenario: "balance", concurrency: 8, elapsed: 2 * time.Second, result: *newResult()}
	for i := range 100 {
		d := time.Duration(i+1) * time.Millisecond
		r.latency.record(d)
		if i < 98 {
			r.ok.record(d)
			r.status[200]++
		} else {
			r.status[404]++
		}
	}
	var b strings.Builder
	r.write(&b)
	out := b.String()
	for _, want := range []string{
		"scenario: balance\n", "concurrency: 8\n", "requests: 100\n", "requests_per_s: 50\n",
		"ok_2xx: 98\n", "ok_per_s: 49\n", "failed: 2\n",
		// 2xx were 1..98 ms: p50 is the 49th (rounded up to its bucket's
		// edge, 187<<18 - 1 ns), p90 the 89th, p99 the 98th (its edge is
		// past the largest value, so the largest value).
		"latency_ms (2xx): p50 49.02  p90 89.13  p99 98.00  p99.9 98.00  max 98.00  mean 49.50\n",
		"latency_ms (all): ", "status 200: 98\n", "status 404: 2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestErrorKindsBounded(t *testing.T) {
	r := newResult()
	for i := range 3 * maxErrorKinds {
		r.addError(errorString(strings.Repeat("x", i)))
	}
	if len(r.errors) != maxErrorKinds+1 || r.errors["other errors"] != 2*maxErrorKinds {
		t.Fatalf("%d kinds, %d other", len(r.errors), r.errors["other errors"])
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
