package track

import (
	"context"
	"time"
)

// Source is what the cache needs from the Store it serves: connections to
// the servers it tracks, a way to publish heartbeats as the Store writes,
// and the Store's key layout. The cache reaches the Store through nothing
// else.
type Source interface {
	// Dial returns a connection of its own to the server at addr: a
	// master's address on Cluster, "" for the one server of a Pool without
	// a Router. It honours ctx.
	Dial(ctx context.Context, addr string) (Conn, error)

	// Publish publishes msg on channel the way the Store writes, and
	// returns how many subscribers received it. With a Router, channel is
	// a sharded channel, and only its slot's master may publish it.
	Publish(ctx context.Context, channel, msg string) (receivers int, err error)

	// EntryKey returns the key of the entry that an invalidation of key k
	// stands for (a token key, or the token key of a deadline key), and
	// false for a key no entry is read from (a user's index).
	EntryKey(k []byte) (key string, ok bool)
}

// Conn is a connection of its own to one server, from [Source.Dial]. Send,
// Pipe and Do honour the context it was dialled with. Like bufio.Writer,
// Send keeps its first error for the flush that follows to return.
type Conn interface {
	// Send queues a command for the next Pipe or Do.
	Send(cmd string, args ...any)
	// Pipe flushes what was sent and returns the replies, Redis errors in
	// place; want is how many.
	Pipe(want int) ([]any, error)
	// Do runs one command after what was sent, and returns its reply.
	Do(cmd string, args ...any) (any, error)
	// Receive reads a message within d where the connection can be told
	// how long to wait, and otherwise within its own read timeout. It
	// ignores the context.
	Receive(d time.Duration) (any, error)
	// Close returns the connection to its pool. It may be called while
	// another goroutine waits in Receive, which it then ends.
	Close()
	// Drop is Close for a connection that holds tracking or subscription
	// state: it is broken first, so that no pool reuses it.
	Drop()
}

// Router is what the cache needs from a Pool over Redis Cluster: the
// masters to track and who serves each slot.
type Router interface {
	// Slot returns the hash slot of key.
	Slot(key string) int
	// Owner returns the address of the master believed to serve slot, or
	// "" when no master is known.
	Owner(slot int) string
	// Moved records that slot is served by addr, as a MOVED reply said,
	// and returns the owner it knew before, or "".
	Moved(slot int, addr string) (old string)
	// Masters returns the addresses of the cluster's masters.
	Masters() ([]string, error)
}
