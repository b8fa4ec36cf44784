// Package track is the machinery of sesh's tracking cache: the entries,
// one tracker per server whose invalidations the cache hears, and what the
// cache believes about each of them (trust). The fill protocol, where a
// Store's Get reads Redis and Sliding and MaxAge meet the cache, stays in
// package sesh; it asks the cache through the methods of [Cache] and
// reaches nothing else.
//
// Redis says that a key changed through CLIENT TRACKING in broadcast mode
// on the Store's prefix, redirected to the tracking connection itself:
// RESP2 has no push replies, so invalidations arrive as Pub/Sub messages
// on __redis__:invalidate, a nil payload meaning "everything" (FLUSHALL,
// FLUSHDB).
//
// Besides the invalidations, three rules keep a hit from outliving what it
// mirrors:
//   - An entry expires with its key ([Entry].Expiry).
//   - A node's epoch moves on whenever its tracking goes up or down or
//     everything is invalidated, and an entry is served only while its
//     node's epoch is the one it was filled in. Tracking is up while the
//     epoch is odd; while it is even the node's entries are bypassed.
//   - A hit needs a heartbeat heard within MaxStale. The heartbeat is
//     published the way the Store writes ([Source].Publish) to a channel
//     only the tracking connection subscribes to, so hearing it proves that
//     the server the Store writes to is the one sending invalidations,
//     after a Sentinel failover too.
//
// A fill races the invalidation of its key: GET may read the old value
// while the change's invalidation is applied before the fill is. So a fill
// notes its key's invalidation count before its round trip ([Cache.Begin])
// and is dropped if the count moved ([Cache.Insert]). The counts live in
// buckets picked by the key's hash; a bucket shared with another key costs
// at most a needless miss.
//
// Times are int64 nanoseconds on the cache's monotonic clock, [Cache.Now],
// and every function that needs the time takes it as a parameter.
package track

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

const seqBuckets = 1 << 12 // two base64 characters of the key's hash

// Config is what New needs. Every field is required but Route.
type Config struct {
	// Size is how many entries the cache holds at most.
	Size int
	// MaxStale bounds how long the cache serves entries without hearing
	// a heartbeat, and how long a tracker waits in silence.
	MaxStale time.Duration
	// Prefix is the Store's Prefix and ":". Redis tracks the keys under
	// it, and each key the cache holds is Prefix, "{", then a uniformly
	// random base64url hash, whose first two characters pick the key's
	// invalidation bucket.
	Prefix string
	// Channel is the heartbeat channel, private to this cache; with a
	// Router, the start of the sharded channels' names.
	Channel string
	// Route is the Router of a Pool over Redis Cluster; nil for one
	// server.
	Route Router
	// Source is the Store the cache serves.
	Source Source
	// Log receives the rare events an operator must see.
	Log *slog.Logger
}

// Cache holds entries read from Redis, and serves each while its node's
// trust allows. Its methods are safe for concurrent use.
type Cache struct {
	src       Source
	route     Router
	log       *slog.Logger
	prefix    string
	channel   string
	maxStaleD time.Duration
	maxStale  int64     // ns
	base      time.Time // Now counts from here, on the monotonic clock
	entries   entries

	mu     sync.Mutex                // orders fills, invalidations and changes of trust
	one    *Node                     // the node of a Pool without a Router
	nodes  map[string]*Node          // with a Router: the nodes by master address
	closed bool                      // Close has begun: no new node
	keys   map[string]*Entry         // the entries by key, for invalidations
	seq    [seqBuckets]atomic.Uint32 // invalidations seen per bucket of keys

	droppedFills  atomic.Uint64
	invalidations atomic.Uint64
	evictions     atomic.Uint64

	once sync.Once // Close
}

// New returns a cache with no tracking yet: none of its entries is served
// before Start. It does no I/O.
func New(cfg Config) *Cache {
	c := &Cache{
		src:       cfg.Source,
		route:     cfg.Route,
		log:       cfg.Log,
		prefix:    cfg.Prefix,
		channel:   cfg.Channel,
		maxStaleD: cfg.MaxStale,
		maxStale:  int64(cfg.MaxStale),
		base:      time.Now(),
		entries:   newEntries(cfg.Size),
		keys:      make(map[string]*Entry),
	}
	if c.route == nil {
		c.one = c.newNode("")
	} else {
		c.nodes = make(map[string]*Node)
	}
	return c
}

// Start turns tracking on within ctx, at the one server or at each master,
// and starts the goroutines that keep it on until Close. It refuses a
// Redis Cluster reached without a Router. On error, nothing is left
// running.
func (c *Cache) Start(ctx context.Context) error {
	if c.route == nil {
		return c.one.tracker.start(ctx, true)
	}
	masters, err := c.route.Masters()
	if err != nil {
		return fmt.Errorf("CacheSize: %w", err)
	}
	for _, a := range masters {
		n := c.newNode(a)
		err := n.tracker.start(ctx, false)
		switch {
		case errors.Is(err, errNotMaster):
			// redisc's list before its first refresh is the seeds,
			// replicas included.
			continue
		case err != nil:
			c.closeNodes()
			return fmt.Errorf("%w (master %s)", err, a)
		}
		c.mu.Lock()
		c.nodes[a] = n
		c.mu.Unlock()
	}
	c.mu.Lock()
	none := len(c.nodes) == 0
	c.mu.Unlock()
	if none {
		return fmt.Errorf("CacheSize: no master among %v", masters)
	}
	return nil
}

// Close stops every tracker and waits for its goroutines: at once when
// Redis answers, and otherwise within about MaxStale. No node starts
// after. Close is a no-op after the first call.
func (c *Cache) Close() { c.once.Do(c.closeNodes) }

// closeNodes stops every node's tracker, and keeps new nodes from starting.
func (c *Cache) closeNodes() {
	c.mu.Lock()
	c.closed = true
	ns := c.all()
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.tracker.close()
		}()
	}
	wg.Wait()
}

// Now returns the time on the cache's clock: ns since New, monotonic.
func (c *Cache) Now() int64 { return int64(time.Since(c.base)) }

// Stats is a snapshot of the cache's counters and state.
type Stats struct {
	Hits          uint64        // Gets answered from memory (see Cache.Hit)
	DroppedFills  uint64        // fills refused by Insert
	Invalidations uint64        // invalidated keys that stand for an entry's key
	Evictions     uint64        // entries dropped to make room
	Entries       int           // entries held now
	Bypassed      bool          // some node serves no hit now
	BypassedFor   time.Duration // the total time nodes served no hit, summed over nodes
}

// Stats returns a snapshot of the cache's counters, read one by one.
func (c *Cache) Stats() Stats {
	st := Stats{
		DroppedFills:  c.droppedFills.Load(),
		Invalidations: c.invalidations.Load(),
		Evictions:     c.evictions.Load(),
		Hits:          c.entries.hits(),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Now()
	st.Entries = len(c.keys)
	for _, n := range c.all() {
		bypassed, total := n.trust.bypassed(now)
		st.Bypassed = st.Bypassed || bypassed
		st.BypassedFor += time.Duration(total)
	}
	return st
}
