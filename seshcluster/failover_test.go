package seshcluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/topology"
	"github.com/seshkit/sesh/internal/wire"
	"github.com/seshkit/sesh/seshcluster"
)

// acknowledge has a replica of every master confirm every write made so
// far. Set does not WAIT; but a master replicates its writes in order, so a
// replica that acknowledges a write made after the Sets returned holds the
// Sets too. WAIT on this connection covers the marker written on each
// master.
func acknowledge(t *testing.T, pool sesh.Pool) {
	t.Helper()
	c := getConn(t, pool)
	keys := onEveryMaster(t, clusterLayout(t), prefix())
	for _, k := range keys {
		c.Send("SET", k, "ack", "PX", 60000)
	}
	c.Send("WAIT", 1, 5000)
	rs, err := redis.Values(c.Do(""))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := redis.Int(rs[len(keys)], nil); n < 1 || err != nil {
		t.Fatalf("WAIT 1 = %v, %v: no replica acknowledged the tokens", rs[len(keys)], err)
	}
}

func TestFailoverKeepsAcknowledgedTokens(t *testing.T) {
	cluster := newCluster(t)
	topology.Cluster.Healthy(t)
	pool := seshcluster.New(cluster)
	p := prefix()
	s, err := newShared(pool, sesh.Options{Prefix: p, TTL: 10 * time.Minute, TrackUsers: true, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	toks := make([]string, 60)
	for i := range toks {
		if toks[i], err = s.Set(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	acknowledge(t, pool)

	l := clusterLayout(t)
	victim := l.owner[redisc.Slot(tokenKey(t, p, toks[0]))]
	on := 0
	for _, tok := range toks {
		if l.owner[redisc.Slot(tokenKey(t, p, tok))] == victim {
			on++
		}
	}
	t.Logf("master %s holds %d of %d tokens", victim, on, len(toks))
	killed := topology.Cluster.Kill(t, victim)

	topology.AwaitAnswer(t, killed, func(ctx context.Context) error {
		u, err := s.Get(ctx, toks[0])
		if err == nil && u != "alice" {
			t.Fatalf("Get = %q; want alice", u)
		}
		return err
	})
	for i, tok := range toks {
		if u, err := s.Get(ctx, tok); u != "alice" || err != nil {
			t.Errorf("token %d after the failover: Get = %q, %v; want alice", i, u, err)
		}
	}
	if n, err := s.Count(ctx, "alice"); n != len(toks) || err != nil {
		t.Errorf("Count = %d, %v; want %d", n, err, len(toks))
	}
	// The promoted replica has no replica of its own until the killed
	// master rejoins, so a deletion on it cannot be acknowledged yet.
	if n, err := s.DieAll(ctx, "alice"); n != len(toks) || err != nil && !errors.Is(err, sesh.ErrNotReplicated) {
		t.Errorf("DieAll = %d, %v; want %d, and nil or ErrNotReplicated", n, err, len(toks))
	}
}

func TestFailoverKeepsRevocations(t *testing.T) {
	cluster := newCluster(t)
	topology.Cluster.Healthy(t)
	pool := seshcluster.New(cluster)
	p := prefix()
	s, err := newShared(pool, sesh.Options{Prefix: p, TTL: 10 * time.Minute, TrackUsers: true, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set := func(user string, n int) []string {
		toks := make([]string, n)
		for i := range toks {
			if toks[i], err = s.Set(ctx, user); err != nil {
				t.Fatal(err)
			}
		}
		return toks
	}
	alice, bob := set("alice", 30), set("bob", 30)
	acknowledge(t, pool)

	// The endings, each acknowledged by a replica, are the last writes
	// before the kill.
	for _, tok := range alice[:10] {
		if err := s.Die(ctx, tok); err != nil {
			t.Fatalf("Die = %v", err)
		}
	}
	rotated, err := s.Rotate(ctx, alice[10])
	if err != nil {
		t.Fatalf("Rotate = %v", err)
	}
	if n, err := s.DieAll(ctx, "bob"); n != len(bob) || err != nil {
		t.Fatalf("DieAll = %d, %v", n, err)
	}
	victim := clusterLayout(t).owner[redisc.Slot(tokenKey(t, p, alice[0]))]
	killed := topology.Cluster.Kill(t, victim)

	topology.AwaitAnswer(t, killed, func(ctx context.Context) error {
		_, err := s.Get(ctx, alice[0])
		return err
	})
	for _, tok := range append(alice[:11:11], bob...) {
		if u, err := s.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
			t.Errorf("an ended token came back after the failover: Get = %q, %v", u, err)
		}
	}
	for _, tok := range append(alice[11:], rotated) {
		if u, err := s.Get(ctx, tok); u != "alice" || err != nil {
			t.Errorf("a live token after the failover: Get = %q, %v; want alice", u, err)
		}
	}
	if n, err := s.Count(ctx, "bob"); n != 0 || err != nil {
		t.Errorf("Count(bob) = %d, %v; want 0", n, err)
	}
}

// newShared is sesh.New with a Store that gives shared connections
// (auto-pipelining) even to an operation alone in flight, so that the
// failover meets the lanes: Get shares them; Set and Die, which wait for a
// replica, never do.
func newShared(p sesh.Pool, o sesh.Options) (*sesh.Store, error) {
	wire.ShareAlways.Store(true)
	defer wire.ShareAlways.Store(false)
	return sesh.New(p, o)
}
