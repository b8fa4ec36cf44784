package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/seshkit/sesh/bench"
)

// Report is everything one run measured; results.json is its JSON.
type Report struct {
	// Mode is modeCluster for a run on Redis Cluster, and empty for one on
	// a single Redis.
	Mode string `json:"mode,omitempty"`
	// Nodes is how many nodes the cluster had, masters and replicas.
	Nodes        int       `json:"nodes,omitempty"`
	Date         time.Time `json:"date"`
	Command      string    `json:"command"`
	Redis        string    `json:"redis"`
	RedisVersion string    `json:"redis_version"`
	GoVersion    string    `json:"go_version"`
	Platform     string    `json:"platform"`
	CPUs         int       `json:"cpus"`
	// OtherCores is how many CPUs, on average, processes other than this
	// one and redis-server kept busy while the cells were measured; -1
	// when it cannot be told.
	OtherCores     float64         `json:"other_cores_busy"`
	Elapsed        string          `json:"elapsed"`
	Duration       string          `json:"duration_per_round"`
	Warmup         string          `json:"warmup"`
	Rounds         int             `json:"rounds"`
	WorkingSet     int             `json:"working_set"`
	TTL            string          `json:"ttl"`
	CacheTTL       string          `json:"cache_ttl"`
	Concurrencies  []int           `json:"concurrencies"`
	Contenders     []ContenderInfo `json:"contenders"`
	Cells          []Cell          `json:"cells"`
	RedisBenchmark []RBCell        `json:"redis_benchmark"`
	Targets        []Target        `json:"targets"`
}

// ContenderInfo says what a contender is and how it was set up.
type ContenderInfo struct {
	Name   string `json:"name"`
	Mint   string `json:"mint"`
	Lookup string `json:"lookup"`
	Config string `json:"config"`
	Cached bool   `json:"cached,omitempty"`
}

// Cell is one contender's figures for one operation at one concurrency,
// from its fastest round but for the median ones.
type Cell struct {
	Contender       string    `json:"contender"`
	Op              string    `json:"op"`
	C               int       `json:"c"`
	OpsPerSec       float64   `json:"ops_per_sec"` // the fastest round
	MedianOpsPerSec float64   `json:"median_ops_per_sec"`
	NsPerOp         float64   `json:"ns_per_op"`
	MeanLatencyUs   float64   `json:"mean_latency_us"`
	AllocsPerOp     float64   `json:"allocs_per_op"`
	ClientCPUUs     float64   `json:"client_cpu_us_per_op"` // this process, every thread
	ServerCPUUs     float64   `json:"server_cpu_us_per_op"` // redis-server, every node of a cluster, from INFO cpu
	Rounds          []float64 `json:"rounds_ops_per_sec,omitempty"`
}

// RBCell is one redis-benchmark run.
type RBCell struct {
	Op           string  `json:"op"`
	C            int     `json:"c"`
	Command      string  `json:"command"`
	Requests     int     `json:"requests"`
	OpsPerSec    float64 `json:"ops_per_sec"`
	AvgLatencyMs float64 `json:"avg_latency_ms"`
	P50LatencyMs float64 `json:"p50_latency_ms"`
	P99LatencyMs float64 `json:"p99_latency_ms"`
}

// Target is one of the goals, judged on this run alone.
type Target struct {
	Goal    string `json:"goal"`
	Figure  string `json:"figure"`
	Verdict string `json:"verdict"` // met, missed, not measured, or – for a reference figure
}

const (
	met        = "met"
	missed     = "missed"
	unmeasured = "not measured"
	reference  = "–"
)

// busyCores is how much CPU other processes may take before a report calls
// its figures noisy.
const busyCores = 0.1

// maxOverhead is the most of raw redigo's time sesh may take.
const maxOverhead = 1.10

// modeCluster is Report.Mode for a run on Redis Cluster.
const modeCluster = "cluster"

// The contender names the targets read, beside the baselines.
const (
	seshName    = "sesh"
	noBatchName = "sesh-nobatch"
	rueidisName = "rueidis"
)

// baseline is the contender every time ratio is against.
func (r *Report) baseline() string {
	if r.Mode == modeCluster {
		return bench.ClusterBaseline
	}
	return bench.Baseline
}

// files are the names of the JSON, Markdown and chart files of r's mode.
func (r *Report) files() (js, md, chart string) {
	if r.Mode == modeCluster {
		return "results-cluster.json", "RESULTS-cluster.md", "chart-cluster.png"
	}
	return "results.json", "RESULTS.md", "chart.png"
}

// markers are the lines around r's section of a README.
func (r *Report) markers() (begin, end string) {
	if r.Mode == modeCluster {
		return clusterBeginMarker, clusterEndMarker
	}
	return beginMarker, endMarker
}

// cell returns the measured cell, or nil for one not measured.
func (r *Report) cell(name, op string, c int) *Cell {
	for i := range r.Cells {
		x := &r.Cells[i]
		if x.Contender == name && x.Op == op && x.C == c && x.OpsPerSec > 0 {
			return x
		}
	}
	return nil
}

func (r *Report) rb(op string, c int) *RBCell {
	for i := range r.RedisBenchmark {
		if x := &r.RedisBenchmark[i]; x.Op == op && x.C == c {
			return x
		}
	}
	return nil
}

// timeVsBaseline is how many times the baseline's time per operation a
// cell takes, or 0 when either is missing.
func (r *Report) timeVsBaseline(x *Cell) float64 {
	if x == nil {
		return 0
	}
	b := r.cell(r.baseline(), x.Op, x.C)
	if b == nil {
		return 0
	}
	return b.OpsPerSec / x.OpsPerSec
}

// evaluate judges the targets on r's figures.
func evaluate(r *Report) []Target {
	if r.Mode == modeCluster {
		return evaluateCluster(r)
	}
	var ts []Target

	ts = append(ts, cacheVsUncached(r))

	// sesh's overhead over raw redigo: at c=1 (issue 2), then everywhere.
	for _, op := range ops {
		name := map[string]string{opMint: "Set", opLookup: "Get"}[op]
		t := Target{Goal: fmt.Sprintf("At c=1, sesh's %s takes at most %.2f× raw redigo's time", name, maxOverhead)}
		if x := r.timeVsBaseline(r.cell("sesh", op, 1)); x == 0 {
			t.Verdict = unmeasured
		} else {
			t.Verdict, t.Figure = verdict(x <= maxOverhead), fmt.Sprintf("%.2f×", x)
		}
		ts = append(ts, t)
	}
	for _, op := range ops {
		name := map[string]string{opMint: "Set", opLookup: "Get"}[op]
		ts = append(ts, acrossC(r,
			fmt.Sprintf("Uncached sesh %s is within 10%% of raw redigo at every concurrency (time ratio)", name),
			func(c int) (float64, bool) {
				x := r.timeVsBaseline(r.cell("sesh", op, c))
				return x, x != 0 && x <= maxOverhead
			}))
	}

	// For reference: sesh against redigo with the same context handling.
	for _, op := range ops {
		name := map[string]string{opMint: "Set", opLookup: "Get"}[op]
		t := acrossC(r, fmt.Sprintf("For reference, not a target: uncached sesh %s against redigo through DoContext, as sesh calls it (time ratio)", name),
			func(c int) (float64, bool) {
				s, b := r.cell("sesh", op, c), r.cell("redigo+ctx", op, c)
				if s == nil || b == nil {
					return 0, false
				}
				x := b.OpsPerSec / s.OpsPerSec
				return x, x <= maxOverhead
			})
		if t.Verdict != unmeasured {
			t.Verdict = reference
			t.Figure = strings.ReplaceAll(t.Figure, " ✗", "")
		}
		ts = append(ts, t)
	}

	ts = append(ts, cacheVsRueidis(r))

	// Auto-pipelining (issue 13).
	ts = append(ts, beatRueidis(r, []int{16, 64, 256})...)
	for _, op := range ops {
		ts = append(ts, atC(r, fmt.Sprintf("sesh's %s has at least 2× raw redigo's throughput at c=256 (throughput ratio)", opNames[op]),
			[]int{256}, func(c int) (float64, bool) {
				x := r.timeVsBaseline(r.cell(seshName, op, c))
				if x == 0 {
					return 0, false
				}
				return 1 / x, 1/x >= 2
			}))
	}
	return append(ts, aloneCost(r)...)
}

// opNames are sesh's names for the operations.
var opNames = map[string]string{opMint: "Set", opLookup: "Get"}

// cacheVsUncached is the target of sesh's cached lookups against its
// uncached ones, at c=64.
func cacheVsUncached(r *Report) Target {
	t := Target{Goal: "sesh's cached Get has at least 50× the throughput of its uncached Get at c=64"}
	cached, plain := r.cell("sesh+cache", opLookup, 64), r.cell("sesh", opLookup, 64)
	switch {
	case cached == nil || plain == nil:
		t.Verdict = unmeasured
	default:
		x := cached.OpsPerSec / plain.OpsPerSec
		t.Verdict = verdict(x >= 50)
		t.Figure = fmt.Sprintf("%.1f× (%s vs %s ops/s)", x, fmtOps(cached.OpsPerSec), fmtOps(plain.OpsPerSec))
	}
	if rc, rp := r.cell("rueidis+cache", opLookup, 64), r.cell("rueidis", opLookup, 64); rc != nil && rp != nil {
		t.Figure += fmt.Sprintf("; rueidis's cache: %.1f×", rc.OpsPerSec/rp.OpsPerSec)
	}
	return t
}

// cacheVsRueidis is the target of sesh's cache against rueidis's.
func cacheVsRueidis(r *Report) Target {
	return acrossC(r, "sesh's cached lookups beat rueidis's client-side cache at every concurrency (throughput ratio)",
		func(c int) (float64, bool) {
			s, ru := r.cell("sesh+cache", opLookup, c), r.cell("rueidis+cache", opLookup, c)
			if s == nil || ru == nil {
				return 0, false
			}
			x := s.OpsPerSec / ru.OpsPerSec
			return x, x > 1
		})
}

// evaluateCluster judges the Cluster targets on r's figures.
func evaluateCluster(r *Report) []Target {
	ts := beatRueidis(r, []int{64, 256})
	ts = append(ts, aloneCost(r)...)
	for _, op := range ops {
		t := acrossC(r, fmt.Sprintf("For reference, not a target: sesh %s against raw redisc (time ratio)", opNames[op]),
			func(c int) (float64, bool) {
				x := r.timeVsBaseline(r.cell(seshName, op, c))
				return x, true
			})
		if t.Verdict != unmeasured {
			t.Verdict = reference
		}
		ts = append(ts, t)
	}
	return append(ts, cacheVsUncached(r), cacheVsRueidis(r))
}

// beatRueidis is the targets of sesh's uncached throughput against
// rueidis's at each of cs.
func beatRueidis(r *Report, cs []int) []Target {
	var ts []Target
	for _, op := range ops {
		ts = append(ts, atC(r, fmt.Sprintf("sesh's %s has at least rueidis's throughput at %s (throughput ratio)", opNames[op], listC(cs)),
			cs, func(c int) (float64, bool) {
				s, ru := r.cell(seshName, op, c), r.cell(rueidisName, op, c)
				if s == nil || ru == nil {
					return 0, false
				}
				x := s.OpsPerSec / ru.OpsPerSec
				return x, x >= 1
			}))
	}
	return ts
}

// aloneCost is the targets of batching's cost at c=1: sesh's time per
// operation against sesh's with batching off.
func aloneCost(r *Report) []Target {
	var ts []Target
	for _, op := range ops {
		ts = append(ts, atC(r, fmt.Sprintf("At c=1, sesh's %s takes at most %.2f× the time of sesh with batching off (time ratio)", opNames[op], maxOverhead),
			[]int{1}, func(c int) (float64, bool) {
				s, nb := r.cell(seshName, op, c), r.cell(noBatchName, op, c)
				if s == nil || nb == nil {
					return 0, false
				}
				x := nb.OpsPerSec / s.OpsPerSec
				return x, x <= maxOverhead
			}))
	}
	return ts
}

// listC names concurrencies: "c=16, 64 and 256".
func listC(cs []int) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = strconv.Itoa(c)
	}
	if len(s) == 1 {
		return "c=" + s[0]
	}
	return "c=" + strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// acrossC judges a target at every concurrency; f returns the figure and
// whether it passes, or 0 when it could not be measured.
func acrossC(r *Report, goal string, f func(c int) (float64, bool)) Target {
	return atC(r, goal, r.Concurrencies, f)
}

// atC judges a target at each of cs, as acrossC does.
func atC(r *Report, goal string, cs []int, f func(c int) (float64, bool)) Target {
	t := Target{Goal: goal, Verdict: met}
	var figs []string
	for _, c := range cs {
		x, ok := f(c)
		if x == 0 {
			return Target{Goal: goal, Verdict: unmeasured}
		}
		mark := ""
		if !ok {
			t.Verdict, mark = missed, " ✗"
		}
		figs = append(figs, fmt.Sprintf("c=%d %.2f×%s", c, x, mark))
	}
	t.Figure = strings.Join(figs, ", ")
	return t
}

func verdict(ok bool) string {
	if ok {
		return met
	}
	return missed
}

// write writes results.json, RESULTS.md and chart.png into dir, and the
// summary into the results section of each README that has one.
func (r *Report) write(dir string, readmes []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	jsName, mdName, chartName := r.files()
	files := map[string][]byte{
		jsName: append(js, '\n'),
		mdName: []byte(r.markdown()),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	png, err := r.chart()
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, chartName), png, 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s, %s and %s in %s", jsName, mdName, chartName, dir)
	begin, end := r.markers()
	for _, path := range readmes {
		switch err := splice(path, begin, end, r.summary()); {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNoMarkers):
			log.Printf("%s: no results section to rewrite (%v)", path, err)
		case err != nil:
			return err
		default:
			log.Printf("rewrote the results section of %s", path)
		}
	}
	return nil
}

// The markers around a README's results section, and around its Cluster
// results section.
const (
	beginMarker        = "<!-- compare:begin (generated by go run ./cmd/compare; do not edit) -->"
	endMarker          = "<!-- compare:end -->"
	clusterBeginMarker = "<!-- compare-cluster:begin (generated by go run ./cmd/compare -cluster; do not edit) -->"
	clusterEndMarker   = "<!-- compare-cluster:end -->"
)

// errNoMarkers is returned by splice for a file without the markers.
var errNoMarkers = errors.New("no results section between the compare markers")

// splice replaces what lies between the markers begin and end in the file
// at path.
func splice(path, begin, end, body string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := spliceBytes(b, begin, end, body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

func spliceBytes(b []byte, begin, end, body string) ([]byte, error) {
	i := bytes.Index(b, []byte(begin))
	j := bytes.Index(b, []byte(end))
	if i < 0 || j < i {
		return nil, fmt.Errorf("%w (%s ... %s)", errNoMarkers, begin, end)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(begin)])
	out.WriteString("\n" + body + "\n")
	out.Write(b[j:])
	return out.Bytes(), nil
}

// summary is the targets and the two headline tables.
func (r *Report) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s: %s.\n\n", r.Date.Format("2006-01-02 15:04 UTC"), r.setting())
	b.WriteString("| target | this run | verdict |\n|---|---|---|\n")
	for _, t := range r.Targets {
		v := t.Verdict
		if v == missed {
			v = "**missed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Goal, t.Figure, v)
	}
	for _, op := range ops {
		title := map[string]string{
			opMint:   "Mint (a new token with a 1h expiry)",
			opLookup: "Lookup (resolve a live token)",
		}[op]
		fmt.Fprintf(&b, "\n**%s**: ops/s, and in brackets the time per operation as a multiple of raw %s's (lower is faster).\n\n", title, r.baseline())
		b.WriteString("| contender |")
		for _, c := range r.Concurrencies {
			fmt.Fprintf(&b, " c=%d |", c)
		}
		b.WriteString("\n|---|" + strings.Repeat("--:|", len(r.Concurrencies)) + "\n")
		for _, ci := range r.Contenders {
			fmt.Fprintf(&b, "| %s |", ci.Name)
			for _, c := range r.Concurrencies {
				x := r.cell(ci.Name, op, c)
				if x == nil {
					b.WriteString(" – |")
				} else {
					fmt.Fprintf(&b, " %s (%s) |", fmtOps(x.OpsPerSec), fmtRatio(r.timeVsBaseline(x)))
				}
			}
			b.WriteString("\n")
		}
		if len(r.RedisBenchmark) > 0 {
			b.WriteString("| *redis-benchmark* |")
			for _, c := range r.Concurrencies {
				if x := r.rb(op, c); x != nil {
					fmt.Fprintf(&b, " *%s* |", fmtOps(x.OpsPerSec))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// setting says where and how the run was made, in one sentence.
func (r *Report) setting() string {
	where := fmt.Sprintf("Redis %s at %s", r.RedisVersion, r.Redis)
	if r.Mode == modeCluster {
		where = fmt.Sprintf("Redis Cluster %s of %d nodes on this machine, seeded by %s", r.RedisVersion, r.Nodes, r.Redis)
	}
	s := fmt.Sprintf("%s, %s %s with %d CPUs shared by the client and Redis; "+
		"each figure is the %s, each after %s of warm-up; lookups draw from %s live tokens per contender",
		where, r.GoVersion, r.Platform, r.CPUs,
		r.figureIs(), r.Warmup, fmtInt(r.WorkingSet))
	switch o := r.OtherCores; {
	case o > busyCores:
		s += fmt.Sprintf("; **other processes kept %.2f of the %d CPUs busy during the measurements, so the figures are noisier than usual**", o, r.CPUs)
	case o >= 0:
		s += fmt.Sprintf("; other processes kept %.2f of the %d CPUs busy during the measurements", o, r.CPUs)
	}
	return s
}

// figureIs says which round each figure comes from.
func (r *Report) figureIs() string {
	if r.Rounds == 1 {
		return "one round of " + r.Duration
	}
	return fmt.Sprintf("fastest of %d rounds of %s", r.Rounds, r.Duration)
}

// markdown is RESULTS.md.
func (r *Report) markdown() string {
	var b strings.Builder
	jsName, _, chartName := r.files()
	server, serverCPU := "redis-server", "redis-server's"
	if r.Mode == modeCluster {
		b.WriteString("# sesh and its peers on Redis Cluster: results\n\n")
		server = fmt.Sprintf("all %d redis-server nodes together", r.Nodes)
		serverCPU = fmt.Sprintf("the sum over all %d redis-server nodes", r.Nodes)
	} else {
		b.WriteString("# sesh and its peers: results\n\n")
	}
	fmt.Fprintf(&b, "Generated by `cd bench && %s` in %s. The same run wrote %s and %s; README.md says what is measured and how.\n\n", r.Command, r.Elapsed, jsName, chartName)
	fmt.Fprintf(&b, "![ops/s of mint and lookup per contender and concurrency](%s)\n\n", chartName)
	if r.Mode != modeCluster {
		b.WriteString("The same contenders on Redis Cluster, from `go run ./cmd/compare -cluster ...`, are in [RESULTS-cluster.md](RESULTS-cluster.md).\n\n")
	}
	b.WriteString(r.summary())

	b.WriteString("\n## CPU per operation\n\n")
	b.WriteString("Microseconds of CPU per operation, client process / " + server + ", the median over the rounds. " +
		"Unlike throughput, these hardly move with the machine's other load; on 2 shared cores their sum is what bounds throughput.\n")
	for _, op := range ops {
		fmt.Fprintf(&b, "\n| %s: client / server |", op)
		for _, c := range r.Concurrencies {
			fmt.Fprintf(&b, " c=%d |", c)
		}
		b.WriteString("\n|---|" + strings.Repeat("--:|", len(r.Concurrencies)) + "\n")
		for _, ci := range r.Contenders {
			fmt.Fprintf(&b, "| %s |", ci.Name)
			for _, c := range r.Concurrencies {
				if x := r.cell(ci.Name, op, c); x != nil {
					fmt.Fprintf(&b, " %.2f / %.2f |", x.ClientCPUUs, x.ServerCPUUs)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}

	b.WriteString("\n## Every cell\n\n")
	b.WriteString("ns/op is wall time per operation across all goroutines (1/throughput), as `go test` reports for RunParallel; " +
		"mean latency is concurrency × ns/op. Allocations and client CPU count the whole process, the client library's background goroutines included; " +
		"server CPU is " + serverCPU + ", from INFO cpu. The rounds column lists every round's ops/s, slowest first, to show the noise.\n\n")
	fmt.Fprintf(&b, "| contender | op | c | ops/s | ns/op | mean latency | allocs/op | client CPU/op | server CPU/op | time vs %s | median ops/s | rounds (ops/s) |\n", r.baseline())
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, op := range ops {
		for _, ci := range r.Contenders {
			for _, c := range r.Concurrencies {
				x := r.cell(ci.Name, op, c)
				if x == nil {
					continue
				}
				rounds := make([]string, len(x.Rounds))
				for i, v := range x.Rounds {
					rounds[i] = fmtOps(v)
				}
				fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %.1f | %s | %s | %s | %s | %s |\n",
					ci.Name, op, c, fmtOps(x.OpsPerSec), fmtFloat(x.NsPerOp), fmtMicros(x.MeanLatencyUs),
					x.AllocsPerOp, fmtMicros(x.ClientCPUUs), fmtMicros(x.ServerCPUUs),
					fmtRatio(r.timeVsBaseline(x)), fmtOps(x.MedianOpsPerSec), strings.Join(rounds, ", "))
			}
		}
	}

	b.WriteString("\n## Contenders\n\n| contender | mint sends | lookup sends | configuration |\n|---|---|---|---|\n")
	for _, ci := range r.Contenders {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", ci.Name, ci.Mint, ci.Lookup, ci.Config)
	}

	b.WriteString("\n## redis-benchmark\n\n")
	switch {
	case r.Mode == modeCluster:
		b.WriteString("Not run: compare runs redis-benchmark on a single Redis only.\n")
	case len(r.RedisBenchmark) == 0:
		b.WriteString("Not run: redis-benchmark was not found or could not reach the server.\n")
	default:
		b.WriteString("The same commands from redis-benchmark (C, one event loop, no client library), as the server's own limit on this machine. " +
			"Its GET draws from its own working set of the same size; its SET uses fresh random keys.\n\n")
		b.WriteString("| op | c | ops/s | avg latency | p50 | p99 | command |\n|---|--:|--:|--:|--:|--:|---|\n")
		for _, op := range ops {
			for _, c := range r.Concurrencies {
				if x := r.rb(op, c); x != nil {
					fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | `%s` |\n", op, c, fmtOps(x.OpsPerSec),
						fmtMillis(x.AvgLatencyMs), fmtMillis(x.P50LatencyMs), fmtMillis(x.P99LatencyMs), x.Command)
				}
			}
		}
	}
	return b.String()
}

func fmtOps(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtRatio(x float64) string {
	switch {
	case x == 0:
		return "–"
	case x < 0.1:
		return fmt.Sprintf("%.3f×", x)
	default:
		return fmt.Sprintf("%.2f×", x)
	}
}

func fmtFloat(v float64) string {
	if v >= 100 {
		return fmtInt(int(v + 0.5))
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtMicros(us float64) string {
	switch {
	case us >= 1000:
		return fmt.Sprintf("%.2f ms", us/1000)
	case us >= 10:
		return fmt.Sprintf("%.1f µs", us)
	default:
		return fmt.Sprintf("%.2f µs", us)
	}
}

func fmtMillis(ms float64) string { return fmtMicros(ms * 1000) }

// fmtInt groups thousands with commas.
func fmtInt(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// round3 drops digits below the noise: whole numbers from 100 up, two
// decimals below.
func round3(v float64) float64 {
	if v >= 100 {
		return float64(int64(v + 0.5))
	}
	return float64(int64(v*100+0.5)) / 100
}
