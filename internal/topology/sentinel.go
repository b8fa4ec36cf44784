package topology

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The Sentinel setup: data nodes 127.0.0.1:7201 (master at start) and 7202
// (its replica), and sentinels 7211-7213 monitoring master name
// "seshmaster" with quorum 2, down-after-milliseconds 1500 and
// failover-timeout 5000: killing the master gets the replica promoted in
// 2.5-4 s.
//
// Why 1500 and not 1000 ms: a sentinel pings at most once a second, and
// right after a switch-master its first reply from the re-created instances
// comes 1.0-1.1 s later. With 1000 ms that reads as +sdown; stale votes from
// the previous failover turn it into a bogus +odown and failover attempt,
// which then blocks real failovers for twice the failover timeout. Measured
// on back-to-back kill and restart cycles: 1000 ms gave such 10 s stalls in
// about 1 of 4 cycles, 1500 ms none in 40. ($SESH_SENTINEL_DOWN_AFTER_MS and
// $SESH_SENTINEL_FAILOVER_TIMEOUT_MS override them, for experiments.)
const masterName = "seshmaster"

var (
	dataPorts     = []int{7201, 7202}
	sentinelPorts = []int{7211, 7212, 7213}
)

type sentinel struct{}

func (sentinel) name() string { return "sentinel" }
func (sentinel) dir() string  { return filepath.Join(RunDir(), "sentinel") }

func (s sentinel) nodes() []node {
	var ns []node
	for _, p := range dataPorts {
		ns = append(ns, node{port: p + PortOffset(), dir: filepath.Join(s.dir(), strconv.Itoa(p+PortOffset()))})
	}
	for _, p := range sentinelPorts {
		ns = append(ns, node{port: p + PortOffset(), dir: filepath.Join(s.dir(), strconv.Itoa(p+PortOffset())), sentinel: true})
	}
	return ns
}

func (s sentinel) data() []node      { return s.nodes()[:len(dataPorts)] }
func (s sentinel) sentinels() []node { return s.nodes()[len(dataPorts):] }
func (s sentinel) stop() error       { return stopAll(s) }
func (s sentinel) restart() error {
	if err := s.stop(); err != nil {
		return err
	}
	return s.start()
}

func envMS(name string, def int) string {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return strconv.Itoa(v)
	}
	return strconv.Itoa(def)
}

// start creates the setup, unless it is healthy already.
func (s sentinel) start() error {
	if s.healthy() == nil {
		return nil
	}
	if err := s.stop(); err != nil {
		return err
	}
	if err := portsFree(s.nodes()); err != nil {
		return err
	}
	data, sents := s.data(), s.sentinels()
	master := data[0]
	for i, n := range data {
		var extra []string
		if i > 0 {
			extra = append(extra, "replicaof 127.0.0.1 "+strconv.Itoa(master.port))
		}
		if err := n.writeConf(extra...); err != nil {
			return err
		}
		if err := n.launch(); err != nil {
			return err
		}
	}
	// Sentinels discover replicas from the master's INFO, sent every 10s,
	// so let the replica connect before they start: they then see it in
	// their very first INFO.
	ctx := context.Background()
	if err := waitFor(ctx, 20*time.Second, "the replica to sync", func() error {
		return replicationOK(master, data[1])
	}); err != nil {
		return err
	}
	for _, n := range sents {
		// The sentinel rewrites its configuration; it must stay writable.
		if err := n.writeConf(
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", masterName, master.port),
			fmt.Sprintf("sentinel down-after-milliseconds %s %s", masterName, envMS("SESH_SENTINEL_DOWN_AFTER_MS", 1500)),
			fmt.Sprintf("sentinel failover-timeout %s %s", masterName, envMS("SESH_SENTINEL_FAILOVER_TIMEOUT_MS", 5000)),
			fmt.Sprintf("sentinel parallel-syncs %s 1", masterName),
		); err != nil {
			return err
		}
		if err := n.launch(); err != nil {
			return err
		}
	}
	return waitFor(ctx, StartTimeout(), "a healthy sentinel setup", s.healthy)
}

// replicationOK checks that m is a master with r as its online replica,
// whose link is up.
func replicationOK(m, r node) error {
	mi := m.info("replication")
	if mi["role"] != "master" {
		return fmt.Errorf("%s is not a master", m.addr())
	}
	if !strings.HasPrefix(mi["slave0"], fmt.Sprintf("ip=127.0.0.1,port=%d,state=online", r.port)) {
		return fmt.Errorf("%s has no online replica %s", m.addr(), r.addr())
	}
	ri := r.info("replication")
	if ri["role"] != "slave" || ri["master_port"] != strconv.Itoa(m.port) || ri["master_link_status"] != "up" {
		return fmt.Errorf("%s is not a replica of %s with its link up", r.addr(), m.addr())
	}
	return nil
}

func sentinelMaster(n node) string {
	v, err := n.do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
	ss, _ := redis.Strings(v, err)
	if len(ss) != 2 {
		return ""
	}
	return ss[0] + ":" + ss[1]
}

// healthy checks that all five processes are ours and up; every sentinel
// names the same master, flags it "master", sees 2 other sentinels and 1
// replica, with flags "slave" and master-link-status ok; and the master
// has that replica online with its link up.
func (s sentinel) healthy() error {
	for _, n := range s.nodes() {
		if _, ok := n.pid(); !ok {
			return fmt.Errorf("%s is not running from %s: %w", n.addr(), s.dir(), ErrNotRunning)
		}
	}
	var m, r string
	for _, n := range s.sentinels() {
		addr := sentinelMaster(n)
		if addr == "" {
			return fmt.Errorf("sentinel %s does not know %s", n.addr(), masterName)
		}
		if m != "" && addr != m {
			return fmt.Errorf("sentinels disagree on the master (%s vs %s)", m, addr)
		}
		m = addr
		if err := expect("sentinel "+n.addr(), pairs(n.do("SENTINEL", "MASTER", masterName)),
			"flags", "master", "num-other-sentinels", "2", "num-slaves", "1"); err != nil {
			return err
		}
		reps, err := redis.Values(n.do("SENTINEL", "REPLICAS", masterName))
		if err != nil || len(reps) != 1 {
			return fmt.Errorf("sentinel %s: replicas %v: %v", n.addr(), reps, err)
		}
		rep := pairs(reps[0], nil)
		if rep["flags"] != "slave" || rep["master-link-status"] != "ok" || rep["master-port"] != m[strings.LastIndex(m, ":")+1:] {
			return fmt.Errorf("sentinel %s: replica %s flags=%s master-link-status=%s master-port=%s",
				n.addr(), rep["name"], rep["flags"], rep["master-link-status"], rep["master-port"])
		}
		r = "127.0.0.1:" + rep["port"]
	}
	mn, err := s.byAddr(m)
	if err != nil {
		return err
	}
	rn, err := s.byAddr(r)
	if err != nil {
		return err
	}
	return replicationOK(mn, rn)
}

func (s sentinel) byAddr(addr string) (node, error) {
	for _, n := range s.nodes() {
		if n.addr() == addr {
			return n, nil
		}
	}
	return node{}, fmt.Errorf("%s is not a node of the sentinel setup", addr)
}

// settledMaster returns the master once the sentinels agree on it and no
// failover is under way, so that a data node coming back on port can be
// told whom to follow. While port itself is the dead master the sentinels
// still name, a failover is about to happen, flagged or not: not settled,
// unless the other data node is down too (then port comes back as master).
func (s sentinel) settledMaster(port int) (string, error) {
	addr, answered := "", 0
	for _, n := range s.sentinels() {
		info := pairs(n.do("SENTINEL", "MASTER", masterName))
		if info == nil {
			continue
		}
		answered++
		a := info["ip"] + ":" + info["port"]
		if addr != "" && a != addr {
			return "", fmt.Errorf("sentinels disagree on the master (%s vs %s)", addr, a)
		}
		addr = a
		flags := info["flags"]
		if strings.Contains(flags, "failover_in_progress") {
			return "", fmt.Errorf("sentinel %s: failover in progress", n.addr())
		}
		// The node is dead: while the sentinels still name it master, they
		// will fail over, even when they have not flagged it down yet.
		// Coming back empty as master before that would be a restart that
		// loses every key, which the replica would then copy.
		if addr == fmt.Sprintf("127.0.0.1:%d", port) {
			for _, d := range s.data() {
				if d.port != port && d.up() {
					return "", fmt.Errorf("sentinel %s: %s is master (%s) but dead; waiting for the failover", n.addr(), addr, flags)
				}
			}
		}
	}
	if answered == 0 {
		return "", fmt.Errorf("no sentinel answers")
	}
	return addr, nil
}

// restartNode brings back killed nodes. A data node comes back as a
// replica of the master the sentinels settle on, or as master when it still
// is the master and nothing can take over, so it never comes back as a
// second master.
func (s sentinel) restartNode(ports ...int) error {
	ctx := context.Background()
	for _, p := range ports {
		n, err := pick(s, p)
		if err != nil {
			return err
		}
		if _, ok := n.pid(); ok || n.up() {
			continue
		}
		if n.sentinel {
			if err := n.launch(); err != nil {
				return err
			}
			continue
		}
		var m string
		if err := waitFor(ctx, StartTimeout(), "the sentinels to settle on a master", func() (err error) {
			m, err = s.settledMaster(p)
			return err
		}); err != nil {
			return err
		}
		if m == n.addr() {
			err = n.launch("--replicaof", "no", "one")
		} else {
			host, port, _ := strings.Cut(m, ":")
			err = n.launch("--replicaof", host, port)
		}
		if err != nil {
			return err
		}
	}
	return waitFor(ctx, StartTimeout(), "a healthy sentinel setup", s.healthy)
}

// describe prints each node's role and each sentinel's master.
func (s sentinel) describe() string {
	var b strings.Builder
	for _, n := range s.data() {
		r := n.info("replication")
		switch {
		case r == nil:
			fmt.Fprintf(&b, "  %s DOWN\n", n.addr())
		case r["role"] == "master":
			fmt.Fprintf(&b, "  %s master (%s replica(s))\n", n.addr(), r["connected_slaves"])
		default:
			fmt.Fprintf(&b, "  %s replica of %s:%s (link %s)\n", n.addr(), r["master_host"], r["master_port"], r["master_link_status"])
		}
	}
	for _, n := range s.sentinels() {
		if a := sentinelMaster(n); a != "" {
			fmt.Fprintf(&b, "  %s sentinel: %s is at %s\n", n.addr(), masterName, a)
		} else {
			fmt.Fprintf(&b, "  %s sentinel DOWN\n", n.addr())
		}
	}
	return b.String()
}
