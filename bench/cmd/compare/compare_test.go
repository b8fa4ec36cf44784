package main

import (
	"bytes"
	"errors"
	"image/png"
	"io"
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
	once, err := spliceBytes([]byte(doc), "new table")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nBefore.\n\n" + beginMarker + "\nnew table\n" + endMarker + "\n\nAfter.\n"
	if string(once) != want {
		t.Errorf("spliced:\n%s\nwant:\n%s", once, want)
	}
	twice, _ := spliceBytes(once, "new table")
	if !bytes.Equal(once, twice) {
		t.Errorf("a second splice changed the file:\n%s", twice)
	}
	if _, err := spliceBytes([]byte("# No markers\n"), "x"); !errors.Is(err, errNoMarkers) {
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
		Contenders: []ContenderInfo{{Name: "redigo"}, {Name: "redigo+ctx"}, {Name: "sesh"}, {Name: "rueidis"}, {Name: "rueidis+cache", Cached: true}, {Name: "sesh+cache", Cached: true}},
	}
	ops := map[string][2]float64{ // ops/s at c=1 and c=64
		"redigo": {40000, 60000}, "redigo+ctx": {38000, 55000}, "sesh": {38000, 50000}, "rueidis": {30000, 110000}, "rueidis+cache": {2e6, 2.2e6},
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
		{"an unmeasured cache leaves its targets unjudged", false, []string{unmeasured, met, met, missed, missed, reference, reference, unmeasured}},
		{"a measured cache is judged", true, []string{met, met, met, missed, missed, reference, reference, met}},
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
	for _, bad := range [][]string{{"-c", "1,0"}, {"-only", "nosuch"}, {"-rounds", "0"}, {"extra"}} {
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
