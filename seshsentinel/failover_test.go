package seshsentinel_test

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
	"github.com/seshkit/sesh"
)

// recoveryBound is how long after the master is killed the store must
// answer again: the sentinels promote the replica a few seconds after the
// kill (down-after-milliseconds 1000 in scripts/redis-sentinel.sh).
const recoveryBound = 15 * time.Second

// callBound bounds each call during a failover. A call must fail before
// it: with a connection error, not by running out of time.
const callBound = 2 * time.Second

// failoverEnv returns SESH_SCRIPTS and SESH_RUN_DIR, and waits until the
// sentinel setup is healthy.
func failoverEnv(t *testing.T) (scripts, runDir string) {
	t.Helper()
	scripts, runDir = os.Getenv("SESH_SCRIPTS"), os.Getenv("SESH_RUN_DIR")
	if scripts == "" || runDir == "" {
		t.Fatal(`SESH_SENTINEL_ADDRS is set but SESH_SCRIPTS or SESH_RUN_DIR is not; eval "$(scripts/env.sh)"`)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := exec.Command("bash", filepath.Join(scripts, "redis-sentinel.sh"), "status").CombinedOutput()
		if err == nil {
			return scripts, runDir
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sentinel setup is not healthy: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// killMaster kills the process of the master and has the cleanup restart
// it (as a replica) and wait until the setup is healthy again.
func killMaster(t *testing.T, scripts, runDir string) time.Time {
	t.Helper()
	addr := sentinelSays(t, "master")
	port := addr[strings.LastIndex(addr, ":")+1:]
	b, err := os.ReadFile(filepath.Join(runDir, "sentinel", port, "redis.pid"))
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
		out, err := exec.CommandContext(ctx, "bash", filepath.Join(scripts, "redis-sentinel.sh"), "restart-node", port).CombinedOutput()
		if err != nil {
			t.Errorf("restart-node %s: %v\n%s", port, err, out)
		}
	})
	if err := proc.Kill(); err != nil {
		t.Fatalf("kill master %s (pid %d): %v", addr, pid, err)
	}
	killed := time.Now()
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
		seen[addrRE.ReplaceAllString(err.Error(), "…")]++
		if time.Since(killed) > recoveryBound {
			t.Fatalf("no answer within %v of the kill; failures: %v", recoveryBound, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var addrRE = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// acknowledge has the replica confirm every write made so far. Set does not
// WAIT; but the master replicates its writes in order, so a replica that
// acknowledges a write made after the Sets returned holds the Sets too.
func acknowledge(t *testing.T, pool *redis.Pool) {
	t.Helper()
	c := pool.Get()
	defer c.Close()
	if _, err := c.Do("SET", prefix(), "ack", "PX", 60000); err != nil {
		t.Fatal(err)
	}
	if n, err := redis.Int(c.Do("WAIT", 1, 5000)); n < 1 || err != nil {
		t.Fatalf("WAIT 1 = %d, %v: no replica acknowledged the tokens", n, err)
	}
}

func TestFailoverKeepsAcknowledgedTokens(t *testing.T) {
	pool := newPool(t)
	scripts, runDir := failoverEnv(t)
	s, err := sesh.New(pool, sesh.Options{Prefix: prefix(), TTL: 10 * time.Minute, TrackUsers: true, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	toks := make([]string, 30)
	for i := range toks {
		if toks[i], err = s.Set(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	acknowledge(t, pool)
	killed := killMaster(t, scripts, runDir)

	awaitAnswer(t, killed, func(ctx context.Context) error {
		u, err := s.Get(ctx, toks[0])
		if err == nil && u != "alice" {
			t.Fatalf("Get = %q; want alice", u)
		}
		return err
	})
	t.Logf("the master is now %s", sentinelSays(t, "master"))
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
	pool := newPool(t)
	scripts, runDir := failoverEnv(t)
	s, err := sesh.New(pool, sesh.Options{Prefix: prefix(), TTL: 10 * time.Minute, TrackUsers: true, Replicas: 1})
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
	alice, bob := set("alice", 20), set("bob", 20)
	acknowledge(t, pool)

	// The endings, each acknowledged by the replica, are the last writes
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
	killed := killMaster(t, scripts, runDir)

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
