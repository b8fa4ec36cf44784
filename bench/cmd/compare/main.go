// Command compare measures sesh against its peers in one process, against
// one Redis or one Redis Cluster, on one workload, and writes the results:
// results.json, RESULTS.md, chart.png, and the results section of each
// README named by -readme. In Cluster mode the files are
// results-cluster.json, RESULTS-cluster.md and chart-cluster.png, and the
// README section is the one between the compare-cluster markers.
//
// Usage, from bench/:
//
//	go run ./cmd/compare -redis redis://127.0.0.1:6379/15
//	go run ./cmd/compare -cluster 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
//
// Each (contender, operation, concurrency) cell is warmed up and then
// measured for -d, in -rounds rounds whose contender order rotates; a cell's
// figure is the fastest of its rounds. redis-benchmark, when it is on PATH,
// runs the same commands as the server's own limit. Keys are written under
// a prefix unique to the run and removed with SCAN and UNLINK at the end;
// nothing is flushed. -quick runs the whole grid in seconds and writes to a
// temporary directory, for CI.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seshkit/sesh/bench"
	"github.com/seshkit/sesh/internal/redact"
)

// config is what the flags set.
type config struct {
	url        string
	cluster    []string // seeds; Cluster mode when set
	d, warmup  time.Duration
	rounds     int
	workingSet int
	conc       []int
	only       []string
	out        string
	readmes    []string
	rb         string
	from       string
	quick      bool
	args       []string
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("compare: ")
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	if cfg.from != "" {
		err = rewrite(cfg)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		err = run(ctx, cfg)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{args: args}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/compare [flags]\n\n"+
			"Measures mint and lookup for sesh and its peers against one Redis (or, with\n"+
			"-cluster, one Redis Cluster) and writes results.json, RESULTS.md, chart.png\n"+
			"(results-cluster.json, RESULTS-cluster.md, chart-cluster.png) and the results\n"+
			"section of each -readme.\n\n")
		fs.PrintDefaults()
	}
	var conc, only, readmes, cluster string
	fs.StringVar(&cfg.url, "redis", "redis://127.0.0.1:6379/15", "Redis URL, as sesh.NewPool takes it")
	fs.StringVar(&cluster, "cluster", "", "comma-separated host:port seeds of a Redis Cluster: measure the Cluster contenders on it instead of -redis")
	fs.DurationVar(&cfg.d, "d", 400*time.Millisecond, "measured time per cell and round")
	fs.DurationVar(&cfg.warmup, "warmup", 100*time.Millisecond, "unmeasured time before each cell")
	fs.IntVar(&cfg.rounds, "rounds", 5, "rounds per cell; a cell's figure is the fastest")
	fs.IntVar(&cfg.workingSet, "tokens", bench.WorkingSet, "live tokens per contender that lookups draw from")
	fs.StringVar(&conc, "c", "1,16,64,256", "comma-separated concurrencies (goroutines)")
	fs.StringVar(&only, "only", "", "comma-separated contenders to run (default all)")
	fs.StringVar(&cfg.out, "out", ".", "directory for results.json, RESULTS.md and chart.png")
	fs.StringVar(&readmes, "readme", "README.md,../docs/performance.md", "comma-separated Markdown files whose results section to rewrite; one without the markers is left alone")
	fs.StringVar(&cfg.rb, "redis-benchmark", "redis-benchmark", `redis-benchmark binary; "" skips it`)
	fs.StringVar(&cfg.from, "from", "", "measure nothing: rewrite RESULTS.md, chart.png and the READMEs from this results.json")
	fs.BoolVar(&cfg.quick, "quick", false, "a run of seconds for CI: -d 100ms -warmup 20ms -rounds 1 -tokens 1000, written to a temporary directory")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "compare: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return cfg, errors.New("usage")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.quick {
		quick := map[string]func(){
			"d":      func() { cfg.d = 100 * time.Millisecond },
			"warmup": func() { cfg.warmup = 20 * time.Millisecond },
			"rounds": func() { cfg.rounds = 1 },
			"tokens": func() { cfg.workingSet = 1000 },
			"out":    func() { cfg.out = filepath.Join(os.TempDir(), "seshbench-quick") },
			"readme": func() { readmes = "" },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	for s := range strings.SplitSeq(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "compare: -c: %q is not a positive count\n", s)
			return cfg, errors.New("usage")
		}
		cfg.conc = append(cfg.conc, n)
	}
	for s := range strings.SplitSeq(cluster, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			fmt.Fprintf(stderr, "compare: -cluster: %q is not host:port\n", s)
			return cfg, errors.New("usage")
		}
		cfg.cluster = append(cfg.cluster, s)
	}
	if set["redis"] && len(cfg.cluster) > 0 {
		fmt.Fprintln(stderr, "compare: -redis and -cluster exclude each other")
		return cfg, errors.New("usage")
	}
	for s := range strings.SplitSeq(only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(contenderNames(len(cfg.cluster) > 0), s) {
			fmt.Fprintf(stderr, "compare: -only: no contender %q in this mode (%s)\n", s, strings.Join(contenderNames(len(cfg.cluster) > 0), ", "))
			return cfg, errors.New("usage")
		}
		cfg.only = append(cfg.only, s)
	}
	for s := range strings.SplitSeq(readmes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.readmes = append(cfg.readmes, s)
		}
	}
	switch {
	case cfg.d <= 0:
		fmt.Fprintln(stderr, "compare: -d must be positive")
		return cfg, errors.New("usage")
	case cfg.rounds < 1:
		fmt.Fprintln(stderr, "compare: -rounds must be at least 1")
		return cfg, errors.New("usage")
	case cfg.workingSet < 1:
		fmt.Fprintln(stderr, "compare: -tokens must be at least 1")
		return cfg, errors.New("usage")
	}
	return cfg, nil
}

// contenderNames lists the contenders of one mode, in order.
func contenderNames(cluster bool) []string {
	var names []string
	if cluster {
		for _, c := range bench.ClusterContenders {
			names = append(names, c.Name)
		}
		return names
	}
	for _, c := range bench.Contenders {
		names = append(names, c.Name)
	}
	return names
}

// target is the Redis or the Redis Cluster under test, as measuring needs
// it: the server CPU it has used, and a way to remove keys.
type target interface {
	CPU(ctx context.Context) (time.Duration, error)
	Clean(ctx context.Context, prefix string) (int, error)
	Close() error
}

// entrant is a contender opened for the run: one client for minting, whose
// keys are removed after every cell, and one holding the lookup working set.
type entrant struct {
	ContenderInfo
	open         func(ctx context.Context, prefix string) (bench.Client, error)
	mint, lookup bench.Client
	mintPrefix   string
	tokens       *bench.Tokens
}

// setup is what a run measures: the target, its server processes, and the
// contenders of its mode, not yet opened.
type setup struct {
	t       target
	version string
	pids    []int
	ents    []*entrant
}

// dial connects to the single Redis or, with -cluster, the Cluster.
func dial(ctx context.Context, cfg config) (*setup, error) {
	if len(cfg.cluster) > 0 {
		c, err := bench.DialCluster(ctx, cfg.cluster)
		if err != nil {
			return nil, err
		}
		version, pids, err := c.Servers(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
		s := &setup{t: c, version: version, pids: pids}
		for _, cc := range bench.ClusterContenders {
			s.ents = append(s.ents, &entrant{
				ContenderInfo: ContenderInfo{Name: cc.Name, Mint: cc.Mint, Lookup: cc.Lookup, Config: cc.Config, Cached: cc.Cached},
				open: func(ctx context.Context, prefix string) (bench.Client, error) {
					return cc.Open(ctx, c, prefix)
				},
			})
		}
		return s, nil
	}
	r, err := bench.Dial(ctx, cfg.url)
	if err != nil {
		return nil, err
	}
	version, pid, err := r.Server(ctx)
	if err != nil {
		r.Close()
		return nil, err
	}
	s := &setup{t: r, version: version, pids: []int{pid}}
	for _, sc := range bench.Contenders {
		s.ents = append(s.ents, &entrant{
			ContenderInfo: ContenderInfo{Name: sc.Name, Mint: sc.Mint, Lookup: sc.Lookup, Config: sc.Config, Cached: sc.Cached},
			open: func(ctx context.Context, prefix string) (bench.Client, error) {
				return sc.Open(ctx, r, prefix)
			},
		})
	}
	return s, nil
}

func run(ctx context.Context, cfg config) (err error) {
	started := time.Now()
	su, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer su.t.Close()
	prefix := fmt.Sprintf("seshbench:%x", rand.Uint32())
	rep := &Report{
		Date:          started.UTC().Truncate(time.Second),
		Command:       commandLine(cfg),
		Redis:         redact.URL(cfg.url),
		RedisVersion:  su.version,
		GoVersion:     runtime.Version(),
		Platform:      runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:          runtime.NumCPU(),
		Duration:      cfg.d.String(),
		Warmup:        cfg.warmup.String(),
		Rounds:        cfg.rounds,
		WorkingSet:    cfg.workingSet,
		TTL:           bench.TTL.String(),
		CacheTTL:      bench.CacheTTL.String(),
		Concurrencies: cfg.conc,
	}
	if len(cfg.cluster) > 0 {
		rep.Mode, rep.Redis, rep.Nodes = modeCluster, strings.Join(cfg.cluster, ","), len(su.pids)
	}
	r := su.t
	defer func() {
		// Clean up even after an interrupt, on a context of its own.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, cerr := r.Clean(cctx, prefix+":")
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up %s:*: %w", prefix, cerr))
		}
		log.Printf("removed %d keys under %s:", n, prefix)
	}()

	ents, err := openAll(ctx, su.ents, cfg, prefix)
	defer func() {
		for _, e := range ents {
			closeEntrant(e)
		}
	}()
	if err != nil {
		return err
	}
	for _, e := range ents {
		rep.Contenders = append(rep.Contenders, e.ContenderInfo)
	}
	ours := []int{os.Getpid()}
	for _, pid := range su.pids {
		ours = append(ours, bench.LocalRedisPID(pid))
	}
	before := bench.SampleCPU(ours...)
	cells, err := measureAll(ctx, r, cfg, ents)
	if err != nil {
		return err
	}
	rep.Cells = cells
	rep.OtherCores = round3(bench.OthersCores(before, bench.SampleCPU(ours...), rep.CPUs))
	switch {
	case cfg.rb != "" && rep.Mode == modeCluster:
		log.Print("redis-benchmark left out: it is not run in Cluster mode")
	case cfg.rb != "":
		rb, err := redisBenchmark(ctx, r.(*bench.Redis), cfg, prefix+":rb")
		if err != nil {
			return fmt.Errorf("redis-benchmark: %w", err)
		}
		rep.RedisBenchmark = rb
	}
	rep.Elapsed = time.Since(started).Round(time.Second).String()
	rep.Targets = evaluate(rep)
	return rep.write(cfg.out, cfg.readmes)
}

// rewrite writes the results of an earlier run again, judged afresh.
func rewrite(cfg config) error {
	b, err := os.ReadFile(cfg.from)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", cfg.from, err)
	}
	rep.Targets = evaluate(&rep)
	return rep.write(cfg.out, cfg.readmes)
}

func openAll(ctx context.Context, all []*entrant, cfg config, prefix string) ([]*entrant, error) {
	var ents []*entrant
	for _, e := range all {
		c := e.ContenderInfo
		if len(cfg.only) > 0 && !slices.Contains(cfg.only, c.Name) {
			continue
		}
		e.mintPrefix = prefix + ":" + c.Name + ":m"
		ents = append(ents, e)
		var err error
		if e.mint, err = e.open(ctx, e.mintPrefix); err != nil {
			return ents, fmt.Errorf("%s: %w", c.Name, err)
		}
		if e.lookup, err = e.open(ctx, prefix+":"+c.Name+":l"); err != nil {
			return ents, fmt.Errorf("%s: %w", c.Name, err)
		}
		t0 := time.Now()
		if e.tokens, err = bench.Fill(ctx, e.lookup, cfg.workingSet); err != nil {
			return ents, fmt.Errorf("%s: minting the working set: %w", c.Name, err)
		}
		if err := bench.Warm(ctx, e.lookup, e.tokens); err != nil {
			return ents, fmt.Errorf("%s: warming the working set: %w", c.Name, err)
		}
		log.Printf("%s: %d live tokens in %v", c.Name, cfg.workingSet, time.Since(t0).Round(time.Millisecond))
	}
	return ents, nil
}

func closeEntrant(e *entrant) {
	for _, cl := range []bench.Client{e.mint, e.lookup} {
		if cl != nil {
			cl.Close()
		}
	}
}

// Operations, as results name them.
const (
	opMint   = "mint"
	opLookup = "lookup"
)

var ops = []string{opMint, opLookup}

// measureAll runs every cell cfg.rounds times. Within a round the
// contenders take turns at each (concurrency, operation), starting one
// further along each round, so that no contender always runs first or
// right after the same neighbour.
func measureAll(ctx context.Context, r target, cfg config, ents []*entrant) ([]Cell, error) {
	type key struct {
		name, op string
		c        int
	}
	samples := map[key][]sample{}
	for round := range cfg.rounds {
		t0 := time.Now()
		for _, c := range cfg.conc {
			for _, op := range ops {
				for i := range ents {
					e := ents[(i+round)%len(ents)]
					res, err := measureCell(ctx, r, cfg, e, op, c)
					if err != nil {
						return nil, fmt.Errorf("%s %s c=%d: %w", e.Name, op, c, err)
					}
					k := key{e.Name, op, c}
					samples[k] = append(samples[k], res)
				}
			}
		}
		log.Printf("round %d of %d in %v", round+1, cfg.rounds, time.Since(t0).Round(time.Millisecond))
	}
	var cells []Cell
	for _, e := range ents {
		for _, op := range ops {
			for _, c := range cfg.conc {
				cell := Cell{Contender: e.Name, Op: op, C: c}
				cell.fill(samples[key{e.Name, op, c}])
				cells = append(cells, cell)
			}
		}
	}
	return cells, nil
}

// sample is one round of one cell: what the goroutines did, and the CPU
// time the client process and the server spent meanwhile.
type sample struct {
	bench.Result
	client, server time.Duration
}

// measureCell runs one round of one cell. ctx, which Ctrl-C cancels, is
// what every call gets: a context that can be cancelled, as a request's can.
func measureCell(ctx context.Context, r target, cfg config, e *entrant, op string, c int) (sample, error) {
	var o bench.Op
	if op == opMint {
		o = bench.MintOp(e.mint)
	} else {
		o = bench.LookupOp(e.lookup, e.tokens)
	}
	runtime.GC() // the previous cell's garbage is not this cell's cost
	if cfg.warmup > 0 {
		if _, err := (bench.Load{Goroutines: c, Duration: cfg.warmup}).Run(ctx, o); err != nil {
			return sample{}, err
		}
	}
	server0, err := r.CPU(ctx)
	if err != nil {
		return sample{}, err
	}
	client0 := processCPU()
	res, err := bench.Load{Goroutines: c, Duration: cfg.d}.Run(ctx, o)
	if err != nil {
		return sample{}, err
	}
	s := sample{Result: res, client: processCPU() - client0}
	server1, err := r.CPU(ctx)
	if err != nil {
		return sample{}, err
	}
	s.server = server1 - server0
	if op == opMint {
		// Every cell starts from the same keyspace.
		if _, err := r.Clean(ctx, e.mintPrefix+":"); err != nil {
			return sample{}, err
		}
	}
	return s, nil
}

// fill sets a cell's figures from its rounds: the fastest round's
// throughput and allocations, and the median CPU time per operation.
//
// The fastest round stands for the cell because on a shared machine other
// work only ever slows a round down, never speeds it up: the fastest is
// the one least disturbed (the reasoning behind Python's timeit taking the
// minimum). The median is kept too.
func (c *Cell) fill(ss []sample) {
	ss = slices.Clone(ss)
	slices.SortFunc(ss, func(a, b sample) int { return cmp.Compare(a.OpsPerSec(), b.OpsPerSec()) })
	for _, s := range ss {
		c.Rounds = append(c.Rounds, round3(s.OpsPerSec()))
	}
	m := ss[len(ss)-1]
	c.OpsPerSec = round3(m.OpsPerSec())
	c.MedianOpsPerSec = round3(median(ss).OpsPerSec())
	c.NsPerOp = round3(m.NsPerOp())
	c.MeanLatencyUs = round3(float64(c.C) * m.NsPerOp() / 1e3)
	c.AllocsPerOp = round3(m.AllocsPerOp())
	perOp := func(d func(sample) time.Duration) float64 {
		us := make([]float64, len(ss))
		for i, s := range ss {
			us[i] = float64(d(s).Nanoseconds()) / 1e3 / float64(s.Ops)
		}
		slices.Sort(us)
		return round3(median(us))
	}
	c.ClientCPUUs = perOp(func(s sample) time.Duration { return s.client })
	c.ServerCPUUs = perOp(func(s sample) time.Duration { return s.server })
}

// median returns the middle of sorted xs, the lower middle of an even
// count: always a real round, never an average of two.
func median[T any](xs []T) T { return xs[(len(xs)-1)/2] }

// commandLine is the command that reproduces this run, as run from bench/.
func commandLine(cfg config) string {
	parts := []string{"go run ./cmd/compare"}
	redisNext := false
	for _, a := range cfg.args {
		switch name, val, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); {
		case redisNext:
			a = redact.URL(a)
		case name == "redis" && ok:
			a = a[:len(a)-len(val)] + redact.URL(val)
		}
		redisNext = a == "-redis" || a == "--redis"
		if strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
