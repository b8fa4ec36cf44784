package bench_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
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
	// run prefixes every key this process writes.
	run = fmt.Sprintf("seshbench:test%d", time.Now().UnixNano())
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range lookupSets {
		s.cl.Close()
	}
	if server != nil {
		if _, err := server.Clean(context.Background(), run+":"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleaning up:", err)
			code = 1
		}
		server.Close()
	}
	os.Exit(code)
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
func open(tb testing.TB, r *bench.Redis, c bench.Contender, part string) bench.Client {
	tb.Helper()
	prefix := run + ":" + c.Name + ":" + part
	cl, err := c.Open(context.Background(), r, prefix)
	if err != nil {
		tb.Fatalf("open %s: %v", c.Name, err)
	}
	tb.Cleanup(func() {
		cl.Close()
		if _, err := r.Clean(context.Background(), prefix+":"); err != nil {
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
	ctx := context.Background()
	if n := len(bench.UserID(7)); n != bench.UserIDLen {
		t.Fatalf("user IDs are %d bytes, want %d", n, bench.UserIDLen)
	}
	for _, c := range bench.Contenders {
		t.Run(c.Name, func(t *testing.T) {
			cl := open(t, r, c, "t")
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
			keys := keysUnder(t, r, run+":"+c.Name+":t:")
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

func workingSet(b *testing.B, r *bench.Redis, c bench.Contender) *lookupSet {
	b.Helper()
	if s, ok := lookupSets[c.Name]; ok {
		return s
	}
	// Opened outside b so that it lives until TestMain cleans up.
	prefix := run + ":" + c.Name + ":l"
	cl, err := c.Open(context.Background(), r, prefix)
	if err != nil {
		b.Fatalf("open %s: %v", c.Name, err)
	}
	ts, err := bench.Fill(context.Background(), cl, bench.WorkingSet)
	if err == nil {
		err = bench.Warm(context.Background(), cl, ts)
	}
	if err != nil {
		b.Fatalf("working set for %s: %v", c.Name, err)
	}
	s := &lookupSet{cl, ts}
	lookupSets[c.Name] = s
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
func BenchmarkMint(b *testing.B) {
	r := redisFor(b)
	for _, c := range bench.Contenders {
		b.Run(c.Name, func(b *testing.B) {
			cl := open(b, r, c, "m")
			for _, n := range bench.Concurrencies {
				b.Run(fmt.Sprintf("c=%d", n), func(b *testing.B) { measure(b, n, bench.MintOp(cl)) })
			}
		})
	}
}

// BenchmarkLookup resolves tokens drawn uniformly from a working set of
// bench.WorkingSet live tokens per contender.
func BenchmarkLookup(b *testing.B) {
	r := redisFor(b)
	for _, c := range bench.Contenders {
		b.Run(c.Name, func(b *testing.B) {
			s := workingSet(b, r, c)
			for _, n := range bench.Concurrencies {
				b.Run(fmt.Sprintf("c=%d", n), func(b *testing.B) { measure(b, n, bench.LookupOp(s.cl, s.ts)) })
			}
		})
	}
}
