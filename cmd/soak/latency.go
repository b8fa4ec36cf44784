package main

import (
	"math/bits"
	"time"
)

// latencies is a histogram of call durations whose size does not grow with
// the run: 64 buckets per power of two, so a quantile reads to within
// 1/64 (1.6%) of the exact one. The maximum is exact.
type latencies struct {
	n       int
	max     time.Duration
	buckets [64 * 64]int
}

// half is the number of buckets per power of two.
const half = 64

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 2*half {
		return int(v)
	}
	exp := bits.Len64(v) - 7 // v >> exp is in [half, 2*half)
	return exp*half + int(v>>exp)
}

// upper is the largest duration in bucket i.
func upper(i int) time.Duration {
	if i < 2*half {
		return time.Duration(i)
	}
	exp := i/half - 1
	m := uint64(i - exp*half)
	return time.Duration((m+1)<<exp - 1)
}

func (l *latencies) add(d time.Duration) {
	l.n++
	l.max = max(l.max, d)
	l.buckets[bucketOf(d)]++
}

// quantile returns the duration below which a fraction q of the calls
// fell, rounded up to its bucket's bound (and never above the maximum).
func (l *latencies) quantile(q float64) time.Duration {
	if l.n == 0 {
		return 0
	}
	rank := int(q * float64(l.n)) // the index into the sorted durations, as the old report took it
	seen := 0
	for i, k := range l.buckets {
		seen += k
		if seen > rank {
			return min(upper(i), l.max)
		}
	}
	return l.max
}
