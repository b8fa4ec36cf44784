package wire

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// errNoContext is redigo's error for a connection without DoContext.
const errNoContext = "redis: connection does not support ConnWithContext"

// Conn is one operation's connection: a connection of the Pool of its own,
// or, with Lanes, a lane it shares. It honours ctx through DoContext where
// the connection has it, and otherwise bounds a blocking Do by ctx from
// another goroutine (redisc's connections, for one, have no DoContext).
//
// Like bufio.Writer, Conn keeps the first error of Send: the flush that
// follows (Pipe, or Do("")) returns it, so a caller checks one error per
// round trip, not one per queued command.
//
// A Conn is one goroutine's, for one operation.
type Conn struct {
	ctx  context.Context
	c    redis.Conn
	cc   redis.ConnWithContext // nil when c has no DoContext
	busy chan struct{}         // closed when an abandoned Do returns
	// quiet is closed when an abandoned Do can change no data any more:
	// busy, or earlier for a Notifier.
	quiet chan struct{}
	err   error // first error of Send, returned by the next Do

	b      *Lanes // non-nil when the operation is counted in b.busy
	shared bool   // round trips go to lanes
	addr   string // with a Router, the master whose lane answered the last round trip; "" when unknown
	cl     *call  // the lanes' round trip being built; nil once abandoned
	// left is a call its caller gave up on after its lane's writer claimed
	// it: it may run yet, and a cleanup must wait for its replies.
	left *call
	trip *atomic.Int32 // counts the operation's round trips, for a Hook; nil without one
}

// Notifier is a connection whose Do tells, while it still runs, when
// nothing it runs can change data any more: seshcluster's, whose Do may
// block in WAIT long after its writes were answered. DoNotify closes
// settled then, and at the latest when it returns. Conn finds it by type
// assertion.
type Notifier interface {
	DoNotify(settled chan struct{}, cmd string, args ...any) (any, error)
}

// Take returns a connection for one operation: a lane of b when share and
// another operation is in flight, or always; otherwise a connection of p
// of its own. b may be nil: no lanes. trip, when not nil, counts the
// operation's round trips.
func Take(ctx context.Context, p Pool, b *Lanes, share, always bool, trip *atomic.Int32) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return Conn{}, err
	}
	if b != nil && (b.busy.Add(1) > 1 || b.always || always) && share {
		return Conn{ctx: ctx, b: b, shared: true, cl: b.getCall(), trip: trip}, nil
	}
	c, err := Own(ctx, p, trip)
	if err != nil {
		if b != nil {
			b.busy.Add(-1)
		}
		return Conn{}, err
	}
	c.b = b
	return c, nil
}

// Own takes a connection of p that is no operation's to share: the
// cache's tracking connection. It shares nothing.
func Own(ctx context.Context, p Pool, trip *atomic.Int32) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return Conn{}, err
	}
	rc, err := p.GetContext(ctx)
	if err != nil {
		return Conn{}, err
	}
	return Wrap(ctx, rc, trip), nil
}

// Wrap returns a Conn over rc, a connection of the operation's own.
func Wrap(ctx context.Context, rc redis.Conn, trip *atomic.Int32) Conn {
	cc, _ := rc.(redis.ConnWithContext)
	return Conn{ctx: ctx, c: rc, cc: cc, trip: trip}
}

// Raw returns the connection under c, of its own; nil on a lane.
func (c *Conn) Raw() redis.Conn { return c.c }

// Shared reports whether c's round trips go to lanes.
func (c *Conn) Shared() bool { return c.shared }

// Addr returns, with a Router, the master whose lane answered the last
// round trip, or "" when unknown.
func (c *Conn) Addr() string { return c.addr }

// Do runs one command. With cmd "" it flushes what was sent and returns
// every pending reply as a []any, Redis errors in place.
func (c *Conn) Do(cmd string, args ...any) (any, error) {
	if c.shared {
		return c.doLane(cmd, args)
	}
	if c.busy != nil {
		// An abandoned Do still holds the connection (and, on Cluster, the
		// adapter's lock): touching it would wait for that Do.
		return nil, c.ctx.Err()
	}
	if err := c.err; err != nil {
		c.err = nil
		return nil, err
	}
	if c.trip != nil {
		c.trip.Add(1)
	}
	if c.ctx.Done() == nil {
		// Nothing can cancel: redigo's DoContext would only add a goroutine.
		return c.c.Do(cmd, args...)
	}
	if c.cc != nil {
		v, err := c.cc.DoContext(c.ctx, cmd, args...)
		if err == nil || err.Error() != errNoContext {
			return v, c.deadline(err)
		}
		// A *redis.Pool over connections without DoContext says so before
		// sending anything; bound Do from here instead.
		c.cc = nil
	}
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	return c.doBounded(cmd, args)
}

// deadline marks err as the context's deadline when it has passed: redigo
// sets the read deadline to the context's, so the read can time out a
// moment before the context says it is done.
func (c *Conn) deadline(err error) error {
	if err == nil {
		return nil
	}
	if dl, ok := c.ctx.Deadline(); ok && !time.Now().Before(dl) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// doBounded runs Do on a connection without DoContext in another
// goroutine, and returns when the context ends if that comes first. The
// abandoned Do goes on: busy tells when it returns, quiet when it can
// change nothing more.
func (c *Conn) doBounded(cmd string, args []any) (any, error) {
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	busy := make(chan struct{})
	rc := c.c
	n, notifies := rc.(Notifier)
	quiet := busy
	if notifies {
		quiet = make(chan struct{})
	}
	go func() {
		defer close(busy)
		var r result
		if notifies {
			r.v, r.err = n.DoNotify(quiet, cmd, args...)
		} else {
			r.v, r.err = rc.Do(cmd, args...)
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-c.ctx.Done():
		c.busy, c.quiet = busy, quiet
		return nil, c.ctx.Err()
	}
}

// Send queues a command for the next flush. Its error, if any, is kept for
// that flush to return.
func (c *Conn) Send(cmd string, args ...any) {
	if c.shared {
		if c.cl != nil {
			c.cl.cmds = append(c.cl.cmds, command{cmd, args})
		}
		return
	}
	if c.busy != nil || c.err != nil {
		return
	}
	c.err = c.c.Send(cmd, args...)
}

// Pipe flushes what was sent and returns the replies; want is how many.
func (c *Conn) Pipe(want int) ([]any, error) {
	v, err := c.Do("")
	if err != nil {
		return nil, err
	}
	rs, ok := v.([]any)
	if !ok || len(rs) != want {
		return nil, errors.New("unexpected pipeline reply")
	}
	return rs, nil
}

// Close returns the connection, after any abandoned Do has finished with it.
func (c *Conn) Close() {
	if c.b != nil {
		c.b.busy.Add(-1)
	}
	if c.shared {
		if c.cl != nil {
			c.b.putCall(c.cl)
		}
		return
	}
	if c.busy == nil {
		c.c.Close()
		return
	}
	rc, busy := c.c, c.busy
	go func() {
		<-busy
		rc.Close()
	}()
}

// Settled waits, within ctx, until nothing that c's caller gave up on can
// still change data: for the replies of a call its lane wrote, or for an
// abandoned Do (quiet). A cleanup of the operation runs only then, so that it cannot run
// before what it cleans up. It reports false when ctx ended first.
func (c *Conn) Settled(ctx context.Context) bool {
	switch {
	case c.left != nil:
		select {
		case <-c.left.done:
			c.b.putCall(c.left)
			c.left = nil
		case <-ctx.Done():
			return false
		}
	case c.quiet != nil:
		select {
		case <-c.quiet:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// Unsettled returns a channel that is ready once what c's caller gave up
// on has finished, for a cleanup that settled could not wait for.
func (c *Conn) Unsettled() <-chan struct{} {
	if c.left != nil {
		return c.left.done
	}
	return c.quiet
}

// Drop is Close for a connection that must not be reused: it is broken
// first, so that a pool discards it.
func (c *Conn) Drop() {
	if c.shared {
		c.Close() // a lane is not the operation's to break
		return
	}
	if c.b != nil {
		c.b.busy.Add(-1)
	}
	if c.busy == nil {
		Discard(c.c)
		return
	}
	rc, busy := c.c, c.busy
	go func() {
		<-busy
		Discard(rc)
	}()
}
