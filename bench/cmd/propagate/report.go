package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Pollers, as results name them.
const (
	condYielding  = "yielding"
	condSpinning  = "spinning"
	condRoundTrip = "uncached Get"
)

// Report is everything one run measured; propagation.json is its JSON.
type Report struct {
	Date         time.Time `json:"date"`
	Command      string    `json:"command"`
	Redis        string    `json:"redis,omitempty"`   // the single Redis; empty when skipped
	Cluster      string    `json:"cluster,omitempty"` // the Cluster's seeds; empty when not run
	Nodes        int       `json:"cluster_nodes,omitempty"`
	RedisVersion string    `json:"redis_version"`
	GoVersion    string    `json:"go_version"`
	Platform     string    `json:"platform"`
	CPUs         int       `json:"cpus"`
	GOMAXPROCS   int       `json:"gomaxprocs"`
	Machine      string    `json:"machine"`
	// OtherCores is how many CPUs, on average, processes other than this
	// one and the redis-servers kept busy during the trials; -1 when it
	// cannot be told.
	OtherCores float64 `json:"other_cores_busy"`
	Trials     int     `json:"trials_per_cell"`
	// Yield is what a yielding poller does between polls, and YieldTook
	// how long that took in this run.
	Yield     string   `json:"yield"`
	YieldTook Summary  `json:"yield_took"`
	Cells     []Cell   `json:"cells"`
	Notes     []string `json:"notes,omitempty"`
	Elapsed   string   `json:"elapsed"`
}

// Cell is one (topology, library, poller)'s figures.
type Cell struct {
	Topology  string `json:"topology"`
	Library   string `json:"library"`
	Condition string `json:"condition"`
	Summary
	// FirstPoll counts the trials whose first poll already said not
	// found: the invalidation had been applied before B's call returned.
	FirstPoll int `json:"first_poll_not_found"`
}

// Summary is the distribution of a cell's durations, in microseconds.
type Summary struct {
	N     int     `json:"n"`
	P50Us float64 `json:"p50_us"`
	P99Us float64 `json:"p99_us"`
	MaxUs float64 `json:"max_us"`
}

// Summarize returns the p50, p99 and maximum of ds, each a duration that
// occurred (the nearest rank, never an average of two). It leaves ds as
// it was.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(i, 0)]
	}
	return Summary{N: len(s), P50Us: us(rank(.50)), P99Us: us(rank(.99)), MaxUs: us(s[len(s)-1])}
}

func us(d time.Duration) float64 { return math.Round(float64(d.Nanoseconds())) / 1e3 }

// fmtUs writes microseconds to three significant figures, in ms from 1 ms.
func fmtUs(v float64) string {
	switch {
	case v >= 100_000:
		return fmt.Sprintf("%.0f ms", v/1e3)
	case v >= 10_000:
		return fmt.Sprintf("%.1f ms", v/1e3)
	case v >= 1000:
		return fmt.Sprintf("%.2f ms", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f µs", v)
	case v >= 10:
		return fmt.Sprintf("%.1f µs", v)
	default:
		return fmt.Sprintf("%.2f µs", v)
	}
}

// Markdown is the report as PROPAGATION.md has it: what was run, where,
// and one table row per cell.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# Propagation delay: sesh's cache and rueidis's\n\n")
	fmt.Fprintf(&b, "Run of %s UTC, from `bench/`:\n\n```sh\n%s\n```\n\n", r.Date.UTC().Format("2006-01-02 15:04"), r.Command)
	var where []string
	if r.Redis != "" {
		where = append(where, "a single Redis at "+r.Redis)
	}
	if r.Cluster != "" {
		where = append(where, fmt.Sprintf("a Redis Cluster of %d nodes seeded by %s", r.Nodes, r.Cluster))
	}
	fmt.Fprintf(&b, "Redis %s: %s. %s %s; %s (GOMAXPROCS %d).", r.RedisVersion, strings.Join(where, "; "), r.GoVersion, r.Platform, r.Machine, r.GOMAXPROCS)
	if r.OtherCores >= 0 {
		fmt.Fprintf(&b, " Other processes kept %.2f of the %d CPUs busy during the trials", r.OtherCores, r.CPUs)
		if r.OtherCores >= 0.25 {
			b.WriteString(", so the tails are noisier than on a quiet machine")
		}
		b.WriteString(".")
	}
	fmt.Fprintf(&b, " The run took %s.\n\n", r.Elapsed)
	fmt.Fprintf(&b, "Each trial: B, a client without a cache on connections of its own, mints a token; "+
		"A, the caching client, reads it until it is served from memory; B ends it; A polls until it answers "+
		"not found. A figure is the time from B's end call returning to A's first not-found answer, "+
		"which includes the round trip of that last read, over %d trials per cell, the cells taking turns. "+
		"**yielding**: between polls the poller calls %s (one took p50 %s, p99 %s here). "+
		"**spinning**: it polls in a tight loop. **uncached Get**: one round trip of B's read of a live token, "+
		"for scale.\n\n", r.Trials, r.Yield, fmtUs(r.YieldTook.P50Us), fmtUs(r.YieldTook.P99Us))
	b.WriteString("| topology | library | poller | p50 | p99 | max | first poll not found |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|\n")
	for _, c := range r.Cells {
		first := fmt.Sprintf("%d of %d", c.FirstPoll, c.N)
		if c.Condition == condRoundTrip {
			first = "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", c.Topology, c.Library, c.Condition,
			fmtUs(c.P50Us), fmtUs(c.P99Us), fmtUs(c.MaxUs), first)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}

// write writes PROPAGATION.md and propagation.json into dir.
func (r *Report) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "propagation.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "PROPAGATION.md"), []byte(r.Markdown()), 0o644)
}
