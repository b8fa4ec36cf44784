package sesh_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// TestTrackUsersEviction checks, on a private redis-server, that New
// refuses TrackUsers under every maxmemory-policy that may evict a user's
// index, and names the setting.
func TestTrackUsersEviction(t *testing.T) {
	realURL(t) // the real-server suites start their own servers
	t.Parallel()
	srv := startServer(t)
	p, err := sesh.NewPool(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := p.Get()
	defer c.Close()
	for _, tc := range []struct {
		policy string
		maxAge time.Duration
		refuse bool
	}{
		{"noeviction", 0, false},
		{"noeviction", time.Hour, false},
		{"volatile-lru", 0, false},
		{"volatile-ttl", 0, false},
		{"volatile-lru", time.Hour, true},
		{"volatile-random", time.Hour, true},
		{"allkeys-lru", 0, true},
		{"allkeys-lfu", time.Hour, true},
		{"allkeys-random", 0, true},
	} {
		if _, err := c.Do("CONFIG", "SET", "maxmemory-policy", tc.policy); err != nil {
			t.Fatal(err)
		}
		_, err := sesh.New(p, sesh.Options{TrackUsers: true, MaxAge: tc.maxAge})
		switch {
		case tc.refuse && (err == nil || !strings.HasPrefix(err.Error(), "sesh: new: TrackUsers: ") || !strings.Contains(err.Error(), "maxmemory-policy is "+tc.policy)):
			t.Errorf("%s, MaxAge %v: New = %v; want an error naming TrackUsers and the policy", tc.policy, tc.maxAge, err)
		case !tc.refuse && err != nil:
			t.Errorf("%s, MaxAge %v: New = %v", tc.policy, tc.maxAge, err)
		}
		// A Store without an index does not care.
		if _, err := sesh.New(p, sesh.Options{MaxAge: tc.maxAge}); err != nil {
			t.Errorf("%s without TrackUsers: New = %v", tc.policy, err)
		}
	}
	srv.shutdown()
	if _, err := sesh.New(p, sesh.Options{TrackUsers: true}); err == nil || !strings.HasPrefix(err.Error(), "sesh: new: TrackUsers: cannot read maxmemory-policy") {
		t.Errorf("New with Redis down = %v; want an error naming TrackUsers", err)
	}
}

// TestEvictionKeepsPolicy checks, on a private redis-server under real
// volatile-lru eviction, that a Store without MaxAge (the sesh command's
// defaults) cannot keep a MaxAge session past its deadline: a session is
// one key, so eviction takes its policy with it or not at all. Before the
// record, eviction took the deadline key beside a hot token first, and the
// next such Liv gave the token an idle TTL with no deadline.
func TestEvictionKeepsPolicy(t *testing.T) {
	realURL(t) // the real-server suites start their own servers
	t.Parallel()
	srv := startServer(t)
	p, err := sesh.NewPool(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := p.Get()
	defer c.Close()
	used, err := redis.String(c.Do("INFO", "memory"))
	if err != nil {
		t.Fatal(err)
	}
	var base int64
	for _, l := range strings.Split(used, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			base, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	for _, kv := range [][2]any{{"maxmemory-policy", "volatile-lru"}, {"maxmemory", base + 4<<20}} {
		if _, err := c.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	const maxAge = 1500 * time.Millisecond
	app, err := sesh.New(p, sesh.Options{TTL: 500 * time.Millisecond, MaxAge: maxAge})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sesh.New(p, sesh.Options{TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for range 200 {
		tok, err := app.Set(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	start := time.Now()
	filler := strings.Repeat("x", 1000)
	for i := 0; time.Since(start) < maxAge+500*time.Millisecond; i++ {
		// Volatile filler keys past maxmemory make Redis evict.
		if _, err := c.Do("SET", fmt.Sprintf("fill:%d", i), filler, "PX", 60000); err != nil {
			t.Fatal(err)
		}
		if i%200 == 0 {
			for _, tok := range toks {
				err := cli.Liv(ctx, tok)
				if err == nil && time.Since(start) > maxAge+50*time.Millisecond {
					t.Fatalf("Liv of a %v MaxAge session succeeded %v after its Set", maxAge, time.Since(start))
				}
			}
		}
	}
	info, _ := redis.String(c.Do("INFO", "stats"))
	if !strings.Contains(info, "evicted_keys:") || strings.Contains(info, "evicted_keys:0\r\n") {
		t.Fatal("Redis evicted nothing: the test did not test eviction")
	}
	for _, tok := range toks {
		if got, err := cli.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
			t.Fatalf("Get past MaxAge = %q, %v", got, err)
		}
	}
}
