package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// result is what one worker measured; results are merged into the report.
type result struct {
	latency histogram // every measured request, whatever its outcome
	ok      histogram // 2xx only: the latencies the goals speak of
	status  map[int]uint64
	// transport errors (refused connection, timeout, reset) by a short
	// description, bounded by maxErrorKinds.
	errors map[string]uint64
}

// maxErrorKinds bounds the distinct transport errors kept: their text can
// hold addresses and ports, and a run of a million failures must not keep
// a million strings.
const maxErrorKinds = 20

func newResult() *result {
	return &result{status: map[int]uint64{}, errors: map[string]uint64{}}
}

func (r *result) addError(err error) {
	msg := err.Error()
	if _, ok := r.errors[msg]; !ok && len(r.errors) >= maxErrorKinds {
		msg = "other errors"
	}
	r.errors[msg]++
}

func (r *result) merge(o *result) {
	r.latency.merge(&o.latency)
	r.ok.merge(&o.ok)
	for k, v := range o.status {
		r.status[k] += v
	}
	for k, v := range o.errors {
		if _, ok := r.errors[k]; !ok && len(r.errors) >= maxErrorKinds {
			k = "other errors"
		}
		r.errors[k] += v
	}
}

// report is a run's outcome.
type report struct {
	scenario    string
	concurrency int
	elapsed     time.Duration // measured window: after the warm-up, to the last answer
	// serverCPU is the server process's CPU time (user and system, all
	// threads) over the measured window, when its process ID was given.
	serverCPU      time.Duration
	serverCPUKnown bool
	result
}

func (r *report) requests() uint64 { return r.latency.n }

// failed counts the requests that did not end in a 2xx.
func (r *report) failed() uint64 { return r.requests() - r.ok.n }

func (r *report) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests()) / r.elapsed.Seconds()
}

func (r *report) okRate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok.n) / r.elapsed.Seconds()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// write prints the report for a person and for grep: one "key: value" line
// each, latencies in milliseconds.
func (r *report) write(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario: %s\n", r.scenario)
	fmt.Fprintf(&b, "concurrency: %d\n", r.concurrency)
	fmt.Fprintf(&b, "duration_s: %.2f\n", r.elapsed.Seconds())
	fmt.Fprintf(&b, "requests: %d\n", r.requests())
	fmt.Fprintf(&b, "requests_per_s: %.0f\n", r.rate())
	fmt.Fprintf(&b, "ok_2xx: %d\n", r.ok.n)
	fmt.Fprintf(&b, "ok_per_s: %.0f\n", r.okRate())
	fmt.Fprintf(&b, "failed: %d\n", r.failed())
	h := &r.ok
	fmt.Fprintf(&b, "latency_ms (2xx): p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
		ms(h.quantile(0.50)), ms(h.quantile(0.90)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(h.max), ms(h.mean()))
	if r.failed() > 0 {
		a := &r.latency
		fmt.Fprintf(&b, "latency_ms (all): p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
			ms(a.quantile(0.50)), ms(a.quantile(0.90)), ms(a.quantile(0.99)), ms(a.quantile(0.999)), ms(a.max), ms(a.mean()))
	}
	if r.serverCPUKnown && r.requests() > 0 {
		fmt.Fprintf(&b, "server_cpu_s: %.2f\n", r.serverCPU.Seconds())
		fmt.Fprintf(&b, "server_cpu_us_per_request: %.0f\n", float64(r.serverCPU.Microseconds())/float64(r.requests()))
	}
	for _, code := range slices.Sorted(maps.Keys(r.status)) {
		fmt.Fprintf(&b, "status %d: %d\n", code, r.status[code])
	}
	for _, msg := range slices.Sorted(maps.Keys(r.errors)) {
		fmt.Fprintf(&b, "error %q: %d\n", msg, r.errors[msg])
	}
	io.WriteString(w, b.String())
}
