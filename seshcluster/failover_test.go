package seshcluster_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshcluster"
)

// recoveryBound is how long after a master is killed the store must answer
// again: the cluster promotes a replica about 2s after the kill
// (cluster-node-timeout 1000 in scripts/redis-cluster.sh).
const recoveryBound = 15 * time.Second

// callBound bounds each call during a failover. A call must fail before
// it: with Redis's error or a connection error, not by running out of time.
const callBound = 2 * time.Second

// failoverEnv returns SESH_SCRIPTS and SESH_RUN_DIR, and waits until the
// cluster is healthy.
func failoverEnv(t *testing.T) (scripts, runDir string) {
	t.Helper()
	scripts, runDir = os.Getenv("SESH_SCRIPTS"), os.Getenv("SESH_RUN_DIR")
	if scripts == "" || runDir == "" {
		t.Fatal(`SESH_CLUSTER_ADDRS is set but SESH_SCRIPTS or SESH_RUN_DIR is not; eval "$(scripts/env.sh)"`)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := exec.Command("bash", filepath.Join(scripts, "redis-cluster.sh"), "status").CombinedOutput()
		if err == nil {
			return scripts, runDir
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not healthy: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// killMaster kills the process of the master at addr and has the cleanup
// restart it (as a replica) and wait until the cluster is healthy again.
func killMaster(t *testing.T, scripts, runDir, addr string) time.Time {
	t.Helper()
	port := addr[strings.LastIndex(addr, ":")+1:]
	b, err := os.ReadFile(filepath.Join(runDir, "cluster", port, "redis.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "bash", filepath.Join(scripts, "redis-cluster.sh"), "restart-node", port).CombinedOutput()
		if err != nil {
			t.Errorf("restart-node %s: %v\n%s", port, err, out)
		}
	})
	if err := proc.Kill(); err != nil {
		t.Fatalf("kill master %s (pid %d): %v", addr, pid, err)
	}
	killed := time.Now()
	proc.Wait() // reaps it when it is our child; returns at once otherwise
	t.Logf("killed master %s (pid %d)", addr, pid)
	return killed
}

// awaitAnswer calls op every 100ms until it answers, and returns how long
// after killed that was. op answers when it returns nil, or ErrNotFound.
// Every failure must come within callBound.
func awaitAnswer(t *testing.T, killed time.Time, op func(context.Context) error) time.Duration {
	t.Helper()
	seen := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), callBound)
		err := op(ctx)
		cancel()
		if err == nil || errors.Is(err, sesh.ErrNotFound) {
			d := time.Since(killed)
			t.Logf("answered again %v after the kill; failures meanwhile: %v", d.Round(time.Millisecond), seen)
			return d
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a call ran into its %v deadline instead of failing: %v", callBound, err)
		}
		seen[errClass(err)]++
		if time.Since(killed) > recoveryBound {
			t.Fatalf("no answer within %v of the kill; failures: %v", recoveryBound, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// errClass shortens an error for the log: addresses and ports elided.
func errClass(err error) string {
	return addrRE.ReplaceAllString(err.Error(), "…")
}

var addrRE = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// acknowledge has a replica of every master confirm every write made so
// far. Set does not WAIT; but a master replicates its writes in order, so a
// replica that acknowledges a write made after the Sets returned holds the
// Sets too. WAIT on this connection covers the marker written on each
// master.
func acknowledge(t *testing.T, pool sesh.Pool) {
	t.Helper()
	c := getConn(t, pool)
	keys := onEveryMaster(t, clusterLayout(t), prefix())
	for _, k := range keys {
		c.Send("SET", k, "ack", "PX", 60000)
	}
	c.Send("WAIT", 1, 5000)
	rs, err := redis.Values(c.Do(""))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := redis.Int(rs[len(keys)], nil); n < 1 || err != nil {
		t.Fatalf("WAIT 1 = %v, %v: no replica acknowledged the tokens", rs[len(keys)], err)
	}
}

func TestFailoverKeepsAcknowledgedTokens(t *testing.T) {
	cluster := newCluster(t)
	scripts, runDir := failoverEnv(t)
	pool := seshcluster.New(cluster)
	p := prefix()
	s, err := sesh.New(pool, sesh.Options{Prefix: p, TTL: 10 * time.Minute, TrackUsers: true, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	toks := make([]string, 60)
	for i := range toks {
		if toks[i], err = s.Set(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	acknowledge(t, pool)

	l := clusterLayout(t)
	victim := l.owner[redisc.Slot(tokenKey(t, p, toks[0]))]
	on := 0
	for _, tok := range toks {
		if l.owner[redisc.Slot(tokenKey(t, p, tok))] == victim {
			on++
		}
	}
	t.Logf("master %s holds %d of %d tokens", victim, on, len(toks))
	killed := killMaster(t, scripts, runDir, victim)

	awaitAnswer(t, killed, func(ctx context.Context) error {
		u, err := s.Get(ctx, toks[0])
		if err == nil && u != "alice" {
			t.Fatalf("Get = %q; want alice", u)
		}
		return err
	})
	for i, tok := range toks {
		if u, err := s.Get(ctx, tok); u != "alice" || err != nil {
			t.Errorf("token %d after the failover: Get = %q, %v; want alice", i, u, err)
		}
	}
	if n, err := s.Count(ctx, "alice"); n != len(toks) || err != nil {
		t.Errorf("Count = %d, %v; want %d", n, err, len(toks))
	}
	// The promoted replica has no replica of its own until the killed
	// master rejoins, so a deletion on it cannot be acknowledged yet.
	if n, err := s.DieAll(ctx, "alice"); n != len(toks) || err != nil && !errors.Is(err, sesh.ErrNotReplicated) {
		t.Errorf("DieAll = %d, %v; want %d, and nil or ErrNotReplicated", n, err, len(toks))
	}
}

func TestFailoverKeepsRevocations(t *testing.T) {
	cluster := newCluster(t)
	scripts, runDir := failoverEnv(t)
	pool := seshcluster.New(cluster)
	p := prefix()
	s, err := sesh.New(pool, sesh.Options{Prefix: p, TTL: 10 * time.Minute, TrackUsers: true, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set := func(user string, n int) []string {
		toks := make([]string, n)
		for i := range toks {
			if toks[i], err = s.Set(ctx, user); err != nil {
				t.Fatal(err)
			}
		}
		return toks
	}
	alice, bob := set("alice", 30), set("bob", 30)
	acknowledge(t, pool)

	// The endings, each acknowledged by a replica, are the last writes
	// before the kill.
	for _, tok := range alice[:10] {
		if err := s.Die(ctx, tok); err != nil {
			t.Fatalf("Die = %v", err)
		}
	}
	rotated, err := s.Rotate(ctx, alice[10])
	if err != nil {
		t.Fatalf("Rotate = %v", err)
	}
	if n, err := s.DieAll(ctx, "bob"); n != len(bob) || err != nil {
		t.Fatalf("DieAll = %d, %v", n, err)
	}
	victim := clusterLayout(t).owner[redisc.Slot(tokenKey(t, p, alice[0]))]
	killed := killMaster(t, scripts, runDir, victim)

	awaitAnswer(t, killed, func(ctx context.Context) error {
		_, err := s.Get(ctx, alice[0])
		return err
	})
	for _, tok := range append(alice[:11:11], bob...) {
		if u, err := s.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
			t.Errorf("an ended token came back after the failover: Get = %q, %v", u, err)
		}
	}
	for _, tok := range append(alice[11:], rotated) {
		if u, err := s.Get(ctx, tok); u != "alice" || err != nil {
			t.Errorf("a live token after the failover: Get = %q, %v; want alice", u, err)
		}
	}
	if n, err := s.Count(ctx, "bob"); n != 0 || err != nil {
		t.Errorf("Count(bob) = %d, %v; want 0", n, err)
	}
}
