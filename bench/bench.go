// Package bench measures sesh against its peers on one workload: the same
// Redis, the same key shape, the same 16-byte user ID and the same one-hour
// TTL for every contender.
//
// It is its own module, so that the peers it imports (go-redis, rueidis,
// scs, gonum/plot) never enter sesh's go.mod.
//
// # Operations
//
// Mint creates a new token with its expiry, atomically where the library
// can: SET key userID NX PX for the raw clients, [sesh.Store.Set] for sesh,
// and redisstore's Commit (MULTI, SET, PEXPIREAT, EXEC) for scs. Lookup
// resolves a live token: GET, [sesh.Store.Get], or redisstore's Find, and
// from the client-side cache for the cached contenders.
//
// Every call gets a context that can be cancelled, as a request handler's
// can. sesh honours it through redigo's DoContext, which runs each command
// on a goroutine of its own; the redigo+ctx contender shows that cost in
// redigo alone. Raw redigo and scs take no context.
//
// # Redis Cluster
//
// The same two operations run on a Redis Cluster through [Cluster] and
// [ClusterContenders]: sesh through seshcluster, with batching on and off,
// rueidis's and go-redis's cluster clients, and raw redisc as the baseline.
// Keys are spread over the slots as each library hashes them.
//
// # Propagation delay
//
// A [Prober] pairs a caching client A with a client B that ends tokens,
// for sesh and for rueidis, on one Redis or a Cluster; [Propagation] times
// one trial, from B ending a token that A has cached until A answers that
// it is not found. cmd/propagate runs them.
//
// # Running
//
// The Go benchmarks in bench_test.go give ns/op and allocs/op per contender
// and concurrency; cmd/compare runs the whole grid in one process, adds
// redis-benchmark's figures and writes results.json, RESULTS.md and
// chart.png. See README.md.
package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/redact"
)

// The workload every contender runs.
const (
	// TTL is the expiry of every minted token.
	TTL = time.Hour

	// UserIDLen is the length of every user ID, in bytes.
	UserIDLen = 16

	// WorkingSet is how many live tokens Lookup draws from, uniformly at
	// random, by default.
	WorkingSet = 10000

	// CacheTTL is rueidis's DoCache TTL: how long it may serve an entry
	// before asking Redis again, invalidations aside. sesh's cache has no
	// such TTL (an entry lives as long as its key) and keeps its default
	// CacheMaxStale.
	CacheTTL = time.Minute

	// CacheSize is how many tokens sesh's cache keeps: the working set,
	// with room to spare.
	CacheSize = 2 * WorkingSet
)

// Concurrencies are the goroutine counts every contender is measured at.
var Concurrencies = []int{1, 16, 64, 256}

// ErrNotFound is returned by Client.Lookup for a token that is not live.
var ErrNotFound = errors.New("bench: token not found")

// Client is one contender's handle on Redis, with every key under one
// prefix.
type Client interface {
	// Mint issues a new token for userID, which lives for TTL.
	Mint(ctx context.Context, userID string) (token string, err error)
	// Lookup returns the user ID of a live token, or ErrNotFound.
	Lookup(ctx context.Context, token string) (userID string, err error)
	// Close releases what Open took, but not the shared redigo pool.
	Close() error
}

// Contender is one library, or one configuration of it, under test.
type Contender struct {
	// Name names the contender in benchmark names, tables and the chart.
	Name string
	// Mint and Lookup say what each operation sends to Redis.
	Mint, Lookup string
	// Config says how the client is set up.
	Config string
	// Cached is true when Lookup may be served from a client-side cache.
	Cached bool
	// Open returns a Client whose keys all start with prefix + ":".
	Open func(ctx context.Context, r *Redis, prefix string) (Client, error)
}

// Baseline is the Name of the contender every other is compared with.
const Baseline = "redigo"

// Redis is the server under test, and the redigo pool that the redigo-based
// contenders share.
type Redis struct {
	// URL is the server's address, as sesh.NewPool takes it.
	URL string
	// Pool is sesh.NewPool's pool for URL, with MaxIdle raised so that 256
	// goroutines reuse their connections instead of redialling.
	Pool *redis.Pool
}

// PoolIdle is the redigo pool's MaxIdle: the highest concurrency, so no
// connection is closed on return while every goroutine is busy.
const PoolIdle = 256

// Dial connects to the Redis at rawURL and checks that it answers.
func Dial(ctx context.Context, rawURL string) (*Redis, error) {
	p, err := sesh.NewPool(rawURL)
	if err != nil {
		return nil, err
	}
	p.MaxIdle = PoolIdle
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := p.GetContext(ctx)
	if err == nil {
		_, err = redis.DoContext(c, ctx, "PING")
		c.Close()
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("bench: %s: %w", redact.URL(rawURL), err)
	}
	return &Redis{URL: rawURL, Pool: p}, nil
}

// Close closes the shared pool.
func (r *Redis) Close() error { return r.Pool.Close() }

// CPU returns the CPU time the server has used, user and system, as INFO
// reports it (to the microsecond).
func (r *Redis) CPU(ctx context.Context) (time.Duration, error) {
	c, err := r.Pool.GetContext(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	info, err := redis.String(redis.DoContext(c, ctx, "INFO", "cpu"))
	if err != nil {
		return 0, err
	}
	return cpuOf(info)
}

// cpuOf is used_cpu_sys plus used_cpu_user from an INFO cpu reply.
func cpuOf(info string) (time.Duration, error) {
	var total float64
	for _, f := range []string{"used_cpu_sys", "used_cpu_user"} {
		v, err := strconv.ParseFloat(infoField(info, f), 64)
		if err != nil {
			return 0, fmt.Errorf("bench: INFO cpu %s: %w", f, err)
		}
		total += v
	}
	return time.Duration(total * float64(time.Second)), nil
}

// Server returns the server's redis_version and process_id.
func (r *Redis) Server(ctx context.Context) (version string, pid int, err error) {
	c, err := r.Pool.GetContext(ctx)
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	info, err := redis.String(redis.DoContext(c, ctx, "INFO", "server"))
	if err != nil {
		return "", 0, err
	}
	pid, _ = strconv.Atoi(infoField(info, "process_id"))
	return infoField(info, "redis_version"), pid, nil
}
