package sesh_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/seshkit/sesh"
)

// swapDBPort is the private redis-server of the SWAPDB test: SWAPDB and
// FLUSHDB must never run on the shared one.
const swapDBPort = "16222"

// TestCacheSwapDB settles what Redis's CLIENT TRACKING, in the broadcast
// mode sesh uses, says about SWAPDB, and what a Store's cache does then. On
// Redis 7.0 SWAPDB sends no invalidation: a cache goes on serving from
// memory the tokens of the database swapped away, until their TTL, a write
// to the same key name in any database, or a FLUSHDB or FLUSHALL of any
// database, which Redis reports to every tracking connection as
// "everything changed".
func TestCacheSwapDB(t *testing.T) {
	realURL(t)
	srv := &server{t: t, port: swapDBPort, dir: t.TempDir()}
	srv.start()
	t.Cleanup(func() {
		srv.cmd.Process.Kill()
		srv.cmd.Wait()
	})
	t.Run("Redis sends no invalidation on SWAPDB", func(t *testing.T) {
		if sent := swapDBInvalidates(t, srv.url()); len(sent) > 0 {
			t.Fatalf("SWAPDB sent the invalidations %q: the cache docs say it sends none", sent)
		}
	})
	t.Run("the cache serves a swapped-away token until a FLUSHDB", func(t *testing.T) {
		ctx := context.Background()
		p := cachePrefix()
		w := watch(t, srv.url()+"/1")
		// A MaxStale no late heartbeat on a busy machine reaches.
		s := newCached(t, w, sesh.Options{Prefix: p, TTL: time.Minute, CacheSize: 100, CacheMaxStale: 5 * time.Second})
		tok := mustSet(t, s, "alice")
		// Set writes one key: once its invalidation is heard, none comes
		// that would drop the entry cached next.
		heard(t, s, 1)
		cached(t, s, w, tok, "alice")
		do(t, w, "SWAPDB", 0, 1)
		// Invalidations arrive in order: once that of a token key written
		// after SWAPDB is heard, whatever SWAPDB sent has been heard too.
		do(t, w, "SET", p+":{"+strings.Repeat("A", 43)+"}", "x")
		heard(t, s, 2)
		if v, err := do(t, w, "EXISTS", key(t, p, tok)); v != int64(0) || err != nil {
			t.Fatalf("EXISTS after SWAPDB = %v, %v; want 0", v, err)
		}
		before := w.reads.Load()
		if got, err := s.Get(ctx, tok); got != "alice" || err != nil || w.reads.Load() != before {
			t.Fatalf("Get after SWAPDB = %q, %v, read from Redis: %v; want alice from memory", got, err, w.reads.Load() != before)
		}
		// The remedy the docs give: FLUSHDB of any database, an empty one too.
		w2 := watch(t, srv.url()+"/2")
		do(t, w2, "FLUSHDB")
		gone(t, s, tok, "alice", 5*time.Second)
	})
}

// swapDBInvalidates returns the invalidations that a tracking connection in
// broadcast mode receives for SWAPDB of a database holding a tracked key,
// read up to the invalidation of a key written after the SWAPDB.
func swapDBInvalidates(t *testing.T, url string) []string {
	tc, err := redis.DialURL(url + "/1")
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	wc, err := redis.DialURL(url + "/1")
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	id, err := redis.Int64(tc.Do("CLIENT", "ID"))
	if err == nil {
		_, err = tc.Do("CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", "swap:")
	}
	if err == nil {
		_, err = tc.Do("SUBSCRIBE", "__redis__:invalidate")
	}
	for _, cmd := range [][]any{{"SET", "swap:k", "v"}, {"SWAPDB", 0, 1}, {"SET", "swap:marker", "v"}} {
		if err == nil {
			_, err = wc.Do(cmd[0].(string), cmd[1:]...)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	for first := true; ; first = false {
		v, err := redis.ReceiveWithTimeout(tc, 5*time.Second)
		if err != nil {
			t.Fatalf("waiting for the invalidation of a key written after SWAPDB: %v", err)
		}
		m, _ := v.([]any)
		if len(m) != 3 {
			t.Fatalf("tracking message %v", v)
		}
		keys, err := redis.Strings(m[2], nil)
		if errors.Is(err, redis.ErrNil) {
			keys = []string{"(nil: everything)"}
		}
		switch {
		case first && len(keys) == 1 && keys[0] == "swap:k":
			// The SET before SWAPDB.
		case len(keys) == 1 && keys[0] == "swap:marker":
			return sent
		default:
			sent = append(sent, keys...)
		}
	}
}
