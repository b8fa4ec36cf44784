package wire

import "github.com/gomodule/redigo/redis"

// maxMoved bounds how often one call goes to another master's lane after
// MOVED replies; then redirected sends it through the Pool's connection.
const maxMoved = 2

// moved reports whether every reply to cl is MOVED, so that none of its
// commands ran, and tells the Router where the slot is.
func (c *Conn) moved(cl *call) bool {
	var rd Redirect
	for _, r := range cl.replies {
		e, ok := r.(redis.Error)
		if !ok {
			return false
		}
		var isRedirect bool
		if rd, isRedirect = ParseRedirect(e); !isRedirect || rd.Ask {
			return false
		}
	}
	c.learn(rd)
	return true
}

// learn tells the Router the owner that a MOVED reply names.
func (c *Conn) learn(rd Redirect) {
	if old := c.b.route.Moved(rd.Slot, rd.Addr); old != "" && old != rd.Addr {
		c.b.movedFrom(old)
	}
}

// redirected runs again, on a connection of the operation's own, each
// command of cl that a cluster node refused without running it (see
// refused). A MOVED reply also tells the Router who serves the slot now.
// The operation stays on its own connection after.
func (c *Conn) redirected(cl *call) error {
	var again []int
	for i, r := range cl.replies {
		e, ok := r.(redis.Error)
		if !ok || !refused(e) {
			continue
		}
		if rd, ok := ParseRedirect(e); ok && !rd.Ask {
			c.learn(rd)
		}
		again = append(again, i)
	}
	if len(again) == 0 {
		return nil
	}
	if err := c.leave(); err != nil {
		return err
	}
	for _, i := range again {
		c.Send(cl.cmds[i].name, cl.cmds[i].args...)
	}
	rs, err := c.Pipe(len(again))
	if err != nil {
		return err
	}
	for j, i := range again {
		cl.replies[i] = rs[j]
	}
	return nil
}

// leave moves the operation off the lanes to a connection of the Pool of
// its own, for the rest of it.
func (c *Conn) leave() error {
	pc, err := c.b.pool.GetContext(c.ctx)
	if err != nil {
		return err
	}
	c.shared, c.cl = false, nil
	c.addr = "" // the Pool's connection does not say who answers
	c.c = pc
	c.cc, _ = pc.(redis.ConnWithContext)
	return nil
}
