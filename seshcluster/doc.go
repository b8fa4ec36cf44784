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
// owns its key's hash slot: the first argument, or the first key of EVAL and
// EVALSHA. redisc's slot map picks the node; MOVED and ASK replies are
// followed, through [redisc.RetryConn] for a single command and by sending
// the command again to the node the reply names for a pipeline, which
// redisc leaves to its caller. A connection keeps one connection per node
// it has met, and returns them all on Close.
//
// # Pipelines
//
// Send queues a command and Flush sends nothing; Do("") or Receive runs the
// queue and Do("") returns every reply, Redis errors in place as
// [redis.Error] values. Commands run in the order they were sent: each
// starts once every command before it on another node has been answered,
// and consecutive commands for one node share a round trip. The one
// exception is a run of consecutive DEL commands, or of consecutive reads of
// one key (GET, PTTL, TTL, EXISTS), over keys of several nodes: these are
// sent to all of their nodes at once, so that deleting a thousand keys costs
// a round trip or two, not a thousand. And a command redirected while a
// slot moves runs again after the commands queued behind it for the same
// node.
//
// # Replication
//
// WAIT counts only the writes of the connection it runs on. So WAIT runs on
// every node connection that has run commands since the previous WAIT, all
// at once, and replies with the smallest count of acknowledging replicas.
// That is what makes [sesh.Options].Replicas work on a cluster.
//
// # Failover
//
// A reply that shows a command did not run (TRYAGAIN, CLUSTERDOWN, LOADING, a
// second redirect for one command) and a node that cannot be dialled are
// retried after a pause of 20ms, doubling up to 400ms, for at most 3s in all
// per connection and never past the deadline of the context given to
// GetContext; then the command's reply is Redis's error, or Do returns the
// dial error. A dial failure, a second redirect and a broken connection
// also ask redisc to refresh its slot map, one refresh at a time. A read or
// write error on a node connection is never retried, since the command may
// have run: Do returns it and the connection is broken. So during a failover calls fail with clear errors, and succeed
// again once the cluster has promoted a replica.
//
// # Context
//
// redisc's connections have no DoContext, and neither have this package's:
// a Store bounds each call by its context from another goroutine. GetContext
// returns ctx.Err() when ctx is done and does no I/O; nodes are dialled when
// the first command needs them, inside Do. Retries stop as soon as the
// context given to GetContext is done. A call abandoned by its context
// holds its node connection until the reply it waits for arrives or the
// read timeout of Cluster.DialOptions expires, so set one.
//
// Cluster.CreatePool should be set, or every connection dials anew.
package seshcluster
