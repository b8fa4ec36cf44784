package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRBCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"GET k:__rand_int__","41234.50","0.420","0.016","0.055","1.895","3.759","52.223"
`
	got, err := parseRBCSV([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := RBCell{OpsPerSec: 41234.5, AvgLatencyMs: 0.42, P50LatencyMs: 0.055, P99LatencyMs: 3.759}
	if got != want {
		t.Errorf("parseRBCSV = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", `"test","rps"` + "\n", `"test","rps"` + "\n" + `"GET","fast"` + "\n"} {
		if _, err := parseRBCSV([]byte(bad)); err == nil {
			t.Errorf("parseRBCSV(%q) returned no error", bad)
		}
	}
}

func TestSpliceReplacesOnlyTheResultsSection(t *testing.T) {
	doc := "# Title\n\nBefore.\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nAfter.\n"
	once, err := spliceBytes([]byte(doc), beginMarker, endMarker, "new table")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nBefore.\n\n" + beginMarker + "\nnew table\n" + endMarker + "\n\nAfter.\n"
	if string(once) != want {
		t.Errorf("spliced:\n%s\nwant:\n%s", once, want)
	}
	twice, _ := spliceBytes(once, beginMarker, endMarker, "new table")
	if !bytes.Equal(once, twice) {
		t.Errorf("a second splice changed the file:\n%s", twice)
	}
	if _, err := spliceBytes([]byte("# No markers\n"), beginMarker, endMarker, "x"); !errors.Is(err, errNoMarkers) {
		t.Errorf("splice without markers: error %v, want errNoMarkers", err)
	}
}

// sampleReport is a report of a run on two concurrencies, with or without
// sesh+cache's figures.
func sampleReport(withCache bool) *Report {
	r := &Report{
		Date: time.Date(2025, 11, 25, 20, 0, 0, 0, time.UTC), Command: "go run ./cmd/compare",
		Redis: "redis://127.0.0.1:6379/15", RedisVersion: "7.0.15", GoVersion: "go1.26", Platform: "linux/amd64",
		CPUs: 2, OtherCores: 0.25, Duration: "1s", Warmup: "200ms", Rounds: 3,
		WorkingSet: 10000, Concurrencies: []int{1, 64},
		Contenders: []ContenderInfo{{Name: "redigo"}, {Name: "redigo+ctx"}, {Name: "sesh"}, {Name: "sesh-nobatch"}, {Name: "rueidis"}, {Name: "rueidis+cache", Cached: true}, {Name: "sesh+cache", Cached: true}},
	}
	ops := map[string][2]float64{ // ops/s at c=1 and c=64
		"redigo": {40000, 60000}, "redigo+ctx": {38000, 55000}, "sesh": {38000, 50000}, "sesh-nobatch": {40000, 50000}, "rueidis": {30000, 110000}, "rueidis+cache": {2e6, 2.2e6},
	}
	if withCache {
		ops["sesh+cache"] = [2]float64{3e6, 3.5e6}
	}
	for _, ci := range r.Contenders {
		if _, ok := ops[ci.Name]; !ok {
			continue
		}
		for i, c := range r.Concurrencies {
			for _, op := range []string{opMint, opLookup} {
				v := ops[ci.Name][i]
				if ci.Cached && op == opMint {
					v = ops["redigo"][i]
				}
				r.Cells = append(r.Cells, Cell{Contender: ci.Name, Op: op, C: c, OpsPerSec: v, NsPerOp: 1e9 / max(v, 1), Rounds: []float64{v}})
			}
		}
	}
	for _, c := range r.Concurrencies {
		r.RedisBenchmark = append(r.RedisBenchmark, RBCell{Op: opMint, C: c, OpsPerSec: 50000}, RBCell{Op: opLookup, C: c, OpsPerSec: 55000})
	}
	r.Targets = evaluate(r)
	return r
}

func TestEvaluate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		withCach bool
		want     []string
	}{
		// The batching targets at c=16 and c=256 are unmeasured: the
		// sample runs c=1 and c=64 only.
		{"an unmeasured cache leaves its targets unjudged", false, []string{unmeasured, met, met, missed, missed, reference, reference, unmeasured, unmeasured, unmeasured, unmeasured, unmeasured, met, met}},
		{"a measured cache is judged", true, []string{met, met, met, missed, missed, reference, reference, met, unmeasured, unmeasured, unmeasured, unmeasured, met, met}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleReport(tc.withCach)
			var got []string
			for _, x := range r.Targets {
				got = append(got, x.Verdict)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				for _, x := range r.Targets {
					t.Logf("%s: %s: %s", x.Goal, x.Figure, x.Verdict)
				}
				t.Errorf("verdicts %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMarkdownShowsEveryContender(t *testing.T) {
	md := sampleReport(false).markdown()
	for _, want := range []string{
		"| sesh | 38k (1.05×) | 50k (1.20×) |",
		"| sesh+cache | – | – |",
		"| *redis-benchmark* | *50k* | *50k* |",
		"**missed**",
		"other processes kept 0.25 of the 2 CPUs busy during the measurements, so the figures are noisier",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, md)
		}
	}
}

func TestChartIsAReadablePNG(t *testing.T) {
	b, err := sampleReport(true).chart()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != chartW || got.Y != chartH {
		t.Errorf("chart is %v pixels, want %dx%d", got, chartW, chartH)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-rounds", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.d != 100*time.Millisecond || cfg.rounds != 2 || cfg.workingSet != 1000 || len(cfg.readmes) != 0 || cfg.out == "." {
		t.Errorf("-quick -rounds 2 gave %+v: want quick defaults, 2 rounds, and no README or bench/ output", cfg)
	}
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.conc) != 4 || cfg.out != "." || len(cfg.readmes) != 2 {
		t.Errorf("defaults gave %+v", cfg)
	}
	for _, bad := range [][]string{
		{"-c", "1,0"}, {"-only", "nosuch"}, {"-rounds", "0"}, {"extra"},
		{"-cluster", "127.0.0.1"}, // no port
		{"-cluster", "127.0.0.1:7101", "-redis", "redis://127.0.0.1:6379/15"},
		{"-cluster", "127.0.0.1:7101", "-only", "scs"}, // single-node only
		{"-only", "redisc"}, // cluster only
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) returned no error", bad)
		}
	}
}

func TestCommandLineHidesThePassword(t *testing.T) {
	for _, args := range [][]string{
		{"-redis", "redis://:hunter2@db:6379/15"},
		{"-redis=redis://:hunter2@db:6379/15"},
		{"--redis", "redis://u:hunter2@db/1", "-quick"},
		{"-redis", "redis://hunter2@db:6379/15"},
		{"-redis", "redis://u:hunter2%zz@db/0"},
	} {
		if got := commandLine(config{args: args}); strings.Contains(got, "hunter2") {
			t.Errorf("commandLine(%q) = %q shows the password", args, got)
		}
	}
}

func TestParseFlagsClusterMode(t *testing.T) {
	cfg, err := parseFlags([]string{"-cluster", "127.0.0.1:7101, 127.0.0.1:7102,", "-only", "sesh,sesh-nobatch,redisc"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:7101", "127.0.0.1:7102"}; !slices.Equal(cfg.cluster, want) {
		t.Errorf("-cluster gave seeds %q, want %q", cfg.cluster, want)
	}
	if want := []string{"sesh", "sesh-nobatch", "redisc"}; !slices.Equal(cfg.only, want) {
		t.Errorf("-only gave %q, want %q", cfg.only, want)
	}
	if cfg, _ := parseFlags(nil, io.Discard); len(cfg.cluster) != 0 {
		t.Errorf("without -cluster, seeds %q", cfg.cluster)
	}
}

// sampleClusterReport is a report of a Cluster run on three concurrencies.
func sampleClusterReport() *Report {
	r := &Report{
		Mode: modeCluster, Nodes: 6,
		Date: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC), Command: "go run ./cmd/compare -cluster 127.0.0.1:7101",
		Redis: "127.0.0.1:7101", RedisVersion: "7.0.15", GoVersion: "go1.26", Platform: "linux/amd64",
		CPUs: 2, OtherCores: 0.05, Duration: "1s", Warmup: "200ms", Rounds: 3,
		WorkingSet: 10000, Concurrencies: []int{1, 64, 256},
		Contenders: []ContenderInfo{{Name: "redisc"}, {Name: "rueidis"}, {Name: "sesh"}, {Name: "sesh-nobatch"}},
	}
	ops := map[string][3]float64{ // ops/s at c=1, 64 and 256
		"redisc": {20000, 30000, 32000}, "rueidis": {15000, 90000, 120000},
		"sesh": {19000, 95000, 110000}, "sesh-nobatch": {20000, 32000, 32000},
	}
	for _, ci := range r.Contenders {
		for i, c := range r.Concurrencies {
			for _, op := range []string{opMint, opLookup} {
				v := ops[ci.Name][i]
				r.Cells = append(r.Cells, Cell{Contender: ci.Name, Op: op, C: c, OpsPerSec: v, NsPerOp: 1e9 / v, Rounds: []float64{v}})
			}
		}
	}
	r.Targets = evaluate(r)
	return r
}

func TestClusterReport(t *testing.T) {
	r := sampleClusterReport()
	t.Run("targets are judged against rueidis at c=64 and 256", func(t *testing.T) {
		var got []string
		for _, x := range r.Targets {
			got = append(got, x.Verdict)
		}
		// The sample has no cached cells.
		want := []string{missed, missed, met, met, reference, reference, unmeasured, unmeasured}
		if !slices.Equal(got, want) {
			for _, x := range r.Targets {
				t.Logf("%s: %s: %s", x.Goal, x.Figure, x.Verdict)
			}
			t.Errorf("verdicts %v, want %v", got, want)
		}
		if f := r.Targets[0].Figure; f != "c=64 1.06×, c=256 0.92× ✗" {
			t.Errorf("sesh against rueidis: figure %q", f)
		}
	})
	t.Run("tables compare with raw redisc", func(t *testing.T) {
		md := r.markdown()
		for _, want := range []string{
			"# sesh and its peers on Redis Cluster",
			"as a multiple of raw redisc's",
			"| sesh | 19k (1.05×) | 95k (0.32×) | 110k (0.29×) |",
			"| sesh-nobatch | 20k (1.00×) | 32k (0.94×) | 32k (1.00×) |",
			"Redis Cluster 7.0.15 of 6 nodes on this machine",
			"client process / all 6 redis-server nodes together",
			"time vs redisc",
			"](chart-cluster.png)",
			"Not run: compare runs redis-benchmark on a single Redis only.",
		} {
			if !strings.Contains(md, want) {
				t.Errorf("RESULTS-cluster.md lacks %q:\n%s", want, md)
			}
		}
	})
	t.Run("it writes its own files and README section", func(t *testing.T) {
		dir := t.TempDir()
		readme := filepath.Join(dir, "README.md")
		single := beginMarker + "\nsingle-node table\n" + endMarker
		doc := "# bench\n\n" + single + "\n\n" + clusterBeginMarker + "\nold\n" + clusterEndMarker + "\n"
		if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.write(dir, []string{readme}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"results-cluster.json", "RESULTS-cluster.md", "chart-cluster.png"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("no %s: %v", name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "results.json")); err == nil {
			t.Error("a Cluster run wrote results.json, the single-node run's file")
		}
		b, _ := os.ReadFile(readme)
		if !strings.Contains(string(b), single) {
			t.Errorf("the single-node section changed:\n%s", b)
		}
		if strings.Contains(string(b), "\nold\n") || !strings.Contains(string(b), "| sesh | 19k (1.05×)") {
			t.Errorf("the Cluster section was not rewritten:\n%s", b)
		}
		var back Report
		js, _ := os.ReadFile(filepath.Join(dir, "results-cluster.json"))
		if err := json.Unmarshal(js, &back); err != nil || back.Mode != modeCluster || back.Nodes != 6 {
			t.Errorf("results-cluster.json reads back as mode %q, %d nodes, error %v", back.Mode, back.Nodes, err)
		}
	})
}
