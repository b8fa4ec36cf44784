package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// topo is a real topology, and the flags that name it.
type topo struct {
	name  string
	flags []string
}

// topologies returns the real topologies that scripts/env.sh describes,
// and clears the environment sesh reads, as cleanEnv does. A topology
// whose variables are not set is left out; under CI=true, with any of them
// set, a missing one fails the test, so that nothing skips quietly there.
func topologies(t *testing.T) []topo {
	t.Helper()
	single := os.Getenv("SESH_REDIS_URL")
	cluster := os.Getenv("SESH_CLUSTER_ADDRS")
	sentinels, master := os.Getenv("SESH_SENTINEL_ADDRS"), os.Getenv("SESH_SENTINEL_MASTER")
	cleanEnv(t)
	var ts []topo
	if single != "" {
		ts = append(ts, topo{"single", []string{"-redis", single}})
	}
	if sentinels != "" && master != "" {
		ts = append(ts, topo{"sentinel", []string{"-redis", "redis+sentinel://" + sentinels + "/" + master}})
	}
	if cluster != "" {
		ts = append(ts,
			topo{"cluster", []string{"-cluster", cluster}},
			topo{"cluster URL", []string{"-redis", "redis+cluster://" + cluster}})
	}
	switch {
	case len(ts) == 0:
		t.Skip(`no SESH_REDIS_URL, SESH_SENTINEL_ADDRS or SESH_CLUSTER_ADDRS; eval "$(scripts/env.sh)"`)
	case os.Getenv("CI") == "true" && len(ts) < 4:
		t.Fatalf("CI=true and only %d of the topologies are set: set SESH_REDIS_URL, SESH_SENTINEL_ADDRS, SESH_SENTINEL_MASTER and SESH_CLUSTER_ADDRS", len(ts))
	}
	return ts
}

func TestParseTarget(t *testing.T) {
	for _, c := range []struct {
		name, redis, cluster string
		kind, shown          string // want
		refused              string // want an error holding this
	}{
		{name: "a redis URL is one server", redis: "redis://u:S3CRETPW@127.0.0.1:6379/2", kind: kindSingle, shown: "redis://xxxxx@127.0.0.1:6379/2"},
		{name: "a unix URL is one server", redis: "unix:///tmp/redis.sock?db=1", kind: kindSingle, shown: "unix:///tmp/redis.sock?db=1"},
		{name: "a sentinel URL names the master", redis: "redis+sentinel://:S3CRETPW@10.0.0.1:26379,10.0.0.2:26379/mymaster/3", kind: kindSentinel,
			shown: `master "mymaster" of sentinels 10.0.0.1:26379,10.0.0.2:26379`},
		{name: "a cluster URL lists the seeds", redis: "redis+cluster://u:S3CRETPW@10.0.0.1:6379,10.0.0.2:6379", kind: kindCluster, shown: "cluster 10.0.0.1:6379,10.0.0.2:6379"},
		{name: "-cluster lists the seeds", cluster: "10.0.0.1:6379,[::1]:6380", kind: kindCluster, shown: "cluster 10.0.0.1:6379,[::1]:6380"},
		{name: "a list without a scheme is refused", redis: "10.0.0.1:6379,10.0.0.2:6379", refused: "list without a scheme"},
		{name: "a list in a redis URL is refused", redis: "redis://S3CRETPW@10.0.0.1:6379,10.0.0.2:6379/0", refused: "names several hosts"},
		{name: "a database on a cluster is refused", redis: "redis+cluster://10.0.0.1:6379/1", refused: "only database 0"},
		{name: "a sentinel URL without a master is refused", redis: "redis+sentinel://u:S3CRETPW@10.0.0.1:26379", refused: "no master name"},
		{name: "a sentinel database that is no number is refused", redis: "redis+sentinel://10.0.0.1:26379/m/x", refused: "not a number"},
		{name: "an address without a port is refused", redis: "redis+cluster://10.0.0.1", refused: "not host:port"},
		{name: "an empty address is refused", cluster: "10.0.0.1:6379,", refused: "not host:port"},
		{name: "a query is refused", redis: "redis+sentinel://:S3CRETPW@10.0.0.1:26379/m?x=1", refused: "query"},
		{name: "a bad escape is refused", redis: "redis+cluster://:S3CRETPW%zz@10.0.0.1:6379", refused: "%-escape"},
		{name: "a URL in -cluster is refused", cluster: "redis://10.0.0.1:6379", refused: "-cluster takes host:port"},
		{name: "both flags are refused", redis: "redis://10.0.0.1", cluster: "10.0.0.1:6379", refused: "not both"},
		{name: "a bad single URL is refused as NewPool refuses it", redis: "http://S3CRETPW@10.0.0.1", refused: "scheme is not redis"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tf := targetFlags{redis: c.redis, cluster: c.cluster}
			got, err := tf.target()
			if c.refused != "" {
				if err == nil || !strings.Contains(err.Error(), c.refused) {
					t.Fatalf("target() = %v, %v; want an error with %q", got, err, c.refused)
				}
				if strings.Contains(err.Error(), "S3CR") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.kind != c.kind || got.String() != c.shown {
				t.Errorf("target() is a %s shown as %q; want a %s shown as %q", got.kind, got, c.kind, c.shown)
			}
		})
	}
}

func FuzzParseTarget(f *testing.F) {
	f.Add("redis+sentinel://u:p@h:1,h:2/m/0")
	f.Add("redis+cluster://:p%41@h:1,[::1]:2")
	f.Add("redis://h,h")
	f.Add("a,b")
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parseTarget(raw)
		if err == nil && tg.kind != kindSingle && len(tg.addrs) == 0 {
			t.Errorf("%q: a %s with no address", raw, tg.kind)
		}
	})
}

func TestOperatorCommandsOnEveryTopology(t *testing.T) {
	for _, tp := range topologies(t) {
		t.Run(tp.name, func(t *testing.T) {
			prefix := "seshops-" + randomHex(6)
			flags := append([]string{"-prefix", prefix, "-track-users", "-maxage", "1h"}, tp.flags...)
			sesh := func(want int, args ...string) string {
				t.Helper()
				status, out, errOut := runSesh(t, "", append(args[:1:1], append(flags, args[1:]...)...)...)
				if status != want {
					t.Fatalf("sesh %s: status %d, stderr %q; want %d", args[0], status, errOut, want)
				}
				return strings.TrimSpace(out)
			}
			tok := sesh(exitOK, "set", "alice")
			sesh(exitOK, "set", "alice")
			if got := sesh(exitOK, "get", tok); got != "alice" {
				t.Errorf("get printed %q, want alice", got)
			}
			countall := func() string {
				t.Helper()
				status, out, errOut := runSesh(t, "", append([]string{"countall", "-prefix", prefix}, tp.flags...)...)
				if status != exitOK {
					t.Fatalf("countall: status %d, stderr %q", status, errOut)
				}
				return strings.TrimSpace(out)
			}
			if got := countall(); got != "2" {
				t.Errorf("countall printed %q, want 2", got)
			}
			if got := sesh(exitOK, "dieall", "alice"); got != "2" {
				t.Errorf("dieall printed %q, want 2", got)
			}
			sesh(exitNotFound, "get", tok)
			if got := countall(); got != "0" {
				t.Errorf("countall after dieall printed %q, want 0", got)
			}
		})
	}
}

func TestBenchOnEveryTopology(t *testing.T) {
	for _, tp := range topologies(t) {
		t.Run(tp.name, func(t *testing.T) {
			args := append([]string{"bench", "-n", "50", "-c", "2", "-ops", "set,get,die", "-track-users", "-json"}, tp.flags...)
			status, out, errOut := runSesh(t, "", args...)
			if status != exitOK {
				t.Fatalf("bench exited %d: %s", status, errOut)
			}
			var results []benchResult
			if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 3 {
				t.Fatalf("bench -json printed %s (%v); want 3 results", out, err)
			}
			if !strings.Contains(errOut, "cleaned up") {
				t.Errorf("bench does not report its cleanup: %q", errOut)
			}
		})
	}
}

// privateServer starts a redis-server of the test's own, on a free
// loopback port with its directory in a temporary one, with extra
// arguments, and returns its address. It needs SESH_REDIS_URL, as the
// other real-server tests do, and redis-server.
func privateServer(t *testing.T, args ...string) string {
	t.Helper()
	if os.Getenv("SESH_REDIS_URL") == "" {
		t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command("redis-server", append([]string{"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if c, err := redis.Dial("tcp", addr); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return addr
			}
		}
	}
	t.Fatalf("redis-server on %s did not answer", addr)
	return ""
}
