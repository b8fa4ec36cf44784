package sesh

import (
	"context"
)

// node is a server whose invalidations the cache hears: the one server of a
// plain Pool, or one master of a Redis Cluster. Each has its own tracker and
// its own trust, so that on Cluster a master whose tracking is in doubt
// costs the cache that master's entries only. An entry is served only while
// the node it was read from trusts its epoch.
type node struct {
	c       *cache
	addr    string // "" for the server of a Pool without a router
	tracker *tracker
	trust   trust
	bypass  bypass // the time this node's entries were bypassed, under cache.mu
}

// newNode makes the node for addr, with a tracker that reaches it through
// dial and hears heartbeats published through the Store's own way to it.
func (c *cache) newNode(addr string, dial func(context.Context) (conn, error)) *node {
	n := &node{c: c, addr: addr}
	n.tracker = &tracker{
		dial:     dial,
		pub:      c.s.conn,
		prefix:   c.s.prefix,
		maxStale: c.maxStaleD,
		every:    min(c.maxStaleD/4, maxBeat),
		now:      c.now,
		sink:     n,
	}
	if c.route != nil {
		n.tracker.shard = &shardChannel{base: c.channel, addr: addr, route: c.route}
	} else {
		n.tracker.channel.Store(&c.channel)
	}
	return n
}

// nodeDial returns how a tracker reaches the master at addr of a Cluster.
func (c *cache) nodeDial(addr string) func(context.Context) (conn, error) {
	return func(ctx context.Context) (conn, error) {
		rc, err := c.route.NodeContext(ctx, addr)
		if err != nil {
			return conn{}, err
		}
		return wrapConn(ctx, rc), nil
	}
}

// nodeOf returns the node whose entries key's entry would be: the one node,
// or on Cluster the master believed to serve key's slot; nil for a master
// the cache does not hear.
func (c *cache) nodeOf(key string) *node {
	if c.route == nil {
		return c.one
	}
	addr := c.route.Owner(c.route.Slot(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[addr]
}

// answered notes that the master at addr answered a fill through its lane,
// so it serves the fill's slot: if the cache does not hear it yet, it
// starts to, in the background. addr "" is a fill that left the lanes.
func (c *cache) answered(addr string) {
	if c.route == nil || addr == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[addr] != nil || c.closed {
		return
	}
	n := c.newNode(addr, c.nodeDial(addr))
	c.nodes[addr] = n
	n.tracker.startLater()
}

// moved drops the entries read from old, a master that a slot moved away
// from: they are not served again.
func (c *cache) moved(old string) {
	c.mu.Lock()
	n := c.nodes[old]
	c.mu.Unlock()
	if n != nil {
		n.reset(2, n.trust.live.Load())
	}
}

// reset moves n's epoch on by step, which makes every entry of n stale at
// once, sets live, and disregards the heartbeats sent until now. With one
// node it then frees the entries; on Cluster the stale entries of n are
// freed as they are met or evicted.
func (n *node) reset(step uint64, live int64) {
	c := n.c
	c.mu.Lock()
	n.bypass.note(&n.trust, c.now())
	n.trust.reset(step, live, c.now())
	if c.route == nil {
		clear(c.keys)
	}
	c.mu.Unlock()
	if c.route == nil {
		c.entries.clear()
	}
}

// A node is its tracker's sink.

func (n *node) up(start int64) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	n.bypass.note(&n.trust, c.now())
	c.logUp(n, n.trust.epoch.Load())
	n.trust.up(start, c.maxStale)
}

func (n *node) down() {
	if n.trust.tracking() {
		n.c.logDown(n)
		n.reset(1, 0)
	}
}

func (n *node) heard(sent int64) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	n.bypass.note(&n.trust, c.now())
	defer c.logHeard(n, n.trust.live.Load(), c.now())
	n.trust.heard(sent, c.now(), c.maxStale)
}

func (n *node) flushed() { n.reset(2, n.trust.live.Load()) }

func (n *node) unheard(epoch uint64) {
	if epoch&1 == 1 && n.trust.epoch.Load() == epoch {
		n.c.logUnheard(n)
		n.reset(2, 0)
		if n.c.route != nil {
			// The master may be a replica now: connect again and see.
			n.tracker.kick()
		}
	}
}

func (n *node) epoch() uint64 { return n.trust.epoch.Load() }

func (n *node) invalidate(k []byte) { n.c.invalidate(k) }

// gone forgets n, whose server is no Cluster master now: its entries are
// stale, and a later fill answered there makes a new node.
func (n *node) gone() {
	n.down()
	c := n.c
	c.mu.Lock()
	if c.nodes[n.addr] == n {
		delete(c.nodes, n.addr)
	}
	c.mu.Unlock()
}

// all returns every node. cache.mu is held.
func (c *cache) all() []*node {
	if c.one != nil {
		return []*node{c.one}
	}
	ns := make([]*node, 0, len(c.nodes))
	for _, n := range c.nodes {
		ns = append(ns, n)
	}
	return ns
}
