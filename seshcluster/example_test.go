package seshcluster_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshcluster"
)

// newNodePool is a Cluster.CreatePool: one pool per node, whose idle
// connections are checked with PING once they have idled a second, so that
// connections to a node that died are not handed out.
func newNodePool(addr string, opts ...redis.DialOption) (*redis.Pool, error) {
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", addr, opts...)
		},
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, idle time.Time) error {
			if time.Since(idle) < time.Second {
				return nil
			}
			_, err := redis.DoContext(c, ctx, "PING")
			return err
		},
		MaxIdle:     16,
		MaxActive:   256,
		IdleTimeout: time.Minute,
		Wait:        true,
	}, nil
}

// A Store on Redis Cluster whose ending operations wait until a replica
// has the deletion, so that it survives a failover.
func Example() {
	cluster := &redisc.Cluster{
		StartupNodes: []string{"127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"},
		DialOptions: []redis.DialOption{
			redis.DialConnectTimeout(time.Second),
			redis.DialReadTimeout(5 * time.Second), // above ReplicaTimeout
			redis.DialWriteTimeout(5 * time.Second),
		},
		CreatePool:   newNodePool,
		PoolWaitTime: time.Second,
	}
	defer cluster.Close()
	if err := cluster.Refresh(); err != nil {
		log.Fatal(err)
	}
	store, err := sesh.New(seshcluster.New(cluster), sesh.Options{
		TrackUsers:     true,
		Replicas:       1,
		ReplicaTimeout: time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tok, err := store.Set(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	user, err := store.Get(ctx, tok)
	fmt.Println(user, err)

	switch err := store.Die(ctx, tok); {
	case errors.Is(err, sesh.ErrNotReplicated):
		// Ended on the master, but no replica confirmed it in time: a
		// failover now could bring the token back. Retry, or alert.
		log.Print(err)
	case err != nil:
		log.Fatal(err)
	}
}
