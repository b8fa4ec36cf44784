package track

// What the fill protocol of package sesh calls: Lookup and Hit on a Get,
// NodeOf, Begin and Insert on a fill, Forget when a key is known gone. The
// invalidation buckets tie Begin and Insert to the invalidations between
// them.

// Lookup returns the entry of token, or nil. The caller serves it only if
// [Entry.Serves].
func (c *Cache) Lookup(token string) *Entry { return c.entries.lookup(token) }

// Hit counts a Get of token answered from memory.
func (c *Cache) Hit(token string) { c.entries.hit(token) }

// Fill is a fill begun by [Cache.Begin]: what its Insert checks.
type Fill struct {
	n     *Node
	epoch uint64 // n's, when the fill began
	b     uint32 // the key's invalidation bucket
	seq   uint32 // the bucket's count, when the fill began
}

// Addr returns the address of the master the fill's entry is to be read
// from, or "" without a Router.
func (f Fill) Addr() string { return f.n.addr }

// Begin begins a fill of key at now, before its round trip. It returns
// false when n's entries may not be filled at now: tracking is down, or no
// heartbeat was heard within MaxStale.
func (c *Cache) Begin(n *Node, key string, now int64) (Fill, bool) {
	epoch, ok := n.trust.begin(now)
	if !ok {
		return Fill{}, false
	}
	b := c.bucket(key)
	return Fill{n: n, epoch: epoch, b: b, seq: c.seq[b].Load()}, true
}

// Insert caches e, read by f, unless e's key was invalidated since f began
// or f's node's epoch moved. A full shard first evicts an entry picked
// uniformly at random.
func (c *Cache) Insert(e *Entry, f Fill) {
	e.node, e.epoch = f.n, f.epoch
	c.entries.put(e, func(victim *Entry) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !f.n.trust.current(f.epoch) || c.seq[f.b].Load() != f.seq {
			c.droppedFills.Add(1)
			return false
		}
		if victim != nil && c.keys[victim.Key] == victim {
			delete(c.keys, victim.Key)
		}
		if victim != nil {
			c.evictions.Add(1)
		}
		c.keys[e.Key] = e
		return true
	})
}

// Forget drops the entry of key and fails the fills of key under way. The
// entry is dead at once; freeing it waits for its shard's lock, which a
// busy process may be slow to grant.
func (c *Cache) Forget(key string) {
	if e := c.kill(key); e != nil {
		c.entries.drop(e)
	}
}

// bucket picks key's invalidation count by the first characters of its
// hash. A key too short to hold a hash (none that sesh writes) takes
// bucket 0.
func (c *Cache) bucket(key string) uint32 {
	i := len(c.prefix) + 1
	if len(key) < i+2 {
		return 0
	}
	return uint32(b64Index[key[i]])<<6 | uint32(b64Index[key[i+1]])
}

// kill fails the fills of key under way, marks its entry dead and returns
// it, or nil.
func (c *Cache) kill(key string) *Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq[c.bucket(key)].Add(1)
	e := c.keys[key]
	if e != nil {
		e.dead.Store(true)
		delete(c.keys, key)
	}
	return e
}

// invalidate handles a key Redis invalidated. Keys that stand for no
// entry's key (user indexes) are none of the cache's business.
func (c *Cache) invalidate(k []byte) {
	key, ok := c.src.EntryKey(k)
	if !ok {
		return
	}
	c.invalidations.Add(1)
	c.Forget(key)
}
