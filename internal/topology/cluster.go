package topology

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The Cluster is six nodes on 127.0.0.1:7101-7106 (cluster bus 17101-17106):
// 3 masters and 3 replicas, without persistence.
//
// Failover tuning: cluster-node-timeout 1000 ms and
// cluster-replica-validity-factor 0 (a replica may always fail over), so a
// killed master's replica is promoted in about 2 s.
//
// cluster-require-full-coverage stays at its default (yes), on purpose:
// while a master is down and not yet failed over, the whole cluster answers
// CLUSTERDOWN, for every key. That makes failover tests deterministic, and
// gives them one signal that the failover is over: cluster_state:ok again.
var clusterPorts = []int{7101, 7102, 7103, 7104, 7105, 7106}

func clusterNodes() []node {
	dir := filepath.Join(RunDir(), "cluster")
	ns := make([]node, len(clusterPorts))
	for i, p := range clusterPorts {
		ns[i] = node{port: p + PortOffset(), dir: filepath.Join(dir, strconv.Itoa(p+PortOffset()))}
	}
	return ns
}

type cluster struct{}

func (cluster) name() string  { return "cluster" }
func (cluster) dir() string   { return filepath.Join(RunDir(), "cluster") }
func (cluster) nodes() []node { return clusterNodes() }
func (c cluster) stop() error { return stopAll(c) }
func (c cluster) restart() error {
	if err := c.stop(); err != nil {
		return err
	}
	return c.start()
}

// start creates the cluster, unless it is healthy already.
func (c cluster) start() error {
	if c.healthy() == nil {
		return nil
	}
	if err := c.stop(); err != nil {
		return err
	}
	ns := c.nodes()
	if err := portsFree(ns); err != nil {
		return err
	}
	ctx := context.Background()
	if err := launchClusterNodes(ctx, ns); err != nil {
		return err
	}
	// Meet, share the slots among the masters, then pair each with a replica.
	masters, replicas := ns[:3], ns[3:]
	if err := meetAndShareSlots(ctx, ns, masters); err != nil {
		return err
	}
	if err := pairReplicas(ctx, masters, replicas); err != nil {
		return err
	}
	return waitFor(ctx, StartTimeout(), "a healthy cluster", c.healthy)
}

// launchClusterNodes configures and starts every node, then waits until
// each answers.
func launchClusterNodes(ctx context.Context, ns []node) error {
	for _, n := range ns {
		if err := n.writeConf("cluster-enabled yes", "cluster-config-file nodes.conf",
			"cluster-node-timeout 1000", "cluster-replica-validity-factor 0"); err != nil {
			return err
		}
		if err := n.launch(); err != nil {
			return err
		}
	}
	return waitFor(ctx, 10*time.Second, "the nodes to answer", func() error { return allUp(ns) })
}

// meetAndShareSlots introduces every node to the first, gives each master
// an equal share of the 16384 slots, and waits until every node knows all
// six.
func meetAndShareSlots(ctx context.Context, ns, masters []node) error {
	for _, n := range ns[1:] {
		if _, err := ns[0].do("CLUSTER", "MEET", "127.0.0.1", n.port); err != nil {
			return fmt.Errorf("CLUSTER MEET %s: %w", n.addr(), err)
		}
	}
	for i, m := range masters {
		lo, hi := i*16384/3, (i+1)*16384/3-1
		if _, err := m.do("CLUSTER", "ADDSLOTSRANGE", lo, hi); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE on %s: %w", m.addr(), err)
		}
	}
	known := func() error {
		for _, n := range ns {
			if k := fields(clusterInfo(n), ":")["cluster_known_nodes"]; k != "6" {
				return fmt.Errorf("%s knows %s nodes", n.addr(), k)
			}
		}
		return nil
	}
	return waitFor(ctx, 20*time.Second, "the nodes to meet", known)
}

// pairReplicas makes replicas[i] the replica of masters[i].
func pairReplicas(ctx context.Context, masters, replicas []node) error {
	for i, r := range replicas {
		id, err := redis.String(masters[i].do("CLUSTER", "MYID"))
		if err != nil {
			return err
		}
		if err := waitFor(ctx, 10*time.Second, r.addr()+" to replicate "+masters[i].addr(), func() error {
			_, err := r.do("CLUSTER", "REPLICATE", id)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func clusterInfo(n node) string {
	s, _ := redis.String(n.do("CLUSTER", "INFO"))
	return s
}

// healthy checks that every node of ours is up and agrees: cluster_state
// ok, 16384 slots ok, 3 masters with slots, each with one connected replica
// whose replication link is up, no node flagged fail or pfail.
func (c cluster) healthy() error {
	for _, n := range c.nodes() {
		if _, ok := n.pid(); !ok {
			return fmt.Errorf("%s is not running from %s: %w", n.addr(), c.dir(), ErrNotRunning)
		}
		if err := expect(n.addr(), fields(clusterInfo(n), ":"),
			"cluster_state", "ok", "cluster_slots_ok", "16384", "cluster_known_nodes", "6", "cluster_size", "3"); err != nil {
			return err
		}
		s, err := redis.String(n.do("CLUSTER", "NODES"))
		if err != nil {
			return err
		}
		masters, replicas := map[string]bool{}, map[string]int{}
		lines := 0
		for line := range strings.Lines(s) {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			lines++
			id, addr, flags, master, link := f[0], f[1], f[2], f[3], f[7]
			if strings.Contains(flags, "fail") || strings.Contains(flags, "handshake") || strings.Contains(flags, "noaddr") {
				return fmt.Errorf("%s sees %s as %s", n.addr(), addr, flags)
			}
			if link != "connected" {
				return fmt.Errorf("%s: link to %s is %s", n.addr(), addr, link)
			}
			if strings.Contains(flags, "master") && len(f) > 8 {
				masters[id] = true
			}
			if strings.Contains(flags, "slave") {
				replicas[master]++
			}
		}
		if lines != 6 {
			return fmt.Errorf("%s knows %d nodes", n.addr(), lines)
		}
		if len(masters) != 3 {
			return fmt.Errorf("%s: %d masters with slots", n.addr(), len(masters))
		}
		for id := range masters {
			if replicas[id] < 1 {
				return fmt.Errorf("%s: master %s has no replica", n.addr(), id)
			}
		}
		if r := n.info("replication"); r["role"] == "slave" && r["master_link_status"] != "up" {
			return fmt.Errorf("replica %s: master_link_status is %s", n.addr(), r["master_link_status"])
		}
	}
	return nil
}

// restartNode brings killed nodes back as they would be without
// persistence, safely: once a replica has taken over a killed master's
// slots, the node starts empty, under a new node ID, the cluster forgets the
// old one, and it joins as the replica of the master that lacks one. (A node
// restarted with its old nodes.conf would, until the cluster tells it
// otherwise, answer for its old slots with no keys: a restart that loses
// data, not a failover.)
func (c cluster) restartNode(ports ...int) error {
	ctx := context.Background()
	for _, p := range ports {
		n, err := pick(c, p)
		if err != nil {
			return err
		}
		if _, ok := n.pid(); ok || n.up() {
			continue
		}
		var oldID string
		if err := waitFor(ctx, StartTimeout(), "a replica to take over from "+n.addr(), func() (err error) {
			oldID, err = c.takenOver(n)
			return err
		}); err != nil {
			return err
		}
		if err := c.replace(n, oldID); err != nil {
			return err
		}
	}
	return waitFor(ctx, StartTimeout(), "a healthy cluster", c.healthy)
}

// nodeLines returns the CLUSTER NODES view of a live node other than n.
func (c cluster) nodeLines(n node) ([][]string, node, error) {
	for _, o := range c.nodes() {
		if o.port == n.port {
			continue
		}
		s, err := redis.String(o.do("CLUSTER", "NODES"))
		if err != nil {
			continue
		}
		var lines [][]string
		for line := range strings.Lines(s) {
			if f := strings.Fields(line); len(f) >= 8 {
				lines = append(lines, f)
			}
		}
		return lines, o, nil
	}
	return nil, node{}, fmt.Errorf("no node of the cluster answers")
}

// takenOver returns the ID the cluster knows the dead node n by, once n
// owns no slots.
func (c cluster) takenOver(n node) (string, error) {
	lines, _, err := c.nodeLines(n)
	if err != nil {
		return "", err
	}
	for _, f := range lines {
		if strings.HasPrefix(f[1], n.addr()+"@") {
			if strings.Contains(f[2], "master") && len(f) > 8 {
				return "", fmt.Errorf("%s still owns slots %v", n.addr(), f[8:])
			}
			return f[0], nil
		}
	}
	return "", nil // forgotten already
}

// replace starts n empty, has every live node forget oldID, and makes n the
// replica of the master that has none.
func (c cluster) replace(n node, oldID string) error {
	for _, f := range []string{"nodes.conf", "dump.rdb"} {
		os.Remove(filepath.Join(n.dir, f))
	}
	if err := n.launch(); err != nil {
		return err
	}
	ctx := context.Background()
	if err := waitFor(ctx, 10*time.Second, n.addr()+" to answer", func() error { return allUp([]node{n}) }); err != nil {
		return err
	}
	var seed node
	for _, o := range c.nodes() {
		if o.port == n.port || !o.up() {
			continue
		}
		seed = o
		if oldID != "" {
			o.do("CLUSTER", "FORGET", oldID) // an error means it was forgotten already
		}
	}
	if _, err := seed.do("CLUSTER", "MEET", "127.0.0.1", n.port); err != nil {
		return fmt.Errorf("CLUSTER MEET %s: %w", n.addr(), err)
	}
	return waitFor(ctx, 20*time.Second, n.addr()+" to replicate a master without a replica", func() error {
		lines, _, err := c.nodeLines(n)
		if err != nil {
			return err
		}
		replicated := map[string]bool{}
		for _, f := range lines {
			if strings.Contains(f[2], "slave") && !strings.Contains(f[2], "fail") {
				replicated[f[3]] = true
			}
		}
		for _, f := range lines {
			if strings.Contains(f[2], "master") && !strings.Contains(f[2], "fail") && len(f) > 8 && !replicated[f[0]] {
				_, err := n.do("CLUSTER", "REPLICATE", f[0])
				return err
			}
		}
		return fmt.Errorf("no master without a replica yet")
	})
}

// describe prints each node's role.
func (c cluster) describe() string {
	var b strings.Builder
	for _, n := range c.nodes() {
		r := n.info("replication")
		switch {
		case r == nil:
			fmt.Fprintf(&b, "  %s DOWN\n", n.addr())
		case r["role"] == "master":
			fmt.Fprintf(&b, "  %s master\n", n.addr())
		default:
			fmt.Fprintf(&b, "  %s replica of %s:%s (link %s)\n", n.addr(), r["master_host"], r["master_port"], r["master_link_status"])
		}
	}
	return b.String()
}

// stopAll kills every node of t, all at once, and removes its directory.
// SIGKILL, not SIGTERM: the nodes keep no data, and a Redis 7 master told to
// shut down waits up to 10s for replicas that are shutting down too.
func stopAll(t topo) error {
	var running []node
	for _, n := range t.nodes() {
		if _, ok := n.pid(); ok {
			running = append(running, n)
		}
	}
	errs := make(chan error, len(running))
	for _, n := range running {
		go func() {
			_, err := n.signal(syscall.SIGKILL)
			errs <- err
		}()
	}
	var err error
	for range running {
		err = errors.Join(err, <-errs)
	}
	return errors.Join(err, os.RemoveAll(t.dir()))
}
