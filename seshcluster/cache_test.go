package seshcluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/topology"
	"github.com/seshkit/sesh/seshcluster"
)

// The cache on Redis Cluster, tested as two processes would use it: Store A
// caches, on a cluster client of its own, and Store B ends tokens, on
// another. In every case A must stop returning an ended token within
// cacheBound of B's call returning: CacheMaxStale, and a second of slack for
// a loaded 2-core machine.

const (
	cacheStale = 200 * time.Millisecond
	cacheBound = cacheStale + time.Second
)

// cachePair returns A, caching, and B, on separate cluster clients, with
// the same Options but CacheSize.
func cachePair(t *testing.T, o sesh.Options) (a, b *sesh.Store) {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = prefix()
	}
	bo := o
	o.CacheSize, o.CacheMaxStale = 1000, cacheStale
	if os.Getenv("SESH_TEST_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var err error
	if a, err = sesh.New(seshcluster.New(newCluster(t)), o); err != nil {
		t.Fatalf("New with a cache on the Cluster: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = sesh.New(seshcluster.New(newCluster(t)), bo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// cachedIn gets tok from s until a Get is a cache hit.
func cachedIn(t *testing.T, s *sesh.Store, tok, userID string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		before := s.Stats().Cache.Hits
		got, err := s.Get(ctx, tok)
		if err != nil || got != userID {
			t.Fatalf("Get = %q, %v; want %q", got, err, userID)
		}
		if s.Stats().Cache.Hits > before {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("Get was never served from memory")
}

// stopsServing gets tok from s until it no longer returns userID, and
// returns how long that took. Errors in between (a failover) are not
// userID. It fails the test when userID is returned after within.
func stopsServing(t *testing.T, s *sesh.Store, tok, userID string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), topology.CallBound)
		got, err := s.Get(ctx, tok)
		cancel()
		d := time.Since(start)
		switch {
		case err == nil && got == userID && d > within:
			t.Fatalf("Get still returns %q %v after the token ended", got, d)
		case err == nil && got == userID:
		case errors.Is(err, sesh.ErrNotFound), err == nil:
			return d
		case d > topology.RecoveryBound:
			t.Fatalf("Get has failed for %v: %v", d, err)
		default:
			time.Sleep(10 * time.Millisecond) // a failover under way
		}
	}
}

// oneOn sets tokens of userID with s until one lives on master, and returns
// it.
func oneOn(t *testing.T, s *sesh.Store, prefix, userID, master string, l *layout) string {
	t.Helper()
	for range 200 {
		tok, err := s.Set(context.Background(), userID)
		if err != nil {
			t.Fatal(err)
		}
		if l.owner[redisc.Slot(tokenKey(t, prefix, tok))] == master {
			return tok
		}
	}
	t.Fatalf("no token of 200 landed on %s", master)
	return ""
}

func TestCacheEndings(t *testing.T) {
	ctx := context.Background()
	l := clusterLayout(t)
	for _, tc := range []struct {
		name string
		o    sesh.Options
		end  func(t *testing.T, b *sesh.Store, p, tok string) (still string)
	}{
		{"Die", sesh.Options{}, func(t *testing.T, b *sesh.Store, _, tok string) string {
			if err := b.Die(ctx, tok); err != nil {
				t.Fatal(err)
			}
			return "alice"
		}},
		{"DieAll", sesh.Options{TrackUsers: true}, func(t *testing.T, b *sesh.Store, _, _ string) string {
			if _, err := b.DieAll(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			return "alice"
		}},
		{"Rotate", sesh.Options{}, func(t *testing.T, b *sesh.Store, _, tok string) string {
			if _, err := b.Rotate(ctx, tok); err != nil {
				t.Fatal(err)
			}
			return "alice"
		}},
		{"overwrite", sesh.Options{}, func(t *testing.T, _ *sesh.Store, p, tok string) string {
			c := getConn(t, seshcluster.New(newCluster(t)))
			defer c.Close()
			if _, err := c.Do("SET", tokenKey(t, p, tok), "mallory", "PX", 60000); err != nil {
				t.Fatal(err)
			}
			return "alice"
		}},
		{"TTL", sesh.Options{TTL: 1500 * time.Millisecond}, func(t *testing.T, _ *sesh.Store, _, _ string) string {
			time.Sleep(1500 * time.Millisecond)
			return "alice"
		}},
		{"MaxAge", sesh.Options{TTL: time.Hour, MaxAge: 1500 * time.Millisecond}, func(t *testing.T, _ *sesh.Store, _, _ string) string {
			time.Sleep(1500 * time.Millisecond)
			return "alice"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := prefix()
			o := tc.o
			o.Prefix = p
			a, b := cachePair(t, o)
			// One token on every master, so that each master's tracking is
			// at work.
			var toks []string
			for _, m := range l.masters {
				toks = append(toks, oneOn(t, b, p, "alice", m, l))
			}
			for _, tok := range toks {
				cachedIn(t, a, tok, "alice")
			}
			for _, tok := range toks {
				still := tc.end(t, b, p, tok)
				d := stopsServing(t, a, tok, still, cacheBound)
				t.Logf("%s: the ended token stopped resolving after %v", tc.name, d)
			}
		})
	}
}

// trackingIDs returns the IDs of the tracking connections on the node at
// addr.
func trackingIDs(t *testing.T, addr string) []string {
	t.Helper()
	c, err := dialNode(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := redis.String(c.Do("CLIENT", "LIST"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name=sesh-tracking ") {
			id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
			ids = append(ids, id)
		}
	}
	return ids
}

// TestCacheTrackingKill kills one master's tracking connections: the
// tokens of that master stop being served from memory, an ending there
// still reaches A, and the other masters' tokens stay cached.
func TestCacheTrackingKill(t *testing.T) {
	ctx := context.Background()
	l := clusterLayout(t)
	p := prefix()
	a, b := cachePair(t, sesh.Options{Prefix: p})
	victim, other := l.masters[0], l.masters[1]
	onVictim := oneOn(t, b, p, "alice", victim, l)
	onOther := oneOn(t, b, p, "bob", other, l)
	cachedIn(t, a, onVictim, "alice")
	cachedIn(t, a, onOther, "bob")
	c, err := dialNode(victim)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ids := trackingIDs(t, victim)
	if len(ids) == 0 {
		t.Fatal("no tracking connection on " + victim)
	}
	for _, id := range ids {
		if _, err := c.Do("CLIENT", "KILL", "ID", id); err != nil {
			t.Fatal(err)
		}
	}
	// The other master's token is still a hit.
	cachedIn(t, a, onOther, "bob")
	if err := b.Die(ctx, onVictim); err != nil {
		t.Fatal(err)
	}
	d := stopsServing(t, a, onVictim, "alice", cacheBound)
	t.Logf("a token ended on %s, whose tracking was killed, stopped resolving after %v", victim, d)
	// Tracking comes back, and the victim's tokens are cached again.
	tok := oneOn(t, b, p, "carol", victim, l)
	cachedIn(t, a, tok, "carol")
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	stopsServing(t, a, tok, "carol", cacheBound)
}

// failoverCase caches a token of every master in A, has move change the
// cluster, and then ends every token with B: A must stop serving each
// within cacheBound, and cache again after.
func failoverCase(t *testing.T, move func(t *testing.T, l *layout, victim string)) {
	ctx := context.Background()
	l := clusterLayout(t) // skips without a Cluster
	topology.Cluster.Healthy(t)
	p := prefix()
	a, b := cachePair(t, sesh.Options{Prefix: p})
	var toks []string
	for _, m := range l.masters {
		toks = append(toks, oneOn(t, b, p, "alice", m, l))
	}
	for _, tok := range toks {
		cachedIn(t, a, tok, "alice")
	}
	victim := l.masters[0]
	move(t, l, victim)
	topology.AwaitAnswer(t, time.Now(), func(ctx context.Context) error {
		_, err := b.Get(ctx, toks[0])
		return err
	})
	for _, tok := range toks {
		if err := b.Die(ctx, tok); err != nil {
			t.Fatalf("Die after the change: %v", err)
		}
		d := stopsServing(t, a, tok, "alice", cacheBound)
		t.Logf("a token ended after the change stopped resolving after %v", d)
	}
	// The cache serves again, on whoever masters the victim's slots now.
	nl := clusterLayout(t)
	tok := oneOn(t, b, p, "bob", nl.owner[redisc.Slot(tokenKey(t, p, toks[0]))], nl)
	cachedIn(t, a, tok, "bob")
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	stopsServing(t, a, tok, "bob", cacheBound)
}

// TestCacheMasterKill: SIGKILL of a master and its replica's promotion.
func TestCacheMasterKill(t *testing.T) {
	failoverCase(t, func(t *testing.T, _ *layout, victim string) {
		topology.Cluster.Kill(t, victim)
	})
}

// replicaOf returns the address of a replica of the master at addr.
func replicaOf(t *testing.T, addr string) string {
	t.Helper()
	c, err := dialNode(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	role, err := redis.Values(c.Do("ROLE"))
	if err != nil {
		t.Fatal(err)
	}
	reps, _ := redis.Values(role[2], nil)
	if len(reps) == 0 {
		t.Fatalf("%s has no replica", addr)
	}
	r, _ := redis.Strings(reps[0], nil)
	return r[0] + ":" + r[1]
}

// clusterFailover has the replica at addr take over from its master, with
// CLUSTER FAILOVER, and waits until it has.
func clusterFailover(t *testing.T, addr string) {
	t.Helper()
	c, err := dialNode(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do("CLUSTER", "FAILOVER"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(topology.RecoveryBound); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		role, err := redis.Values(c.Do("ROLE"))
		if err == nil && len(role) > 0 && fmt.Sprint(string(role[0].([]byte))) == "master" {
			t.Logf("%s took over", addr)
			return
		}
	}
	t.Fatalf("%s did not take over", addr)
}

// TestCacheClusterFailover: CLUSTER FAILOVER, the old master a replica now.
func TestCacheClusterFailover(t *testing.T) {
	failoverCase(t, func(t *testing.T, _ *layout, victim string) {
		clusterFailover(t, replicaOf(t, victim))
	})
}

// TestCacheNodeRestart: a master killed, restarted empty as a replica, and
// made master again with CLUSTER FAILOVER: the cache hears it again.
func TestCacheNodeRestart(t *testing.T) {
	failoverCase(t, func(t *testing.T, _ *layout, victim string) {
		topology.Cluster.Kill(t, victim)
		var port int
		fmt.Sscanf(victim[strings.LastIndexByte(victim, ':')+1:], "%d", &port)
		if err := topology.Cluster.RestartNode(port); err != nil {
			t.Fatal(err)
		}
		clusterFailover(t, victim)
	})
}

// TestCacheSlotMigration moves the slot of a token A has cached to another
// master, keys and all, with CLUSTER SETSLOT and MIGRATE, and then ends the
// token: A must stop serving it. The slot goes back at the end.
func TestCacheSlotMigration(t *testing.T) {
	ctx := context.Background()
	l := clusterLayout(t) // skips without a Cluster
	topology.Cluster.Healthy(t)
	p := prefix()
	a, b := cachePair(t, sesh.Options{Prefix: p})
	src, dst := l.masters[0], l.masters[1]
	tok := oneOn(t, b, p, "alice", src, l)
	cachedIn(t, a, tok, "alice")
	slot := redisc.Slot(tokenKey(t, p, tok))
	migrate(t, l, slot, src, dst)
	t.Cleanup(func() { migrate(t, l, slot, dst, src) })
	// Still alice: the token lives on, on dst.
	if got, err := b.Get(ctx, tok); err != nil || got != "alice" {
		t.Fatalf("Get after the migration = %q, %v", got, err)
	}
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	d := stopsServing(t, a, tok, "alice", cacheBound)
	t.Logf("a token ended after its slot moved stopped resolving after %v", d)
	// Another token of that slot is cached from dst and ended there.
	var again string
	for range 100000 {
		tk, err := b.Set(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if redisc.Slot(tokenKey(t, p, tk)) == slot {
			again = tk
			break
		}
		b.Die(ctx, tk)
	}
	if again == "" {
		t.Skip("no second token of the slot in 100,000 tries")
	}
	cachedIn(t, a, again, "bob")
	if err := b.Die(ctx, again); err != nil {
		t.Fatal(err)
	}
	stopsServing(t, a, again, "bob", cacheBound)
}

// migrate moves slot from the master at src to the one at dst, with its
// keys, as redis-cli --cluster reshard does.
func migrate(t *testing.T, l *layout, slot int, src, dst string) {
	t.Helper()
	conn := func(addr string) redis.Conn {
		c, err := dialNode(addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	s, d := conn(src), conn(dst)
	defer s.Close()
	defer d.Close()
	srcID, err := redis.String(s.Do("CLUSTER", "MYID"))
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := redis.String(d.Do("CLUSTER", "MYID"))
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Do("CLUSTER", "SETSLOT", slot, "IMPORTING", srcID))
	must(s.Do("CLUSTER", "SETSLOT", slot, "MIGRATING", dstID))
	host, port, _ := strings.Cut(dst, ":")
	for {
		keys, err := redis.Strings(s.Do("CLUSTER", "GETKEYSINSLOT", slot, 100))
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(s.Do("MIGRATE", args...))
	}
	must(d.Do("CLUSTER", "SETSLOT", slot, "NODE", dstID))
	must(s.Do("CLUSTER", "SETSLOT", slot, "NODE", dstID))
	for _, m := range l.masters {
		if m != src && m != dst {
			c := conn(m)
			must(c.Do("CLUSTER", "SETSLOT", slot, "NODE", dstID))
			c.Close()
		}
	}
	t.Logf("slot %d moved from %s to %s", slot, src, dst)
}

// TestCacheSeeds makes the cache on a cluster client that was never
// refreshed, whose seeds hold replicas: New hears the masters among them,
// and the cache works.
func TestCacheSeeds(t *testing.T) {
	if os.Getenv("SESH_CLUSTER_ADDRS") == "" {
		t.Skip("SESH_CLUSTER_ADDRS is not set")
	}
	addrs := strings.Split(os.Getenv("SESH_CLUSTER_ADDRS"), ",")
	cluster := &redisc.Cluster{StartupNodes: addrs, DialOptions: []redis.DialOption{redis.DialReadTimeout(5 * time.Second)}}
	defer cluster.Close()
	p := prefix()
	a, err := sesh.New(seshcluster.New(cluster), sesh.Options{Prefix: p, CacheSize: 100, CacheMaxStale: cacheStale})
	if err != nil {
		t.Fatalf("New with a cache on seeds that hold replicas: %v", err)
	}
	defer a.Close()
	_, b := cachePair(t, sesh.Options{Prefix: p})
	l := clusterLayout(t)
	ctx := context.Background()
	for _, m := range l.masters {
		tok := oneOn(t, b, p, "alice", m, l)
		cachedIn(t, a, tok, "alice")
		if err := b.Die(ctx, tok); err != nil {
			t.Fatal(err)
		}
		stopsServing(t, a, tok, "alice", cacheBound)
	}
}
