package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
)

// ClusterBaseline is the Name of the cluster contender every other is
// compared with: raw redisc, the plain per-operation model.
const ClusterBaseline = "redisc"

// Cluster is the Redis Cluster under test, and the redisc.Cluster that the
// redisc-based contenders share.
type Cluster struct {
	// Addrs are the seed nodes, host:port.
	Addrs []string
	// Cluster is the shared redisc.Cluster. Each node's pool keeps up to
	// PoolIdle idle connections, as the single-node redigo pool does.
	Cluster *redisc.Cluster
}

// DialCluster connects to the Redis Cluster that addrs seed, loads its slot
// map, and checks that every node answers.
func DialCluster(ctx context.Context, addrs []string) (*Cluster, error) {
	if len(addrs) == 0 {
		return nil, errors.New("bench: cluster: no seed address")
	}
	rc := &redisc.Cluster{
		StartupNodes: addrs,
		DialOptions: []redis.DialOption{
			redis.DialConnectTimeout(time.Second),
			redis.DialReadTimeout(5 * time.Second),
			redis.DialWriteTimeout(5 * time.Second),
		},
		CreatePool:   newNodePool,
		PoolWaitTime: time.Second,
	}
	c := &Cluster{Addrs: addrs, Cluster: rc}
	if err := rc.Refresh(); err != nil {
		rc.Close()
		return nil, fmt.Errorf("bench: cluster %s: %w", strings.Join(addrs, ","), err)
	}
	if _, err := c.CPU(ctx); err != nil {
		rc.Close()
		return nil, err
	}
	return c, nil
}

// newNodePool is the Cluster's CreatePool: one redigo pool per node, sized
// like the single-node pool so that 256 goroutines never wait for one.
func newNodePool(addr string, opts ...redis.DialOption) (*redis.Pool, error) {
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", addr, opts...)
		},
		MaxIdle:     PoolIdle,
		MaxActive:   1024,
		IdleTimeout: time.Minute,
		Wait:        true,
	}, nil
}

// Close closes the shared redisc.Cluster.
func (c *Cluster) Close() error { return c.Cluster.Close() }

// eachNode runs fn on every node, masters then replicas, and stops at the
// first error or once ctx is done. redisc's node connections take no
// context, so the dial options' read timeout bounds each command.
func (c *Cluster) eachNode(ctx context.Context, fn func(addr string, conn redis.Conn) error) error {
	fn = withContext(ctx, fn)
	if err := c.Cluster.EachNode(false, fn); err != nil {
		return err
	}
	err := c.Cluster.EachNode(true, fn)
	if err != nil && err.Error() == "redisc: no known node address" {
		return nil // a cluster without replicas
	}
	return err
}

// withContext wraps a node visitor so that it stops once ctx is done.
func withContext(ctx context.Context, fn func(string, redis.Conn) error) func(string, redis.Conn) error {
	return func(addr string, conn redis.Conn) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(addr, conn)
	}
}

// CPU returns the CPU time every node of the cluster has used, masters and
// replicas, user and system, as INFO reports it.
func (c *Cluster) CPU(ctx context.Context) (time.Duration, error) {
	var total time.Duration
	err := c.eachNode(ctx, func(addr string, conn redis.Conn) error {
		d, err := infoCPU(conn)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", addr, err)
		}
		total += d
		return nil
	})
	return total, err
}

// Servers returns the redis_version of the first node and the process_id
// of every node, masters first.
func (c *Cluster) Servers(ctx context.Context) (version string, pids []int, err error) {
	err = c.eachNode(ctx, func(addr string, conn redis.Conn) error {
		info, err := redis.String(conn.Do("INFO", "server"))
		if err != nil {
			return fmt.Errorf("bench: %s: %w", addr, err)
		}
		if version == "" {
			version = infoField(info, "redis_version")
		}
		pid, _ := strconv.Atoi(infoField(info, "process_id"))
		pids = append(pids, pid)
		return nil
	})
	return version, pids, err
}

// Clean unlinks every key that starts with prefix on every master, found
// with SCAN, and returns how many it removed. It never flushes. Each key
// gets an UNLINK of its own, since one UNLINK may only name keys of one
// slot; they are pipelined per SCAN page.
func (c *Cluster) Clean(ctx context.Context, prefix string) (int, error) {
	n := 0
	err := c.Cluster.EachNode(false, withContext(ctx, func(addr string, conn redis.Conn) error {
		m, err := scanUnlink(conn, prefix)
		n += m
		if err != nil {
			return fmt.Errorf("bench: cleaning %s: %w", addr, err)
		}
		return nil
	}))
	return n, err
}

func scanUnlink(conn redis.Conn, prefix string) (int, error) {
	match := globEscaper.Replace(prefix) + "*"
	cursor, n := "0", 0
	for {
		v, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", match, "COUNT", 1000))
		if err != nil {
			return n, err
		}
		keys, err := redis.Strings(v[1], nil)
		if err != nil {
			return n, err
		}
		for _, k := range keys {
			if err := conn.Send("UNLINK", k); err != nil {
				return n, err
			}
		}
		if len(keys) > 0 {
			if err := conn.Flush(); err != nil {
				return n, err
			}
			for range keys {
				if _, err := conn.Receive(); err != nil {
					return n, err
				}
				n++
			}
		}
		if cursor, err = redis.String(v[0], nil); err != nil {
			return n, err
		}
		if cursor == "0" {
			return n, nil
		}
	}
}

// Do runs one command on the cluster through redisc.RetryConn, following
// redirects: for tests and tools, not for measuring.
func (c *Cluster) Do(cmd string, args ...any) (any, error) {
	conn, err := c.conn()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Do(cmd, args...)
}

// conn returns a connection of the shared cluster that follows MOVED and
// ASK redirects and retries TRYAGAIN, as raw redisc users set it up.
func (c *Cluster) conn() (redis.Conn, error) {
	return redisc.RetryConn(c.Cluster.Get(), 3, 20*time.Millisecond)
}

// infoCPU is a server's used_cpu_sys plus used_cpu_user.
func infoCPU(conn redis.Conn) (time.Duration, error) {
	info, err := redis.String(conn.Do("INFO", "cpu"))
	if err != nil {
		return 0, err
	}
	return cpuOf(info)
}
