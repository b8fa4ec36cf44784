package bench_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh/bench"
)

// defaultURL is where the tests look for Redis when SESH_REDIS_URL is unset.
const defaultURL = "redis://127.0.0.1:6379/15"

var (
	dialOnce sync.Once
	server   *bench.Redis
	dialErr  error

	clusterOnce sync.Once
	cluster     *bench.Cluster
	clusterErr  error

	// run prefixes every key this process writes.
	run = fmt.Sprintf("seshbench:test%d", time.Now().UnixNano())
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range lookupSets {
		s.cl.Close()
	}
	var targets []target
	if server != nil {
		targets = append(targets, server)
	}
	if cluster != nil {
		targets = append(targets, cluster)
	}
	for _, t := range targets {
		if _, err := t.Clean(context.Background(), run+":"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleaning up:", err)
			code = 1
		}
		t.Close()
	}
	os.Exit(code)
}

// target is the single Redis or the Cluster: what the tests clean up.
type target interface {
	Clean(ctx context.Context, prefix string) (int, error)
	Close() error
}

// contender is a bench.Contender or a bench.ClusterContender, bound to the
// server it runs on.
type contender struct {
	name string
	srv  target
	open func(ctx context.Context, prefix string) (bench.Client, error)
}

func singleContenders(r *bench.Redis) []contender {
	var cs []contender
	for _, c := range bench.Contenders {
		cs = append(cs, contender{c.Name, r, func(ctx context.Context, prefix string) (bench.Client, error) {
			return c.Open(ctx, r, prefix)
		}})
	}
	return cs
}

func clusterContenders(cl *bench.Cluster) []contender {
	var cs []contender
	for _, c := range bench.ClusterContenders {
		cs = append(cs, contender{"cluster/" + c.Name, cl, func(ctx context.Context, prefix string) (bench.Client, error) {
			return c.Open(ctx, cl, prefix)
		}})
	}
	return cs
}

// clusterFor returns the Redis Cluster that SESH_CLUSTER_ADDRS seeds. It
// skips when the variable is unset, and fails when the cluster does not
// answer.
func clusterFor(tb testing.TB) *bench.Cluster {
	tb.Helper()
	addrs := os.Getenv("SESH_CLUSTER_ADDRS")
	if addrs == "" {
		tb.Skip(`SESH_CLUSTER_ADDRS is not set; eval "$(bash ../scripts/env.sh)" to run on the scripts' cluster`)
	}
	clusterOnce.Do(func() {
		cluster, clusterErr = bench.DialCluster(context.Background(), strings.Split(addrs, ","))
	})
	if clusterErr != nil {
		tb.Fatalf("SESH_CLUSTER_ADDRS is set, but %v", clusterErr)
	}
	return cluster
}

// redisFor returns the Redis under test. It fails when SESH_REDIS_URL is
// set and that server does not answer, and skips only when the variable is
// unset and nothing answers at the default address.
func redisFor(tb testing.TB) *bench.Redis {
	tb.Helper()
	url, set := os.LookupEnv("SESH_REDIS_URL")
	if !set {
		url = defaultURL
	}
	dialOnce.Do(func() { server, dialErr = bench.Dial(context.Background(), url) })
	switch {
	case dialErr != nil && set:
		tb.Fatalf("SESH_REDIS_URL is set, but %v", dialErr)
	case dialErr != nil:
		tb.Skipf("no Redis at %s (%v); set SESH_REDIS_URL to run against another", url, dialErr)
	}
	return server
}

// open opens c with its keys under this process's prefix plus part.
func open(tb testing.TB, c contender, part string) bench.Client {
	tb.Helper()
	prefix := run + ":" + c.name + ":" + part
	cl, err := c.open(context.Background(), prefix)
	if err != nil {
		tb.Fatalf("open %s: %v", c.name, err)
	}
	tb.Cleanup(func() {
		cl.Close()
		if _, err := c.srv.Clean(context.Background(), prefix+":"); err != nil {
			tb.Errorf("clean %s: %v", prefix, err)
		}
	})
	return cl
}

// unknownToken is well formed for every contender but names no key.
func unknownToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// TestContendersDoTheSameWork checks that every contender keeps one key per
// token, with the workload's TTL, and resolves it back to its user.
func TestContendersDoTheSameWork(t *testing.T) {
	r := redisFor(t)
	if n := len(bench.UserID(7)); n != bench.UserIDLen {
		t.Fatalf("user IDs are %d bytes, want %d", n, bench.UserIDLen)
	}
	for _, c := range singleContenders(r) {
		t.Run(c.name, func(t *testing.T) {
			cl := open(t, c, "t")
			mintAndLookup(t, cl)
			keys := keysUnder(t, r, run+":"+c.name+":t:")
			if len(keys) != 1 {
				t.Fatalf("Mint wrote keys %q, want exactly one", keys)
			}
			ttl := pttl(t, r, keys[0])
			if ttl <= bench.TTL-time.Minute || ttl > bench.TTL {
				t.Errorf("key %s expires in %v, want about %v", keys[0], ttl, bench.TTL)
			}
		})
	}
}

// TestClusterContendersDoTheSameWork checks that every Cluster contender
// keeps one key per token and resolves it back to its user.
func TestClusterContendersDoTheSameWork(t *testing.T) {
	cl := clusterFor(t)
	for _, c := range clusterContenders(cl) {
		t.Run(c.name, func(t *testing.T) {
			prefix := run + ":" + c.name + ":t"
			client, err := c.open(context.Background(), prefix)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer client.Close()
			mintAndLookup(t, client)
			// Clean counts the keys it removes, on every master.
			if n, err := cl.Clean(context.Background(), prefix+":"); err != nil || n != 1 {
				t.Fatalf("Mint wrote %d keys (clean error %v), want exactly one", n, err)
			}
		})
	}
}

// mintAndLookup mints a token with cl, and checks that it resolves to its
// user and that an unknown token is not found.
func mintAndLookup(t *testing.T, cl bench.Client) {
	t.Helper()
	ctx := context.Background()
	tok, err := cl.Mint(ctx, bench.UserID(7))
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	got, err := cl.Lookup(ctx, tok)
	if err != nil || got != bench.UserID(7) {
		t.Fatalf("Lookup(minted) = %q, %v; want %q, nil", got, err, bench.UserID(7))
	}
	if _, err := cl.Lookup(ctx, unknownToken()); !errors.Is(err, bench.ErrNotFound) {
		t.Fatalf("Lookup(unknown) error = %v, want ErrNotFound", err)
	}
}

func keysUnder(t *testing.T, r *bench.Redis, prefix string) []string {
	t.Helper()
	c := r.Pool.Get()
	defer c.Close()
	var keys []string
	for cursor := "0"; ; {
		v, err := redis.Values(c.Do("SCAN", cursor, "MATCH", prefix+"*", "COUNT", 1000))
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := redis.Strings(v[1], nil)
		keys = append(keys, ks...)
		if cursor, _ = redis.String(v[0], nil); cursor == "0" {
			return keys
		}
	}
}

func pttl(t *testing.T, r *bench.Redis, key string) time.Duration {
	t.Helper()
	c := r.Pool.Get()
	defer c.Close()
	ms, err := redis.Int64(c.Do("PTTL", key))
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(ms) * time.Millisecond
}

func TestLoadRunsExactlyItsGoroutinesAndOps(t *testing.T) {
	for _, tc := range []struct {
		goroutines int
		ops        int64
	}{{1, 10}, {16, 100}, {256, 100}, {256, 1000}} {
		t.Run(fmt.Sprintf("%d goroutines share %d ops", tc.goroutines, tc.ops), func(t *testing.T) {
			var mu sync.Mutex
			seen := map[int]bool{}
			var running, peak atomic.Int64
			res, err := bench.Load{Goroutines: tc.goroutines, Ops: tc.ops}.Run(context.Background(),
				func(_ context.Context, w *bench.Worker) error {
					n := running.Add(1)
					defer running.Add(-1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					mu.Lock()
					seen[w.ID] = true
					mu.Unlock()
					time.Sleep(time.Millisecond)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops != tc.ops {
				t.Errorf("ran %d ops, want %d", res.Ops, tc.ops)
			}
			if want := min(int64(tc.goroutines), tc.ops); int64(len(seen)) != want {
				t.Errorf("%d goroutines ran, want %d", len(seen), want)
			}
			if peak.Load() > int64(tc.goroutines) {
				t.Errorf("%d ops ran at once, more than %d goroutines", peak.Load(), tc.goroutines)
			}
		})
	}
}

func TestLoadStopsAtItsFirstError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int64
	_, err := bench.Load{Goroutines: 4, Duration: time.Minute}.Run(context.Background(),
		func(context.Context, *bench.Worker) error {
			if calls.Add(1) == 10 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) {
		t.Fatalf("Run error = %v, want boom", err)
	}
}

// lookupSets holds each contender's working set, made once per process so
// that b.N's growing runs do not remint it.
var lookupSets = map[string]*lookupSet{}

type lookupSet struct {
	cl bench.Client
	ts *bench.Tokens
}

func workingSet(b *testing.B, c contender) *lookupSet {
	b.Helper()
	if s, ok := lookupSets[c.name]; ok {
		return s
	}
	// Opened outside b so that it lives until TestMain cleans up.
	prefix := run + ":" + c.name + ":l"
	cl, err := c.open(context.Background(), prefix)
	if err != nil {
		b.Fatalf("open %s: %v", c.name, err)
	}
	ts, err := bench.Fill(context.Background(), cl, bench.WorkingSet)
	if err == nil {
		err = bench.Warm(context.Background(), cl, ts)
	}
	if err != nil {
		b.Fatalf("working set for %s: %v", c.name, err)
	}
	s := &lookupSet{cl, ts}
	lookupSets[c.name] = s
	return s
}

// measure runs op b.N times from exactly n goroutines, with a context
// that can be cancelled, as a request's can: sesh and the peers that honour
// a context pay for it as they would in a handler.
func measure(b *testing.B, n int, op bench.Op) {
	b.ReportAllocs()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := bench.Load{Goroutines: n, Ops: int64(b.N), Ready: b.ResetTimer}.Run(ctx, op)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.OpsPerSec(), "ops/s")
}

// BenchmarkMint mints tokens with every contender at every concurrency.
// Read sesh's ns/op against redigo's at the same c for its overhead.
func BenchmarkMint(b *testing.B) { benchMint(b, singleContenders(redisFor(b))) }

// BenchmarkLookup resolves tokens drawn uniformly from a working set of
// bench.WorkingSet live tokens per contender.
func BenchmarkLookup(b *testing.B) { benchLookup(b, singleContenders(redisFor(b))) }

// BenchmarkClusterMint is BenchmarkMint for the Cluster contenders, on the
// cluster SESH_CLUSTER_ADDRS seeds; it skips when that is unset. Read
// sesh's ns/op against redisc's.
func BenchmarkClusterMint(b *testing.B) { benchMint(b, clusterContenders(clusterFor(b))) }

// BenchmarkClusterLookup is BenchmarkLookup for the Cluster contenders.
func BenchmarkClusterLookup(b *testing.B) { benchLookup(b, clusterContenders(clusterFor(b))) }

func benchMint(b *testing.B, cs []contender) {
	for _, c := range cs {
		b.Run(strings.TrimPrefix(c.name, "cluster/"), func(b *testing.B) {
			cl := open(b, c, "m")
			for _, n := range bench.Concurrencies {
				b.Run(fmt.Sprintf("c=%d", n), func(b *testing.B) { measure(b, n, bench.MintOp(cl)) })
			}
		})
	}
}

func benchLookup(b *testing.B, cs []contender) {
	for _, c := range cs {
		b.Run(strings.TrimPrefix(c.name, "cluster/"), func(b *testing.B) {
			s := workingSet(b, c)
			for _, n := range bench.Concurrencies {
				b.Run(fmt.Sprintf("c=%d", n), func(b *testing.B) { measure(b, n, bench.LookupOp(s.cl, s.ts)) })
			}
		})
	}
}
