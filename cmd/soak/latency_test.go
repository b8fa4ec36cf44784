package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLatencies checks the histogram's quantiles against the exact ones,
// as the report took them from sorted durations, over spreads from
// nanoseconds to seconds.
func TestLatencies(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		draw func() time.Duration
	}{
		{"below 128ns, exact", func() time.Duration { return time.Duration(rnd.IntN(128)) }},
		{"around a millisecond", func() time.Duration { return time.Duration(rnd.ExpFloat64() * float64(time.Millisecond)) }},
		{"up to seconds", func() time.Duration { return time.Duration(rnd.Int64N(int64(3 * time.Second))) }},
	} {
		var l latencies
		var all []time.Duration
		for range 100000 {
			d := tc.draw()
			l.add(d)
			all = append(all, d)
		}
		slices.Sort(all)
		for _, q := range []float64{0.5, 0.99} {
			exact, got := all[int(q*float64(len(all)))], l.quantile(q)
			if got < exact || float64(got-exact) > float64(exact)/64+1 {
				t.Errorf("%s: quantile %v = %v, exact %v", tc.name, q, got, exact)
			}
		}
		if l.max != all[len(all)-1] {
			t.Errorf("%s: max %v, want %v", tc.name, l.max, all[len(all)-1])
		}
	}
}
