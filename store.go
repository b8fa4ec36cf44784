package sesh

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// script is a Lua script run by hash, with its source at hand for EVAL.
type script struct {
	keys      int
	src, hash string
}

func newScript(keys int, src string) *script {
	h := sha1.Sum([]byte(src))
	return &script{keys, src, hex.EncodeToString(h[:])}
}

// eval runs sc by hash, falling back to its source on NOSCRIPT.
func (c *conn) eval(sc *script, keysAndArgs ...any) (any, error) {
	args := make([]any, 0, 2+len(keysAndArgs))
	args = append(append(args, sc.hash, sc.keys), keysAndArgs...)
	v, err := c.do("EVALSHA", args...)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT ") {
		args[0] = sc.src
		v, err = c.do("EVAL", args...)
	}
	return v, err
}

// sendEval queues sc with its source, so that a pipeline never meets
// NOSCRIPT (a script cache does not survive a restart or a failover).
func (c *conn) sendEval(sc *script, keysAndArgs ...any) error {
	args := make([]any, 0, 2+len(keysAndArgs))
	return c.send("EVAL", append(append(args, sc.src, sc.keys), keysAndArgs...)...)
}

// Scripts for the capped mode, where the idle TTL is shorter than MaxAge and
// a deadline key (same hash slot) carries the absolute deadline as its own
// expiry. A token key never outlives its deadline key; one found without
// it predates MaxAge and cannot prove its age, so it is ended.
var (
	// KEYS: token, deadline. ARGV: value, idle ms, deadline ms.
	setCapped = newScript(2, `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 1`)

	// KEYS: token, deadline. ARGV: idle ms.
	livCapped = newScript(2, `
local d = redis.call('PTTL', KEYS[2])
if d <= 0 then redis.call('DEL', KEYS[1]) return 0 end
local t = tonumber(ARGV[1])
if d < t then t = d end
return redis.call('PEXPIRE', KEYS[1], t)`)

	// KEYS: token, deadline. ARGV: idle ms.
	getCapped = newScript(2, `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local d = redis.call('PTTL', KEYS[2])
if d <= 0 then redis.call('DEL', KEYS[1]) return false end
local t = tonumber(ARGV[1])
if d < t then t = d end
redis.call('PEXPIRE', KEYS[1], t)
return v`)
)

// px is how long a new token's key lives, given left ms of absolute life.
// Zero means no expiry.
func (s *Store) px(left int64) int64 {
	switch {
	case s.maxAge > 0 && s.ttl > 0:
		return min(s.ttl, left)
	case s.maxAge > 0:
		return left
	default:
		return s.ttl
	}
}

// setCmd is the command that creates a token key holding val, with left
// ms of absolute life: one SET NX PX, or in capped mode one script (sent
// with its source, so a pipeline never meets NOSCRIPT) that also writes the
// deadline key.
func (s *Store) setCmd(key, val string, left int64) (string, []any) {
	switch px := s.px(left); {
	case s.capped:
		return "EVAL", []any{setCapped.src, setCapped.keys, key, deadlineKey(key), val, px, left}
	case px > 0:
		return "SET", []any{key, val, "NX", "PX", px}
	default:
		return "SET", []any{key, val, "NX"}
	}
}

// sendSet queues setCmd.
func (s *Store) sendSet(c *conn, key, val string, left int64) error {
	cmd, args := s.setCmd(key, val, left)
	return c.send(cmd, args...)
}

// created reports whether a reply to sendSet's command created the key.
func created(r any) bool { return r != nil && r != int64(0) }

// expiry is the index score of a token created now with px ms to live.
func expiry(now time.Time, px int64) any {
	if px == 0 {
		return "+inf"
	}
	return now.UnixMilli() + px
}

func (s *Store) set(ctx context.Context, cd codec, userID string) (string, error) {
	const op = "set"
	if err := checkUserID(op, userID); err != nil {
		return "", err
	}
	c, err := s.conn(ctx)
	if err != nil {
		return "", wrap(op, err)
	}
	defer c.close()
	for range maxTries {
		tok, key, err := s.newToken()
		if err != nil {
			return "", wrap(op, err)
		}
		val, err := cd.seal(key, userID)
		if err != nil {
			return "", wrap(op, err)
		}
		ok, err := s.create(&c, cd, userID, key, val)
		if err != nil {
			return "", wrap(op, err)
		}
		if ok {
			return tok, nil
		}
	}
	return "", fmt.Errorf("sesh: %s: %d tokens in a row collided with live ones; Rand is not random", op, maxTries)
}

// create writes a new token key, indexing it first when tracking users, and
// reports false when the key already existed.
func (s *Store) create(c *conn, cd codec, userID, key, val string) (bool, error) {
	if !s.track {
		cmd, args := s.setCmd(key, val, s.maxAge)
		r, err := c.do(cmd, args...)
		return created(r), err
	}
	// The index entry goes first, in the same round trip: a crash between
	// the two leaves a harmless dangling entry, never an unindexed token.
	idx := s.indexKey(cd.indexID(userID, ""))
	now := time.Now()
	if err := s.sendRegister(c, idx, s.member(key), expiry(now, s.px(s.maxAge)), now, ""); err != nil {
		return false, err
	}
	if err := s.sendSet(c, key, val, s.maxAge); err != nil {
		return false, err
	}
	rs, err := c.pipe(2)
	if err != nil {
		return false, err
	}
	added, due, regErr := registered(rs[0])
	if e, ok := rs[1].(redis.Error); ok {
		return false, e
	}
	ok := created(rs[1])
	if regErr != nil {
		// The token must not live unindexed.
		if ok {
			_, _ = c.do("DEL", s.keysOf(key)...)
		}
		return false, regErr
	}
	if !ok {
		// The key was another token's: take back the entry if it was ours.
		if added {
			_, err = c.do("ZREM", idx, s.member(key))
		}
		return false, err
	}
	if len(due) > 0 {
		if _, err := s.check(c, idx, due); err != nil {
			return false, err
		}
	}
	return true, nil
}

// keysOf lists a token's keys: its own and, in capped mode, its deadline.
func (s *Store) keysOf(key string) []any {
	if s.capped {
		return []any{key, deadlineKey(key)}
	}
	return []any{key}
}

func (s *Store) get(ctx context.Context, cd codec, token string) (string, error) {
	if s.cache != nil {
		return s.cache.get(ctx, cd, token)
	}
	key, ok := s.tokenKey(token)
	if !ok {
		return "", ErrNotFound
	}
	return s.fetch(ctx, cd, key)
}

// fetch is Get on Redis alone: one round trip, which restarts the TTL when
// Sliding.
func (s *Store) fetch(ctx context.Context, cd codec, key string) (string, error) {
	const op = "get"
	c, err := s.conn(ctx)
	if err != nil {
		return "", wrap(op, err)
	}
	defer c.close()
	var v any
	switch {
	case s.sliding && s.capped:
		v, err = c.eval(getCapped, key, deadlineKey(key), s.ttl)
	case s.sliding && s.ttl > 0 && s.maxAge == 0:
		v, err = c.do("GETEX", key, "PX", s.ttl)
	default:
		v, err = c.do("GET", key)
	}
	if err != nil {
		return "", wrap(op, err)
	}
	if v == nil {
		return "", ErrNotFound
	}
	val, err := redis.String(v, nil)
	if err != nil {
		return "", wrap(op, err)
	}
	userID, err := cd.open(key, val)
	return userID, wrap(op, err)
}

func (s *Store) liv(ctx context.Context, token string) error {
	const op = "liv"
	key, ok := s.tokenKey(token)
	if !ok {
		return ErrNotFound
	}
	c, err := s.conn(ctx)
	if err != nil {
		return wrap(op, err)
	}
	defer c.close()
	var v any
	switch {
	case s.capped:
		v, err = c.eval(livCapped, key, deadlineKey(key), s.ttl)
	case s.ttl > 0 && s.maxAge == 0:
		// PEXPIRE never creates a key, so an ended token stays ended.
		v, err = c.do("PEXPIRE", key, s.ttl)
	default:
		// Forever, or a TTL no shorter than MaxAge: nothing to extend.
		v, err = c.do("EXISTS", key)
	}
	n, err := redis.Int(v, err)
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *Store) die(ctx context.Context, cd codec, token string) error {
	const op = "die"
	key, ok := s.tokenKey(token)
	if !ok {
		return ErrNotFound
	}
	// Whatever Redis answers, this Store's cache forgets the token at once.
	defer s.forget(key)
	c, err := s.conn(ctx)
	if err != nil {
		return wrap(op, err)
	}
	defer c.close()
	n := 1
	if s.track {
		// GETDEL names the user, so the index entry can go too.
		c.send("GETDEL", key)
	} else {
		c.send("DEL", key)
	}
	if s.capped {
		c.send("DEL", deadlineKey(key))
		n++
	}
	waits := s.sendWait(&c)
	rs, err := c.pipe(n + waits)
	if err != nil {
		return wrap(op, err)
	}
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			return wrap(op, e)
		}
	}
	if s.track && rs[0] != nil {
		if val, err := redis.String(rs[0], nil); err == nil {
			// An entry that cannot be named here is pruned later.
			if userID, err := cd.open(key, val); err == nil {
				if _, err := c.do("ZREM", s.indexKey(cd.indexID(userID, val)), s.member(key)); err != nil {
					return wrap(op, err)
				}
			}
		}
	}
	if waits > 0 {
		return wrap(op, s.waited(rs[len(rs)-1]))
	}
	return nil
}

// sendWait queues a WAIT for Options.Replicas and returns how many replies
// it adds.
func (s *Store) sendWait(c *conn) int {
	if s.replicas == 0 {
		return 0
	}
	c.send("WAIT", s.replicas, s.waitMS)
	return 1
}

// waited checks a WAIT reply.
func (s *Store) waited(r any) error {
	n, err := redis.Int(r, nil)
	if err != nil {
		return err
	}
	if n < s.replicas {
		return fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, n, s.replicas, time.Duration(s.waitMS)*time.Millisecond)
	}
	return nil
}

var errNoTracking = errors.New("needs Options.TrackUsers")
