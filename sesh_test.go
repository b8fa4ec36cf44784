package sesh_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/storetest"
)

// miniPool starts a miniredis for the test and returns a pool on it.
func miniPool(t testing.TB) (*miniredis.Miniredis, *redis.Pool) {
	t.Helper()
	mr := miniredis.RunT(t)
	p := &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", mr.Addr())
		},
		MaxIdle: 64,
	}
	t.Cleanup(func() { p.Close() })
	return mr, p
}

// realPool returns a pool on SESH_REDIS_URL, or nil when it is not set. A
// set but unreachable URL fails the test: nothing skips quietly.
func realPool(t testing.TB) *redis.Pool {
	t.Helper()
	url := os.Getenv("SESH_REDIS_URL")
	if url == "" {
		return nil
	}
	p, err := sesh.NewPool(url)
	if err != nil {
		t.Fatalf("SESH_REDIS_URL: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	c := p.Get()
	defer c.Close()
	if _, err := c.Do("PING"); err != nil {
		t.Fatalf("SESH_REDIS_URL=%s does not answer: %v", url, err)
	}
	return p
}

// stepClock returns an Advance for mr that moves its key TTLs
// (FastForward) and its TIME (SetTime) together by exactly d, then lets d
// pass on the wall clock too, for what the suite times there. A session's
// deadline, recorded on TIME, and its key's expiry then never drift apart,
// however slow the test machine.
func stepClock(mr *miniredis.Miniredis) func(*testing.T, time.Duration) {
	var mu sync.Mutex
	now := time.Now()
	mr.SetTime(now)
	return func(t *testing.T, d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mr.SetTime(now)
		mr.FastForward(d)
		mu.Unlock()
		time.Sleep(d)
	}
}

func TestStore(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		mr, p := miniPool(t)
		storetest.Run(t, storetest.Backend{
			Name:    "miniredis",
			Pool:    p,
			Advance: stepClock(mr),
			Unit:    40 * time.Millisecond,
			Serial:  true,
		})
	})
	t.Run("redis", func(t *testing.T) {
		p := realPool(t)
		if p == nil {
			t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
		}
		storetest.Run(t, storetest.Backend{
			Name:    "redis",
			Pool:    p,
			Advance: func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:    250 * time.Millisecond,
		})
	})
	t.Run("miniredis/nobatch", func(t *testing.T) {
		mr, p := miniPool(t)
		storetest.Run(t, storetest.Backend{
			Name:      "miniredis/nobatch",
			Pool:      p,
			Advance:   stepClock(mr),
			Unit:      40 * time.Millisecond,
			Serial:    true,
			Pipelines: sesh.NoPipelining,
		})
	})
	t.Run("redis/nobatch", func(t *testing.T) {
		p := realPool(t)
		if p == nil {
			t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
		}
		storetest.Run(t, storetest.Backend{
			Name:      "redis/nobatch",
			Pool:      p,
			Advance:   func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:      250 * time.Millisecond,
			Pipelines: sesh.NoPipelining,
		})
	})
	t.Run("redis+cache", func(t *testing.T) {
		p := realPool(t)
		if p == nil {
			t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
		}
		storetest.Run(t, storetest.Backend{
			Name:      "redis+cache",
			Pool:      p,
			Advance:   func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:      250 * time.Millisecond,
			CacheSize: 1000,
		})
	})
}

func TestNew(t *testing.T) {
	_, p := miniPool(t)
	for _, tc := range []struct {
		name  string
		pool  sesh.Pool
		o     sesh.Options
		field string // "" means valid
	}{
		{"the zero Options are valid", p, sesh.Options{}, ""},
		{"Forever is a valid TTL", p, sesh.Options{TTL: sesh.Forever, MaxAge: time.Hour}, ""},
		{"a nil Pool is refused", nil, sesh.Options{}, "Pool"},
		{"a negative TTL is refused", p, sesh.Options{TTL: -2}, "TTL"},
		{"a sub-millisecond TTL is refused", p, sesh.Options{TTL: time.Microsecond}, "TTL"},
		{"a negative MaxAge is refused", p, sesh.Options{MaxAge: -time.Second}, "MaxAge"},
		{"a Prefix with a space is refused", p, sesh.Options{Prefix: "my app"}, "Prefix"},
		{"a Prefix with a newline is refused", p, sesh.Options{Prefix: "app\n"}, "Prefix"},
		{"negative Replicas are refused", p, sesh.Options{Replicas: -1}, "Replicas"},
		{"a negative ReplicaTimeout is refused", p, sesh.Options{ReplicaTimeout: -1}, "ReplicaTimeout"},
		{"a sub-millisecond ReplicaTimeout is refused", p, sesh.Options{ReplicaTimeout: 500 * time.Microsecond}, "ReplicaTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sesh.New(tc.pool, tc.o)
			if tc.field == "" {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v", s, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "sesh: new: "+tc.field) {
				t.Fatalf("New = %v; want an error naming %s", err, tc.field)
			}
		})
	}
}

// TestRedisFailure checks that a failing server gives wrapped errors, and
// that a write which fails leaves nothing behind.
func TestRedisFailure(t *testing.T) {
	mr, p := miniPool(t)
	ctx := context.Background()
	for _, o := range []sesh.Options{{}, {TrackUsers: true, MaxAge: time.Hour}} {
		s, err := sesh.New(p, o)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Set(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		mr.SetError("LOADING Redis is loading the dataset in memory")
		ops := map[string]func() error{
			"set":    func() error { _, err := s.Set(ctx, "alice"); return err },
			"get":    func() error { _, err := s.Get(ctx, tok); return err },
			"liv":    func() error { return s.Liv(ctx, tok) },
			"die":    func() error { return s.Die(ctx, tok) },
			"rotate": func() error { _, err := s.Rotate(ctx, tok); return err },
		}
		if o.TrackUsers {
			ops["dieall"] = func() error { _, err := s.DieAll(ctx, "alice"); return err }
			ops["count"] = func() error { _, err := s.Count(ctx, "alice"); return err }
		}
		for op, f := range ops {
			err := f()
			var re redis.Error
			if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "sesh: "+op+": ") || errors.Is(err, sesh.ErrNotFound) {
				t.Errorf("%+v: %s = %v; want sesh: %s: wrapping the Redis error", o, op, err, op)
			}
		}
		mr.SetError("")
		if got, err := s.Get(ctx, tok); got != "alice" || err != nil {
			t.Fatalf("after the failure Get = %q, %v", got, err)
		}
		// No failed write left a key without an expiry.
		for _, k := range mr.Keys() {
			if mr.TTL(k) <= 0 {
				t.Errorf("key %q has no expiry", k)
			}
		}
	}
}

func TestClosedServer(t *testing.T) {
	mr, p := miniPool(t)
	s, err := sesh.New(p, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Set(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	mr.Close()
	_, err = s.Get(context.Background(), tok)
	if err == nil || errors.Is(err, sesh.ErrNotFound) || !strings.HasPrefix(err.Error(), "sesh: get: ") {
		t.Fatalf("Get on a closed server = %v", err)
	}
}

// noCtxPool hands out connections without DoContext, as redisc does.
type noCtxPool struct{ p *redis.Pool }

type noCtxConn struct{ redis.Conn }

func (n noCtxPool) GetContext(ctx context.Context) (redis.Conn, error) {
	c, err := n.p.GetContext(ctx)
	return noCtxConn{c}, err
}

func TestContextWithoutDoContext(t *testing.T) {
	mr, p := miniPool(t)
	s, err := sesh.New(noCtxPool{p}, sesh.Options{TrackUsers: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, err := s.Set(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, tok); got != "alice" || err != nil {
		t.Fatalf("Get = %q, %v", got, err)
	}
	// A *redis.Pool over connections without DoContext works too.
	wrapped := &redis.Pool{Dial: func() (redis.Conn, error) {
		c, err := redis.Dial("tcp", mr.Addr())
		return noCtxConn{c}, err
	}}
	defer wrapped.Close()
	ws, err := sesh.New(wrapped, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if got, err := ws.Get(dctx, tok); got != "alice" || err != nil {
		t.Fatalf("Get through a pool of connections without DoContext = %q, %v", got, err)
	}

	// A server that never answers: the deadline still bounds the call.
	ln := blackhole(t)
	mr.Close()
	hung := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", ln) }}
	s, err = sesh.New(noCtxPool{hung}, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Get(dctx, tok); !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "sesh: get: ") {
		t.Fatalf("Get on a hung server = %v; want sesh: get: wrapping DeadlineExceeded", err)
	}
}

// blackhole returns the address of a server that accepts connections and
// never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// noPool is a Pool for tests that must not reach Redis.
type noPool struct{}

func (noPool) GetContext(context.Context) (redis.Conn, error) {
	return nil, errors.New("noPool: no Redis here")
}

// Benchmarks: each operation through sesh beside raw redigo sending the same
// command on the same pool, so the library's overhead reads as a ratio.
// On real Redis set SESH_REDIS_URL; see the README for the figures.

func BenchmarkStore(b *testing.B) {
	_, mini := miniPool(b)
	backends := []struct {
		name string
		pool *redis.Pool
	}{{"miniredis", mini}}
	if p := realPool(b); p != nil {
		backends = append(backends, struct {
			name string
			pool *redis.Pool
		}{"redis", p})
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			for _, mode := range []struct {
				name string
				run  func(*testing.B, func(*testing.B) func())
			}{
				{"c=1", serial},
				{"parallel", parallelBench},
				{"c=64", func(b *testing.B, op func(*testing.B) func()) {
					b.SetParallelism(64 / runtime.GOMAXPROCS(0))
					parallelBench(b, op)
				}},
			} {
				b.Run(mode.name, func(b *testing.B) { benchOps(b, be.pool, mode.run) })
			}
		})
	}
}

// serial runs op's body b.N times on one goroutine.
func serial(b *testing.B, op func(*testing.B) func()) {
	b.ReportAllocs()
	f := op(b)
	b.ResetTimer()
	for range b.N {
		f()
	}
}

// parallelBench runs op's body from GOMAXPROCS goroutines.
func parallelBench(b *testing.B, op func(*testing.B) func()) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		f := op(b)
		for pb.Next() {
			f()
		}
	})
}

func benchOps(b *testing.B, pool *redis.Pool, run func(*testing.B, func(*testing.B) func())) {
	ctx := context.Background()
	s, err := sesh.New(pool, sesh.Options{Prefix: "seshbench", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	const user = "user-0123456789ab"
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	nb, err := sesh.New(pool, sesh.Options{Prefix: "seshbench", TTL: time.Hour, Pipelines: sesh.NoPipelining})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	rawKey := func() string { return fmt.Sprintf("seshbench:raw-%044d", n.Add(1)) }
	raw := func(cmd string, args ...any) {
		c, err := pool.GetContext(ctx)
		must(err)
		_, err = c.Do(cmd, args...) // as sesh calls it for a context without Done
		c.Close()
		must(err)
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	must(err)
	// With Details, Get reads the last use too, and records it once a
	// minute.
	ds, err := sesh.New(pool, sesh.Options{Prefix: "seshbench", TTL: time.Hour, Details: true})
	must(err)
	dtoken, err := ds.Set(ctx, user)
	must(err)
	token, err := s.Set(ctx, user)
	must(err)
	ctoken, err := c.Set(ctx, user)
	must(err)
	hot := rawKey()
	raw("SET", hot, user, "PX", 3600000)
	b.Cleanup(func() {
		c := pool.Get()
		defer c.Close()
		for cur := 0; ; {
			vs, err := redis.Values(c.Do("SCAN", cur, "MATCH", "seshbench:*", "COUNT", 1000))
			if err != nil {
				return
			}
			cur, _ = redis.Int(vs[0], nil)
			keys, _ := redis.Strings(vs[1], nil)
			for _, k := range keys {
				c.Do("UNLINK", k)
			}
			if cur == 0 {
				return
			}
		}
	})
	for _, tc := range []struct {
		name string
		op   func(*testing.B) func()
	}{
		{"Set/sesh", func(*testing.B) func() {
			return func() { _, err := s.Set(ctx, user); must(err) }
		}},
		{"Set/sesh-nobatch", func(*testing.B) func() {
			return func() { _, err := nb.Set(ctx, user); must(err) }
		}},
		{"Set/redigo", func(*testing.B) func() {
			return func() { raw("SET", rawKey(), user, "NX", "PX", 3600000) }
		}},
		{"Set/crypt", func(*testing.B) func() {
			return func() { _, err := c.Set(ctx, user); must(err) }
		}},
		{"Get/sesh", func(*testing.B) func() {
			return func() { _, err := s.Get(ctx, token); must(err) }
		}},
		{"Get/sesh-nobatch", func(*testing.B) func() {
			return func() { _, err := nb.Get(ctx, token); must(err) }
		}},
		{"Get/sesh-details", func(*testing.B) func() {
			return func() { _, err := ds.Get(ctx, dtoken); must(err) }
		}},
		{"Get/crypt", func(*testing.B) func() {
			return func() { _, err := c.Get(ctx, ctoken); must(err) }
		}},
		{"Get/redigo", func(*testing.B) func() {
			return func() { raw("GET", hot) }
		}},
		{"Liv/sesh", func(*testing.B) func() {
			return func() { must(s.Liv(ctx, token)) }
		}},
		{"Liv/redigo", func(*testing.B) func() {
			return func() { raw("PEXPIRE", hot, 3600000) }
		}},
		{"Die/sesh", func(*testing.B) func() {
			return func() { must(s.Die(ctx, token)) }
		}},
		{"Die/redigo", func(*testing.B) func() {
			return func() { raw("DEL", rawKey()) }
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b0 := s.Stats().Batches
			run(b, tc.op)
			if b1 := s.Stats().Batches; b1.Batches > b0.Batches {
				b.ReportMetric(float64(b1.Calls-b0.Calls)/float64(b1.Batches-b0.Batches), "calls/write")
			}
		})
	}
}

// BenchmarkCrypt measures the crypto work Crypt adds to an operation, with
// no Redis involved: sealing on Set, opening on Get.
func BenchmarkCrypt(b *testing.B) {
	s, err := sesh.New(noPool{}, sesh.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	const key, user = "sesh:{2jmj7l5rSw0yVb_vlWAYkK_YBwk2jmj7l5rSw0yVb_v}", "user-0123456789ab"
	sealed, err := sesh.Seal(c, key, user)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := sesh.Seal(c, key, user); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := sesh.Open(c, key, sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
}
