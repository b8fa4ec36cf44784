package main

import (
	"slices"
	"sync"
	"time"
)

// outageWindow is how long after a fault ends its outage is still measured.
const outageWindow = time.Second

// outages measures each fault's outage as the run goes: the longest time,
// from when the fault began until outageWindow after it ended, in which no
// call succeeded (ErrNotFound is an answer too). It keeps the answers'
// times only as far back as a fault still being measured needs them.
type outages struct {
	mu      sync.Mutex
	done    []time.Time // when answered calls returned, unsorted, none before floor
	begun   []time.Time // faults begun and not yet measured
	waiting []event     // faults ended, waiting for the calls of their window
	events  []event     // measured
}

// begin records that a fault begins now, and returns now as its Start.
// Taking the time under the lock orders it with every prune.
func (o *outages) begin() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := time.Now()
	o.begun = append(o.begun, t)
	return t
}

// end records ev, which began at a time begin returned.
func (o *outages) end(ev event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waiting = append(o.waiting, ev)
}

// answered records when a call that got an answer returned.
func (o *outages) answered(c call) {
	if c.ok() || c.Err == "notfound" {
		o.mu.Lock()
		o.done = append(o.done, c.End)
		o.mu.Unlock()
	}
}

// advance measures the faults whose window ended before mark, by which
// time every call that returned within it has been recorded, and drops the
// times no fault needs any more. With all, it measures every fault.
func (o *outages) advance(mark time.Time, all bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	slices.SortFunc(o.done, time.Time.Compare)
	keep := o.waiting[:0]
	for _, ev := range o.waiting {
		if !all && !ev.End.Add(outageWindow).Before(mark) {
			keep = append(keep, ev)
			continue
		}
		ev.Outage = o.measure(ev)
		o.events = append(o.events, ev)
		o.begun = slices.DeleteFunc(o.begun, func(t time.Time) bool { return t.Equal(ev.Start) })
	}
	o.waiting = keep
	// A fault not yet begun begins after now, and so after mark.
	floor := mark
	for _, t := range o.begun {
		floor = earliest(floor, t)
	}
	i, _ := slices.BinarySearchFunc(o.done, floor, time.Time.Compare)
	o.done = slices.Delete(o.done, 0, i)
}

func (o *outages) measure(ev event) time.Duration {
	from, to := ev.Start, ev.End.Add(outageWindow)
	j, _ := slices.BinarySearchFunc(o.done, from, time.Time.Compare)
	last, gap := from, time.Duration(0)
	for ; j < len(o.done) && o.done[j].Before(to); j++ {
		gap = max(gap, o.done[j].Sub(last))
		last = o.done[j]
	}
	return max(gap, to.Sub(last))
}

// measured returns the faults measured so far, in the order they began.
func (o *outages) measured() []event {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs := slices.Clone(o.events)
	slices.SortStableFunc(evs, func(a, b event) int { return a.Start.Compare(b.Start) })
	return evs
}
