package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Microsecond // 100 µs down to 1 µs
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		name string
		ds   []time.Duration
		want Summary
	}{
		{"no durations give an empty summary", nil, Summary{}},
		{"one duration is every quantile", []time.Duration{3 * ms}, Summary{N: 1, P50Us: 3000, P99Us: 3000, MaxUs: 3000}},
		{"two durations: p50 is the lower, never their mean", []time.Duration{2 * ms, 1 * ms}, Summary{N: 2, P50Us: 1000, P99Us: 2000, MaxUs: 2000}},
		{"an unsorted hundred: p50 is the 50th, p99 the 99th", hundred, Summary{N: 100, P50Us: 50, P99Us: 99, MaxUs: 100}},
		{"a thousand: p99 is the 990th, below the tail of ten", thousand, Summary{N: 1000, P50Us: 500, P99Us: 990, MaxUs: 1000}},
		{"nanoseconds are kept as fractions of a µs", []time.Duration{1500}, Summary{N: 1, P50Us: 1.5, P99Us: 1.5, MaxUs: 1.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.ds)
			if got := Summarize(tt.ds); got != tt.want {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(tt.ds, before) {
				t.Error("Summarize reordered its argument")
			}
		})
	}
}

func TestFmtUs(t *testing.T) {
	for _, tt := range []struct {
		us   float64
		want string
	}{
		{0.5, "0.50 µs"},
		{61.2, "61.2 µs"},
		{111.4, "111 µs"},
		{1960, "1.96 ms"},
		{12_345, "12.3 ms"},
		{250_000, "250 ms"},
	} {
		if got := fmtUs(tt.us); got != tt.want {
			t.Errorf("fmtUs(%v) = %q, want %q", tt.us, got, tt.want)
		}
	}
}

// sampleReport is a report of a run on one node and a Cluster where sesh
// refused its cache.
func sampleReport() *Report {
	return &Report{
		Date:    time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC),
		Command: "go run ./cmd/propagate -cluster 127.0.0.1:7101", Redis: "redis://127.0.0.1:6379/15",
		Cluster: "127.0.0.1:7101", Nodes: 6, RedisVersion: "7.0.15", GoVersion: "go1.26", Platform: "linux/amd64",
		CPUs: 2, GOMAXPROCS: 2, Machine: "2 CPUs shared", OtherCores: 0.8, Trials: 1000,
		Yield: "`runtime.Gosched()`", YieldTook: Summary{N: 1000, P50Us: 44, P99Us: 1290, MaxUs: 2000},
		Cells: []Cell{
			{Topology: "single Redis", Library: "sesh", Condition: condYielding, Summary: Summary{N: 1000, P50Us: 60, P99Us: 1960, MaxUs: 4000}, FirstPoll: 250},
			{Topology: "single Redis", Library: "sesh", Condition: condSpinning, Summary: Summary{N: 1000, P50Us: 70, P99Us: 12_500, MaxUs: 20_000}, FirstPoll: 300},
			{Topology: "single Redis", Library: "sesh", Condition: condRoundTrip, Summary: Summary{N: 1000, P50Us: 61, P99Us: 111, MaxUs: 900}},
			{Topology: "Cluster", Library: "rueidis", Condition: condYielding, Summary: Summary{N: 1000, P50Us: 143, P99Us: 1370, MaxUs: 5190}, FirstPoll: 762},
		},
		Notes:   []string{"sesh cache on Cluster: refused by this sesh: no."},
		Elapsed: "19s",
	}
}

func TestMarkdown(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"Run of 2026-12-03 09:00 UTC",
		"```sh\ngo run ./cmd/propagate -cluster 127.0.0.1:7101\n```",
		"a Redis Cluster of 6 nodes seeded by 127.0.0.1:7101",
		"Other processes kept 0.80 of the 2 CPUs busy during the trials, so the tails are noisier",
		"over 1000 trials per cell",
		"(one took p50 44.0 µs, p99 1.29 ms here)",
		"| single Redis | sesh | yielding | 60.0 µs | 1.96 ms | 4.00 ms | 250 of 1000 |\n",
		"| single Redis | sesh | spinning | 70.0 µs | 12.5 ms | 20.0 ms | 300 of 1000 |\n",
		"| single Redis | sesh | uncached Get | 61.0 µs | 111 µs | 900 µs | – |\n",
		"| Cluster | rueidis | yielding | 143 µs | 1.37 ms | 5.19 ms | 762 of 1000 |\n",
		"\nsesh cache on Cluster: refused by this sesh: no.\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	r := sampleReport()
	r.OtherCores, r.Cluster = -1, ""
	md = r.Markdown()
	for _, unwanted := range []string{"Other processes", "Cluster of"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("a report with no load figure and no Cluster says %q:\n%s", unwanted, md)
		}
	}
}

func TestWriteRoundTrips(t *testing.T) {
	dir := t.TempDir()
	r := sampleReport()
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "propagation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Markdown() != r.Markdown() {
		t.Errorf("propagation.json read back gives another report:\n%s\nwant:\n%s", back.Markdown(), r.Markdown())
	}
	md, err := os.ReadFile(filepath.Join(dir, "PROPAGATION.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != r.Markdown() {
		t.Errorf("PROPAGATION.md differs from Markdown:\n%s", md)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
		n    int
		seed int
	}{
		{"no flags: the local Redis, 1000 trials", nil, true, 1000, 0},
		{"-cluster adds the Cluster's seeds", []string{"-cluster", "127.0.0.1:7101, 127.0.0.1:7102"}, true, 1000, 2},
		{"-n sets the trials", []string{"-n", "20"}, true, 20, 0},
		{"-n 0 is refused", []string{"-n", "0"}, false, 0, 0},
		{"a seed without a port is refused", []string{"-cluster", "127.0.0.1"}, false, 0, 0},
		{"nothing to measure is refused", []string{"-redis", ""}, false, 0, 0},
		{"a stray argument is refused", []string{"now"}, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, io.Discard)
			if (err == nil) != tt.ok {
				t.Fatalf("parseFlags(%q) error = %v, want ok %v", tt.args, err, tt.ok)
			}
			if tt.ok && (cfg.n != tt.n || len(cfg.cluster) != tt.seed) {
				t.Errorf("parseFlags(%q): n %d, %d seeds; want %d, %d", tt.args, cfg.n, len(cfg.cluster), tt.n, tt.seed)
			}
		})
	}
}

func TestCommandLineHidesThePassword(t *testing.T) {
	for _, args := range [][]string{
		{"-redis", "redis://:hunter2@db:6379/15"},
		{"-redis=redis://u:hunter2@db:6379/15", "-n", "10"},
	} {
		got := commandLine(config{args: args})
		if strings.Contains(got, "hunter2") {
			t.Errorf("commandLine(%q) = %q shows the password", args, got)
		}
		if !strings.HasPrefix(got, "go run ./cmd/propagate -redis") {
			t.Errorf("commandLine(%q) = %q", args, got)
		}
	}
}
