package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/topology"
	"github.com/seshkit/sesh/seshcluster"
	"github.com/seshkit/sesh/seshsentinel"
)

// target is the Redis a run drives: how a Store reaches it, where its
// masters are, and how each fault is done to it.
type target struct {
	name    string
	pool    func() (sesh.Pool, func(), error) // a fresh Pool for one Store, and its closer
	masters func() []string                   // the data nodes that take writes now
	proxy   *proxy                            // single only: the Store's way in
	server  *server                           // single only
	topo    topology.Topology                 // sentinel and cluster
}

// sentinels lists the Sentinel topology's sentinels, moved by
// SESH_PORT_OFFSET as the topology's own ports are.
func sentinels() []string {
	var as []string
	for _, p := range []int{7211, 7212, 7213} {
		as = append(as, "127.0.0.1:"+strconv.Itoa(p+topology.PortOffset()))
	}
	return as
}

// admin runs one command on a node directly, bypassing any proxy.
func admin(addr string, cmd string, args ...any) (any, error) {
	c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(time.Second),
		redis.DialReadTimeout(2*time.Second), redis.DialWriteTimeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(cmd, args...)
}

// server is a private redis-server the harness starts, so that it may
// stop, restart and starve it without touching anyone's Redis.
type server struct {
	port string
	dir  string
	cmd  *exec.Cmd
}

func startServer() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	dir, err := os.MkdirTemp("", "sesh-soak-")
	if err != nil {
		return nil, err
	}
	s := &server{port: port, dir: dir}
	return s, s.start()
}

func (s *server) addr() string { return "127.0.0.1:" + s.port }

func (s *server) start() error {
	s.cmd = exec.Command("redis-server", "--port", s.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--enable-debug-command", "local")
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := admin(s.addr(), "PING"); err == nil {
			return nil
		}
	}
	return fmt.Errorf("redis-server on %s did not answer", s.addr())
}

// kill ends the server at once: it loses every key.
func (s *server) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

func (s *server) close() {
	s.kill()
	os.RemoveAll(s.dir)
}

// newTarget returns the target called name: single, sentinel or cluster.
func newTarget(name string) (*target, error) {
	switch name {
	case "single":
		return singleTarget()
	case "sentinel":
		if err := topology.Sentinel.Check(); err != nil {
			return nil, fmt.Errorf("the Sentinel topology is not healthy (scripts/redis-sentinel.sh start): %w", err)
		}
		return &target{name: name, topo: topology.Sentinel, masters: sentinelMaster, pool: sentinelPool}, nil
	case "cluster":
		if err := topology.Cluster.Check(); err != nil {
			return nil, fmt.Errorf("the Cluster topology is not healthy (scripts/redis-cluster.sh start): %w", err)
		}
		return &target{name: name, topo: topology.Cluster, masters: clusterMasters, pool: clusterPool}, nil
	}
	return nil, fmt.Errorf("unknown topology %q: want single, sentinel or cluster", name)
}

// singleTarget starts a private redis-server behind the harness's proxy.
func singleTarget() (*target, error) {
	srv, err := startServer()
	if err != nil {
		return nil, err
	}
	px, err := newProxy(srv.addr())
	if err != nil {
		srv.close()
		return nil, err
	}
	return &target{
		name: "single", server: srv, proxy: px,
		masters: func() []string { return []string{srv.addr()} },
		pool: func() (sesh.Pool, func(), error) {
			p, err := sesh.NewPool("redis://" + px.addr())
			if err != nil {
				return nil, nil, err
			}
			return p, func() { p.Close() }, nil
		},
	}, nil
}

// sentinelMaster lists the master the sentinels name now.
func sentinelMaster() []string {
	ss, err := redis.Strings(admin(sentinels()[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "seshmaster"))
	if err != nil || len(ss) != 2 {
		return nil
	}
	return []string{ss[0] + ":" + ss[1]}
}

// sentinelPool is a Pool that follows the master the sentinels elect.
func sentinelPool() (sesh.Pool, func(), error) {
	p, err := seshsentinel.New("seshmaster", sentinels(),
		redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(3*time.Second), redis.DialWriteTimeout(3*time.Second))
	if err != nil {
		return nil, nil, err
	}
	return p, func() { p.Close() }, nil
}

// clusterPool is a Pool over the Cluster topology.
func clusterPool() (sesh.Pool, func(), error) {
	c := &redisc.Cluster{
		StartupNodes: topology.Cluster.Addrs(),
		DialOptions: []redis.DialOption{redis.DialConnectTimeout(time.Second),
			redis.DialReadTimeout(3 * time.Second), redis.DialWriteTimeout(3 * time.Second)},
		CreatePool: func(addr string, opts ...redis.DialOption) (*redis.Pool, error) {
			return &redis.Pool{
				DialContext: func(ctx context.Context) (redis.Conn, error) {
					return redis.DialContext(ctx, "tcp", addr, opts...)
				},
				MaxIdle: 32, MaxActive: 512, IdleTimeout: time.Minute, Wait: true,
			}, nil
		},
		PoolWaitTime: time.Second,
	}
	if err := c.Refresh(); err != nil {
		return nil, nil, err
	}
	return seshcluster.New(c), func() { c.Close() }, nil
}

// clusterMasters lists the masters that own slots now.
func clusterMasters() []string {
	for _, seed := range topology.Cluster.Addrs() {
		s, err := redis.String(admin(seed, "CLUSTER", "NODES"))
		if err != nil {
			continue
		}
		var ms []string
		for line := range strings.Lines(s) {
			f := strings.Fields(line)
			if len(f) > 8 && strings.Contains(f[2], "master") && !strings.Contains(f[2], "fail") {
				ms = append(ms, f[1][:strings.Index(f[1], "@")])
			}
		}
		return ms
	}
	return nil
}

func (t *target) close() {
	if t.proxy != nil {
		t.proxy.close()
	}
	if t.server != nil {
		t.server.close()
	}
}

// signal sends sig to the process of the node at addr.
func (t *target) signal(addr string, sig syscall.Signal) error {
	if t.server != nil {
		if err := t.server.cmd.Process.Signal(sig); err != nil {
			return err
		}
		return nil
	}
	_, err := t.topo.Signal(addr, sig)
	return err
}

// restartKilled brings a killed node back: the private server empty, a
// topology's node as a replica of the master that took over.
func (t *target) restartKilled(addr string) error {
	if t.server != nil {
		return t.server.start()
	}
	port, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if err != nil {
		return err
	}
	return t.topo.RestartNode(port)
}
