// Package wire is how sesh talks to Redis: the connection an operation
// runs on, auto-pipelining's lanes, Lua scripts, and what sesh knows of
// Redis commands and of Redis Cluster's replies.
//
// # Layers
//
// The root package (the Store) builds round trips from commands and never
// touches a redis.Conn: it takes a [Conn] for each operation, with [Take],
// and queues commands on it with [Conn.Send] and [Conn.SendEval], flushes
// them with [Conn.Pipe] or runs one with [Conn.Do]. A Conn runs them on a
// connection of the Pool of its own, or hands them to a lane of [Lanes].
// Only a lane's writer writes to a lane's connection, and only its reader
// reads from it and completes a call. A Pool over Redis Cluster is a
// [Router]: it maps keys to hash slots and slots to masters, and the lanes
// keep a group per master. seshcluster implements Router and [Notifier],
// and reads MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies with
// [ParseRedirect] and [Transient], as the lanes do.
//
// # Auto-pipelining
//
// A Store with batching keeps a few lanes: each a connection of its Pool,
// with one goroutine that writes and one that reads. An operation that finds
// another in flight hands each round trip to a lane as a call, the commands
// of one round trip. The writer takes every call queued since its last
// write, sends their commands in order, each call's contiguous, and flushes
// them in one write. The reader reads the replies in the same order and
// gives each call its own. redigo allows one writer and one reader on a
// connection at once, which is all this needs.
//
// An operation that finds nothing else in flight, one that waits for
// replicas, and any operation while no lane is open take a connection of
// their own, as without batching.
//
// A lane lives at most laneLife: it takes no call, and writes none, once
// older, however busy. Then, or once its connection reports an error
// (seshsentinel's do when the server answers as a replica), it retires: it
// writes nothing more, hands the calls it has not written back to their
// callers as errUnsent, to run elsewhere, reads the replies of those it
// wrote, and closes its connection without returning it to the Pool; the
// next lane takes a new one. So a lane follows a Sentinel failover within
// laneLife, and an idle Store holds no lane after laneLife.
//
// Cancellation leaves nothing behind that runs later. A caller that gives
// up on its call withdraws it unless the writer has claimed it: the two
// race on one compare-and-swap of the call's state, so a call is either
// written or abandoned, never both. An abandoned call leaves the queue at
// once, so the queue holds only calls whose callers still wait. A lane has
// at most laneBatches batches written and not yet answered: when Redis
// stalls, callers that give up meanwhile leave nothing written, and a
// stall costs at most those batches afterwards, not one call per retry.
package wire
