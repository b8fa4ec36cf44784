package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/redact"
	"github.com/seshkit/sesh/seshcluster"
	"github.com/seshkit/sesh/seshsentinel"
)

// targetAbout documents the forms parseTarget reads, for the commands' -h.
const targetAbout = `
The deployment is named by -redis (default $SESH_REDIS_URL) or -cluster:

	redis://[[user]:password@]host[:port][/db]      one Redis (also rediss://, unix://)
	redis+sentinel://[[user]:password@]host:port[,host:port...]/mastername[/db]
	                                                the master the sentinels elect
	redis+cluster://[[user]:password@]host:port[,host:port...]
	-cluster host:port[,host:port...]              a Redis Cluster, from these seeds

Credentials apply to the Redis servers; sentinels are dialled without them.
A list of addresses needs redis+sentinel:// or redis+cluster://, and a
Cluster has no database number.`

// Kinds of target.
const (
	kindSingle   = "redis"
	kindSentinel = "sentinel"
	kindCluster  = "cluster"
)

// A target is the Redis deployment a command runs on: one server, the
// master that Sentinel elects, or a Cluster.
type target struct {
	kind   string
	url    string   // kindSingle: the URL, for sesh.NewPool
	addrs  []string // kindSentinel: the sentinels; kindCluster: the seeds
	master string   // kindSentinel: the master name
	db     int      // kindSentinel: the database
	creds  []redis.DialOption
}

// targetFlags are the -redis and -cluster flags.
type targetFlags struct{ redis, cluster string }

func (f *targetFlags) register(fs *flag.FlagSet, redisHelp string) {
	if redisHelp == "" {
		redisHelp = "Redis `URL`: redis://, redis+sentinel:// or redis+cluster:// (default $SESH_REDIS_URL)"
	}
	fs.StringVar(&f.redis, "redis", "", redisHelp)
	fs.StringVar(&f.cluster, "cluster", "", "Redis Cluster seed `addresses`, comma-separated host:port")
}

// given reports whether the flags or the environment name a deployment.
func (f *targetFlags) given() bool { return f.cluster != "" || redisURL(f.redis) != "" }

// target reads the flags, or else SESH_REDIS_URL.
func (f *targetFlags) target() (target, error) {
	switch {
	case f.cluster != "" && f.redis != "":
		return target{}, errors.New("give -redis or -cluster, not both")
	case f.cluster != "":
		if strings.Contains(f.cluster, "://") || strings.Contains(f.cluster, "@") {
			return target{}, errors.New("-cluster takes host:port,host:port...; for credentials use -redis redis+cluster://user:password@host:port,...")
		}
		addrs, err := parseAddrs(f.cluster)
		if err != nil {
			return target{}, fmt.Errorf("-cluster: %w", err)
		}
		return target{kind: kindCluster, addrs: addrs}, nil
	}
	return parseTarget(redisURL(f.redis))
}

// parseTarget reads a URL in one of the forms of targetAbout. Its errors
// never show the URL's user-info.
func parseTarget(raw string) (target, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if strings.Contains(raw, ",") {
			return target{}, fmt.Errorf("%q is a list without a scheme: write redis+sentinel://host:port,.../mastername for Sentinel, or -cluster host:port,... for a Cluster", redact.URL(raw))
		}
		return single(raw)
	}
	var userinfo string
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo, rest = rest[:at], rest[at+1:]
	}
	hosts, path, _ := strings.Cut(rest, "/")
	switch scheme {
	case "redis+sentinel", "redis+cluster":
	default:
		if strings.Contains(hosts, ",") {
			return target{}, fmt.Errorf("URL %q names several hosts: a %s:// URL names one server; use redis+sentinel:// or redis+cluster://", redact.URL(raw), scheme)
		}
		return single(raw)
	}
	fail := func(format string, args ...any) (target, error) {
		return target{}, fmt.Errorf("URL %q %s", redact.URL(raw), fmt.Sprintf(format, args...))
	}
	if strings.ContainsAny(rest, "?#") {
		return fail("has a query or fragment; percent-encode any '/', '?' or '#' in the password")
	}
	addrs, err := parseAddrs(hosts)
	if err != nil {
		return target{}, fmt.Errorf("URL %q: %w", redact.URL(raw), err)
	}
	creds, err := credentials(userinfo)
	if err != nil {
		return fail("%v", err)
	}
	t := target{addrs: addrs, creds: creds}
	if scheme == "redis+cluster" {
		if path != "" {
			return fail("has a path: a Redis Cluster has only database 0, so drop %q", "/"+path)
		}
		t.kind = kindCluster
		return t, nil
	}
	t.kind = kindSentinel
	master, db, hasDB := strings.Cut(path, "/")
	if master == "" {
		return fail("has no master name: write redis+sentinel://host:port,.../mastername[/db]")
	}
	t.master = master
	if hasDB {
		if t.db, err = strconv.Atoi(db); err != nil || t.db < 0 {
			return fail("has database %q, which is not a number", db)
		}
	}
	return t, nil
}

// single checks a one-server URL, with the rules of sesh.NewPool.
func single(raw string) (target, error) {
	p, err := sesh.NewPool(raw) // no I/O
	if err != nil {
		// The command, not the user, called NewPool: name the URL only.
		return target{}, errors.New(strings.TrimPrefix(err.Error(), "sesh: newpool: "))
	}
	p.Close()
	return target{kind: kindSingle, url: raw}, nil
}

// parseAddrs reads a comma-separated list of host:port.
func parseAddrs(list string) ([]string, error) {
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return nil, fmt.Errorf("address %q is not host:port", a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("address %q has an invalid port", a)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// credentials are the dial options for userinfo, read as NewPool reads a
// URL's: a lone user-info is the password, as redis-cli has it.
func credentials(userinfo string) ([]redis.DialOption, error) {
	if userinfo == "" {
		return nil, nil
	}
	user, pass, hasPass := strings.Cut(userinfo, ":")
	var err1, err2 error
	user, err1 = url.PathUnescape(user)
	pass, err2 = url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, errors.New("holds an invalid %-escape (percent-encode special characters in the password)")
	}
	switch {
	case hasPass && user != "":
		return []redis.DialOption{redis.DialUsername(user), redis.DialPassword(pass)}, nil
	case hasPass:
		return []redis.DialOption{redis.DialPassword(pass)}, nil
	}
	return []redis.DialOption{redis.DialPassword(user)}, nil
}

// String describes t for messages, without credentials.
func (t target) String() string {
	switch t.kind {
	case kindSentinel:
		return fmt.Sprintf("master %q of sentinels %s", t.master, strings.Join(t.addrs, ","))
	case kindCluster:
		return "cluster " + strings.Join(t.addrs, ",")
	}
	return redact.URL(t.url)
}

// pool returns a new pool of connections to a single server or to the
// Sentinel-elected master; a Cluster has none.
func (t target) pool() (*redis.Pool, error) {
	switch t.kind {
	case kindSingle:
		return sesh.NewPool(t.url)
	case kindSentinel:
		opts := t.creds
		if t.db != 0 {
			opts = append(opts[:len(opts):len(opts)], redis.DialDatabase(t.db))
		}
		return seshsentinel.New(t.master, t.addrs, opts...)
	}
	return nil, errors.New("a Redis Cluster has no single pool")
}

// A backend is an open target.
type backend struct {
	target
	sesh.Pool
	cluster *redisc.Cluster // kindCluster only
	close   func()
}

// open connects to t. On a Cluster it loads the slot map, so it fails when
// no seed answers; otherwise it does no I/O.
func (t target) open() (*backend, error) {
	if t.kind != kindCluster {
		p, err := t.pool()
		if err != nil {
			return nil, err
		}
		return &backend{target: t, Pool: p, close: func() { p.Close() }}, nil
	}
	c := &redisc.Cluster{
		StartupNodes: t.addrs,
		DialOptions: append([]redis.DialOption{
			redis.DialConnectTimeout(5 * time.Second),
			redis.DialReadTimeout(5 * time.Second),
			redis.DialWriteTimeout(5 * time.Second),
		}, t.creds...),
		CreatePool:   nodePool,
		PoolWaitTime: 5 * time.Second,
	}
	if err := c.Refresh(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return &backend{target: t, Pool: seshcluster.New(c), cluster: c, close: func() { c.Close() }}, nil
}

// nodePool is the pool of one Cluster node, checked with PING after a
// second idle.
func nodePool(addr string, opts ...redis.DialOption) (*redis.Pool, error) {
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", addr, opts...)
		},
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, idle time.Time) error {
			if time.Since(idle) < time.Second {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
		MaxIdle:     16,
		MaxActive:   256,
		IdleTimeout: time.Minute,
		Wait:        true,
	}, nil
}

// eachMaster calls fn with a connection to each master in turn: the one
// server, the elected master, or every master of a Cluster. It stops at the
// first error. Commands on conn are bounded by the read and write timeouts
// (5s), not by ctx, which is checked between masters: redisc's connections
// have no DoContext.
func (b *backend) eachMaster(ctx context.Context, fn func(addr string, conn redis.Conn) error) error {
	if b.cluster != nil {
		return b.cluster.EachNode(false, func(addr string, conn redis.Conn) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := conn.Err(); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			return fn(addr, conn)
		})
	}
	conn, err := b.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(b.target.String(), conn)
}

// ping checks that the backend answers.
func (b *backend) ping(ctx context.Context) error {
	return b.eachMaster(ctx, func(addr string, conn redis.Conn) error {
		_, err := conn.Do("PING")
		return err
	})
}
