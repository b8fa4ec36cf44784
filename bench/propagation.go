package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// A Prober is one library's pair of clients for measuring how long a
// client-side cache takes to learn that a token has ended. A caches; B
// does not, and has connections of its own, as another process would.
type Prober interface {
	// Mint makes a new live token through B.
	Mint(ctx context.Context) (token string, err error)
	// Warm reads token through A until A has served it from memory.
	Warm(ctx context.Context, token string) error
	// End ends token through B.
	End(ctx context.Context, token string) error
	// Cached reads token through A, from memory when A can, and reports
	// whether A still finds it.
	Cached(ctx context.Context, token string) (found bool, err error)
	// Uncached reads token through B: one round trip.
	Uncached(ctx context.Context, token string) (found bool, err error)
	// Close closes both clients.
	Close() error
}

// Yield is what a yielding poller does between two polls, as a request
// handler that does I/O would: it lets other goroutines run and then
// sleeps for a moment.
func Yield() {
	runtime.Gosched()
	time.Sleep(20 * time.Microsecond)
}

// PropagationLimit is how long a trial polls before it gives up: past
// sesh's CacheMaxStale (1s by default), which bounds its window whatever
// happens.
const PropagationLimit = 5 * time.Second

// Propagation is one trial: B mints a token, A reads it until it serves it
// from memory, B ends it, and A polls until it answers that the token is
// not found. It returns the time from B's end call returning to A's first
// not-found answer, and how many polls that took. between runs between two
// polls; nil spins.
func Propagation(ctx context.Context, p Prober, between func()) (d time.Duration, polls int, err error) {
	tok, err := p.Mint(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("mint: %w", err)
	}
	if err := p.Warm(ctx, tok); err != nil {
		return 0, 0, fmt.Errorf("warm: %w", err)
	}
	if err := p.End(ctx, tok); err != nil {
		return 0, 0, fmt.Errorf("end: %w", err)
	}
	start := time.Now()
	for {
		found, err := p.Cached(ctx, tok)
		polls++
		if err != nil {
			return 0, polls, fmt.Errorf("poll: %w", err)
		}
		d = time.Since(start)
		if !found {
			return d, polls, nil
		}
		if d > PropagationLimit {
			return d, polls, fmt.Errorf("the token still resolves %v after it was ended", d.Round(time.Millisecond))
		}
		if between != nil {
			between()
		}
	}
}

// RoundTrip times one uncached read of a live token through B.
func RoundTrip(ctx context.Context, p Prober, token string) (time.Duration, error) {
	start := time.Now()
	found, err := p.Uncached(ctx, token)
	d := time.Since(start)
	if err == nil && !found {
		err = errors.New("a live token was not found")
	}
	return d, err
}
