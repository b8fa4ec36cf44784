package seshcluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh/internal/wire"
)

var errClosed = errors.New("seshcluster: connection closed")

// conn is one caller's connection to the cluster: the commands it queued,
// the replies not yet received, and a connection per node it has met.
type conn struct {
	p   *pool
	ctx context.Context // stops retries once done

	mu      sync.Mutex
	err     error   // set once the conn is unusable
	queue   []*call // sent, not yet run
	replies []any   // run, not yet received

	nodes  []*node          // every node connection, oldest first
	bySlot map[int]*node    // the node connection that last ran a command of a slot
	byAddr map[string]*node // node connections opened for a MOVED reply naming that address

	retries int       // pauses taken so far
	giveUp  time.Time // when retries stop; zero until the first pause

	settled chan struct{} // DoNotify's, closed by quiet; nil once closed
}

// quiet closes the channel of DoNotify, if any.
func (c *conn) quiet() {
	if c.settled != nil {
		close(c.settled)
		c.settled = nil
	}
}

// node is a *redisc.Conn bound to one node of the cluster.
type node struct {
	rc    redis.Conn
	used  bool // ran a command
	dirty bool // ran a command since the last WAIT
}

// call is one command and what became of it.
type call struct {
	cmd  string
	args []any
	key  string
	slot int  // hash slot of key; -1 when it has none
	wait bool // a WAIT, run on every dirty node

	done  bool
	reply any   // the reply, or the last error reply of a command that did not run
	err   error // the dial error that last kept it from running

	redirects int    // MOVED and ASK replies so far
	movedTo   string // the address named by the last MOVED reply
	ask       bool   // the last reply was ASK: run it through redisc.RetryConn
	retry     bool   // did not run for a reason that may pass: pause, then run it again
}

func newCall(cmd string, args []any) *call {
	cl := &call{cmd: cmd, args: args, slot: -1}
	if strings.EqualFold(cmd, "WAIT") {
		cl.wait = true
	} else if k, ok := wire.KeyOf(cmd, args); ok {
		cl.key, cl.slot = k, redisc.Slot(k)
	}
	return cl
}

// Send queues a command; nothing is sent before Do or Receive.
func (c *conn) Send(cmd string, args ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.queue = append(c.queue, newCall(cmd, append([]any(nil), args...)))
	return nil
}

// Flush does nothing: the queue runs in Do and Receive, where its order
// across nodes can be kept.
func (c *conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Receive returns the next reply, running the queue first when no reply is
// waiting. An error reply is returned as a redis.Error.
func (c *conn) Receive() (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	if len(c.replies) == 0 {
		if err := c.run(); err != nil {
			return nil, err
		}
	}
	if len(c.replies) == 0 {
		return nil, errors.New("seshcluster: receive: no command was sent")
	}
	v := c.replies[0]
	c.replies = c.replies[1:]
	if e, ok := v.(redis.Error); ok {
		return nil, e
	}
	return v, nil
}

// Do runs the queue. With cmd "" it returns every reply not yet received as
// a []any, Redis errors in place. Otherwise it runs cmd last and, as redigo
// does, returns its reply and the first error reply among all.
func (c *conn) Do(cmd string, args ...any) (any, error) {
	return c.DoNotify(nil, cmd, args...)
}

// DoNotify is Do that closes settled, when not nil, as soon as nothing it
// runs can change data any more: every command before the WAITs that end
// the queue has been answered, or Do is returning. A Do may block in WAIT
// long after its writes ran; sesh orders a cleanup after them, not after
// the WAIT.
func (c *conn) DoNotify(settled chan struct{}, cmd string, args ...any) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settled = settled
	defer c.quiet()
	if c.err != nil {
		return nil, c.err
	}
	if cmd != "" {
		c.queue = append(c.queue, newCall(cmd, args))
	}
	if err := c.run(); err != nil {
		return nil, err
	}
	rs := c.replies
	c.replies = nil
	if cmd == "" {
		if len(rs) == 0 {
			return nil, nil
		}
		return rs, nil
	}
	var err error
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			err = e
			break
		}
	}
	return rs[len(rs)-1], err
}

// Err returns the error that made the connection unusable, if any.
func (c *conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close returns every node connection to redisc. Commands queued and not
// run are dropped.
func (c *conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		n.rc.Close()
	}
	c.nodes, c.queue, c.replies = nil, nil, nil
	clear(c.bySlot)
	clear(c.byAddr)
	if c.err == nil {
		c.err = errClosed
	}
	return nil
}

// fail breaks the connection with err, met while running cl.
func (c *conn) fail(cl *call, err error) error {
	c.err = fmt.Errorf("seshcluster: do: %s: %w", cl.cmd, err)
	c.p.refresh()
	return c.err
}
