package load

import (
	"math/bits"
	"time"
)

// histogram counts latencies in microseconds in log-linear buckets: exact
// below 32 µs, then 32 buckets per power of two (at most 3% error), up to
// 2^40 µs. Recording is one increment; a worker owns its histogram and the
// runner merges them at the end.
type histogram struct {
	counts [(41 - subBits + 1) * subCount]int64
	n      int64
	sum    int64 // µs
	max    int64 // µs
}

const (
	subBits  = 5
	subCount = 1 << subBits
)

func bucketOf(us int64) int {
	if us < subCount {
		if us < 0 {
			return 0
		}
		return int(us)
	}
	if us >= 1<<40 {
		us = 1<<40 - 1
	}
	e := 63 - bits.LeadingZeros64(uint64(us)) // e >= subBits
	sub := (us >> (e - subBits)) & (subCount - 1)
	return (e-subBits+1)*subCount + int(sub)
}

// valueOf is the middle of bucket i, in µs.
func valueOf(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	e := i/subCount + subBits - 1
	sub := int64(i % subCount)
	lo := (subCount + sub) << (e - subBits)
	width := int64(1) << (e - subBits)
	return lo + width/2
}

func (h *histogram) record(d time.Duration) {
	us := d.Microseconds()
	h.counts[bucketOf(us)]++
	h.n++
	h.sum += us
	if us > h.max {
		h.max = us
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a fraction q of the samples
// lie (0 with no samples).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(valueOf(i), h.max)) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/h.n) * time.Microsecond
}
