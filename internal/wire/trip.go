package wire

import (
	"errors"

	"github.com/gomodule/redigo/redis"
)

// errGaveUp marks a round trip whose caller's context ended: its call is
// the lane's, or withdrawn.
var errGaveUp = errors.New("gave up")

// doLane is Do on a lane: the commands sent since the last round trip, and
// cmd when not "", go out as one call. A caller whose context ends gets
// ctx.Err() at once: its call is withdrawn if not yet written, and
// otherwise the lane still reads the call's replies, which a cleanup waits
// for (Settled). When the lane breaks, a call it did not write, and a call
// that only reads, run again on a connection of the operation's own; any
// other call gets the error, since it may have run.
func (c *Conn) doLane(cmd string, args []any) (any, error) {
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
	err := c.roundTrip(cl)
	switch {
	case err == errGaveUp:
		return nil, c.ctx.Err()
	case err == errUnsent || err != nil && reads(cl.cmds):
		return c.detach(cmd, args)
	case err != nil:
		c.addr = ""
	case c.b.route != nil:
		err = c.redirected(cl)
	}
	return c.replies(cl, cmd, err)
}

// roundTrip hands cl to a lane and waits for its replies. On Cluster, a
// call that every command of met MOVED goes to the new owner's lane, up to
// maxMoved times. It returns errGaveUp when the caller's context ended.
func (c *Conn) roundTrip(cl *call) error {
	c.addr = ""
	for try := 0; ; try++ {
		err := errUnsent
		l := c.b.lane(cl)
		if l != nil {
			err = l.submit(cl)
			c.addr = l.addr
		}
		if err == nil {
			if c.trip != nil {
				c.trip.Add(1)
			}
			select {
			case <-cl.done:
				err = cl.err
			case <-c.ctx.Done():
				c.cl = nil
				if !l.abandon(cl) {
					c.left = cl // the lane's reader holds it
				}
				return errGaveUp
			}
		}
		if err != nil || c.b.route == nil || try == maxMoved || !c.moved(cl) {
			return err
		}
		// Nothing ran, and the Router has learnt the owner: try there.
		clear(cl.replies)
		cl.replies = cl.replies[:0]
	}
}

// replies returns what Do returns for cl's round trip, given its error,
// and readies cl for the next.
func (c *Conn) replies(cl *call, cmd string, err error) (any, error) {
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

// detach moves the operation off its lane to a connection of its own, and
// runs there the round trip that the lane did not send.
func (c *Conn) detach(cmd string, args []any) (any, error) {
	cl := c.cl
	if err := c.leave(); err != nil {
		return nil, err
	}
	queued := cl.cmds
	if cmd != "" {
		queued = queued[:len(queued)-1]
	}
	for _, q := range queued {
		c.Send(q.name, q.args...)
	}
	c.b.putCall(cl)
	return c.Do(cmd, args...)
}
