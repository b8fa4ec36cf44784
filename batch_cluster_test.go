package sesh_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshcluster"
)

// TestBatchCluster runs the reply-routing stress test on the Redis Cluster
// of SESH_CLUSTER_ADDRS, through seshcluster: lanes per master, and every
// connection of the test's cluster client killed at random, on any node.
func TestBatchCluster(t *testing.T) {
	addrs := os.Getenv("SESH_CLUSTER_ADDRS")
	if addrs == "" {
		t.Skip("SESH_CLUSTER_ADDRS is not set; .ci/run sets it")
	}
	t.Parallel()
	cluster, name := testCluster(t, addrs)
	nodes := strings.Split(addrs, ",")
	for _, o := range []sesh.Options{{Prefix: "batch-" + name}, {Prefix: "batch-" + name, TrackUsers: true, MaxAge: time.Hour}} {
		t.Run("TrackUsers="+map[bool]string{true: "true", false: "false"}[o.TrackUsers], func(t *testing.T) {
			s, err := sesh.New(seshcluster.New(cluster), o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			admins := make([]redis.Conn, len(nodes))
			for i, a := range nodes {
				if admins[i], err = redis.Dial("tcp", a); err != nil {
					t.Fatal(err)
				}
				defer admins[i].Close()
			}
			routingStress(t, s, func() bool { return killOne(t, admins[rand.IntN(len(admins))], name) })
		})
	}
}

// testCluster returns a cluster client of the Redis Cluster at addrs, whose
// connections are named name, unique to the test.
func testCluster(t *testing.T, addrs string) (cluster *redisc.Cluster, name string) {
	t.Helper()
	var b [6]byte
	crand.Read(b[:])
	name = "sesh-batch-" + hex.EncodeToString(b[:])
	opts := []redis.DialOption{
		redis.DialConnectTimeout(time.Second),
		redis.DialReadTimeout(5 * time.Second),
		redis.DialWriteTimeout(5 * time.Second),
		redis.DialClientName(name),
	}
	cluster = &redisc.Cluster{
		StartupNodes: strings.Split(addrs, ","),
		DialOptions:  opts,
		CreatePool: func(addr string, opts ...redis.DialOption) (*redis.Pool, error) {
			return &redis.Pool{
				DialContext: func(ctx context.Context) (redis.Conn, error) {
					return redis.DialContext(ctx, "tcp", addr, opts...)
				},
				MaxIdle: 16, MaxActive: 256, Wait: true,
			}, nil
		},
	}
	t.Cleanup(func() { cluster.Close() })
	if err := cluster.Refresh(); err != nil {
		t.Fatal(err)
	}
	return cluster, name
}

// masterOf returns a connection to the master that serves key, for the
// test to pause it.
func masterOf(t *testing.T, cluster *redisc.Cluster, key string) redis.Conn {
	t.Helper()
	c := cluster.Get()
	t.Cleanup(func() { c.Close() })
	if err := redisc.BindConn(c, key); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBatchClusterAbandonedCalls is TestBatchAbandonedCalls on the Redis
// Cluster: 32 callers loop on Get of a token with a 5ms deadline while its
// master is paused for 250ms. The lanes may write at most laneBatches
// batches of one call per caller each meanwhile, where they wrote one call
// per retry before.
func TestBatchClusterAbandonedCalls(t *testing.T) {
	addrs := os.Getenv("SESH_CLUSTER_ADDRS")
	if addrs == "" {
		t.Skip("SESH_CLUSTER_ADDRS is not set; .ci/run sets it")
	}
	cluster, name := testCluster(t, addrs)
	s, err := sesh.New(seshcluster.New(cluster), sesh.Options{Prefix: "batch-" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sesh.SetLaneLife(s, time.Minute) // the lanes opened below serve the whole test
	const callers, lanes = 32, 2
	tok := must2(t)(s.Set(context.Background(), "alice"))
	key, _ := sesh.TokenKey(s, tok)
	// Open the lanes to the token's master: a lane cannot open while its
	// master is paused.
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				s.Get(context.Background(), tok)
			}
		}()
	}
	wg.Wait()
	before := s.Stats().Batches.Calls
	if before == 0 {
		t.Fatal("no call went through a lane before the pause")
	}
	queued := stall(t, s, masterOf(t, cluster, key), 0, 250*time.Millisecond, 5*time.Millisecond, callers, func(ctx context.Context, _ int) {
		if _, err := s.Get(ctx, tok); err == nil {
			t.Error("Get while its master is paused succeeded")
		}
	})
	written := s.Stats().Batches.Calls - before
	t.Logf("%d calls written while the master was paused; at most %d queued at once", written, queued)
	if limit := uint64(lanes * 2 * callers); written > limit {
		t.Errorf("%d calls written while the master was paused, more than %d", written, limit)
	}
	// Queued counts lane by lane: a caller that moves on from one lane's
	// queue to another's may be counted once on each.
	if queued > lanes*callers {
		t.Errorf("%d calls queued at once for %d callers: abandoned calls stay queued", queued, callers)
	}
}

// TestBatchClusterCancelCleanup is TestBatchCancelCleanup's Set on the
// Redis Cluster: the master of the user's index is paused for 200ms, so
// that the Sets' tokens, on other masters, wait for their index entries.
// A cleanup that ran at once would delete a token before it is written.
func TestBatchClusterCancelCleanup(t *testing.T) {
	addrs := os.Getenv("SESH_CLUSTER_ADDRS")
	if addrs == "" {
		t.Skip("SESH_CLUSTER_ADDRS is not set; .ci/run sets it")
	}
	cluster, name := testCluster(t, addrs)
	prefix := "batch-" + name
	s, err := sesh.New(seshcluster.New(cluster), sesh.Options{Prefix: prefix, TrackUsers: true})
	if err != nil {
		t.Fatal(err)
	}
	admin := masterOf(t, cluster, prefix+":u:alice")
	known := cancelCleanup(t, s, admin, 200*time.Millisecond, "alice", cancelCleanupCases[0].op)
	if n := orphans(t, s, nil, prefix, "alice", known); n != 0 {
		t.Errorf("%d live tokens that no Set returned", n)
	}
	if _, err := s.DieAll(context.Background(), "alice"); err != nil {
		t.Error(err)
	}
}
