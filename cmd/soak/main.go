// Command soak drives sesh through a realistic workload for a while, on a
// real Redis topology, while it injects faults, and checks every call
// against the promises docs/reliability.md lists as the run goes, so that
// its memory and its final check depend on the call rate, not on how long
// it runs: a run of hours prints its verdict within seconds of its end.
//
//	go run ./cmd/soak -topology single -config cache -d 1m -c 32 -seed 1
//	go run ./cmd/soak -topology cluster -config replicas -faults kill-master,kill-conns
//	go run ./cmd/soak -topology single -config cache -d 4h -json soak.json
//
// single is a private redis-server the harness starts (and restarts, and
// starves) behind a TCP proxy of its own; sentinel and cluster are the
// topologies scripts/ starts. Configurations: plain, crypt, track (with
// TrackUsers and MaxAge), cache (two caching Stores, one process apart as
// far as their caches go), replicas (Replicas: 1), policies (two Stores
// with different TTL, MaxAge, Sliding and TrackUsers over the same
// sessions, and SetWith's per-session policies), grace (RotateGrace),
// reuse (RotateGrace and ReuseDetection) and sessions (Details and a cap
// that ends the oldest).
//
// It prints a progress line every -progress (calls checked, promises
// broken, heap), then a report: at the end it also scans the run's own
// prefix for orphan tokens (live keys no Set returned) and keys without
// expiry, and on single it counts, through its proxy, the commands that
// ran after their caller's deadline. It writes the report as JSON with
// -json, and exits 1 when a promise was broken.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/seshkit/sesh"
)

type config struct {
	opts  sesh.Options
	crypt bool
	cache bool
	// second, when set, opens a second Store with these Options over the
	// same sessions; Prefix, Rand and Pipelines are the first's.
	second *sesh.Options
	// policies are what SetWith gives one Set in four, when there are any.
	policies []sesh.Policy
	// idle, when set, leaves some sessions alone for up to idle (see mix).
	idle time.Duration
}

var configs = map[string]config{
	"plain":    {opts: sesh.Options{TTL: time.Minute}},
	"crypt":    {opts: sesh.Options{TTL: time.Minute, TrackUsers: true}, crypt: true},
	"track":    {opts: sesh.Options{TTL: 2 * time.Second, MaxAge: 3 * time.Second, Sliding: true, TrackUsers: true}},
	"cache":    {opts: sesh.Options{TTL: time.Minute, TrackUsers: true, CacheSize: 10000, CacheMaxStale: 200 * time.Millisecond}, cache: true},
	"replicas": {opts: sesh.Options{TTL: time.Minute, TrackUsers: true, Replicas: 1, ReplicaTimeout: 500 * time.Millisecond}},
	// Each session keeps the policy it was made with, whichever of two
	// Stores with different Options runs the next call on it.
	"policies": {opts: sesh.Options{TTL: 2 * time.Second, MaxAge: 6 * time.Second, Sliding: true, TrackUsers: true},
		second:   &sesh.Options{TTL: time.Hour},
		policies: []sesh.Policy{{TTL: time.Second, MaxAge: 4 * time.Second}, {TTL: 3 * time.Second}, {MaxAge: 2 * time.Second}},
		idle:     4 * time.Second},
	"grace": graceConfig,
	"reuse": reuseConfig,
}

// report is what a run found.
type report struct {
	Topology, Config string
	Seed             uint64
	Duration         time.Duration
	Concurrency      int
	Pipelines        int            // Options.Pipelines: 0 the default, -1 off
	Calls            map[string]int // by op
	Errors           map[string]int // by op/kind
	P50, P99, Max    time.Duration  // P50 and P99 to within 1.6%
	Events           []event
	Checked          map[string]int
	Broken           map[string]int // by rule
	Violations       []violation    // the first 100 of each rule
	WithinCacheLag   int
	Orphans          orphans
	Late             *lateCommands `json:",omitempty"` // single only: the commands the proxy saw
	StrictLate       bool          // a command the Store sent after its caller's deadline is a broken promise
	HeapMiB          [][2]float64  // in use, and live after the last collection, at each progress line
	ProgressEvery    time.Duration
	VerdictAfter     time.Duration // from the end of the load to the verdict
	Goroutines       [2]int        // before the Stores, after they closed
	HeapMB           [2]float64
	Leaked           bool
}

// settings are what a run is asked to do.
type settings struct {
	topo, cfgName string
	cfg           config
	faults        []fault
	d             time.Duration
	c, users      int
	seed          uint64
	every         time.Duration // a fault starts this often
	timeout       time.Duration // each call's context
	progress      time.Duration // a progress line this often
	lateOn        bool          // count the commands after their caller's deadline (single only)
	strictLate    bool
	record        string // a file to write every call to, as JSON lines
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	topo := fs.String("topology", "single", "single, sentinel or cluster")
	cfgName := fs.String("config", "plain", "plain, crypt, track, cache, replicas, policies, grace, reuse or sessions")
	d := fs.Duration("d", 30*time.Second, "how long to run")
	c := fs.Int("c", 32, "concurrent workers")
	users := fs.Int("users", 50, "distinct users")
	seed := fs.Uint64("seed", 1, "seed of the workload and of the fault schedule")
	faultList := fs.String("faults", "all", "comma-separated faults, all, or none")
	every := fs.Duration("every", 2*time.Second, "a fault starts this often")
	timeout := fs.Duration("timeout", time.Second, "each call's context timeout")
	pipelines := fs.Int("pipelines", 0, "Options.Pipelines: shared connections per server (0: the default, -1: auto-pipelining off)")
	progress := fs.Duration("progress", 10*time.Second, "print a progress line this often (0: none)")
	lateOn := fs.Bool("after-deadline", true, "count the commands that run after their caller's deadline, through the proxy (single only; it costs some of the call rate)")
	strictLate := fs.Bool("strict-after-deadline", false, "count a command the Store sent after its caller's deadline as a broken promise (single only; implies -after-deadline)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	record := fs.String("record", "", "write every call to this file as JSON lines, in the order they began (for replaying the oracle; grows with the run)")
	list := fs.Bool("list", false, "list the faults and exit")
	table := fs.Bool("table", false, "run nothing: print docs/reliability.md's table rows for the JSON reports named as arguments")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *table {
		return printTable(stdout, stderr, fs.Args())
	}
	if *list {
		for _, f := range faults {
			fmt.Fprintf(stdout, "%-14s %-24s %s\n", f.name, strings.Join(f.on, ","), f.about)
		}
		return 0
	}
	cfg, ok := configs[*cfgName]
	if !ok {
		fmt.Fprintf(stderr, "soak: unknown config %q\n", *cfgName)
		return 2
	}
	cfg.opts.Pipelines = *pipelines
	chosen, err := chooseFaults(*faultList, *topo)
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 2
	}
	r, err := soak(settings{topo: *topo, cfgName: *cfgName, cfg: cfg, faults: chosen, d: *d, c: *c, users: *users,
		seed: *seed, every: *every, timeout: *timeout, progress: *progress, lateOn: *lateOn || *strictLate, strictLate: *strictLate, record: *record}, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	return finish(stdout, stderr, r, *jsonOut)
}

// finish prints r, writes it as JSON to jsonOut when named, and returns
// the exit code: 1 when a promise broke or the run leaked.
func finish(stdout, stderr io.Writer, r *report, jsonOut string) int {
	print(stdout, r)
	if jsonOut != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(stderr, "soak:", err)
			return 1
		}
	}
	if r.broken() > 0 || r.Leaked {
		return 1
	}
	return 0
}

func chooseFaults(spec, topo string) ([]fault, error) {
	var out []fault
	if spec == "none" {
		return nil, nil
	}
	for _, f := range faults {
		if !slices.Contains(f.on, topo) {
			continue
		}
		if spec == "all" || slices.Contains(strings.Split(spec, ","), f.name) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fault of %q applies to %s; see -list", spec, topo)
	}
	return out, nil
}

// soak runs s against its target, checking as it goes and printing
// progress to w, and reports.
func soak(s settings, w io.Writer) (*report, error) {
	r := &report{Topology: s.topo, Config: s.cfgName, Seed: s.seed, Duration: s.d, Concurrency: s.c,
		Pipelines: s.cfg.opts.Pipelines, StrictLate: s.strictLate, ProgressEvery: s.progress}
	t, err := newTarget(s.topo)
	if err != nil {
		return nil, err
	}
	defer t.close()
	r.Goroutines[0], r.HeapMB[0] = goroutines(), heapMB()

	prefix := fmt.Sprintf("soak%d", time.Now().UnixNano())
	seq := newSequencer(s.c)
	// A key lives its TTL (or to its MaxAge) after the last command about
	// it ran; 30s more covers a command that ran late.
	book := newKeyBook(s.cfg.longest() + 30*time.Second)
	var late *lateCommands
	if t.proxy != nil && s.lateOn {
		late = newLateCommands(book, s.timeout)
		t.proxy.setTap(wireTap(prefix, seq))
	}
	s.cfg.opts.Prefix, s.cfg.opts.Rand = prefix, drawReader{seq}
	stores, closeStores, err := openStores(t, s.cfg)
	if err != nil {
		return nil, err
	}
	lag := time.Duration(0)
	if s.cfg.cache {
		lag = s.cfg.opts.CacheMaxStale
	}
	o := newOracle(limits{MaxAge: s.cfg.opts.MaxAge, Slack: 500 * time.Millisecond, Expiry: 5 * time.Millisecond, CacheLag: lag, Grace: s.cfg.opts.RotateGrace, Reuse: s.cfg.opts.ReuseDetection, MaxSessions: s.cfg.opts.MaxSessions})
	o.v.cap = 100 // the counts go on; the details stop
	var pw io.Writer
	if s.progress > 0 {
		pw = w
	}
	m := newMonitor(seq, o, book, late, pw)
	finishRecord, err := m.recordTo(s.record)
	if err != nil {
		closeStores()
		return nil, err
	}
	ended := load(s, t, stores, m)
	closeStores()

	m.step(true)
	if err := finishRecord(); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	v := o.close()
	r.Checked, r.Broken, r.Violations, r.WithinCacheLag = v.Checked, v.Broken, v.Violations, v.WithinLag
	r.Calls, r.Errors, r.Events, r.HeapMiB, r.Late = m.calls, m.errors, m.out.measured(), m.heap, late
	r.P50, r.P99, r.Max = m.lat.quantile(0.5), m.lat.quantile(0.99), m.lat.max
	endChecks(r, t, prefix, book)
	r.VerdictAfter = time.Since(ended)
	r.Goroutines[1], r.HeapMB[1], r.Leaked = settle(r.Goroutines[0], r.HeapMB[0])
	return r, nil
}

// breaks records a broken promise found at the end.
func (r *report) breaks(rule, what string) {
	r.Broken[rule]++
	r.Violations = append(r.Violations, violation{rule, what})
}

// broken is how many promises broke; from Violations in reports older
// than Broken.
func (r *report) broken() int {
	if r.Broken == nil {
		return len(r.Violations)
	}
	n := 0
	for _, k := range r.Broken {
		n += k
	}
	return n
}

// endChecks adds what the end of the run shows: the orphan tokens left
// under prefix, any token key without expiry, and, when r.StrictLate, the
// commands the Store sent after their caller's deadline.
func endChecks(r *report, t *target, prefix string, book *keyBook) {
	var err error
	if r.Orphans, err = findOrphans(t.masters(), prefix, book); err != nil {
		r.breaks("orphan-scan", err.Error())
	}
	if r.Orphans.NoExpiry > 0 {
		r.breaks("no-expiry", fmt.Sprintf("%d token keys have no expiry", r.Orphans.NoExpiry))
	}
	if r.Late == nil {
		return
	}
	if r.StrictLate && r.Late.Sent > 0 {
		r.breaks("after-deadline", fmt.Sprintf("%d commands sent after their caller's deadline", r.Late.Sent))
	}
	r.Late.book = nil // the report keeps the figures, not the keys
}

// longest is the longest a session of cfg lives untouched.
func (cfg config) longest() time.Duration {
	d := max(cfg.opts.TTL, cfg.opts.MaxAge)
	if cfg.second != nil {
		d = max(d, cfg.second.TTL, cfg.second.MaxAge)
	}
	for _, p := range cfg.policies {
		d = max(d, p.TTL, p.MaxAge)
	}
	return d
}

// openStores opens the run's Stores on t: two when they cache, so that
// one ends what the other caches, and the other way round; two, the second
// with cfg.second's Options, when cfg has them.
func openStores(t *target, cfg config) ([]handle, func(), error) {
	opts := []sesh.Options{cfg.opts}
	if cfg.cache {
		opts = append(opts, cfg.opts)
	}
	if cfg.second != nil {
		o := *cfg.second
		o.Prefix, o.Rand, o.Pipelines = cfg.opts.Prefix, cfg.opts.Rand, cfg.opts.Pipelines
		opts = append(opts, o)
	}
	var stores []handle
	var closers []func()
	closeAll := func() {
		for _, cl := range closers {
			cl()
		}
	}
	key, _ := sesh.KeyFromSecret(strings.Repeat("soak-secret-", 4))
	for _, o := range opts {
		p, closer, err := t.pool()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		s, err := sesh.New(p, o)
		if err != nil {
			closer()
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, func() { s.Close(); closer() })
		var a api = s
		if cfg.crypt {
			if a, err = sesh.NewCrypt(s, key); err != nil {
				closeAll()
				return nil, nil, err
			}
		}
		stores = append(stores, handle{a, o})
	}
	return stores, closeAll, nil
}

// load runs the workers and the faults for s.d while m checks, and returns
// when the load ended, once the workers and the faults are done.
func load(s settings, t *target, stores []handle, m *monitor) time.Time {
	users := make([]string, s.users)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.d)
	defer cancel()
	injected := make(chan struct{})
	go func() { inject(ctx, t, s.faults, s.every, s.seed, m.out); close(injected) }()
	mctx, stop := context.WithCancel(context.Background())
	checked := make(chan struct{})
	go func() { m.run(mctx, 100*time.Millisecond, s.progress); close(checked) }()
	runWorkers(ctx, s.c, mix{stores: stores, policies: s.cfg.policies, idle: s.cfg.idle, users: users, timeout: s.timeout, seed: s.seed}, m.seq)
	ended := time.Now()
	<-injected
	stop()
	<-checked
	return ended
}

// wireTap turns the commands the proxy sees into one record per read for
// seq, of those that name the run's keys.
func wireTap(prefix string, seq *sequencer) tapFunc {
	return func(cmds [][][]byte, read, wrote time.Time, dropped bool) {
		var ws []wire
		for _, args := range cmds {
			w := parseWire(prefix, args)
			if w == nil || len(w.Members)+len(w.Users) == 0 {
				continue
			}
			w.Read, w.Wrote, w.Dropped = read, wrote, dropped
			ws = append(ws, *w)
		}
		if len(ws) > 0 {
			seq.stamp(func(now time.Time) call { return call{Op: "wire", Start: now, Wire: ws} })
		}
	}
}

// settle waits, up to 10s, for what the run started to be gone, and
// reports the goroutines and heap left and whether that is a leak.
func settle(g0 int, h0 float64) (int, float64, bool) {
	var g int
	var h float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		g, h = goroutines(), heapMB()
		if g <= g0+2 || time.Now().After(deadline) {
			break
		}
	}
	return g, h, g > g0+2 || h > h0+16
}

func goroutines() int { return runtime.NumGoroutine() }

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

func print(w io.Writer, r *report) {
	total := 0
	for _, n := range r.Calls {
		total += n
	}
	batching := "auto-pipelining on"
	switch {
	case r.Pipelines == sesh.NoPipelining:
		batching = "auto-pipelining off"
	case r.Pipelines > 0:
		batching = fmt.Sprintf("auto-pipelining on %d connections per server", r.Pipelines)
	}
	fmt.Fprintf(w, "soak: %s, config %s, %s, %v, %d workers, seed %d\n", r.Topology, r.Config, batching, r.Duration, r.Concurrency, r.Seed)
	fmt.Fprintf(w, "calls: %d (%.0f/s); latency p50 %v, p99 %v, max %v\n", total, float64(total)/r.Duration.Seconds(),
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Millisecond))
	fmt.Fprintf(w, "by op: %s\n", kv(r.Calls))
	fmt.Fprintf(w, "errors: %s\n", kv(r.Errors))
	printFaults(w, r)
	fmt.Fprintf(w, "checked: %s\n", kv(r.Checked))
	fmt.Fprintf(w, "orphan tokens at the end: %d (%d indexed) of %d live token keys; without expiry: %d\n",
		r.Orphans.Orphans, r.Orphans.Indexed, r.Orphans.Live, r.Orphans.NoExpiry)
	if l := r.Late; l != nil {
		fmt.Fprintf(w, "commands after their caller's deadline: %d sent by the Store (%s), %d reached Redis (%s), of %d seen; %d unattributed\n",
			l.Sent, kv(l.SentByCmd), l.Ran, kv(l.ByCmd), l.Seen, l.Unattributed)
	}
	if r.WithinCacheLag > 0 {
		fmt.Fprintf(w, "stale reads within the cache's documented bound: %d\n", r.WithinCacheLag)
	}
	fmt.Fprintf(w, "heap in use/live (MiB, every %v): %s\n", r.ProgressEvery, mibs(r.HeapMiB))
	fmt.Fprintf(w, "verdict %v after the load ended\n", r.VerdictAfter.Round(time.Millisecond))
	fmt.Fprintf(w, "after close: goroutines %d -> %d, heap %.1f -> %.1f MiB\n", r.Goroutines[0], r.Goroutines[1], r.HeapMB[0], r.HeapMB[1])
	if r.broken() == 0 && !r.Leaked {
		fmt.Fprintln(w, "verdict: every promise held")
		return
	}
	fmt.Fprintf(w, "verdict: BROKEN: %s (leaked: %v)\n", kv(r.Broken), r.Leaked)
	for i, v := range r.Violations {
		if i == 10 {
			fmt.Fprintf(w, "  ... and %d more\n", len(r.Violations)-10)
			break
		}
		fmt.Fprintf(w, "  %s: %s\n", v.Rule, v.What)
	}
}

// printFaults prints the faults injected and the longest outage of each
// kind; when a promise broke, every fault with its time.
func printFaults(w io.Writer, r *report) {
	byFault := map[string][]time.Duration{}
	failed := map[string]int{}
	for _, e := range r.Events {
		if e.Err != "" {
			failed[e.Fault]++
			continue
		}
		byFault[e.Fault] = append(byFault[e.Fault], e.Outage)
	}
	names := make([]string, 0, len(byFault))
	for n := range byFault {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "faults: %d injected\n", len(r.Events))
	if len(r.Events) > 0 && r.broken() > 0 {
		for _, e := range r.Events {
			fmt.Fprintf(w, "  at +%v %s (%v)\n", e.Start.Sub(r.Events[0].Start.Add(-time.Duration(0))).Round(time.Millisecond), e.Fault, e.End.Sub(e.Start).Round(time.Millisecond))
		}
	}
	for _, n := range names {
		rs := byFault[n]
		slices.Sort(rs)
		fmt.Fprintf(w, "  %-14s x%-3d longest outage: median %v, max %v\n", n, len(rs), rs[len(rs)/2].Round(time.Millisecond), rs[len(rs)-1].Round(time.Millisecond))
	}
	for n, k := range failed {
		fmt.Fprintf(w, "  %-14s could not be injected %d times\n", n, k)
	}
}

func mibs(v [][2]float64) string {
	if len(v) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.0f/%.0f", x[0], x[1])
	}
	return b.String()
}

func kv(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// printTable prints a markdown row per JSON report in files, as the
// soak table in docs/reliability.md has them.
func printTable(stdout, stderr io.Writer, files []string) int {
	fmt.Fprintln(stdout, "| topology | config | calls/s | faults | longest outage per fault kind (max) | calls checked | stale reads within the cache bound | broken promises |")
	fmt.Fprintln(stdout, "|---|---|--:|--:|---|--:|--:|--:|")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "soak:", err)
			return 1
		}
		var r report
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(stderr, "soak: %s: %v\n", f, err)
			return 1
		}
		total := 0
		for _, n := range r.Calls {
			total += n
		}
		longest := map[string]time.Duration{}
		for _, e := range r.Events {
			if e.Err == "" && e.Outage > longest[e.Fault] {
				longest[e.Fault] = e.Outage
			}
		}
		names := slices.Sorted(maps.Keys(longest))
		kinds := make([]string, len(names))
		for i, n := range names {
			kinds[i] = n + " " + roundOutage(longest[n])
		}
		fmt.Fprintf(stdout, "| %s | %s | %s | %d | %s | %s | %d | %d |\n", r.Topology, r.Config,
			thousands(int(float64(total)/r.Duration.Seconds())), len(r.Events), strings.Join(kinds, ", "),
			thousands(r.Checked["overrun"]), r.WithinCacheLag, r.broken()+b2i(r.Leaked))
	}
	return 0
}

// roundOutage prints d as the table does: ms below a second, else seconds.
func roundOutage(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// thousands prints n with commas.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
