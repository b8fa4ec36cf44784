package sesh_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
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

func TestStore(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		mr, p := miniPool(t)
		storetest.Run(t, storetest.Backend{
			Name: "miniredis",
			Pool: p,
			// miniredis's clock moves only when told; the index's scores
			// follow the wall clock, so both move.
			Advance: func(t *testing.T, d time.Duration) { mr.FastForward(d); time.Sleep(d) },
			Unit:    20 * time.Millisecond,
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
	// A server that never answers: the deadline still bounds the call.
	ln := blackhole(t)
	mr.Close()
	hung := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", ln) }}
	s, err = sesh.New(noCtxPool{hung}, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
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
