package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: exact below 128 ns,
// then 128 buckets per power of two, so that a bucket is at most 1/128
// (0.8 %) of its values wide. Its size is fixed (about 35 KiB) whatever the
// number of requests, so a long run cannot grow the load generator's
// memory, and workers merge theirs at the end without sorting anything.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	min    time.Duration
	max    time.Duration
	sum    time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	// histMaxBits bounds the values counted: 2^40 ns is 18 minutes, far
	// past any client timeout; longer values count as the largest bucket.
	histMaxBits = 40
	histBuckets = (histMaxBits - histSubBits + 1) * histSub
)

// bucketOf is the bucket of a value in nanoseconds.
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSub, 2*histSub)
	i := (shift+1)*histSub + int(v>>shift) - histSub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketMax is the largest value in nanoseconds that falls in bucket i.
func bucketMax(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	base := uint64(i%histSub + histSub)
	return (base+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile is the smallest recorded latency q of the requests are at or
// under (q in [0, 1]), rounded up to its bucket's upper edge, so it never
// understates a latency (it overstates by at most 0.8 %), and never past
// the largest value seen. Zero when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n))) // 1-based rank of the answer
	rank = max(rank, 1)
	rank = min(rank, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(bucketMax(i))
			return min(max(d, h.min), h.max)
		}
	}
	return h.max
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
