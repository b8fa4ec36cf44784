package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Worker is what one goroutine of a run hands its Op: its index and its
// own random source, so that no two goroutines share one.
type Worker struct {
	ID   int
	Rand *rand.Rand
}

// Op is one operation, run over and over by each Worker.
type Op func(ctx context.Context, w *Worker) error

// UserID returns the i-th user ID, UserIDLen bytes long.
func UserID(i int) string { return fmt.Sprintf("user:%011d", i) }

// MintOp mints a token for the worker's user ID on each call.
func MintOp(cl Client) Op {
	return func(ctx context.Context, w *Worker) error {
		_, err := cl.Mint(ctx, UserID(w.ID))
		return err
	}
}

// Tokens is a working set of live tokens and the user ID each maps to.
type Tokens struct {
	Tokens, Users []string
}

// LookupOp resolves a token drawn uniformly from ts on each call, and fails
// unless it maps to its user ID.
func LookupOp(cl Client, ts *Tokens) Op {
	return func(ctx context.Context, w *Worker) error {
		i := w.Rand.IntN(len(ts.Tokens))
		got, err := cl.Lookup(ctx, ts.Tokens[i])
		if err != nil {
			return err
		}
		if got != ts.Users[i] {
			return fmt.Errorf("bench: lookup returned user %q, want %q", got, ts.Users[i])
		}
		return nil
	}
}

// Fill mints n tokens with cl, each for its own user, from 32 goroutines.
func Fill(ctx context.Context, cl Client, n int) (*Tokens, error) {
	ts := &Tokens{Tokens: make([]string, n), Users: make([]string, n)}
	var next atomic.Int64
	op := func(ctx context.Context, _ *Worker) error {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return nil
			}
			ts.Users[i] = UserID(i)
			tok, err := cl.Mint(ctx, ts.Users[i])
			if err != nil {
				return err
			}
			ts.Tokens[i] = tok
		}
	}
	// One call per goroutine, each draining the shared index.
	if _, err := (Load{Goroutines: 32, Ops: 32}).Run(ctx, op); err != nil {
		return nil, err
	}
	return ts, nil
}

// Warm looks every token of ts up once, so that a client-side cache starts
// full and the server's pages are hot.
func Warm(ctx context.Context, cl Client, ts *Tokens) error {
	var next atomic.Int64
	_, err := (Load{Goroutines: 32, Ops: 32}).Run(ctx, func(ctx context.Context, _ *Worker) error {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(ts.Tokens) {
				return nil
			}
			if _, err := cl.Lookup(ctx, ts.Tokens[i]); err != nil {
				return err
			}
		}
	})
	return err
}

// Load is how many goroutines run an Op, and for how long.
type Load struct {
	// Goroutines is exactly how many goroutines run the Op.
	Goroutines int
	// Ops is the total number of calls, split as evenly as can be. When
	// zero, Duration bounds the run instead.
	Ops int64
	// Duration is how long the goroutines keep calling the Op.
	Duration time.Duration
	// Ready, when set, is called once every goroutine waits to start;
	// a benchmark passes b.ResetTimer.
	Ready func()
}

// Result is what one run did.
type Result struct {
	Ops     int64
	Elapsed time.Duration
	Mallocs uint64 // heap allocations in the whole process during the run
}

// OpsPerSec is the throughput of all goroutines together.
func (r Result) OpsPerSec() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// NsPerOp is wall time per operation, as go test reports it for
// RunParallel: the inverse of the throughput.
func (r Result) NsPerOp() float64 { return float64(r.Elapsed.Nanoseconds()) / float64(r.Ops) }

// AllocsPerOp is heap allocations per operation.
func (r Result) AllocsPerOp() float64 { return float64(r.Mallocs) / float64(r.Ops) }

// Run runs op from l.Goroutines goroutines and returns what they did. The
// first error stops every goroutine and is returned.
func (l Load) Run(ctx context.Context, op Op) (Result, error) {
	if l.Goroutines < 1 {
		return Result{}, fmt.Errorf("bench: %d goroutines", l.Goroutines)
	}
	if l.Ops == 0 && l.Duration <= 0 {
		return Result{}, fmt.Errorf("bench: a load needs Ops or Duration")
	}
	var (
		stop     atomic.Bool
		total    atomic.Int64
		errOnce  sync.Once
		firstErr error
		ready    sync.WaitGroup
		done     sync.WaitGroup
		start    = make(chan struct{})
		failed   = make(chan struct{})
		seed     = rand.Uint64()
	)
	fail := func(err error) {
		errOnce.Do(func() {
			firstErr = err
			stop.Store(true)
			close(failed)
		})
	}
	for i := range l.Goroutines {
		quota := int64(-1)
		if l.Ops > 0 {
			quota = l.Ops / int64(l.Goroutines)
			if int64(i) < l.Ops%int64(l.Goroutines) {
				quota++
			}
		}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			w := &Worker{ID: i, Rand: rand.New(rand.NewPCG(seed, uint64(i)))}
			ready.Done()
			<-start
			var n int64
			for ; n != quota && !stop.Load(); n++ {
				if err := op(ctx, w); err != nil {
					fail(err)
					break
				}
			}
			total.Add(n)
		}()
	}
	ready.Wait()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if l.Ready != nil {
		l.Ready()
	}
	t0 := time.Now()
	close(start)
	if l.Ops == 0 {
		select {
		case <-time.After(l.Duration):
		case <-failed:
		case <-ctx.Done():
			fail(ctx.Err())
		}
		stop.Store(true)
	}
	done.Wait()
	elapsed := time.Since(t0)
	runtime.ReadMemStats(&after)
	if firstErr != nil {
		return Result{}, firstErr
	}
	return Result{Ops: total.Load(), Elapsed: elapsed, Mallocs: after.Mallocs - before.Mallocs}, nil
}

// Clean unlinks every key that starts with prefix, found with SCAN, and
// returns how many it removed. It never flushes.
func (r *Redis) Clean(ctx context.Context, prefix string) (int, error) {
	c, err := r.Pool.GetContext(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	match := globEscaper.Replace(prefix) + "*"
	cursor, n := "0", 0
	for {
		v, err := redis.Values(redis.DoContext(c, ctx, "SCAN", cursor, "MATCH", match, "COUNT", 1000))
		if err != nil {
			return n, err
		}
		keys, err := redis.Values(v[1], nil)
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			if _, err := redis.DoContext(c, ctx, "UNLINK", keys...); err != nil {
				return n, err
			}
			n += len(keys)
		}
		if cursor, err = redis.String(v[0], nil); err != nil {
			return n, err
		}
		if cursor == "0" {
			return n, nil
		}
	}
}

var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// infoField returns one field of an INFO reply.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
