// Package topology drives, for failover tests, the real Redis topologies
// that scripts/ starts on loopback ports: it waits until one is healthy,
// kills a node's process, restarts it afterwards, and waits for a store to
// answer again.
package topology

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

	"github.com/seshkit/sesh"
)

// A Topology is one of the scripts in scripts/ and its run directory.
type Topology struct {
	script string // in $SESH_SCRIPTS
	dir    string // in $SESH_RUN_DIR
}

// Cluster and Sentinel are the two topologies scripts/ starts.
var (
	Cluster  = Topology{"redis-cluster.sh", "cluster"}
	Sentinel = Topology{"redis-sentinel.sh", "sentinel"}
)

// RecoveryBound is how long after a master is killed a store must answer
// again. Both topologies promote a replica 2–4s after the kill (see the
// timeouts in scripts/).
const RecoveryBound = 15 * time.Second

// CallBound bounds each call during a failover. A call must fail before
// it, with Redis's error or a connection error, not by running out of time.
const CallBound = 2 * time.Second

func (tp Topology) run(ctx context.Context, args ...string) ([]byte, error) {
	scripts := os.Getenv("SESH_SCRIPTS")
	return exec.CommandContext(ctx, "bash", append([]string{filepath.Join(scripts, tp.script)}, args...)...).CombinedOutput()
}

// Healthy checks that the scripts can be found and waits up to a minute
// until the topology is healthy.
func (tp Topology) Healthy(t *testing.T) {
	t.Helper()
	if os.Getenv("SESH_SCRIPTS") == "" || os.Getenv("SESH_RUN_DIR") == "" {
		t.Fatal(`SESH_SCRIPTS or SESH_RUN_DIR is not set; eval "$(scripts/env.sh)"`)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := tp.run(context.Background(), "status")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not healthy: %v\n%s", tp.script, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Kill kills the process of the node at addr, has t's cleanup restart it
// (it rejoins as a replica) and wait until the topology is healthy again,
// and returns when it was killed.
func (tp Topology) Kill(t *testing.T, addr string) time.Time {
	t.Helper()
	port := addr[strings.LastIndex(addr, ":")+1:]
	b, err := os.ReadFile(filepath.Join(os.Getenv("SESH_RUN_DIR"), tp.dir, port, "redis.pid"))
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
		if out, err := tp.run(ctx, "restart-node", port); err != nil {
			t.Errorf("restart-node %s: %v\n%s", port, err, out)
		}
	})
	if err := proc.Kill(); err != nil {
		t.Fatalf("kill %s (pid %d): %v", addr, pid, err)
	}
	killed := time.Now()
	proc.Wait() // reaps it when it is our child; returns at once otherwise
	t.Logf("killed %s (pid %d)", addr, pid)
	return killed
}

// AwaitAnswer calls op every 100ms until it answers, and returns how long
// after killed that was. op answers when it returns nil, or ErrNotFound.
// Every failure must come within CallBound, and an answer within
// RecoveryBound.
func AwaitAnswer(t *testing.T, killed time.Time, op func(context.Context) error) time.Duration {
	t.Helper()
	seen := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), CallBound)
		err := op(ctx)
		cancel()
		if err == nil || errors.Is(err, sesh.ErrNotFound) {
			d := time.Since(killed)
			t.Logf("answered again %v after the kill; failures meanwhile: %v", d.Round(time.Millisecond), seen)
			return d
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a call ran into its %v deadline instead of failing: %v", CallBound, err)
		}
		seen[addrRE.ReplaceAllString(err.Error(), "…")]++
		if time.Since(killed) > RecoveryBound {
			t.Fatalf("no answer within %v of the kill; failures: %v", RecoveryBound, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addrRE finds addresses, which the failure log elides.
var addrRE = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)
