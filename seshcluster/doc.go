// Package seshcluster runs a [sesh.Store] on Redis Cluster, through
// github.com/mna/redisc.
//
//	cluster := &redisc.Cluster{
//		StartupNodes: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
//		DialOptions: []redis.DialOption{
//			redis.DialConnectTimeout(time.Second),
//			redis.DialReadTimeout(5 * time.Second),
//			redis.DialWriteTimeout(5 * time.Second),
//		},
//		CreatePool: newNodePool, // see the package example
//		PoolWaitTime: time.Second,
//	}
//	defer cluster.Close()
//	if err := cluster.Refresh(); err != nil { ... }
//	store, err := sesh.New(seshcluster.New(cluster), sesh.Options{TrackUsers: true, Replicas: 1})
//
// # Routing
//
// A connection from [New]'s Pool behaves, for the commands a Store sends,
// like a connection to a single Redis. Each command runs on the master that
// owns its key's hash slot, picked by redisc's slot map; MOVED and ASK
// replies are followed. Pipelines keep their order, and WAIT counts the
// replicas of every node the connection wrote to, so
// [sesh.Options].Replicas works on a cluster. How is told in pipeline.go.
//
// # Failover and context
//
// A command that did not run (TRYAGAIN, CLUSTERDOWN, LOADING, a node that
// cannot be dialled) is retried for at most 3s, never past the deadline of
// the context given to GetContext; a command that may have run (a read or
// write error) is never retried. So during a failover calls fail with clear
// errors, and succeed again once the cluster has promoted a replica.
// redisc's connections have no DoContext: a Store bounds each call by its
// context from another goroutine, and an abandoned call holds its node
// connection until its reply arrives or the read timeout of
// Cluster.DialOptions expires, so set one.
//
// Cluster.CreatePool should be set, or every connection dials anew.
//
// # Auto-pipelining and the cache
//
// The Pool also tells a Store (through methods the sesh package looks for)
// which master serves a key, and dials connections to one master, so that
// [sesh.Options].Pipelines shares a few connections per master and
// [sesh.Options].CacheSize hears every master's invalidations. Which
// master serves a slot is learnt from the MOVED replies Redis sends to a
// guess, and a slot's move has redisc refresh its own map; route.go tells
// how. Redis 7 is needed for the cache: its heartbeats use sharded Pub/Sub.
package seshcluster
