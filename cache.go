package sesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The cache keeps, per token, the user ID a Get resolved, and serves it again
// from memory until Redis says the token's key changed. Redis says so through
// CLIENT TRACKING in broadcast mode on the Store's prefix, redirected to the
// tracking connection itself: RESP2 has no push replies, so invalidations
// arrive as Pub/Sub messages on __redis__:invalidate, a nil payload meaning
// "everything" (FLUSHALL, FLUSHDB).
//
// The work is split along its seams: entries (cachestore.go) holds the
// entries, a tracker (tracker.go) keeps the tracking connection and the
// heartbeat, trust (trust.go) is what the cache believes about that
// connection, and this file is the fill protocol that ties them together.
//
// Besides the invalidations, three rules keep a hit from outliving what it
// mirrors:
//   - An entry expires with its key: a miss reads GET and PTTL in one round
//     trip, and the entry dies when the key would.
//   - The epoch moves on whenever tracking goes up or down or everything is
//     invalidated, and a hit needs the epoch its entry was filled in. Tracking
//     is up while the epoch is odd; while it is even the cache is bypassed.
//   - A hit needs a heartbeat heard within CacheMaxStale. The heartbeat is
//     published through the Pool to a channel only the tracking connection
//     subscribes to, so hearing it proves that the server the Store writes to
//     is the one sending invalidations, after a Sentinel failover too.
//
// A fill races the invalidation of its key: GET may read the old value while
// the change's invalidation is applied before the fill is. So a fill notes
// its key's invalidation count before its round trip and is dropped if the
// count moved. The counts live in buckets picked by the key's hash; a bucket
// shared with another key costs at most a needless miss.

const (
	defaultMaxStale = time.Second
	minMaxStale     = 10 * time.Millisecond
	setupTimeout    = 5 * time.Second // how long New waits for tracking
	maxRetry        = time.Second     // the longest pause between reconnections
	maxBeat         = time.Second     // heartbeats come at least this often, within any read timeout
	maxShards       = 256
	minPerShard     = 16
	seqBuckets      = 1 << 12 // two base64 characters of the key's hash
	invalidations   = "__redis__:invalidate"
	trackingName    = "sesh-tracking"
)

var (
	errNoClientTracking = errors.New("CacheSize needs CLIENT TRACKING, from Redis 6")
	errCluster          = errors.New("CacheSize does not work on Redis Cluster through this Pool: it cannot turn CLIENT TRACKING on at every master; use seshcluster's Pool, or CacheSize 0")
	errClusterUnbatched = errors.New("CacheSize on Redis Cluster needs auto-pipelining, which tells a fill which master answered: leave Pipelines at its default")
)

type cache struct {
	s         *Store
	entries   entries
	channel   string        // the heartbeat channel, private to this cache (on Cluster, before a hash tag)
	route     router        // nil unless the Pool is a Redis Cluster's
	maxStaleD time.Duration // CacheMaxStale
	maxStale  int64         // ns
	slides    bool          // Get restarts the idle TTL (Sliding, in a mode with one)
	ttl       int64         // the idle TTL in ns, for Sliding
	slack     int64         // ns a sliding token's TTL may run down before Get restarts it
	base      time.Time     // now() counts from here, on the monotonic clock

	mu     sync.Mutex                // orders fills, invalidations and changes of trust
	one    *node                     // the node of a Pool without a router
	nodes  map[string]*node          // with a router: the nodes by master address
	closed bool                      // Close has begun: no new node
	keys   map[string]*entry         // the entries by key, for invalidations
	seq    [seqBuckets]atomic.Uint32 // invalidations seen per bucket of keys

	once sync.Once // Close
}

// newCache turns tracking on through s's Pool and starts the goroutines that
// keep it on.
func newCache(s *Store, size int, maxStale time.Duration) (*cache, error) {
	var id [8]byte
	// Not Options.Rand: two Stores drawing the same channel would hear each
	// other's heartbeats.
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("CacheSize: %w", err)
	}
	c := &cache{
		s:        s,
		entries:  newEntries(size),
		maxStale: int64(maxStale),
		slides:   s.sliding && s.ttl > 0,
		ttl:      s.ttl * int64(time.Millisecond),
		slack:    min(int64(maxStale), s.ttl*int64(time.Millisecond)/2),
		base:     time.Now(),
		keys:     make(map[string]*entry),
	}
	c.channel = s.prefix + "cache:" + hex.EncodeToString(id[:])
	c.maxStaleD = maxStale
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if _, ok := s.pool.(router); ok {
		if s.batch == nil {
			return nil, errClusterUnbatched
		}
		// A tracker per master, each on its own connection to it.
		c.route = s.batch.route
		masters, err := c.route.Masters()
		if err != nil {
			return nil, fmt.Errorf("CacheSize: %w", err)
		}
		c.nodes = make(map[string]*node, len(masters))
		for _, a := range masters {
			n := c.newNode(a, c.nodeDial(a))
			err := n.tracker.start(ctx, false)
			switch {
			case errors.Is(err, errNotMaster):
				// redisc's list before its first refresh is the seeds,
				// replicas included.
				continue
			case err != nil:
				c.closeNodes()
				return nil, fmt.Errorf("%w (master %s)", err, a)
			}
			c.nodes[a] = n
		}
		if len(c.nodes) == 0 {
			return nil, fmt.Errorf("CacheSize: no master among %v", masters)
		}
		s.batch.moved = c.moved
		return c, nil
	}
	c.one = c.newNode("", s.dedicated)
	if err := c.one.tracker.start(ctx, true); err != nil {
		return nil, err
	}
	return c, nil
}

// closeNodes stops every node's tracker, and keeps new nodes from starting.
func (c *cache) closeNodes() {
	c.mu.Lock()
	c.closed = true
	ns := make([]*node, 0, len(c.nodes)+1)
	if c.one != nil {
		ns = append(ns, c.one)
	}
	for _, n := range c.nodes {
		ns = append(ns, n)
	}
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

// Close releases what the Store holds between operations: the shared
// connections of auto-pipelining (Options.Pipelines) and, with
// Options.CacheSize, the connection that receives Redis's invalidations. It
// ends the goroutines that tend them and returns once they have ended: at
// once when Redis answers, and otherwise within about CacheMaxStale or the
// connections' read timeout. Close the Store before its Pool. The Store goes
// on working after Close, without its cache, each operation on a connection
// of its own. A Store without a cache holds nothing for more than a second
// after its last operation, so closing it is optional. Close is a no-op
// after the first call. It returns nil.
func (s *Store) Close() error {
	if b := s.batch; b != nil {
		b.close()
	}
	c := s.cache
	if c == nil {
		return nil
	}
	c.once.Do(c.closeNodes)
	return nil
}

// forget drops the cached entry of key at once: this Store has just ended
// its token.
func (s *Store) forget(key string) {
	if s.cache != nil {
		s.cache.forget(key)
	}
}

func (c *cache) now() int64 { return int64(time.Since(c.base)) }

// bucket picks key's invalidation count by the first characters of its hash.
// A key too short to hold a hash (none that sesh writes) takes bucket 0.
func (c *cache) bucket(key string) uint32 {
	i := len(c.s.prefix) + 1
	if len(key) < i+2 {
		return 0
	}
	return uint32(b64Index[key[i]])<<6 | uint32(b64Index[key[i+1]])
}

// get is Get with the cache.
func (c *cache) get(ctx context.Context, cd codec, token string) (string, error) {
	if len(token) != tokenLen {
		c.s.stats.uncachedGet(false)
		return "", ErrNotFound
	}
	e := c.entries.lookup(token)
	now := c.now()
	if e == nil || e.dead.Load() || e.cd != cd || !e.node.trust.serves(e.epoch, now) || now >= e.exp {
		return c.fill(ctx, cd, token, now)
	}
	if err := ctx.Err(); err != nil {
		c.s.stats.uncachedGet(false)
		return "", wrap("get", err)
	}
	if !c.slides || !c.due(e, now) || !e.refreshing.CompareAndSwap(false, true) {
		c.entries.hit(token)
		return e.userID, nil
	}
	c.s.stats.uncachedGet(true)
	// Restart the TTL in Redis. That write invalidates the entry, and until
	// its invalidation arrives the other Gets go on with the entry.
	userID, err := c.s.fetch(ctx, cd, e.key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		e.refreshing.Store(false)
	}
	return userID, err
}

// due reports whether a sliding Get at now should restart the token's TTL
// in Redis: whether the key would expire before now + TTL - slack, or before
// the deadline when that comes first. So after a Get at t the token lives
// until min(t + TTL - slack, deadline) at least. The deadline is met within
// Redis's resolution: a restart sets the key's expiry in whole ms.
func (c *cache) due(e *entry, now int64) bool {
	return e.exp < min(now+c.ttl-c.slack, e.dl-int64(time.Millisecond))
}

// fill reads token from Redis, and caches it unless it was invalidated
// meanwhile.
func (c *cache) fill(ctx context.Context, cd codec, token string, now int64) (string, error) {
	const op = "get"
	key, ok := c.s.tokenKey(token)
	c.s.stats.uncachedGet(ok)
	if !ok {
		return "", ErrNotFound
	}
	n := c.nodeOf(key)
	if n == nil {
		// A master not heard yet: no cache, but a fill through its lane
		// starts hearing it.
		v, addr, err := c.s.fetchOn(ctx, cd, key, true)
		c.answered(addr)
		return v, err
	}
	epoch := n.trust.epoch.Load()
	if epoch&1 == 0 || now >= n.trust.live.Load() {
		return c.s.fetch(ctx, cd, key) // tracking is down: no cache
	}
	b := c.bucket(key)
	seq := c.seq[b].Load()
	// On Cluster, through a lane, which says which master answered.
	conn, err := c.s.take(ctx, true, c.route != nil)
	if err != nil {
		return "", wrap(op, err)
	}
	defer conn.close()
	// A record's value and policy, its key's expiry, and with Sliding the
	// server's clock, which turns the recorded deadline into the cache's.
	conn.send("HMGET", key, "u", "i", "d")
	conn.send("PTTL", key)
	if c.slides {
		conn.send("TIME")
	}
	rs, err := conn.pipe(2 + b2i(c.slides))
	if err != nil {
		return "", wrap(op, err)
	}
	if e, ok := rs[0].(redis.Error); ok && wrongType(e) {
		// A session of the old layout: read it uncached.
		return c.s.fetch(ctx, cd, key)
	}
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			return "", wrap(op, e)
		}
	}
	rec, _ := redis.Values(rs[0], nil)
	if len(rec) != 3 || rec[0] == nil {
		c.forget(key) // whatever is cached is dead
		return "", ErrNotFound
	}
	val, err := redis.String(rec[0], nil)
	if err != nil {
		return "", wrap(op, err)
	}
	userID, err := cd.open(key, val)
	if err != nil {
		return "", wrap(op, err)
	}
	if c.s.sliding && !c.ownTTL(rec[1]) {
		// A sliding Get restarts the session's own idle TTL, which the
		// cache's refresh rule does not know: read it uncached.
		return c.s.fetch(ctx, cd, key)
	}
	// On Cluster, what was not read from the master whose invalidations n
	// hears is not cached: a slot that moved, or a round trip that left the
	// lanes (none was open yet, or a redirect).
	cacheable := c.route == nil || conn.addr == n.addr
	e := &entry{key: key, userID: userID, cd: cd, node: n, epoch: epoch, exp: expires(now, rs[1]), dl: math.MaxInt64}
	if c.slides && rec[2] != nil {
		e.dl = deadlineAt(now, rec[2], rs[2])
	}
	switch {
	case e.exp < now || e.dl < now:
		// Gone between HMGET and PTTL, or a record that cannot be read.
		if c.slides {
			return c.s.fetch(ctx, cd, key)
		}
		return userID, nil
	case c.slides && c.due(e, now):
		return c.s.fetch(ctx, cd, key)
	case !cacheable:
		return userID, nil
	}
	e.token = strings.Clone(token) // the caller's string may hold a whole request
	c.insert(e, b, seq)
	return userID, nil
}

// ownTTL reports whether a record's idle TTL field is one the cache can
// slide by: none, or the Store's TTL when the cache slides.
func (c *cache) ownTTL(field any) bool {
	if field == nil {
		return true
	}
	ms, err := redis.Int64(field, nil)
	return err == nil && c.slides && ms*int64(time.Millisecond) == c.ttl
}

// deadlineAt turns a record's deadline field, in ms on the server's clock,
// into now() units, given the server's TIME reply read at now; in the past
// for anything unexpected.
func deadlineAt(now int64, field, clock any) int64 {
	dl, err := redis.Int64(field, nil)
	t, err2 := redis.Int64s(clock, nil)
	if err != nil || err2 != nil || len(t) != 2 {
		return math.MinInt64
	}
	srv := t[0]*1000 + t[1]/1000
	return now + (dl-srv)*int64(time.Millisecond)
}

// expires turns a PTTL reply read at now into when the key expires: never
// for -1, and in the past for -2 (no key) or anything unexpected.
func expires(now int64, r any) int64 {
	ms, err := redis.Int64(r, nil)
	switch {
	case err != nil || ms < -1:
		return math.MinInt64
	case ms == -1:
		return math.MaxInt64
	}
	return now + ms*int64(time.Millisecond)
}

// insert caches e, unless its key was invalidated since bucket b's count was
// seq, or tracking went down or up since e's epoch. A full shard first
// evicts an entry picked uniformly at random.
func (c *cache) insert(e *entry, b, seq uint32) {
	c.entries.put(e, func(victim *entry) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.node.trust.epoch.Load() != e.epoch || c.seq[b].Load() != seq {
			c.s.stats.droppedFills.Add(1)
			return false
		}
		if victim != nil && c.keys[victim.key] == victim {
			delete(c.keys, victim.key)
		}
		c.s.stats.evictions.Add(uint64(b2i(victim != nil)))
		c.keys[e.key] = e
		return true
	})
}

// forget drops the entry of key and fails the fills of key under way. The
// entry is dead at once; freeing it waits for its shard's lock, which a
// busy process may be slow to grant.
func (c *cache) forget(key string) {
	if e := c.kill(key); e != nil {
		c.entries.drop(e)
	}
}

// kill fails the fills of key under way, marks its entry dead and returns
// it, or nil.
func (c *cache) kill(key string) *entry {
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

// invalidate handles an invalidated key: a token key, or a deadline key (of
// a session written before records) that stands for its token key. Other
// keys under the prefix (user indexes) are none of the cache's business.
func (c *cache) invalidate(k []byte) {
	p := c.s.prefix
	n := len(p) + tokenLen + 2
	if len(k) == n+2 && string(k[n:]) == ":m" {
		k = k[:n]
	}
	if len(k) != n || string(k[:len(p)]) != p || k[len(p)] != '{' || k[n-1] != '}' {
		return
	}
	c.s.stats.invalidations.Add(1)
	c.forget(string(k))
}
