// Package topology starts, checks, kills and restarts the real Redis
// topologies that sesh's tests and soak harness run on, on loopback ports:
// a standalone Redis (6379), a Redis Cluster (7101-7106) and a Sentinel
// setup (7201-7202, sentinels 7211-7213). It drives redis-server processes
// and talks to them with redigo; scripts/ only wraps its command, topo.
package topology

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/seshkit/sesh"
)

// topo is one topology's processes and how to tend them.
type topo interface {
	name() string
	dir() string
	nodes() []node
	start() error
	stop() error
	restart() error
	healthy() error
	restartNode(ports ...int) error
	describe() string
}

// A Topology is a set of redis-server processes under RunDir.
type Topology struct{ t topo }

// The topologies.
var (
	Single   = Topology{single{}}
	Cluster  = Topology{cluster{}}
	Sentinel = Topology{sentinel{}}
)

// ByName returns the topology called name: single, cluster or sentinel.
func ByName(name string) (Topology, bool) {
	for _, tp := range []Topology{Single, Cluster, Sentinel} {
		if tp.t.name() == name {
			return tp, true
		}
	}
	return Topology{}, false
}

// Start creates the topology and waits until it is healthy; it does
// nothing when it is healthy already.
func (tp Topology) Start() error { return tp.wrap("start", tp.t.start()) }

// Stop stops every process of the topology and removes its directory.
func (tp Topology) Stop() error { return tp.wrap("stop", tp.t.stop()) }

// Restart stops the topology and creates it afresh.
func (tp Topology) Restart() error { return tp.wrap("restart", tp.t.restart()) }

// Check returns nil when the topology is healthy, and otherwise what is
// wrong; errors.Is(err, ErrNotRunning) when a process is missing.
func (tp Topology) Check() error { return tp.t.healthy() }

// RestartNode starts killed nodes again and waits until the topology is
// healthy.
func (tp Topology) RestartNode(ports ...int) error {
	return tp.wrap(fmt.Sprint("restart-node ", ports), tp.t.restartNode(ports...))
}

// Describe reports each node's role, one line each.
func (tp Topology) Describe() string { return tp.t.describe() }

// Addrs lists the addresses of the topology's data nodes and sentinels.
func (tp Topology) Addrs() []string {
	var as []string
	for _, n := range tp.t.nodes() {
		as = append(as, n.addr())
	}
	return as
}

// Signal sends sig to the process of the node at addr: SIGKILL and SIGTERM
// wait until it is gone, SIGSTOP and SIGCONT return at once. It returns the
// pid.
func (tp Topology) Signal(addr string, sig syscall.Signal) (int, error) {
	n, err := tp.node(addr)
	if err != nil {
		return 0, err
	}
	return n.signal(sig)
}

func (tp Topology) node(addr string) (node, error) {
	for _, n := range tp.t.nodes() {
		if n.addr() == addr {
			return n, nil
		}
	}
	return node{}, fmt.Errorf("%s: %s is not one of its nodes", tp.t.name(), addr)
}

func (tp Topology) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w\n%s", tp.t.name(), op, err, tp.t.describe())
}

// pick returns t's node on port.
func pick(t topo, port int) (node, error) {
	for _, n := range t.nodes() {
		if n.port == port {
			return n, nil
		}
	}
	return node{}, fmt.Errorf("%d is not a port of the %s topology", port, t.name())
}

// RecoveryBound is how long after a master is killed a store must answer
// again. Both topologies promote a replica 2–4s after the kill.
const RecoveryBound = 15 * time.Second

// CallBound bounds each call during a failover. A call must fail before
// it, with Redis's error or a connection error, not by running out of time.
const CallBound = 2 * time.Second

// Healthy waits up to a minute until the topology is healthy.
func (tp Topology) Healthy(t *testing.T) {
	t.Helper()
	if err := waitFor(context.Background(), time.Minute, tp.t.name()+" to be healthy", tp.t.healthy); err != nil {
		t.Fatalf("%v\n%s", err, tp.t.describe())
	}
}

// Kill kills the process of the node at addr, has t's cleanup restart it
// (it rejoins as a replica) and wait until the topology is healthy again,
// and returns when it was killed.
func (tp Topology) Kill(t *testing.T, addr string) time.Time {
	t.Helper()
	n, err := tp.node(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tp.RestartNode(n.port); err != nil {
			t.Error(err)
		}
	})
	pid, err := n.signal(syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s (pid %d)", addr, pid)
	return time.Now()
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
