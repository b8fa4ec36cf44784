// Command propagate measures how long a client-side cache goes on
// answering for a token that another client has ended: sesh's cache
// (Options.CacheSize) and rueidis's (DoCache), on a single Redis and, with
// -cluster, on a Redis Cluster. It writes PROPAGATION.md and
// propagation.json, and prints the table.
//
// Usage, from bench/:
//
//	go run ./cmd/propagate
//	go run ./cmd/propagate -cluster 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
//
// Each trial has B, a client without a cache, mint a token; A, the caching
// client, read it until it is served from memory; B end it; and A poll
// until it answers not found. The figure is the time from B's end call
// returning to A's first not-found answer, for a poller that yields
// between polls and for one that spins. Keys go under a prefix unique to
// the run, each with an expiry, and are removed at the end; nothing is
// flushed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/seshkit/sesh/bench"
	"github.com/seshkit/sesh/internal/redact"
)

// config is what the flags set.
type config struct {
	url     string // empty skips the single Redis
	cluster []string
	n       int
	out     string
	args    []string
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("propagate: ")
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{args: args}
	fs := flag.NewFlagSet("propagate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/propagate [flags]\n\n"+
			"Measures how long sesh's and rueidis's client-side caches answer for a token\n"+
			"another client has ended, and writes PROPAGATION.md and propagation.json.\n\n")
		fs.PrintDefaults()
	}
	var cluster string
	fs.StringVar(&cfg.url, "redis", "redis://127.0.0.1:6379/15", `Redis URL, as sesh.NewPool takes it; "" skips the single Redis`)
	fs.StringVar(&cluster, "cluster", "", "comma-separated host:port seeds of a Redis Cluster to measure as well")
	fs.IntVar(&cfg.n, "n", 1000, "trials per cell")
	fs.StringVar(&cfg.out, "out", ".", "directory for PROPAGATION.md and propagation.json")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "propagate: unexpected argument %q\n", fs.Arg(0))
		return cfg, errors.New("usage")
	}
	for s := range strings.SplitSeq(cluster, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			fmt.Fprintf(stderr, "propagate: -cluster: %q is not host:port\n", s)
			return cfg, errors.New("usage")
		}
		cfg.cluster = append(cfg.cluster, s)
	}
	switch {
	case cfg.n < 1:
		fmt.Fprintln(stderr, "propagate: -n must be at least 1")
		return cfg, errors.New("usage")
	case cfg.url == "" && len(cfg.cluster) == 0:
		fmt.Fprintln(stderr, `propagate: -redis "" and no -cluster: nothing to measure`)
		return cfg, errors.New("usage")
	}
	return cfg, nil
}

// target is a Redis or a Redis Cluster, as a run needs it.
type target interface {
	Clean(ctx context.Context, prefix string) (int, error)
	Close() error
}

// probe is one library's Prober on one topology.
type probe struct {
	topology, library string
	p                 bench.Prober
}

// topology is one Redis or Cluster opened for the run.
type topology struct {
	name    string
	t       target
	version string
	pids    []int
	probes  []probe
}

// openSingle opens the single Redis and both libraries' Probers on it.
func openSingle(ctx context.Context, url, prefix string) (*topology, error) {
	r, err := bench.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	version, pid, err := r.Server(ctx)
	if err != nil {
		r.Close()
		return nil, err
	}
	const name = "single Redis"
	tp := &topology{name: name, t: r, version: version, pids: []int{pid}}
	sp, err := bench.OpenSeshProber(url, prefix+":sesh")
	if err != nil {
		tp.close()
		return nil, fmt.Errorf("sesh: %w", err)
	}
	tp.probes = append(tp.probes, probe{name, "sesh", sp})
	rp, err := bench.OpenRueidisProber(url, prefix+":rueidis")
	if err != nil {
		tp.close()
		return nil, fmt.Errorf("rueidis: %w", err)
	}
	tp.probes = append(tp.probes, probe{name, "rueidis", rp})
	return tp, nil
}

// openCluster opens the Cluster and both libraries' Probers on it. When
// sesh refuses its cache on Cluster, it says so in refused and goes on
// without sesh.
func openCluster(ctx context.Context, addrs []string, prefix string) (tp *topology, refused error, err error) {
	c, err := bench.DialCluster(ctx, addrs)
	if err != nil {
		return nil, nil, err
	}
	version, pids, err := c.Servers(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	const name = "Cluster"
	tp = &topology{name: name, t: c, version: version, pids: pids}
	sp, err := bench.OpenSeshClusterProber(ctx, addrs, prefix+":sesh")
	var cre *bench.CacheRefusedError
	switch {
	case errors.As(err, &cre):
		refused = cre.Err
	case err != nil:
		tp.close()
		return nil, nil, fmt.Errorf("sesh: %w", err)
	default:
		tp.probes = append(tp.probes, probe{name, "sesh", sp})
	}
	rp, err := bench.OpenRueidisClusterProber(addrs, prefix+":rueidis")
	if err != nil {
		tp.close()
		return nil, nil, fmt.Errorf("rueidis: %w", err)
	}
	tp.probes = append(tp.probes, probe{name, "rueidis", rp})
	return tp, refused, nil
}

// close closes the Probers and then the target.
func (tp *topology) close() {
	for _, p := range tp.probes {
		p.p.Close()
	}
	tp.t.Close()
}

func run(ctx context.Context, cfg config, stdout io.Writer) (err error) {
	started := time.Now()
	prefix := fmt.Sprintf("seshprop:%x", rand.Uint32())
	rep := &Report{
		Date:       started.UTC().Truncate(time.Second),
		Command:    commandLine(cfg),
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Machine:    fmt.Sprintf("%d CPUs shared by this process, every Redis node and other engineers' work", runtime.NumCPU()),
		Trials:     cfg.n,
		Yield:      "`runtime.Gosched()` and then `time.Sleep(20 * time.Microsecond)`",
	}
	var tops []*topology
	defer func() {
		// Clean up even after an interrupt, on a context of its own.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, tp := range tops {
			n, cerr := tp.t.Clean(cctx, prefix+":")
			if cerr != nil {
				err = errors.Join(err, fmt.Errorf("cleaning up %s:*: %w", prefix, cerr))
			}
			log.Printf("%s: removed %d keys under %s:", tp.name, n, prefix)
			tp.close()
		}
	}()
	if cfg.url != "" {
		tp, err := openSingle(ctx, cfg.url, prefix+":single")
		if err != nil {
			return err
		}
		tops = append(tops, tp)
		rep.Redis, rep.RedisVersion = redact.URL(cfg.url), tp.version
	}
	if len(cfg.cluster) > 0 {
		tp, refused, err := openCluster(ctx, cfg.cluster, prefix+":cluster")
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		tops = append(tops, tp)
		rep.Cluster, rep.Nodes = strings.Join(cfg.cluster, ","), len(tp.pids)
		if rep.RedisVersion == "" {
			rep.RedisVersion = tp.version
		}
		if refused != nil {
			line := "sesh cache on Cluster: refused by this sesh: " + refused.Error()
			fmt.Fprintln(stdout, line)
			rep.Notes = append(rep.Notes, line+". The Cluster rows are rueidis's only.")
		}
	}

	ours := []int{os.Getpid()}
	for _, tp := range tops {
		for _, pid := range tp.pids {
			ours = append(ours, bench.LocalRedisPID(pid))
		}
	}
	before := bench.SampleCPU(ours...)
	rep.YieldTook = measureYield(cfg.n)
	for _, tp := range tops {
		cells, err := measure(ctx, tp.probes, cfg.n)
		if err != nil {
			return err
		}
		rep.Cells = append(rep.Cells, cells...)
	}
	rep.OtherCores = math3(bench.OthersCores(before, bench.SampleCPU(ours...), rep.CPUs))
	rep.Elapsed = time.Since(started).Round(time.Second).String()
	fmt.Fprint(stdout, rep.Markdown())
	return rep.write(cfg.out)
}

// measureYield times n calls of bench.Yield: how long a yielding poller
// waits between polls.
func measureYield(n int) Summary {
	ds := make([]time.Duration, n)
	for i := range ds {
		t0 := time.Now()
		bench.Yield()
		ds[i] = time.Since(t0)
	}
	return Summarize(ds)
}

// cellRun is one cell being measured.
type cellRun struct {
	probe
	cond      string
	between   func()
	ds        []time.Duration
	firstPoll int
	token     string // the live token an uncached Get reads
}

// measure runs n trials of every cell of one topology: for each Prober, a
// yielding and a spinning poller and an uncached Get. The cells take turns
// trial by trial, starting one further along each time, so that the
// machine's other load falls on all of them alike.
func measure(ctx context.Context, probes []probe, n int) ([]Cell, error) {
	var runs []*cellRun
	for _, p := range probes {
		tok, err := p.p.Mint(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s %s: mint: %w", p.topology, p.library, err)
		}
		runs = append(runs,
			&cellRun{probe: p, cond: condYielding, between: bench.Yield},
			&cellRun{probe: p, cond: condSpinning},
			&cellRun{probe: p, cond: condRoundTrip, token: tok})
	}
	t0 := time.Now()
	for i := range n {
		for j := range runs {
			r := runs[(i+j)%len(runs)]
			if err := r.trial(ctx); err != nil {
				return nil, fmt.Errorf("%s %s %s, trial %d: %w", r.topology, r.library, r.cond, i+1, err)
			}
		}
		if (i+1)%250 == 0 || i+1 == n {
			log.Printf("%s: %d of %d trials in %v", runs[0].topology, i+1, n, time.Since(t0).Round(time.Millisecond))
		}
	}
	var cells []Cell
	for _, r := range runs {
		if r.token != "" {
			if err := r.p.End(ctx, r.token); err != nil {
				return nil, err
			}
		}
		cells = append(cells, Cell{Topology: r.topology, Library: r.library, Condition: r.cond, Summary: Summarize(r.ds), FirstPoll: r.firstPoll})
	}
	return cells, nil
}

func (r *cellRun) trial(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.cond == condRoundTrip {
		d, err := bench.RoundTrip(ctx, r.p, r.token)
		r.ds = append(r.ds, d)
		return err
	}
	d, polls, err := bench.Propagation(ctx, r.p, r.between)
	if err != nil {
		return err
	}
	r.ds = append(r.ds, d)
	if polls == 1 {
		r.firstPoll++
	}
	return nil
}

// math3 rounds to three decimals, keeping -1 (unknown) as it is.
func math3(v float64) float64 {
	if v < 0 {
		return v
	}
	return float64(int(v*1000+0.5)) / 1000
}

// commandLine is the command that reproduces this run, as run from bench/,
// with any password in -redis hidden.
func commandLine(cfg config) string {
	parts := []string{"go run ./cmd/propagate"}
	redisNext := false
	for _, a := range cfg.args {
		switch name, val, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); {
		case redisNext:
			a = redact.URL(a)
		case name == "redis" && ok:
			a = a[:len(a)-len(val)] + redact.URL(val)
		}
		redisNext = a == "-redis" || a == "--redis"
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
