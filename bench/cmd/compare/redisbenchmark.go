package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh/bench"
)

// rbKeyspace is -r for minting: wide enough that SET NX almost never meets
// a live key, as a fresh token never does.
const rbKeyspace = 1_000_000_000

// redisBenchmark runs redis-benchmark with the commands the contenders
// send: SET key value NX PX on fresh random keys, and GET on a working set
// of cfg.workingSet live keys. It returns nil, and says why, when
// redis-benchmark is missing or cannot reach the server the way Go does.
func redisBenchmark(ctx context.Context, r *bench.Redis, cfg config, prefix string) ([]RBCell, error) {
	bin, err := exec.LookPath(cfg.rb)
	if err != nil {
		log.Printf("redis-benchmark left out: %v", err)
		return nil, nil
	}
	conn, err := rbConnArgs(cfg.url)
	if err != nil {
		log.Printf("redis-benchmark left out: %v", err)
		return nil, nil
	}
	value := bench.UserID(0)
	ttl := strconv.FormatInt(bench.TTL.Milliseconds(), 10)
	if err := rbFill(ctx, r, prefix+":l:", cfg.workingSet, value, ttl); err != nil {
		return nil, err
	}
	cmds := []struct {
		op   string
		args []string
	}{
		{opMint, []string{"-r", strconv.Itoa(rbKeyspace), "SET", prefix + ":m:__rand_int__", value, "NX", "PX", ttl}},
		{opLookup, []string{"-r", strconv.Itoa(cfg.workingSet), "GET", prefix + ":l:__rand_int__"}},
	}
	// As long, per cell, as all rounds of one Go cell.
	budget := cfg.d * time.Duration(cfg.rounds)
	var cells []RBCell
	for _, c := range cfg.conc {
		for _, cmd := range cmds {
			// A short probe sizes the measured run.
			probe, err := rbRun(ctx, bin, conn, c, max(1000, 20*c), cmd.args)
			if err != nil {
				return nil, err
			}
			n := max(int(probe.OpsPerSec*budget.Seconds()), 10*c)
			cell, err := rbRun(ctx, bin, conn, c, n, cmd.args)
			if err != nil {
				return nil, err
			}
			cell.Op = cmd.op
			cells = append(cells, cell)
			if cmd.op == opMint {
				if _, err := r.Clean(ctx, prefix+":m:"); err != nil {
					return nil, err
				}
			}
			log.Printf("redis-benchmark %s c=%d: %.0f ops/s", cmd.op, c, cell.OpsPerSec)
		}
	}
	return cells, nil
}

// rbConnArgs turns a Redis URL into redis-benchmark's connection flags.
func rbConnArgs(raw string) ([]string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "redis":
		return []string{"-u", raw}, nil
	case "unix":
		args := []string{"-s", u.Path}
		if db := u.Query().Get("db"); db != "" {
			args = append(args, "--dbnum", db)
		}
		if u.User != nil {
			pass, ok := u.User.Password()
			if !ok {
				pass = u.User.Username()
			} else if u.User.Username() != "" {
				args = append(args, "--user", u.User.Username())
			}
			args = append(args, "-a", pass)
		}
		return args, nil
	default:
		return nil, fmt.Errorf("%s:// URLs are not passed to redis-benchmark", u.Scheme)
	}
}

// rbFill writes n keys prefix + 12-digit index, the names that
// redis-benchmark's __rand_int__ takes with -r n.
func rbFill(ctx context.Context, r *bench.Redis, prefix string, n int, value, ttl string) error {
	c, err := r.Pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range n {
		if err := c.Send("SET", fmt.Sprintf("%s%012d", prefix, i), value, "PX", ttl); err != nil {
			return err
		}
		if (i+1)%1000 == 0 || i == n-1 {
			if _, err := redis.DoContext(c, ctx, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

func rbRun(ctx context.Context, bin string, conn []string, c, n int, cmd []string) (RBCell, error) {
	args := append(append([]string{}, conn...), "-c", strconv.Itoa(c), "-n", strconv.Itoa(n), "--csv")
	args = append(args, cmd...)
	var stdout, stderr bytes.Buffer
	x := exec.CommandContext(ctx, bin, args...)
	x.Stdout, x.Stderr = &stdout, &stderr
	if err := x.Run(); err != nil {
		return RBCell{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	cell, err := parseRBCSV(stdout.Bytes())
	if err != nil {
		return RBCell{}, fmt.Errorf("%w in %q", err, stdout.String())
	}
	cell.C, cell.Requests = c, n
	cell.Command = strings.Join(append([]string{"redis-benchmark", "-c", strconv.Itoa(c), "-n", strconv.Itoa(n)}, cmd...), " ")
	return cell, nil
}

// parseRBCSV reads the one result row of redis-benchmark --csv.
func parseRBCSV(out []byte) (RBCell, error) {
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return RBCell{}, err
	}
	if len(rows) != 2 {
		return RBCell{}, fmt.Errorf("%d CSV rows, want a header and one result", len(rows))
	}
	col := map[string]string{}
	for i, name := range rows[0] {
		if i < len(rows[1]) {
			col[name] = rows[1][i]
		}
	}
	var cell RBCell
	for _, f := range []struct {
		name string
		dst  *float64
	}{
		{"rps", &cell.OpsPerSec},
		{"avg_latency_ms", &cell.AvgLatencyMs},
		{"p50_latency_ms", &cell.P50LatencyMs},
		{"p99_latency_ms", &cell.P99LatencyMs},
	} {
		v, err := strconv.ParseFloat(col[f.name], 64)
		if err != nil {
			return RBCell{}, fmt.Errorf("column %s: %w", f.name, err)
		}
		*f.dst = v
	}
	return cell, nil
}
