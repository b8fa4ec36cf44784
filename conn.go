package sesh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// errNoContext is redigo's error for a connection without DoContext.
const errNoContext = "redis: connection does not support ConnWithContext"

// conn is one operation's connection: a connection of the Pool of its own,
// or, with batching, a lane it shares (see batch.go). It honours ctx
// through DoContext where the connection has it, and otherwise bounds a
// blocking Do by ctx from another goroutine (redisc's connections, for one,
// have no DoContext).
//
// Like bufio.Writer, conn keeps the first error of send: the flush that
// follows (pipe, or do("")) returns it, so a caller checks one error per
// round trip, not one per queued command.
type conn struct {
	ctx  context.Context
	c    redis.Conn
	cc   redis.ConnWithContext // nil when c has no DoContext
	busy chan struct{}         // closed when an abandoned Do returns
	// quiet is closed when an abandoned Do can change no data any more:
	// busy, or earlier for a notifier.
	quiet chan struct{}
	err   error // first error of send, returned by the next do

	b      *batcher // non-nil when the operation is counted in b.busy
	shared bool     // round trips go to lanes
	addr   string   // with a router, the master whose lane answered the last round trip; "" when unknown
	cl     *call    // the lanes' round trip being built; nil once abandoned
	// left is a call its caller gave up on after its lane's writer claimed
	// it: it may run yet, and a cleanup must wait for its replies.
	left *call
	trip *atomic.Int32 // counts the operation's round trips, for a Hook; nil without one
}

// notifier is a connection whose Do tells, while it still runs, when
// nothing it runs can change data any more: seshcluster's, whose Do may
// block in WAIT long after its writes were answered. DoNotify closes
// settled then, and at the latest when it returns.
type notifier interface {
	DoNotify(settled chan struct{}, cmd string, args ...any) (any, error)
}

// conn takes a connection for an operation, a lane when batching finds
// another operation in flight.
func (s *Store) conn(ctx context.Context) (conn, error) { return s.take(ctx, true, false) }

// take is conn for an operation that may share a lane only when share: one
// that waits for replicas must not, or a slow replica would stall every
// operation behind it on the lane. With always, it shares a lane even when
// alone in flight: the cache's fills on Cluster must know the master that
// answered, which only a lane knows.
func (s *Store) take(ctx context.Context, share, always bool) (conn, error) {
	if err := ctx.Err(); err != nil {
		return conn{}, err
	}
	b := s.batch
	if b != nil && (b.busy.Add(1) > 1 || b.always || always) && share {
		return conn{ctx: ctx, b: b, shared: true, cl: b.getCall(), trip: s.trips(ctx)}, nil
	}
	c, err := s.dedicated(ctx)
	if err != nil {
		if b != nil {
			b.busy.Add(-1)
		}
		return conn{}, err
	}
	c.b = b
	return c, nil
}

// dedicated takes a connection of the Pool that is no operation's: the
// cache's tracking connection. It shares nothing.
func (s *Store) dedicated(ctx context.Context) (conn, error) {
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
	n, notifies := rc.(notifier)
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
	case <-done:
		c.busy, c.quiet = busy, quiet
		return nil, c.ctx.Err()
	}
}

// send queues a command for the next flush. Its error, if any, is kept for
// that flush to return.
func (c *conn) send(cmd string, args ...any) {
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

// settled waits, within ctx, until nothing that c's caller gave up on can
// still change data: for the replies of a call its lane wrote, or for an
// abandoned Do (quiet). A cleanup of the operation runs only then, so that it cannot run
// before what it cleans up. It reports false when ctx ended first.
func (c *conn) settled(ctx context.Context) bool {
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

// unsettled returns a channel that is ready once what c's caller gave up
// on has finished, for a cleanup that settled could not wait for.
func (c *conn) unsettled() <-chan struct{} {
	if c.left != nil {
		return c.left.done
	}
	return c.quiet
}

// drop is close for a connection that must not be reused: it is broken
// first, so that a pool discards it.
func (c *conn) drop() {
	if c.shared {
		c.close() // a lane is not the operation's to break
		return
	}
	if c.b != nil {
		c.b.busy.Add(-1)
	}
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

// doLane is do on a lane: the commands sent since the last round trip, and
// cmd when not "", go out as one call. A caller whose context ends gets
// ctx.Err() at once: its call is withdrawn if not yet written, and
// otherwise the lane still reads the call's replies, which a cleanup waits
// for (settled). When the lane breaks, a call it did not write, and a call
// that only reads, run again on a connection of the operation's own; any
// other call gets the error, since it may have run.
func (c *conn) doLane(cmd string, args []any) (any, error) {
	cl := c.cl
	if cl == nil {
		return nil, c.ctx.Err() // an earlier round trip was abandoned
	}
	if cmd != "" {
		cl.cmds = append(cl.cmds, command{cmd, args})
	}
	if len(cl.cmds) == 0 {
		return nil, nil
	}
	var err error
	c.addr = ""
	for try := 0; ; try++ {
		err = errUnsent
		l := c.b.lane(cl)
		if l != nil {
			err = l.submit(cl)
			c.addr = l.addr
		}
		if err == nil && c.trip != nil {
			c.trip.Add(1)
		}
		if err == nil {
			select {
			case <-cl.done:
				err = cl.err
			case <-c.ctx.Done():
				c.cl = nil
				if !l.abandon(cl) {
					c.left = cl // the lane's reader holds it
				}
				return nil, c.ctx.Err()
			}
		}
		if err != nil || c.b.route == nil || try == maxMoved || !c.moved(cl) {
			break
		}
		// Nothing ran, and the router has learnt the owner: try there.
		clear(cl.replies)
		cl.replies = cl.replies[:0]
	}
	if err == errUnsent || err != nil && reads(cl.cmds) {
		return c.detach(cmd, args)
	}
	if err != nil {
		c.addr = ""
	}
	if err == nil && c.b.route != nil {
		err = c.redirected(cl)
	}
	rs := cl.replies
	var v any
	switch {
	case err != nil:
	case cmd == "":
		v = rs
		cl.replies = nil // the caller's now
	default:
		// As redigo's Do: the last reply, and the first error reply.
		v = rs[len(rs)-1]
		for _, r := range rs {
			if e, ok := r.(redis.Error); ok {
				err = e
				break
			}
		}
	}
	if cl.replies != nil {
		clear(rs)
		cl.replies = rs[:0]
	}
	clear(cl.cmds)
	cl.cmds = cl.cmds[:0]
	if !c.shared {
		c.b.putCall(cl) // redirected moved the operation off the lanes
	}
	return v, err
}

// maxMoved bounds how often one call goes to another master's lane after
// MOVED replies; then redirected sends it through the Pool's connection.
const maxMoved = 2

// moved reports whether every reply to cl is MOVED, so that none of its
// commands ran, and tells the router where the slot is.
func (c *conn) moved(cl *call) bool {
	for _, r := range cl.replies {
		e, ok := r.(redis.Error)
		if !ok || !strings.HasPrefix(string(e), "MOVED ") {
			return false
		}
	}
	c.learn(string(cl.replies[0].(redis.Error)))
	return true
}

// learn tells the router the owner that a MOVED reply names.
func (c *conn) learn(moved string) {
	f := strings.Fields(moved)
	if len(f) != 3 {
		return
	}
	if n, err := strconv.Atoi(f[1]); err == nil {
		if old := c.b.route.Moved(n, f[2]); old != "" && old != f[2] && c.b.moved != nil {
			c.b.moved(old)
		}
	}
}

// redirected runs again, on a connection of the operation's own, each
// command of cl that a cluster node refused without running it: MOVED and
// ASK, whose redirects the Pool's connection follows, TRYAGAIN and
// CLUSTERDOWN, which it retries. A MOVED reply also tells the router who
// serves the slot now. The operation stays on its own connection after.
func (c *conn) redirected(cl *call) error {
	var again []int
	for i, r := range cl.replies {
		e, ok := r.(redis.Error)
		if !ok {
			continue
		}
		code, _, _ := strings.Cut(string(e), " ")
		switch code {
		case "MOVED":
			c.learn(string(e))
		case "ASK", "TRYAGAIN", "CLUSTERDOWN":
		default:
			continue
		}
		again = append(again, i)
	}
	if len(again) == 0 {
		return nil
	}
	c.addr = "" // the Pool's connection does not say who answers
	pc, err := c.b.pool.GetContext(c.ctx)
	if err != nil {
		return err
	}
	c.shared, c.cl = false, nil
	c.c = pc
	c.cc, _ = pc.(redis.ConnWithContext)
	for _, i := range again {
		c.send(cl.cmds[i].name, cl.cmds[i].args...)
	}
	rs, err := c.pipe(len(again))
	if err != nil {
		return err
	}
	for j, i := range again {
		cl.replies[i] = rs[j]
	}
	return nil
}

// reads reports whether cmds only read, so that running them again is
// harmless: they may run again on a connection of the operation's own when
// their lane broke before they were answered, written or not.
func reads(cmds []command) bool {
	for _, cm := range cmds {
		switch cm.name {
		case "GET", "PTTL", "EXISTS":
		default:
			return false
		}
	}
	return true
}

// detach moves the operation off its lane to a connection of its own, and
// runs there the round trip that the lane did not send.
func (c *conn) detach(cmd string, args []any) (any, error) {
	cl := c.cl
	pc, err := c.b.pool.GetContext(c.ctx)
	if err != nil {
		return nil, err
	}
	c.shared, c.cl = false, nil
	c.addr = "" // the Pool's connection does not say who answers
	c.c = pc
	c.cc, _ = pc.(redis.ConnWithContext)
	queued := cl.cmds
	if cmd != "" {
		queued = queued[:len(queued)-1]
	}
	for _, q := range queued {
		c.send(q.name, q.args...)
	}
	c.b.putCall(cl)
	return c.do(cmd, args...)
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
