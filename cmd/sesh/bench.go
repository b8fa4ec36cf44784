package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/seshkit/sesh"
	"golang.org/x/term"
)

// benchOps are the operations bench can measure, in the order -h lists them.
var benchOps = []string{"set", "get", "liv", "die", "rotate"}

// maxReadTokens bounds the tokens made for get and liv, which reuse them.
const maxReadTokens = 10000

func (c *cli) bench(ctx context.Context, args []string) int {
	b := &bencher{progress: c.progressTo()}
	var opt benchOptions
	fs := c.benchFlags(b, &opt)
	if _, status, ok := c.parse(fs, args, 0); !ok {
		return status
	}
	if status, ok := c.checkBenchFlags(fs, b, opt.ops); !ok {
		return status
	}
	var e benchTarget
	defer e.close()
	if status, ok := c.openBenchTarget(ctx, fs, &opt.tf, &e); !ok {
		return status
	}
	what, err := b.newStore(e.pool, e.prefix, opt.crypt, opt.track)
	if err != nil {
		return c.fail(ctx, "bench", err)
	}
	if !opt.asJSON {
		b.printHeader(c.stdout, what, e.where)
	}
	results, err := b.measure(ctx)
	if err != nil {
		return c.fail(ctx, "bench", err)
	}
	return c.benchReport(ctx, results, opt.asJSON)
}

// benchOptions are bench's flags that the bencher does not keep.
type benchOptions struct {
	tf                   targetFlags
	ops                  string
	crypt, asJSON, track bool
}

// benchFlags defines bench's flags, into b and opt.
func (c *cli) benchFlags(b *bencher, opt *benchOptions) *flag.FlagSet {
	const defaultN, defaultWorkers = 10000, 16
	fs := c.flags("bench", "[flags]",
		`Bench measures each operation's throughput and latency with concurrent
workers, one phase per operation. Get, liv, die and rotate first make the
tokens they use with Set, untimed. Every latency is kept, so percentiles are
exact. With -redis the keys go under a throwaway prefix, deleted afterwards;
on the embedded miniredis, the numbers measure sesh's client side and
miniredis, not a Redis server. A live progress line goes to standard error
when it is a terminal.
`+targetAbout,
		"\tsesh bench -redis redis://localhost:6379/15 -ops set,get,die -c 32 -d 10s")
	opt.tf.register(fs, "Redis `URL`: redis://, redis+sentinel:// or redis+cluster:// (default $SESH_REDIS_URL, else an embedded miniredis)")
	fs.StringVar(&opt.ops, "ops", "set,get", "comma-separated operations, of "+strings.Join(benchOps, ","))
	fs.IntVar(&b.workers, "c", defaultWorkers, "concurrent workers")
	fs.IntVar(&b.n, "n", defaultN, "operations per phase; with -d too, whichever ends first (-d alone runs for its duration)")
	fs.DurationVar(&b.d, "d", 0, "duration per phase, such as 5s; 0 means none")
	fs.IntVar(&b.size, "size", 16, "user ID size in `bytes`, 1 to 1024")
	fs.BoolVar(&opt.crypt, "crypt", false, "measure a Crypt with a fresh key")
	fs.BoolVar(&opt.track, "track-users", false, "keep the per-user index, as Options.TrackUsers")
	fs.BoolVar(&opt.asJSON, "json", false, "print a JSON array instead of a table; latencies in ns")
	return fs
}

// checkBenchFlags checks the parsed flags, before any network call, and
// sets b.ops from opList.
func (c *cli) checkBenchFlags(fs *flag.FlagSet, b *bencher, opList string) (status int, ok bool) {
	explicitN := false
	fs.Visit(func(f *flag.Flag) { explicitN = explicitN || f.Name == "n" })
	for _, op := range strings.Split(opList, ",") {
		if !slices.Contains(benchOps, op) {
			return c.usage(fs, "bench: unknown operation %q in -ops; choose from %s", op, strings.Join(benchOps, ",")), false
		}
		b.ops = append(b.ops, op)
	}
	switch {
	case b.workers < 1:
		return c.usage(fs, "bench: -c %d: want at least 1 worker", b.workers), false
	case b.n < 1:
		return c.usage(fs, "bench: -n %d: want at least 1 operation", b.n), false
	case b.d < 0:
		return c.usage(fs, "bench: -d %v is negative", b.d), false
	case b.size < 1 || b.size > 1024:
		return c.usage(fs, "bench: -size %d: want 1 to 1024 bytes", b.size), false
	}
	if b.d > 0 && !explicitN {
		b.n = 0 // -d alone: run for the duration
	}
	return exitOK, true
}

// benchTarget is the server bench measures, and what to undo when it is
// done.
type benchTarget struct {
	pool          *backend
	where, prefix string
	undos         []func()
}

// undo adds fn to what close does, before everything added so far.
func (e *benchTarget) undo(fn func()) { e.undos = append(e.undos, fn) }

// close undoes what openBenchTarget did, latest first.
func (e *benchTarget) close() {
	for i := len(e.undos) - 1; i >= 0; i-- {
		e.undos[i]()
	}
}

// openBenchTarget connects to the server tf names, or to an embedded
// miniredis, into e; on a server, e.close deletes the keys under e.prefix.
func (c *cli) openBenchTarget(ctx context.Context, fs *flag.FlagSet, tf *targetFlags, e *benchTarget) (status int, ok bool) {
	e.where, e.prefix = "an embedded miniredis", "seshbench"
	embedded := !tf.given()
	var t target
	if embedded {
		mr, err := miniredis.Run()
		if err != nil {
			return c.fail(ctx, "bench", fmt.Errorf("embedded miniredis: %w", err)), false
		}
		e.undo(mr.Close)
		t = target{kind: kindSingle, url: "redis://" + mr.Addr()}
	} else {
		var err error
		if t, err = tf.target(); err != nil {
			return c.usage(fs, "bench: %v", err), false
		}
		e.where, e.prefix = t.String(), "seshbench-"+randomHex(4)
	}
	pool, err := t.open()
	if err != nil {
		return c.fail(ctx, "bench", err), false
	}
	e.undo(pool.close)
	if err := pool.ping(ctx); err != nil {
		return c.fail(ctx, "bench", fmt.Errorf("%s: %w", e.where, err)), false
	}
	if !embedded {
		e.undo(func() {
			n, err := cleanup(pool, e.prefix)
			if err != nil {
				fmt.Fprintf(c.stderr, "sesh: bench: cleaning up %s: %v\n", e.prefix, err)
				return
			}
			fmt.Fprintf(c.stderr, "cleaned up: deleted %d keys under %s:\n", n, e.prefix)
		})
	}
	e.pool = pool
	return exitOK, true
}

// newStore sets b.s to the Store, or Crypt with a fresh key, to measure,
// and returns its description.
func (b *bencher) newStore(pool *backend, prefix string, crypt, track bool) (what string, err error) {
	s, err := sesh.New(pool, sesh.Options{Prefix: prefix, TrackUsers: track})
	if err != nil {
		return "", err
	}
	b.s = s
	what = "Store"
	if crypt {
		key := make([]byte, 32)
		rand.Read(key)
		if b.s, err = sesh.NewCrypt(s, key); err != nil {
			return "", err
		}
		what = "Crypt"
	}
	if track {
		what += " with TrackUsers"
	}
	return what, nil
}

// printHeader says what is measured, where and how.
func (b *bencher) printHeader(w io.Writer, what, where string) {
	limit := fmt.Sprintf("%d ops", b.n)
	switch {
	case b.n == 0:
		limit = b.d.String()
	case b.d > 0:
		limit += " or " + b.d.String()
	}
	fmt.Fprintf(w, "sesh bench: %s on %s, %d workers, %s per phase, %d-byte user IDs\n\n",
		what, where, b.workers, limit, b.size)
}

// measure runs the phases in turn. On an interrupt it returns what it
// measured so far.
func (b *bencher) measure(ctx context.Context) ([]benchResult, error) {
	var results []benchResult
	for _, op := range b.ops {
		r, err := b.phase(ctx, op)
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%s: making tokens: %w", op, err)
		}
		if r.Ops > 0 {
			results = append(results, r)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return results, nil
}

// benchReport prints results and the errors they met, and returns the exit
// status they call for.
func (c *cli) benchReport(ctx context.Context, results []benchResult, asJSON bool) int {
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	} else {
		printTable(c.stdout, results)
	}
	status := exitOK
	for _, r := range results {
		if r.Errors > 0 {
			fmt.Fprintf(c.stderr, "sesh: bench: %s: %d errors, the first: %v\n", r.Op, r.Errors, r.firstErr)
			status = exitFailure
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(c.stderr, "sesh: bench: interrupted")
		return exitInterrupted
	}
	return status
}

// progressTo returns standard error when it is a terminal, else nil.
func (c *cli) progressTo() io.Writer {
	if f, ok := c.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

// bencher runs bench's phases.
type bencher struct {
	s        sesh.TokenStore
	ops      []string
	workers  int
	n        int           // operations per phase; 0 means until d
	d        time.Duration // duration per phase; 0 means until n
	size     int
	progress io.Writer // nil: no progress line
}

// benchResult is one phase's outcome; JSON gives durations in nanoseconds.
type benchResult struct {
	Op        string  `json:"op"`
	Ops       int     `json:"ops"`
	Errors    int     `json:"errors"`
	ElapsedNS int64   `json:"elapsed_ns"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50NS     int64   `json:"p50_ns"`
	P90NS     int64   `json:"p90_ns"`
	P99NS     int64   `json:"p99_ns"`
	MaxNS     int64   `json:"max_ns"`
	firstErr  error
}

// worker is one worker's record.
type worker struct {
	lats     []time.Duration
	errs     int
	firstErr error
}

// phase measures op. On an interrupt it returns what it measured so far.
func (b *bencher) phase(ctx context.Context, op string) (benchResult, error) {
	var tokens []string
	consumes := op == "die" || op == "rotate"
	switch {
	case consumes:
		// One token per operation: as many as -n, or as many as Set makes
		// in -d, which is about what the phase can use up.
		var err error
		if tokens, err = b.makeTokens(ctx, op, b.n, b.d); err != nil {
			return benchResult{Op: op}, err
		}
	case op != "set":
		n := maxReadTokens
		if b.n > 0 {
			n = min(b.n, n)
		}
		var err error
		if tokens, err = b.makeTokens(ctx, op, n, 0); err != nil {
			return benchResult{Op: op}, err
		}
	}
	limit := int64(b.n)
	if op != "set" {
		if len(tokens) == 0 {
			return benchResult{Op: op}, ctx.Err() // interrupted while making them
		}
		if consumes {
			limit = int64(len(tokens))
		}
	}
	res, _ := b.run(ctx, op, limit, b.d, b.call(op, tokens))
	return res, nil
}

// call returns the operation to time for op, given the i-th operation.
func (b *bencher) call(op string, tokens []string) func(ctx context.Context, i int64) error {
	tok := func(i int64) string { return tokens[i%int64(len(tokens))] }
	switch op {
	case "set":
		return func(ctx context.Context, i int64) error {
			_, err := b.s.Set(ctx, b.userID(i))
			return err
		}
	case "get":
		return func(ctx context.Context, i int64) error {
			_, err := b.s.Get(ctx, tok(i))
			return err
		}
	case "liv":
		return func(ctx context.Context, i int64) error { return b.s.Liv(ctx, tok(i)) }
	case "die":
		return func(ctx context.Context, i int64) error { return b.s.Die(ctx, tok(i)) }
	default: // rotate
		return func(ctx context.Context, i int64) error {
			_, err := b.s.Rotate(ctx, tok(i))
			return err
		}
	}
}

// makeTokens issues tokens with Set, untimed, until it has n (when n > 0)
// or d has passed (when d > 0).
func (b *bencher) makeTokens(ctx context.Context, op string, n int, d time.Duration) ([]string, error) {
	var (
		mu     sync.Mutex
		tokens = make([]string, 0, max(n, 0))
	)
	res, err := b.run(ctx, op+": making tokens", int64(n), d, func(ctx context.Context, i int64) error {
		tok, err := b.s.Set(ctx, b.userID(i))
		if err == nil {
			mu.Lock()
			tokens = append(tokens, tok)
			mu.Unlock()
		}
		return err
	})
	if err == nil && res.Errors > 0 {
		err = res.firstErr
	}
	return tokens, err
}

// run calls do from b.workers goroutines until limit calls (when limit > 0)
// or until d has passed (when d > 0), timing each call.
func (b *bencher) run(ctx context.Context, label string, limit int64, d time.Duration, do func(context.Context, int64) error) (benchResult, error) {
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		workers    = make([]worker, b.workers)
		start      = time.Now()
		deadline   = start.Add(d)
	)
	for w := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if limit > 0 && i >= limit || d > 0 && time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				err := do(ctx, i)
				took := time.Since(t0)
				if ctx.Err() != nil {
					return // interrupted: the call was cut short
				}
				w.lats = append(w.lats, took)
				if err != nil {
					if w.errs++; w.firstErr == nil {
						w.firstErr = err
					}
				}
				done.Add(1)
			}
		}(&workers[w])
	}
	stop := b.showProgress(label, start, &done)
	wg.Wait()
	stop()
	elapsed := time.Since(start)

	r := benchResult{Op: label, ElapsedNS: elapsed.Nanoseconds()}
	var lats []time.Duration
	for _, w := range workers {
		lats = append(lats, w.lats...)
		r.Errors += w.errs
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	r.Ops = len(lats)
	if r.Ops == 0 {
		return r, ctx.Err()
	}
	slices.Sort(lats)
	// Nearest-rank percentiles.
	pct := func(p float64) int64 {
		return lats[max(int(math.Ceil(p*float64(len(lats))))-1, 0)].Nanoseconds()
	}
	r.P50NS, r.P90NS, r.P99NS, r.MaxNS = pct(0.50), pct(0.90), pct(0.99), lats[len(lats)-1].Nanoseconds()
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	return r, ctx.Err()
}

// showProgress rewrites a progress line about 5 times a second until the
// returned func is called, which erases it.
func (b *bencher) showProgress(label string, start time.Time, done *atomic.Int64) (stop func()) {
	if b.progress == nil {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprint(b.progress, "\r\033[K")
				return
			case <-t.C:
				n, el := done.Load(), time.Since(start)
				fmt.Fprintf(b.progress, "\r%s: %d ops in %v, %.0f ops/s\033[K",
					label, n, el.Round(100*time.Millisecond), float64(n)/el.Seconds())
			}
		}
	}()
	return func() { close(quit); <-exited }
}

// userID returns the i-th user ID, b.size bytes long: i in base 36,
// zero-padded, or its last b.size digits.
func (b *bencher) userID(i int64) string {
	id := []byte(strings.Repeat("0", b.size))
	for j := len(id) - 1; j >= 0 && i > 0; j-- {
		id[j] = "0123456789abcdefghijklmnopqrstuvwxyz"[i%36]
		i /= 36
	}
	return string(id)
}

func printTable(w io.Writer, results []benchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tops/s\tp50\tp90\tp99\tmax\terrors\t")
	ns := func(n int64) string { return latency(time.Duration(n)) }
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n",
			r.Op, r.OpsPerSec, ns(r.P50NS), ns(r.P90NS), ns(r.P99NS), ns(r.MaxNS), r.Errors)
	}
	tw.Flush()
}
