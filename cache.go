package sesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"strconv"
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
	errCluster          = errors.New("CacheSize does not work on Redis Cluster: a Pool cannot turn CLIENT TRACKING on at every master; use CacheSize 0")
)

// b64Index maps each base64url character to its 6-bit value, so that a
// token or a key picks its shard and bucket without hashing: both are
// uniformly random already.
var b64Index = func() (t [256]uint8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = uint8(i)
	}
	return t
}()

type cache struct {
	s        *Store
	shards   []shard
	mask     uint32 // len(shards) - 1
	maxStale int64  // ns
	slides   bool   // Get restarts the idle TTL (Sliding, in a mode with one)
	ttl      int64  // the idle TTL in ns, for Sliding
	slack    int64  // ns a sliding token's TTL may run down before Get restarts it
	every    time.Duration
	base     time.Time // now() counts from here, on the monotonic clock
	channel  string    // the heartbeat channel, private to this cache

	epoch atomic.Uint64 // odd while tracking is up
	live  atomic.Int64  // hits are served while now() < live

	mu    sync.Mutex // orders fills, invalidations and epoch changes
	floor int64      // heartbeats sent before it prove nothing
	keys  map[string]*entry
	seq   [seqBuckets]atomic.Uint32 // invalidations seen per bucket of keys

	ctx  context.Context // done once Close starts
	stop context.CancelFunc
	wg   sync.WaitGroup
	once sync.Once // Close
}

// shard holds a share of the entries, by token. Its entries also sit in a
// dense list, so that a full shard can evict one picked at random.
type shard struct {
	mu   sync.RWMutex
	m    map[string]*entry
	list []*entry
	max  int
}

type entry struct {
	token, key string
	userID     string
	cd         codec // the codec that opened userID: a Store and its Crypt share the cache
	epoch      uint64
	exp        int64 // when the key expires, in now() units; math.MaxInt64 for never
	dl         int64 // when the deadline key expires, for Sliding; math.MaxInt64 for never
	slot       int   // index in its shard's list
	dead       atomic.Bool
	refreshing atomic.Bool
}

// newCache turns tracking on through s's Pool and starts the goroutines that
// keep it on.
func newCache(s *Store, size int, maxStale time.Duration) (*cache, error) {
	n := maxShards
	for n > 1 && size/n < minPerShard {
		n /= 2
	}
	var id [8]byte
	// Not Options.Rand: two Stores drawing the same channel would hear each
	// other's heartbeats.
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("CacheSize: %w", err)
	}
	c := &cache{
		s:        s,
		shards:   make([]shard, n),
		mask:     uint32(n - 1),
		maxStale: int64(maxStale),
		slides:   s.sliding && (s.capped || s.ttl > 0 && s.maxAge == 0),
		ttl:      s.ttl * int64(time.Millisecond),
		slack:    min(int64(maxStale), s.ttl*int64(time.Millisecond)/2),
		every:    min(maxStale/4, maxBeat),
		base:     time.Now(),
		channel:  s.prefix + "cache:" + hex.EncodeToString(id[:]),
		keys:     make(map[string]*entry),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*entry)
		c.shards[i].max = size / n
		if i < size%n {
			c.shards[i].max++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := c.connect(ctx, true)
	if err != nil {
		return nil, err
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.wg.Add(2)
	go c.run(conn)
	go c.beat()
	return c, nil
}

// Close stops the cache of a Store made with Options.CacheSize: it closes
// the connection that receives Redis's invalidations and ends the goroutines
// that tend it. It returns once they have ended: at once when Redis answers,
// and otherwise within about CacheMaxStale. Close the Store before its Pool.
// The Store goes on working without its cache. Close is a no-op for a Store
// without a cache, and after the first call. It returns nil.
func (s *Store) Close() error {
	c := s.cache
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		c.stop()
		// The reader waits for a message: this one, or its read timeout.
		ctx, cancel := context.WithTimeout(context.Background(), c.every)
		c.publish(ctx, "close")
		cancel()
		c.wg.Wait()
	})
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

func (c *cache) shard(token string) *shard {
	return &c.shards[(uint32(b64Index[token[0]])<<6|uint32(b64Index[token[1]]))&c.mask]
}

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
		return "", ErrNotFound
	}
	sh := c.shard(token)
	sh.mu.RLock()
	e := sh.m[token]
	sh.mu.RUnlock()
	now := c.now()
	if e == nil || e.dead.Load() || e.cd != cd || e.epoch != c.epoch.Load() || now >= c.live.Load() || now >= e.exp {
		return c.fill(ctx, cd, token, now)
	}
	if err := ctx.Err(); err != nil {
		return "", wrap("get", err)
	}
	if !c.slides || !c.due(e, now) || !e.refreshing.CompareAndSwap(false, true) {
		return e.userID, nil
	}
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
	if !ok {
		return "", ErrNotFound
	}
	epoch := c.epoch.Load()
	if epoch&1 == 0 || now >= c.live.Load() {
		return c.s.fetch(ctx, cd, key) // tracking is down: no cache
	}
	b := c.bucket(key)
	seq := c.seq[b].Load()
	conn, err := c.s.conn(ctx)
	if err != nil {
		return "", wrap(op, err)
	}
	defer conn.close()
	deadline := c.slides // a deadline key bounds a restart of the TTL
	conn.send("GET", key)
	conn.send("PTTL", key)
	if deadline {
		conn.send("PTTL", deadlineKey(key))
	}
	rs, err := conn.pipe(2 + b2i(deadline))
	if err != nil {
		return "", wrap(op, err)
	}
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			return "", wrap(op, e)
		}
	}
	if rs[0] == nil {
		c.forget(key) // whatever is cached is dead
		return "", ErrNotFound
	}
	val, err := redis.String(rs[0], nil)
	if err != nil {
		return "", wrap(op, err)
	}
	userID, err := cd.open(key, val)
	if err != nil {
		return "", wrap(op, err)
	}
	e := &entry{key: key, userID: userID, cd: cd, epoch: epoch, exp: expires(now, rs[1]), dl: math.MaxInt64}
	if deadline && (c.s.capped || rs[2] != int64(-2)) {
		// Outside the capped mode, a token without a deadline key has none.
		e.dl = expires(now, rs[2])
	}
	switch {
	case e.exp < now || e.dl < now:
		// Gone between GET and PTTL, or a deadline key is missing.
		if deadline {
			return c.s.fetch(ctx, cd, key)
		}
		return userID, nil
	case c.slides && c.due(e, now):
		return c.s.fetch(ctx, cd, key)
	}
	e.token = strings.Clone(token) // the caller's string may hold a whole request
	c.insert(e, b, seq)
	return userID, nil
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
	sh := c.shard(e.token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c.mu.Lock()
	if c.epoch.Load() != e.epoch || c.seq[b].Load() != seq {
		c.mu.Unlock()
		return
	}
	old := sh.m[e.token]
	var victim *entry
	if old == nil && len(sh.list) >= sh.max {
		victim = sh.list[mrand.IntN(len(sh.list))]
		if c.keys[victim.key] == victim {
			delete(c.keys, victim.key)
		}
	}
	c.keys[e.key] = e
	c.mu.Unlock()
	if victim != nil {
		sh.remove(victim)
	}
	if old != nil {
		e.slot = old.slot
		sh.list[e.slot] = e
	} else {
		e.slot = len(sh.list)
		sh.list = append(sh.list, e)
	}
	sh.m[e.token] = e
}

// remove drops e, which sh holds; sh.mu is held.
func (sh *shard) remove(e *entry) {
	last := sh.list[len(sh.list)-1]
	sh.list[e.slot] = last
	last.slot = e.slot
	sh.list[len(sh.list)-1] = nil
	sh.list = sh.list[:len(sh.list)-1]
	delete(sh.m, e.token)
}

// forget drops the entry of key and fails the fills of key under way. The
// entry is dead at once; freeing it waits for its shard's lock, which a
// busy process may be slow to grant.
func (c *cache) forget(key string) {
	e := c.kill(key)
	if e == nil {
		return
	}
	sh := c.shard(e.token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[e.token] == e {
		sh.remove(e)
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

// reset moves the epoch on by step, which makes every entry stale at once,
// sets live, disregards the heartbeats sent until now, and then frees the
// entries.
func (c *cache) reset(step uint64, live int64) {
	c.mu.Lock()
	c.epoch.Add(step)
	c.live.Store(live)
	c.floor = c.now()
	clear(c.keys)
	c.mu.Unlock()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		clear(sh.list)
		sh.list = sh.list[:0]
		sh.mu.Unlock()
	}
}

// up marks tracking on, from a subscription sent at start.
func (c *cache) up(start int64) {
	c.mu.Lock()
	c.epoch.Add(1)
	c.live.Store(start + c.maxStale)
	c.floor = start
	c.mu.Unlock()
}

// down marks tracking off, so the cache is bypassed.
func (c *cache) down() {
	if c.epoch.Load()&1 == 1 {
		c.reset(1, 0)
	}
}

// heard counts a heartbeat published at sent.
func (c *cache) heard(sent int64) {
	c.mu.Lock()
	if c.epoch.Load()&1 == 1 && sent > c.floor && sent <= c.now() && sent+c.maxStale > c.live.Load() {
		c.live.Store(sent + c.maxStale)
	}
	c.mu.Unlock()
}

// connect takes a connection from the Pool and makes it the tracking
// connection. With probe, it first refuses a Redis Cluster.
func (c *cache) connect(ctx context.Context, probe bool) (redis.Conn, error) {
	conn, err := c.s.conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("CacheSize: turning CLIENT TRACKING on: %w", err)
	}
	if probe {
		conn.send("CLUSTER", "INFO")
	}
	conn.send("CLIENT", "ID")
	rs, err := conn.pipe(1 + b2i(probe))
	if err != nil {
		conn.close()
		return nil, fmt.Errorf("CacheSize: turning CLIENT TRACKING on: %w", err)
	}
	if info, ok := rs[0].([]byte); probe && ok && strings.HasPrefix(string(info), "cluster_") {
		conn.close()
		return nil, errCluster
	}
	id, err := redis.Int64(rs[len(rs)-1], nil)
	if err != nil {
		conn.close()
		return nil, fmt.Errorf("%w: %w", errNoClientTracking, err)
	}
	start := c.now()
	conn.send("CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", c.s.prefix)
	conn.send("CLIENT", "SETNAME", trackingName)
	conn.send("SUBSCRIBE", invalidations, c.channel)
	// The connection now holds tracking state: it never goes back to the
	// pool whole.
	rs, err = conn.pipe(3)
	if err == nil {
		for _, r := range rs {
			if e, ok := r.(redis.Error); ok {
				err = fmt.Errorf("%w: %w", errNoClientTracking, e)
				break
			}
		}
	}
	if err != nil {
		conn.drop()
		return nil, fmt.Errorf("CacheSize: turning CLIENT TRACKING on: %w", err)
	}
	c.up(start)
	return conn.c, nil
}

// run reads the tracking connection, and takes a new one each time it breaks,
// until Close.
func (c *cache) run(conn redis.Conn) {
	defer c.wg.Done()
	for conn != nil {
		c.read(conn)
		c.down()
		discard(conn)
		conn = c.reconnect()
	}
}

// reconnect takes a new tracking connection, trying again after longer and
// longer pauses. It returns nil once Close has started.
func (c *cache) reconnect() redis.Conn {
	for wait := time.Duration(0); ; wait = min(max(2*wait, 10*time.Millisecond), maxRetry) {
		select {
		case <-c.ctx.Done():
			return nil
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(c.ctx, setupTimeout)
		conn, err := c.connect(ctx, false)
		cancel()
		if err != nil {
			continue
		}
		if c.ctx.Err() != nil {
			// Close may have published before this subscription.
			c.down()
			discard(conn)
			return nil
		}
		return conn
	}
}

// read handles messages until the connection breaks, stays silent for
// CacheMaxStale, or Close starts.
func (c *cache) read(conn redis.Conn) {
	for {
		v, err := receive(conn, time.Duration(c.maxStale))
		if err != nil {
			return
		}
		m, ok := v.([]any)
		if !ok || len(m) != 3 {
			continue
		}
		if kind, _ := m[0].([]byte); string(kind) != "message" {
			continue
		}
		switch ch, _ := m[1].([]byte); string(ch) {
		case invalidations:
			keys, ok := m[2].([]any)
			if !ok {
				c.reset(2, c.live.Load()) // nil: every key was invalidated
				continue
			}
			for _, k := range keys {
				if k, ok := k.([]byte); ok {
					c.invalidate(k)
				}
			}
		case c.channel:
			if c.ctx.Err() != nil {
				return
			}
			p, _ := m[2].([]byte)
			if sent, err := strconv.ParseInt(string(p), 10, 64); err == nil {
				c.heard(sent)
			}
		}
	}
}

// invalidate handles an invalidated key: a token key, or a deadline key that
// stands for its token key. Other keys under the prefix (user indexes) are
// none of the cache's business.
func (c *cache) invalidate(k []byte) {
	p := c.s.prefix
	n := len(p) + tokenLen + 2
	if len(k) == n+2 && string(k[n:]) == ":m" {
		k = k[:n]
	}
	if len(k) != n || string(k[:len(p)]) != p || k[len(p)] != '{' || k[n-1] != '}' {
		return
	}
	c.forget(string(k))
}

// beat publishes a heartbeat every CacheMaxStale/4, or every second when
// that is longer, until Close.
func (c *cache) beat() {
	defer c.wg.Done()
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.every)
		c.publish(ctx, strconv.FormatInt(c.now(), 10))
		cancel()
	}
}

// publish sends msg to the tracking connection through the Pool. When tracking
// is up and the message reaches no one, the Pool's server is not the one
// the tracking connection listens to (a failover) or that connection has just
// died: the cache stops trusting it at once.
func (c *cache) publish(ctx context.Context, msg string) {
	epoch := c.epoch.Load()
	conn, err := c.s.conn(ctx)
	if err != nil {
		return
	}
	n, err := redis.Int(conn.do("PUBLISH", c.channel, msg))
	conn.close()
	if err == nil && n == 0 && epoch&1 == 1 && c.epoch.Load() == epoch {
		c.reset(2, 0)
	}
}
