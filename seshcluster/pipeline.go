// How a connection of this package runs what a Store sends.
//
// # Routing
//
// Each command runs on the master that owns its key's hash slot: the first
// argument, or the first key of EVAL and EVALSHA. redisc's slot map picks
// the node; MOVED and ASK replies are followed, through [redisc.RetryConn]
// for a single command and by sending the command again to the node the
// reply names for a pipeline, which redisc leaves to its caller. A
// connection keeps one connection per node it has met, and returns them all
// on Close.
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
//
// # Failover
//
// A reply that shows a command did not run (TRYAGAIN, CLUSTERDOWN, LOADING,
// a second redirect for one command) and a node that cannot be dialled are
// retried after a pause of 20ms, doubling up to 400ms, for at most 3s in all
// per connection and never past the deadline of the context given to
// GetContext; then the command's reply is Redis's error, or Do returns the
// dial error. A dial failure, a second redirect and a broken connection also
// ask redisc to refresh its slot map, one refresh at a time. A read or write
// error on a node connection is never retried, since the command may have
// run: Do returns it and the connection is broken.
//
// # Context
//
// GetContext returns ctx.Err() when ctx is done and does no I/O; nodes are
// dialled when the first command needs them, inside Do. Retries stop as
// soon as the context given to GetContext is done.

package seshcluster

import (
	"errors"
	"net"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh/internal/wire"
)

// tooManyAttempts is what redisc.RetryConn returns when every attempt met
// TRYAGAIN or a redirect, so the command did not run.
const tooManyAttempts = "redisc: too many attempts"

var errGiveUp = errors.New("seshcluster: retries exhausted")

// run runs the queue, batch by batch, and appends its replies to c.replies.
// A batch starts once the one before it has been answered.
func (c *conn) run() error {
	calls := c.queue
	c.queue = nil
	for i := 0; i < len(calls); {
		j := c.batchEnd(calls, i)
		var err error
		if calls[i].wait {
			if onlyWaits(calls[i:]) {
				c.quiet()
			}
			err = c.waitAll(calls[i])
		} else {
			err = c.runBatch(calls[i:j])
		}
		if err != nil {
			return err
		}
		i = j
	}
	for _, cl := range calls {
		c.replies = append(c.replies, cl.reply)
	}
	return nil
}

// onlyWaits reports whether every call of calls is a WAIT.
func onlyWaits(calls []*call) bool {
	for _, cl := range calls {
		if !cl.wait {
			return false
		}
	}
	return true
}

// batchEnd returns where the batch starting at calls[i] ends. The commands
// of a batch share round trips, so they all have one slot, or all run on
// one known node connection, or all are scattered commands of one name.
func (c *conn) batchEnd(calls []*call, i int) int {
	first := calls[i]
	if first.wait || first.slot < 0 {
		return i + 1
	}
	n := c.bySlot[first.slot]
	sameSlot, sameNode, scatter := true, n != nil, wire.Scatters(first.cmd)
	j := i + 1
	for ; j < len(calls); j++ {
		cl := calls[j]
		if cl.wait || cl.slot < 0 {
			break
		}
		sameSlot = sameSlot && cl.slot == first.slot
		sameNode = sameNode && c.bySlot[cl.slot] == n
		scatter = scatter && strings.EqualFold(cl.cmd, first.cmd)
		if !sameSlot && !sameNode && !scatter {
			break
		}
	}
	return j
}

// runBatch runs a batch in rounds until every command has a reply: each
// round sends what is left to the nodes it belongs to, pausing first when
// the last round met a failure that may pass.
func (c *conn) runBatch(batch []*call) error {
	spread := false
	for _, cl := range batch {
		spread = spread || cl.slot != batch[0].slot
	}
	for {
		var pending []*call
		for _, cl := range batch {
			if !cl.done {
				pending = append(pending, cl)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if err := c.round(pending, spread); err != nil {
			return err
		}
		c.prune()
		retry := false
		for _, cl := range pending {
			retry = retry || (!cl.done && cl.retry)
		}
		if !retry {
			continue
		}
		err := c.pause()
		if err == nil {
			continue
		}
		if !errors.Is(err, errGiveUp) {
			return c.fail(pending[0], err)
		}
		for _, cl := range pending {
			if cl.done {
				continue
			}
			if cl.err != nil {
				return c.fail(cl, cl.err)
			}
			cl.done = true // with its last error reply in place
		}
		return nil
	}
}

// round sends each pending command once: those sharing a node connection
// in one pipeline, all pipelines before any reply is read, then the
// commands that run alone through redisc.RetryConn.
func (c *conn) round(pending []*call, spread bool) error {
	type group struct {
		n     *node
		calls []*call
	}
	var groups []*group
	at := make(map[*node]*group)
	bound := make(map[int]*node) // node connections bound for a slot in this round
	var solos []*call
	for _, cl := range pending {
		cl.retry = false
		n, solo, err := c.route(cl, len(pending) == 1, spread, bound)
		switch {
		case err != nil:
			c.unreachable(cl, err)
			continue
		case solo:
			solos = append(solos, cl)
			continue
		}
		g := at[n]
		if g == nil {
			g = &group{n: n}
			at[n] = g
			groups = append(groups, g)
		}
		g.calls = append(g.calls, cl)
	}
	for _, g := range groups {
		for _, cl := range g.calls {
			if err := g.n.rc.Send(cl.cmd, cl.args...); err != nil {
				return c.fail(cl, err)
			}
		}
	}
	for _, g := range groups {
		if err := g.n.rc.Flush(); err != nil {
			return c.fail(g.calls[0], err)
		}
	}
	for _, g := range groups {
		for _, cl := range g.calls {
			v, err := g.n.rc.Receive()
			if err := c.settle(g.n, cl, v, err); err != nil {
				return err
			}
		}
	}
	for _, cl := range solos {
		if err := c.solo(cl); err != nil {
			return err
		}
	}
	return nil
}

// route picks the node connection for cl, or reports that cl runs alone
// through redisc.RetryConn.
func (c *conn) route(cl *call, alone, spread bool, bound map[int]*node) (n *node, solo bool, err error) {
	switch {
	case cl.ask:
		return nil, true, nil
	case cl.slot < 0:
		n, err := c.anyNode()
		return n, false, err
	}
	if n := c.bySlot[cl.slot]; n != nil {
		return n, false, nil
	}
	if n := c.byAddr[cl.movedTo]; cl.movedTo != "" && n != nil {
		return n, false, nil
	}
	if alone {
		return nil, true, nil
	}
	if n := bound[cl.slot]; n != nil {
		return n, false, nil
	}
	if spread && cl.movedTo == "" && len(c.nodes) > 0 {
		// The oldest node connection runs the command if its node owns the
		// slot, and names the owner if not: one round trip finds the
		// nodes of a thousand keys, without a connection for each.
		return c.nodes[0], false, nil
	}
	if n, err = c.bind(cl.key); err != nil {
		return nil, false, err
	}
	bound[cl.slot] = n
	if cl.movedTo != "" {
		// redisc's map has followed the MOVED reply, so n is at movedTo.
		c.byAddr[cl.movedTo] = n
	}
	return n, false, nil
}

// solo runs cl alone on a new connection through redisc.RetryConn, which
// follows MOVED and ASK and retries TRYAGAIN.
func (c *conn) solo(cl *call) error {
	rc := c.p.cluster.Get()
	if err := redisc.BindConn(rc, cl.key); err != nil {
		rc.Close()
		c.unreachable(cl, err)
		return nil
	}
	retry, err := redisc.RetryConn(rc, retryConnAttempts, tryAgainDelay)
	if err != nil {
		rc.Close()
		return c.fail(cl, err)
	}
	v, err := retry.Do(cl.cmd, cl.args...)
	var re redis.Error
	switch {
	case errors.As(err, &re) && (wire.Transient(re) || isRedirect(re)):
		rc.Close()
		cl.reply, cl.err, cl.retry = re, nil, true
		return nil
	case errors.As(err, &re):
		v = re
	case err != nil && (isDial(err) || err.Error() == tooManyAttempts):
		rc.Close()
		c.unreachable(cl, err)
		return nil
	case err != nil:
		rc.Close()
		return c.fail(cl, err)
	}
	c.ran(c.add(rc), cl, v)
	return nil
}

// settle records the reply to cl from n.
func (c *conn) settle(n *node, cl *call, v any, err error) error {
	var re redis.Error
	if err != nil && !errors.As(err, &re) {
		return c.fail(cl, err)
	}
	if err != nil {
		if rd, ok := wire.ParseRedirect(re); ok {
			if c.bySlot[cl.slot] == n {
				delete(c.bySlot, cl.slot)
			}
			if c.byAddr[rd.Addr] == n {
				delete(c.byAddr, rd.Addr) // n is not at the address it was bound for
			}
			cl.reply, cl.err = re, nil
			cl.redirects++
			cl.ask = rd.Ask
			if !cl.ask {
				cl.movedTo = rd.Addr
			}
			if cl.redirects > 1 {
				// Redirected again: the map is behind, or the owner is down.
				cl.retry = true
				c.p.refresh()
			}
			return nil
		}
		if wire.Transient(re) {
			cl.reply, cl.err, cl.retry = re, nil, true
			return nil
		}
		v = re
	}
	c.ran(n, cl, v)
	return nil
}

// ran records that cl ran on n and replied v.
func (c *conn) ran(n *node, cl *call, v any) {
	cl.reply, cl.err, cl.done = v, nil, true
	n.used, n.dirty = true, true
	if cl.slot >= 0 && !cl.ask {
		c.bySlot[cl.slot] = n
	}
}

// unreachable records that no connection could be had for cl.
func (c *conn) unreachable(cl *call, err error) {
	cl.reply, cl.err, cl.retry = nil, err, true
	c.p.refresh()
}

// pause waits before a retry. It returns errGiveUp instead when the pause
// would end past retryBudget after the first one, or past the deadline of
// the connection's context, so that the caller gets the error that made it
// retry rather than a bare deadline; and the context's error when it is
// done meanwhile.
func (c *conn) pause() error {
	now := time.Now()
	if c.giveUp.IsZero() {
		c.giveUp = now.Add(retryBudget)
	}
	end := c.giveUp
	if dl, ok := c.ctx.Deadline(); ok && dl.Before(end) {
		end = dl
	}
	d := min(retryFirst<<min(c.retries, 8), retryMax)
	if now.Add(d).After(end) {
		return errGiveUp
	}
	c.retries++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-t.C:
		return nil
	}
}

// bind returns a new node connection bound to the owner of key's slot.
func (c *conn) bind(key string) (*node, error) {
	rc := c.p.cluster.Get()
	if err := redisc.BindConn(rc, key); err != nil {
		rc.Close()
		return nil, err
	}
	return c.add(rc), nil
}

// anyNode returns a node connection for a command without a key: the
// oldest, or a new one bound to a random node.
func (c *conn) anyNode() (*node, error) {
	if len(c.nodes) > 0 {
		return c.nodes[0], nil
	}
	rc := c.p.cluster.Get()
	if err := redisc.BindConn(rc); err != nil {
		rc.Close()
		return nil, err
	}
	return c.add(rc), nil
}

func (c *conn) add(rc redis.Conn) *node {
	n := &node{rc: rc}
	c.nodes = append(c.nodes, n)
	return n
}

// prune closes the node connections that never ran a command.
func (c *conn) prune() {
	kept := c.nodes[:0]
	for _, n := range c.nodes {
		if n.used {
			kept = append(kept, n)
			continue
		}
		n.rc.Close()
		for a, m := range c.byAddr {
			if m == n {
				delete(c.byAddr, a)
			}
		}
	}
	clear(c.nodes[len(kept):])
	c.nodes = kept
}

// isRedirect reports whether e is a MOVED or ASK reply.
func isRedirect(e redis.Error) bool {
	_, ok := wire.ParseRedirect(e)
	return ok
}

// isDial reports whether err is a failure to connect, so nothing was sent.
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
