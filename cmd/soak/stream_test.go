package main

import (
	"sync"
	"testing"
	"time"
)

// TestSequencerOrder has workers hand in calls while the consumer
// releases them, and checks that every call comes out once, in the order
// the calls began, and that none came after a later one was released.
func TestSequencerOrder(t *testing.T) {
	const workers, calls = 8, 2000
	seq := newSequencer(workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				c := call{Op: "get", Start: seq.start(i)}
				if i%3 == 0 {
					time.Sleep(time.Microsecond) // a slow call holds the others back
				}
				c.End = time.Now()
				seq.push(c)
				if i == 1 {
					seq.stamp(func(now time.Time) call { return call{Op: "draw", Start: now} })
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var out []call
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		out = append(out, seq.release(finished)...)
	}
	if want := workers*calls + calls; len(out) != want {
		t.Fatalf("released %d calls, want %d", len(out), want)
	}
	for i := 1; i < len(out); i++ {
		if out[i].Start.Before(out[i-1].Start) {
			t.Fatalf("call %d began at %v, before call %d at %v", i, out[i].Start, i-1, out[i-1].Start)
		}
	}
	if seq.late != 0 || seq.pending() != 0 {
		t.Errorf("%d came late, %d still pending", seq.late, seq.pending())
	}
}
