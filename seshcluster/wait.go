package seshcluster

import (
	"errors"

	"github.com/gomodule/redigo/redis"
)

// waitAll runs a WAIT on every node connection that ran commands since the
// previous one, all at once, and replies with the smallest count.
func (c *conn) waitAll(cl *call) error {
	var ns []*node
	for _, n := range c.nodes {
		if n.dirty {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		// Nothing to wait for: any node answers.
		n, err := c.anyNode()
		if err != nil {
			return c.fail(cl, err)
		}
		ns = append(ns, n)
	}
	for _, n := range ns {
		if err := n.rc.Send(cl.cmd, cl.args...); err != nil {
			return c.fail(cl, err)
		}
	}
	for _, n := range ns {
		if err := n.rc.Flush(); err != nil {
			return c.fail(cl, err)
		}
	}
	var least int64 = -1
	var first any
	for _, n := range ns {
		v, err := n.rc.Receive()
		var re redis.Error
		switch {
		case errors.As(err, &re):
			if first == nil {
				first = re
			}
			continue
		case err != nil:
			return c.fail(cl, err)
		}
		k, err := redis.Int64(v, nil)
		if err != nil {
			return c.fail(cl, err)
		}
		if least < 0 || k < least {
			least = k
		}
		n.dirty = false
	}
	cl.done = true
	if first != nil {
		cl.reply = first
	} else {
		cl.reply = least
	}
	return nil
}
