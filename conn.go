package sesh

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

// conn is one operation's connection. It honours ctx through DoContext where
// the connection has it, and otherwise bounds a blocking Do by ctx from
// another goroutine (redisc's connections, for one, have no DoContext).
//
// Like bufio.Writer, conn keeps the first error of send: the flush that
// follows (pipe, or do("")) returns it, so a caller checks one error per
// round trip, not one per queued command.
type conn struct {
	ctx  context.Context
	c    redis.Conn
	cc   redis.ConnWithContext // nil when c has no DoContext
	busy chan struct{}         // closed when an abandoned Do returns
	err  error                 // first error of send, returned by the next do
	trip *atomic.Int32         // counts the operation's round trips, for a Hook; nil without one
}

func (s *Store) conn(ctx context.Context) (conn, error) {
	if err := ctx.Err(); err != nil {
		return conn{}, err
	}
	c, err := s.pool.GetContext(ctx)
	if err != nil {
		return conn{}, err
	}
	cc, _ := c.(redis.ConnWithContext)
	return conn{ctx: ctx, c: c, cc: cc, trip: s.trips(ctx)}, nil
}

// do runs one command. With cmd "" it flushes what was sent and returns
// every pending reply as a []any, Redis errors in place.
func (c *conn) do(cmd string, args ...any) (any, error) {
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
	done := c.ctx.Done()
	if done == nil {
		// Nothing can cancel: redigo's DoContext would only add a goroutine.
		return c.c.Do(cmd, args...)
	}
	if c.cc != nil {
		v, err := c.cc.DoContext(c.ctx, cmd, args...)
		if err != nil && err.Error() != errNoContext {
			// redigo sets the read deadline to the context's, so the read
			// can time out a moment before the context says it is done.
			if dl, ok := c.ctx.Deadline(); ok && !time.Now().Before(dl) && !errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
			}
		}
		if err == nil || err.Error() != errNoContext {
			return v, err
		}
		// A *redis.Pool over connections without DoContext says so before
		// sending anything; bound Do from here instead.
		c.cc = nil
	}
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	busy := make(chan struct{})
	rc := c.c
	go func() {
		defer close(busy)
		v, err := rc.Do(cmd, args...)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-done:
		c.busy = busy
		return nil, c.ctx.Err()
	}
}

// send queues a command for the next flush. Its error, if any, is kept for
// that flush to return.
func (c *conn) send(cmd string, args ...any) {
	if c.busy != nil || c.err != nil {
		return
	}
	c.err = c.c.Send(cmd, args...)
}

// pipe flushes what was sent and returns the replies; want is how many.
func (c *conn) pipe(want int) ([]any, error) {
	v, err := c.do("")
	if err != nil {
		return nil, err
	}
	rs, ok := v.([]any)
	if !ok || len(rs) != want {
		return nil, errors.New("unexpected pipeline reply")
	}
	return rs, nil
}

// close returns the connection, after any abandoned Do has finished with it.
func (c *conn) close() {
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

// drop is close for a connection that must not be reused: it is broken
// first, so that a pool discards it.
func (c *conn) drop() {
	if c.busy == nil {
		discard(c.c)
		return
	}
	rc, busy := c.c, c.busy
	go func() {
		<-busy
		discard(rc)
	}()
}

// discard breaks conn, so that a pool drops it instead of reusing a
// connection that tracks or subscribes, then closes it. QUIT makes the
// server hang up; reading with no time to wait breaks it at once where conn
// can be told how long to wait.
func discard(conn redis.Conn) {
	conn.Send("QUIT")
	conn.Flush()
	for {
		_, err := receive(conn, time.Nanosecond)
		if _, ok := err.(redis.Error); err != nil && !ok {
			break
		}
	}
	conn.Close()
}

// receive reads a reply within d, where conn can be told how long to wait,
// and otherwise within conn's own read timeout.
func receive(conn redis.Conn, d time.Duration) (any, error) {
	if cwt, ok := conn.(redis.ConnWithTimeout); ok {
		v, err := cwt.ReceiveWithTimeout(d)
		if _, ok := err.(redis.Error); err == nil || ok || conn.Err() != nil {
			return v, err
		}
		// A pooled connection over one that cannot be told says so, and
		// stays usable.
	}
	return conn.Receive()
}
