package seshcluster_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/storetest"
	"github.com/seshkit/sesh/seshcluster"
)

// newCluster returns a refreshed cluster on SESH_CLUSTER_ADDRS. It skips
// the test when the variable is not set, and fails it when the cluster
// does not answer: nothing skips quietly.
func newCluster(t *testing.T) *redisc.Cluster {
	t.Helper()
	addrs := os.Getenv("SESH_CLUSTER_ADDRS")
	if addrs == "" {
		t.Skip(`SESH_CLUSTER_ADDRS is not set; run scripts/redis-cluster.sh start and eval "$(scripts/env.sh)"`)
	}
	c := &redisc.Cluster{
		StartupNodes: strings.Split(addrs, ","),
		DialOptions: []redis.DialOption{
			redis.DialConnectTimeout(time.Second),
			redis.DialReadTimeout(5 * time.Second),
			redis.DialWriteTimeout(5 * time.Second),
		},
		CreatePool:   newNodePool,
		PoolWaitTime: time.Second,
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Refresh(); err != nil {
		t.Fatalf("SESH_CLUSTER_ADDRS=%s does not answer: %v", addrs, err)
	}
	return c
}

func TestStore(t *testing.T) {
	p := seshcluster.New(newCluster(t))
	t.Run("batched", func(t *testing.T) {
		storetest.Run(t, storetest.Backend{
			Name:    "cluster",
			Pool:    p,
			Advance: func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:    250 * time.Millisecond,
		})
	})
	t.Run("cache", func(t *testing.T) {
		storetest.Run(t, storetest.Backend{
			Name:      "cluster+cache",
			Pool:      p,
			Advance:   func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:      250 * time.Millisecond,
			CacheSize: 1000,
		})
	})
	t.Run("nobatch", func(t *testing.T) {
		storetest.Run(t, storetest.Backend{
			Name:      "cluster/nobatch",
			Pool:      p,
			Advance:   func(t *testing.T, d time.Duration) { time.Sleep(d) },
			Unit:      250 * time.Millisecond,
			Pipelines: sesh.NoPipelining,
		})
	})
}

// prefix returns a key namespace no other test uses.
func prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "seshc-" + hex.EncodeToString(b[:])
}

// tokenKey is sesh's documented key layout: Prefix:{base64url(SHA-256(raw token))}.
func tokenKey(t *testing.T, prefix, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes of base64url: %v", tok, err)
	}
	sum := sha256.Sum256(raw)
	return prefix + ":{" + base64.RawURLEncoding.EncodeToString(sum[:]) + "}"
}

// layout is who serves what, as CLUSTER SLOTS says now.
type layout struct {
	owner   [redisc.HashSlots]string // master address of each slot
	masters []string
}

func clusterLayout(t *testing.T) *layout {
	t.Helper()
	if os.Getenv("SESH_CLUSTER_ADDRS") == "" {
		t.Skip(`SESH_CLUSTER_ADDRS is not set; run scripts/redis-cluster.sh start and eval "$(scripts/env.sh)"`)
	}
	var last error
	for _, addr := range strings.Split(os.Getenv("SESH_CLUSTER_ADDRS"), ",") {
		c, err := dialNode(addr)
		if err != nil {
			last = err
			continue
		}
		vs, err := redis.Values(c.Do("CLUSTER", "SLOTS"))
		c.Close()
		if err != nil {
			last = err
			continue
		}
		l := &layout{}
		for _, v := range vs {
			r, _ := redis.Values(v, nil)
			lo, _ := redis.Int(r[0], nil)
			hi, _ := redis.Int(r[1], nil)
			m, _ := redis.Values(r[2], nil)
			host, _ := redis.String(m[0], nil)
			port, _ := redis.Int(m[1], nil)
			a := fmt.Sprintf("%s:%d", host, port)
			for s := lo; s <= hi; s++ {
				l.owner[s] = a
			}
			if !contains(l.masters, a) {
				l.masters = append(l.masters, a)
			}
		}
		return l
	}
	t.Fatalf("no cluster node answers CLUSTER SLOTS: %v", last)
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func dialNode(addr string) (redis.Conn, error) {
	return redis.Dial("tcp", addr,
		redis.DialConnectTimeout(time.Second),
		redis.DialReadTimeout(5*time.Second),
		redis.DialWriteTimeout(5*time.Second))
}

// onEveryMaster returns one key per master, named prefix:{n}.
func onEveryMaster(t *testing.T, l *layout, prefix string) []string {
	t.Helper()
	var keys []string
	seen := map[string]bool{}
	for n := 0; len(seen) < len(l.masters); n++ {
		k := fmt.Sprintf("%s:{%d}", prefix, n)
		if m := l.owner[redisc.Slot(k)]; !seen[m] {
			seen[m] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func getConn(t *testing.T, p sesh.Pool) redis.Conn {
	t.Helper()
	c, err := p.GetContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTokensCoverEveryMaster(t *testing.T) {
	cluster := newCluster(t)
	l := clusterLayout(t)
	if len(l.masters) < 3 {
		t.Fatalf("the cluster has %d masters; want 3", len(l.masters))
	}
	p := prefix()
	s, err := sesh.New(seshcluster.New(cluster), sesh.Options{Prefix: p, TTL: time.Minute, TrackUsers: true, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 300
	toks := make([]string, n)
	for i := range toks {
		if toks[i], err = s.Set(ctx, "alice"); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}

	// Each key lives on the master that owns its slot, and every master
	// holds some: checked on the masters themselves, not through sesh.
	perMaster := map[string][]string{}
	for _, tok := range toks {
		k := tokenKey(t, p, tok)
		perMaster[l.owner[redisc.Slot(k)]] = append(perMaster[l.owner[redisc.Slot(k)]], k)
	}
	for _, m := range l.masters {
		keys := perMaster[m]
		if len(keys) == 0 {
			t.Fatalf("no token of %d landed on master %s", n, m)
		}
		c, err := dialNode(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			c.Send("CLUSTER", "KEYSLOT", k)
			c.Send("EXISTS", k)
		}
		rs, err := redis.Values(c.Do(""))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			if slot, _ := redis.Int(rs[2*i], nil); slot != redisc.Slot(k) {
				t.Fatalf("CLUSTER KEYSLOT %s = %d, redisc says %d", k, slot, redisc.Slot(k))
			}
			if ex, _ := redis.Int(rs[2*i+1], nil); ex != 1 {
				t.Fatalf("master %s does not hold %s", m, k)
			}
		}
		t.Logf("master %s holds %d of %d tokens", m, len(keys), n)
	}

	for _, tok := range toks {
		if u, err := s.Get(ctx, tok); u != "alice" || err != nil {
			t.Fatalf("Get = %q, %v", u, err)
		}
	}
	if c, err := s.Count(ctx, "alice"); c != n || err != nil {
		t.Fatalf("Count = %d, %v; want %d", c, err, n)
	}
	if ended, err := s.DieAll(ctx, "alice"); ended != n || err != nil {
		t.Fatalf("DieAll = %d, %v; want %d, nil", ended, err, n)
	}
	for _, tok := range toks {
		if _, err := s.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
			t.Fatalf("Get after DieAll = %v", err)
		}
	}
}

func TestPipeline(t *testing.T) {
	cluster := newCluster(t)
	pool := seshcluster.New(cluster)
	l := clusterLayout(t)
	keys := onEveryMaster(t, l, prefix())
	a, b, cc := keys[0], keys[1], keys[2]
	for _, k := range keys {
		t.Cleanup(func() {
			c, err := pool.GetContext(context.Background())
			if err == nil {
				c.Do("DEL", k)
				c.Close()
			}
		})
	}

	t.Run("commands on several nodes run in the order sent", func(t *testing.T) {
		c := getConn(t, pool)
		// The nodes share this machine's clock: TIME in a script stamps
		// when each command ran.
		const stamp = "local t = redis.call('TIME') return t[1] * 1000000 + t[2]"
		for i := range 12 {
			c.Send("EVAL", stamp, 1, keys[i%3])
		}
		rs, err := redis.Int64s(c.Do(""))
		if err != nil || len(rs) != 12 {
			t.Fatalf("Do = %v, %v", rs, err)
		}
		for i := 1; i < len(rs); i++ {
			if rs[i] < rs[i-1] {
				t.Fatalf("command %d ran at %d, before command %d at %d", i, rs[i], i-1, rs[i-1])
			}
		}
	})

	t.Run("replies come back in place, errors as redis.Error values", func(t *testing.T) {
		c := getConn(t, pool)
		c.Send("SET", a, "va")
		c.Send("SET", b, "vb")
		c.Send("LPUSH", a, "x") // WRONGTYPE
		c.Send("GET", b)
		c.Send("GET", a)
		c.Send("DEL", cc)
		rs, err := redis.Values(c.Do(""))
		if err != nil || len(rs) != 6 {
			t.Fatalf("Do = %v, %v", rs, err)
		}
		if e, ok := rs[2].(redis.Error); !ok || !strings.HasPrefix(string(e), "WRONGTYPE") {
			t.Fatalf("reply 2 = %#v; want a WRONGTYPE redis.Error", rs[2])
		}
		want := []any{"OK", "OK", nil, "vb", "va", int64(0)}
		for i, w := range want {
			if i == 2 {
				continue
			}
			got := rs[i]
			if bs, ok := got.([]byte); ok {
				got = string(bs)
			}
			if got != w {
				t.Errorf("reply %d = %#v, want %#v", i, got, w)
			}
		}
	})

	t.Run("Receive returns the replies one at a time", func(t *testing.T) {
		c := getConn(t, pool)
		c.Send("SET", a, "1")
		c.Send("SET", b, "2")
		c.Send("LPUSH", a, "x")
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"OK", "OK"} {
			if v, err := redis.String(c.Receive()); v != want || err != nil {
				t.Fatalf("Receive %d = %q, %v", i, v, err)
			}
		}
		if _, err := c.Receive(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			t.Fatalf("Receive 2 = %v; want WRONGTYPE", err)
		}
		// Do with queued commands returns its own reply and the first error.
		c.Send("LPUSH", a, "x")
		v, err := c.Do("GET", b)
		if s, _ := redis.String(v, nil); s != "2" || err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			t.Fatalf(`Do("GET") after a failing Send = %#v, %v; want "2", WRONGTYPE`, v, err)
		}
	})

	t.Run("deletes over every node take one connection per node", func(t *testing.T) {
		c := getConn(t, pool)
		p := prefix()
		for i := range 500 {
			c.Send("DEL", fmt.Sprintf("%s:{%d}", p, i))
		}
		rs, err := redis.Ints(c.Do(""))
		if err != nil || len(rs) != 500 {
			t.Fatalf("Do = %d replies, %v", len(rs), err)
		}
		inUse := 0
		for _, st := range cluster.Stats() {
			inUse += st.ActiveCount - st.IdleCount
		}
		if inUse > len(l.masters) {
			t.Fatalf("%d node connections in use for 500 DELs on %d masters", inUse, len(l.masters))
		}
	})
}

func TestWait(t *testing.T) {
	cluster := newCluster(t)
	pool := seshcluster.New(cluster)
	ctx := context.Background()

	t.Run("WAIT covers the writes on every node", func(t *testing.T) {
		c := getConn(t, pool)
		keys := onEveryMaster(t, clusterLayout(t), prefix())
		for _, k := range keys {
			c.Send("SET", k, "1", "PX", 60000)
		}
		c.Send("WAIT", 1, 2000)
		rs, err := redis.Values(c.Do(""))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := redis.Int64(rs[len(keys)], nil); n != 1 || err != nil {
			t.Fatalf("WAIT 1 = %v, %v; want 1 (each master has one replica)", rs[len(keys)], err)
		}
		for _, k := range keys {
			c.Send("DEL", k)
		}
		if n, err := redis.Int64(c.Do("WAIT", 2, 100)); n != 1 || err != nil {
			t.Fatalf("WAIT 2 = %d, %v; want 1, the least any node got", n, err)
		}
	})

	for _, tc := range []struct {
		name string
		o    sesh.Options
		ok   bool
	}{
		{"Replicas 1 is acknowledged", sesh.Options{Replicas: 1}, true},
		{"Replicas 2, more than each master has, is not", sesh.Options{Replicas: 2, ReplicaTimeout: 200 * time.Millisecond}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Prefix, tc.o.TrackUsers, tc.o.TTL = prefix(), true, time.Minute
			s, err := sesh.New(pool, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			// The context outlives ReplicaTimeout by far: an error must be
			// ErrNotReplicated, never the deadline.
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			check := func(op string, err error) {
				t.Helper()
				switch {
				case tc.ok && err != nil:
					t.Fatalf("%s = %v; want nil", op, err)
				case !tc.ok && (!errors.Is(err, sesh.ErrNotReplicated) || !strings.HasPrefix(err.Error(), "sesh: "+op+": ")):
					t.Fatalf("%s = %v; want sesh: %s: wrapping ErrNotReplicated", op, err, op)
				}
			}
			// Set waits for its index entry: unacknowledged, it gives no token.
			tok, err := s.Set(ctx, "alice")
			check("set", err)
			if tc.ok {
				s.Die(ctx, tok)
			} else if tok != "" {
				t.Fatalf("an unacknowledged Set gave a token")
			}
			// The tokens to end come from a Store that does not wait.
			plain, err := sesh.New(pool, sesh.Options{Prefix: tc.o.Prefix, TrackUsers: true, TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			toks := make([]string, 6)
			for i := range toks {
				if toks[i], err = plain.Set(ctx, "alice"); err != nil {
					t.Fatal(err)
				}
			}
			check("die", s.Die(ctx, toks[0]))
			nt, err := s.Rotate(ctx, toks[1])
			check("rotate", err)
			if u, err := s.Get(ctx, nt); u != "alice" || err != nil {
				t.Fatalf("Get(rotated) = %q, %v", u, err)
			}
			n, err := s.DieAll(ctx, "alice")
			check("dieall", err)
			if n != 5 {
				t.Fatalf("DieAll ended %d; want 5", n)
			}
			for _, tok := range append(toks, nt) {
				if _, err := s.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
					t.Fatalf("Get after the end = %v; want ErrNotFound", err)
				}
			}
		})
	}
}

func TestContext(t *testing.T) {
	pool := seshcluster.New(newCluster(t))
	l := clusterLayout(t)
	p := prefix()
	s, err := sesh.New(pool, sesh.Options{Prefix: p, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Set(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	master := l.owner[redisc.Slot(tokenKey(t, p, tok))]

	// Hold every client of the token's master for 2s. CLIENT UNPAUSE would
	// wait in line like any command, so the pause runs out by itself.
	c, err := dialNode(master)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do("CLIENT", "PAUSE", 2000, "ALL"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if u, err := s.Get(ctx, tok); !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "sesh: get: ") {
		t.Fatalf("Get on a paused master = %q, %v; want sesh: get: wrapping DeadlineExceeded", u, err)
	}

	// Once the pause is over, the same token answers.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if u, err := s.Get(ctx, tok); u != "alice" || err != nil {
		t.Fatalf("Get after the pause = %q, %v", u, err)
	}
	if err := s.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
}

func TestNewNil(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("New(nil) did not panic")
		}
	}()
	seshcluster.New(nil)
}

func TestClosedCluster(t *testing.T) {
	c := &redisc.Cluster{StartupNodes: []string{"127.0.0.1:1"}}
	c.Close()
	_, err := seshcluster.New(c).GetContext(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "seshcluster: getcontext: ") {
		t.Fatalf("GetContext on a closed cluster = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := seshcluster.New(&redisc.Cluster{}).GetContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetContext with a canceled context = %v", err)
	}
}

// During a slot migration, a key the source node no longer holds is asked
// of the target (ASK), and a command whose keys are split between the two
// gets TRYAGAIN until the migration moves on.
func TestResharding(t *testing.T) {
	pool := seshcluster.New(newCluster(t))
	l := clusterLayout(t)
	tag := prefix() // a slot of this test's own
	k1, k2 := "{"+tag+"}:1", "{"+tag+"}:2"
	slot := redisc.Slot(k1)
	src := l.owner[slot]
	var dst string
	for _, m := range l.masters {
		if m != src {
			dst = m
			break
		}
	}
	node := func(addr string) redis.Conn {
		c, err := dialNode(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	sc, dc := node(src), node(dst)
	srcID, err := redis.String(sc.Do("CLUSTER", "MYID"))
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := redis.String(dc.Do("CLUSTER", "MYID"))
	if err != nil {
		t.Fatal(err)
	}
	c := getConn(t, pool)
	if _, err := c.Do("SET", k1, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do("SET", k2, "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Do("CLUSTER", "SETSLOT", slot, "IMPORTING", srcID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Take the keys off the target and end the migration: the slot
		// stays where it was.
		dc.Send("ASKING")
		dc.Send("DEL", k1, k2)
		dc.Do("")
		sc.Do("DEL", k1, k2)
		for _, n := range []redis.Conn{sc, dc} {
			if _, err := n.Do("CLUSTER", "SETSLOT", slot, "STABLE"); err != nil {
				t.Errorf("CLUSTER SETSLOT %d STABLE: %v", slot, err)
			}
		}
	})
	if _, err := sc.Do("CLUSTER", "SETSLOT", slot, "MIGRATING", dstID); err != nil {
		t.Fatal(err)
	}
	dstHost, dstPort, _ := strings.Cut(dst, ":")
	migrate := func(k string) {
		if _, err := sc.Do("MIGRATE", dstHost, dstPort, k, 0, 5000); err != nil {
			t.Errorf("MIGRATE %s: %v", k, err)
		}
	}

	migrate(k2)
	t.Run("a moved key is asked of the target", func(t *testing.T) {
		c := getConn(t, pool)
		if v, err := redis.String(c.Do("GET", k2)); v != "2" || err != nil {
			t.Fatalf("GET = %q, %v; want 2", v, err)
		}
		c.Send("GET", k1)
		c.Send("GET", k2)
		c.Send("GET", k1)
		vs, err := redis.Strings(c.Do(""))
		if err != nil || strings.Join(vs, ",") != "1,2,1" {
			t.Fatalf("pipeline = %q, %v; want 1,2,1", vs, err)
		}
	})

	t.Run("TRYAGAIN is retried until the migration moves on", func(t *testing.T) {
		c := getConn(t, pool)
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(300 * time.Millisecond)
			migrate(k1)
		}()
		n, err := redis.Int(c.Do("EXISTS", k1, k2))
		<-done
		if n != 2 || err != nil {
			t.Fatalf("EXISTS k1 k2 = %d, %v; want 2", n, err)
		}
	})
}
