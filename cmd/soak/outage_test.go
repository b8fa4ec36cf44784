package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// batchOutages is how outages were measured before, over the whole history
// at the end: the reference for outages.
func batchOutages(evs []event, h []call) {
	var done []time.Time
	for _, c := range h {
		if c.ok() || c.Err == "notfound" {
			done = append(done, c.End)
		}
	}
	slices.SortFunc(done, time.Time.Compare)
	for i := range evs {
		from, to := evs[i].Start, evs[i].End.Add(time.Second)
		j, _ := slices.BinarySearchFunc(done, from, time.Time.Compare)
		last, gap := from, time.Duration(0)
		for ; j < len(done) && done[j].Before(to); j++ {
			gap = max(gap, done[j].Sub(last))
			last = done[j]
		}
		evs[i].Outage = max(gap, to.Sub(last))
	}
}

// TestOutages feeds faults and answers to outages in the order the run
// makes them, advancing now and then, and checks each fault's outage
// against the batch measure over the same history.
func TestOutages(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	t0 := time.Now()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var h []call
	var evs []event
	var o outages
	now := t0
	for i := range 200 {
		if i%20 == 5 {
			o.mu.Lock()
			o.begun = append(o.begun, now) // begin, at a time of the test's choosing
			o.mu.Unlock()
			ev := event{Fault: "f", Start: now, End: now.Add(ms(rnd.IntN(400)))}
			o.end(ev)
			evs = append(evs, ev)
		}
		for range 5 {
			c := call{Op: "get", Start: now, End: now.Add(ms(rnd.IntN(50)))}
			if rnd.IntN(4) == 0 {
				c.Err = "context"
			}
			h = append(h, c)
			o.answered(c)
		}
		now = now.Add(ms(rnd.IntN(100)))
		o.advance(now.Add(-ms(60)), false) // every call that began before this has been seen
	}
	o.advance(now, true)
	batchOutages(evs, h)
	got := o.measured()
	if len(got) != len(evs) {
		t.Fatalf("measured %d faults, want %d", len(got), len(evs))
	}
	for i := range evs {
		if got[i].Outage != evs[i].Outage {
			t.Errorf("fault %d: outage %v, batch %v", i, got[i].Outage, evs[i].Outage)
		}
	}
	if n := len(o.done); n > 200 {
		t.Errorf("kept %d answer times at the end, want only a fault's window", n)
	}
}
