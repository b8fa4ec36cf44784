package sesh_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strings"
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
	var b [6]byte
	crand.Read(b[:])
	name := "sesh-batch-" + hex.EncodeToString(b[:]) // only the test's own connections are killed
	nodes := strings.Split(addrs, ",")
	opts := []redis.DialOption{
		redis.DialConnectTimeout(time.Second),
		redis.DialReadTimeout(5 * time.Second),
		redis.DialWriteTimeout(5 * time.Second),
		redis.DialClientName(name),
	}
	cluster := &redisc.Cluster{
		StartupNodes: nodes,
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
