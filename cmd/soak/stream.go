package main

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sequencer puts what the workers record back into the order the calls
// began, and releases each call once no call that began earlier can still
// come. Each worker claims the Start of its call before it makes it, and
// hands the call in before it claims the next; so every call that began
// before the smallest claim is already in.
type sequencer struct {
	mu     sync.Mutex
	inbox  []call
	claims []atomic.Int64 // per worker: the Start of its call in flight, or of its last, in Unix ns

	pool     []call    // handed in, not yet released: the consumer's alone
	released time.Time // the watermark of the last release
	late     int       // calls handed in after a later one was released: 0 unless a worker broke the protocol
}

func newSequencer(workers int) *sequencer {
	s := &sequencer{claims: make([]atomic.Int64, workers)}
	now := time.Now().UnixNano()
	for i := range s.claims {
		s.claims[i].Store(now)
	}
	return s
}

// start returns the Start of worker's next call, and claims it.
func (s *sequencer) start(worker int) time.Time {
	t := time.Now()
	s.claims[worker].Store(t.UnixNano())
	return t
}

// push hands in a call, or a forget that follows the worker's calls.
func (s *sequencer) push(c call) {
	s.mu.Lock()
	s.inbox = append(s.inbox, c)
	s.mu.Unlock()
}

// release returns, in the order they began, the calls that began before
// every call still in flight; with all, every call handed in (once the
// workers are done).
func (s *sequencer) release(all bool) []call {
	s.mu.Lock()
	mark := time.Now().UnixNano()
	for i := range s.claims {
		mark = min(mark, s.claims[i].Load())
	}
	in := s.inbox
	s.inbox = nil
	s.mu.Unlock()
	if all {
		mark = math.MaxInt64
	}
	w := time.Unix(0, mark)
	for _, c := range in {
		if c.Start.Before(s.released) {
			s.late++
		}
	}
	s.pool = append(s.pool, in...)
	slices.SortStableFunc(s.pool, func(a, b call) int { return a.Start.Compare(b.Start) })
	i, _ := slices.BinarySearchFunc(s.pool, w, func(c call, t time.Time) int { return c.Start.Compare(t) })
	out := s.pool[:i:i]
	s.pool = slices.Clone(s.pool[i:])
	if !all {
		s.released = w
	}
	return out
}

// pending is how many calls wait for an earlier one.
func (s *sequencer) pending() int { return len(s.pool) }

// stamp hands in the entry f makes of now, taking now under the lock so
// that no release can pass it before it is in: the proxy's and the token
// source's records, which no worker claims.
func (s *sequencer) stamp(f func(now time.Time) call) {
	s.mu.Lock()
	s.inbox = append(s.inbox, f(time.Now()))
	s.mu.Unlock()
}
