package track

// Node is a server whose invalidations the cache hears: the one server of
// a Pool without a Router, or one master of a Redis Cluster. Each has its
// own tracker and its own trust, so that on Cluster a master whose tracking
// is in doubt costs the cache that master's entries only. An entry is
// served only while the node it was read from trusts its epoch.
type Node struct {
	c       *Cache
	addr    string // "" for the server of a Pool without a Router
	tracker *tracker
	trust   trust
}

// newNode makes the node for addr, with a tracker that reaches it through
// the cache's Source.
func (c *Cache) newNode(addr string) *Node {
	n := &Node{c: c, addr: addr}
	n.tracker = &tracker{
		src:      c.src,
		addr:     addr,
		prefix:   c.prefix,
		maxStale: c.maxStaleD,
		every:    min(c.maxStaleD/4, maxBeat),
		now:      c.Now,
		sink:     n,
	}
	if c.route != nil {
		n.tracker.shard = &shardChannel{base: c.channel, addr: addr, route: c.route}
	} else {
		n.tracker.channel.Store(&c.channel)
	}
	return n
}

// NodeOf returns the node whose entries key's entry would be: the one
// node, or on Cluster the master believed to serve key's slot; nil for a
// master the cache does not hear (see Answered).
func (c *Cache) NodeOf(key string) *Node {
	if c.route == nil {
		return c.one
	}
	addr := c.route.Owner(c.route.Slot(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[addr]
}

// Answered notes that the master at addr answered a fill of a key whose
// master the cache did not hear, so it serves the key's slot: if the cache
// does not hear it yet, it starts to, in the background. addr "" is a fill
// whose round trip does not say who answered.
func (c *Cache) Answered(addr string) {
	if c.route == nil || addr == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[addr] != nil || c.closed {
		return
	}
	n := c.newNode(addr)
	c.nodes[addr] = n
	n.tracker.startLater()
}

// Moved drops the entries read from old, a master that a slot moved away
// from: they are not served again. Auto-pipelining calls it when a MOVED
// reply names a new owner.
func (c *Cache) Moved(old string) {
	c.mu.Lock()
	n := c.nodes[old]
	c.mu.Unlock()
	if n != nil {
		n.reset((*trust).flush)
	}
}

// all returns every node. Cache.mu is held.
func (c *Cache) all() []*Node {
	if c.one != nil {
		return []*Node{c.one}
	}
	ns := make([]*Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		ns = append(ns, n)
	}
	return ns
}

// reset changes n's trust by move, which moves the epoch on and so makes
// every entry of n stale at once. With one node it then frees the entries;
// on Cluster the stale entries of n are freed as they are met or evicted.
func (n *Node) reset(move func(t *trust, now int64)) {
	c := n.c
	c.mu.Lock()
	move(&n.trust, c.Now())
	if c.route == nil {
		clear(c.keys)
	}
	c.mu.Unlock()
	if c.route == nil {
		c.entries.clear()
	}
}

// A node is its tracker's sink.

func (n *Node) up(start int64) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	first := n.trust.up(start, c.Now(), c.maxStale)
	c.logUp(n, first)
}

func (n *Node) down() {
	if n.trust.tracking() {
		n.c.logDown(n)
		n.reset((*trust).down)
	}
}

func (n *Node) heard(sent int64) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if late, restored := n.trust.heard(sent, c.Now(), c.maxStale); restored {
		c.logHeard(n, late)
	}
}

func (n *Node) flushed() { n.reset((*trust).flush) }

func (n *Node) unheard(epoch uint64) {
	if upIn(epoch) && n.trust.current(epoch) {
		n.c.logUnheard(n)
		n.reset((*trust).distrust)
		if n.c.route != nil {
			// The master may be a replica now: connect again and see.
			n.tracker.kick()
		}
	}
}

func (n *Node) epoch() uint64 { return n.trust.epoch.Load() }

func (n *Node) invalidate(k []byte) { n.c.invalidate(k) }

// gone forgets n, whose server is no Cluster master now: its entries are
// stale, and a later fill answered there makes a new node.
func (n *Node) gone() {
	n.down()
	c := n.c
	c.mu.Lock()
	if c.nodes[n.addr] == n {
		delete(c.nodes, n.addr)
	}
	c.mu.Unlock()
}
