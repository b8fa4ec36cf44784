package sesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/seshkit/sesh/internal/track"
)

// The cache keeps, per token, the user ID a Get resolved, and serves it again
// from memory until Redis says the token's key changed. Its machinery (the
// entries, the trackers that hear Redis's invalidations, and the trust that
// decides when an entry may be served) is package internal/track, whose
// package doc tells how it works. This file is the fill protocol: how a Get
// reads Redis and hands the cache what it read, where Sliding and MaxAge
// meet the cache. It asks the cache through track.Cache's methods alone,
// and the cache reaches the Store only through storeSource (cachesource.go).
//
// An entry expires with its key: a miss reads GET and PTTL in one round
// trip, and the entry dies when the key would. A fill begins (track's
// Begin) before its round trip and ends (Insert) after it, and the cache
// drops it if the key was invalidated, or its node's trust moved, between
// the two.

const (
	defaultMaxStale = time.Second
	minMaxStale     = 10 * time.Millisecond
	setupTimeout    = 5 * time.Second // how long New waits for tracking
)

var errClusterUnbatched = errors.New("CacheSize on Redis Cluster needs auto-pipelining, which tells a fill which master answered: leave Pipelines at its default")

// cache is the fill protocol over a track.Cache.
type cache struct {
	s         *Store
	t         *track.Cache
	clustered bool  // the Pool is a Redis Cluster's: a fill goes through a lane, which says which master answered
	slides    bool  // Get restarts the idle TTL (Sliding, in a mode with one)
	ttl       int64 // the idle TTL in ns, for Sliding
	slack     int64 // ns a sliding token's TTL may run down before Get restarts it
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
		s:      s,
		slides: s.sliding && s.ttl > 0,
		ttl:    s.ttl * int64(time.Millisecond),
		slack:  min(int64(maxStale), s.ttl*int64(time.Millisecond)/2),
	}
	src := &storeSource{s: s}
	cfg := track.Config{
		Size:     size,
		MaxStale: maxStale,
		Prefix:   s.prefix,
		Channel:  s.prefix + "cache:" + hex.EncodeToString(id[:]),
		Source:   src,
		Log:      s.log,
	}
	if _, ok := s.pool.(router); ok {
		if s.batch == nil {
			return nil, errClusterUnbatched
		}
		// A tracker per master, each on its own connection to it.
		c.clustered = true
		src.route = s.batch.Route()
		cfg.Route = s.batch.Route()
	}
	c.t = track.New(cfg)
	if c.clustered {
		// Before any tracker runs: a heartbeat's round trip on a lane may
		// meet a MOVED reply.
		s.batch.SetMoved(c.t.Moved)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := c.t.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// forget drops the cached entry of key at once: this Store has just ended
// its token.
func (s *Store) forget(key string) {
	if s.cache != nil {
		s.cache.t.Forget(key)
	}
}

// get is Get with the cache.
func (c *cache) get(ctx context.Context, cd codec, token string) (string, error) {
	if len(token) != tokenLen {
		c.s.stats.uncachedGet(false)
		return "", ErrNotFound
	}
	e := c.t.Lookup(token)
	now := c.t.Now()
	if e == nil || e.Opener != cd || !e.Serves(now) {
		return c.fill(ctx, cd, token, now)
	}
	if err := ctx.Err(); err != nil {
		c.s.stats.uncachedGet(false)
		return "", wrap("get", err)
	}
	if !(c.slides && c.due(e, now) || c.useDue(e)) || !e.Refresh() {
		c.t.Hit(token)
		return e.UserID, nil
	}
	c.s.stats.uncachedGet(true)
	// Restart the TTL in Redis. That write invalidates the entry, and until
	// its invalidation arrives the other Gets go on with the entry.
	userID, err := c.s.fetch(ctx, cd, e.Key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		e.RefreshFailed()
	}
	return userID, err
}

// due reports whether a sliding Get at now should restart the token's TTL
// in Redis: whether the key would expire before now + TTL - slack, or before
// the deadline when that comes first. So after a Get at t the token lives
// until min(t + TTL - slack, deadline) at least. The deadline is met within
// Redis's resolution: a restart sets the key's expiry in whole ms.
func (c *cache) due(e *track.Entry, now int64) bool {
	return e.Expiry < min(now+c.ttl-c.slack, e.Deadline-int64(time.Millisecond))
}

// useDue reports whether a Get that would be served from e should record
// the session's last use instead, with Details: at most once per
// LastUseInterval. The write invalidates e, so the next Get refills it.
func (c *cache) useDue(e *track.Entry) bool {
	return c.s.details && e.Used != 0 && time.Now().UnixMilli()-e.Used >= c.s.lastUse
}

// fill reads token from Redis, and caches it unless it was invalidated
// meanwhile. It runs in three phases: begin (with the cache), read (one
// round trip), and keep (decide whether the entry is served again).
func (c *cache) fill(ctx context.Context, cd codec, token string, now int64) (string, error) {
	key, ok := c.s.tokenKey(token)
	c.s.stats.uncachedGet(ok)
	if !ok {
		return "", ErrNotFound
	}
	n := c.t.NodeOf(key)
	if n == nil {
		// A master not heard yet: no cache, but a fill through its lane
		// starts hearing it.
		v, addr, err := c.s.fetchOn(ctx, cd, key, true)
		c.t.Answered(addr)
		return v, err
	}
	f, ok := c.t.Begin(n, key, now)
	if !ok {
		return c.s.fetch(ctx, cd, key) // tracking is down: no cache
	}
	e, addr, err := c.read(ctx, cd, key, now)
	if errors.Is(err, errUncached) {
		return c.s.fetch(ctx, cd, key)
	}
	if err != nil {
		return "", err
	}
	// On Cluster, what was not read from the master whose invalidations the
	// fill's node hears is not cached: a slot that moved, or a round trip
	// that left the lanes (none was open yet, or a redirect).
	cacheable := !c.clustered || addr == f.Addr()
	return c.keep(ctx, cd, e, f, cacheable, token, now)
}

// errUncached says that a fill read a session the cache cannot hold: one
// of the old layout, or, with Sliding, a record whose idle TTL is not the
// Store's, which the cache's refresh rule does not know.
var errUncached = errors.New("sesh: a session the cache cannot hold")

// read is a fill's round trip: the record's value and policy, its key's
// PTTL and, with Sliding, the server's clock, which turns the recorded
// deadline into the cache's. It returns the entry read at now, and the
// master that answered when a lane says. A key that is gone is forgotten,
// and ErrNotFound; a session the cache cannot hold is errUncached.
func (c *cache) read(ctx context.Context, cd codec, key string, now int64) (*track.Entry, string, error) {
	const op = "get"
	// On Cluster, through a lane, which says which master answered.
	conn, err := c.s.take(ctx, true, c.clustered)
	if err != nil {
		return nil, "", wrap(op, err)
	}
	defer conn.Close()
	if c.s.details {
		conn.Send("HMGET", key, "u", "i", "d", "s")
	} else {
		conn.Send("HMGET", key, "u", "i", "d")
	}
	conn.Send("PTTL", key)
	if c.slides {
		conn.Send("TIME")
	}
	rs, err := conn.Pipe(2 + b2i(c.slides))
	if err != nil {
		return nil, "", wrap(op, err)
	}
	if e, ok := rs[0].(redis.Error); ok && wrongType(e) {
		return nil, "", errUncached
	}
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			return nil, "", wrap(op, e)
		}
	}
	rec, _ := redis.Values(rs[0], nil)
	if len(rec) != 3+b2i(c.s.details) || rec[0] == nil {
		c.t.Forget(key) // whatever is cached is dead
		return nil, "", ErrNotFound
	}
	val, err := redis.String(rec[0], nil)
	if err != nil {
		return nil, "", wrap(op, err)
	}
	userID, err := cd.open(key, val)
	if err != nil {
		return nil, "", wrap(op, err)
	}
	if c.s.sliding && !c.ownTTL(rec[1]) {
		return nil, "", errUncached
	}
	e := &track.Entry{Key: key, UserID: userID, Opener: cd, Expiry: track.Expires(now, rs[1]), Deadline: math.MaxInt64}
	if c.slides && rec[2] != nil {
		e.Deadline = deadlineAt(now, rec[2], rs[2])
	}
	if c.s.details {
		e.Used, _ = redis.Int64(rec[3], nil)
	}
	return e, conn.Addr(), nil
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
// into the cache's clock, given the server's TIME reply read at now; in the
// past for anything unexpected.
func deadlineAt(now int64, field, clock any) int64 {
	dl, err := redis.Int64(field, nil)
	t, err2 := redis.Int64s(clock, nil)
	if err != nil || err2 != nil || len(t) != 2 {
		return math.MinInt64
	}
	srv := t[0]*1000 + t[1]/1000
	return now + (dl-srv)*int64(time.Millisecond)
}

// keep ends fill f with e, read at now: it returns e's user ID, and caches
// e when it may be served again. A sliding token whose TTL is due for a
// restart, or whose deadline key is missing, is read again with the
// restart.
func (c *cache) keep(ctx context.Context, cd codec, e *track.Entry, f track.Fill, cacheable bool, token string, now int64) (string, error) {
	switch {
	case e.Expiry < now || e.Deadline < now:
		// Gone between HMGET and PTTL, or a record that cannot be read.
		if c.slides {
			return c.s.fetch(ctx, cd, e.Key)
		}
		return e.UserID, nil
	case c.slides && c.due(e, now):
		return c.s.fetch(ctx, cd, e.Key)
	case !cacheable:
		return e.UserID, nil
	}
	e.Token = strings.Clone(token) // the caller's string may hold a whole request
	c.t.Insert(e, f)
	return e.UserID, nil
}
