package sesh

import (
	"context"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The user index is a sorted set per user: members name token keys, scores
// are when each token was last known to expire (ms since the epoch, +inf for
// none). It lives in its own hash slot; every command on it touches it alone,
// so it works unchanged on Redis Cluster.
var (
	// register adds a member, keeps the index alive at least as long as its
	// tokens can live, and returns {added, members due for a check}. With
	// ARGV[5] set it first requires that member to be present, which is how
	// Rotate learns that DieAll has not taken the index since it read the
	// token.
	//
	// KEYS: index. ARGV: score, member, index ms (0: no expiry), now, required member.
	register = newScript(1, `
if ARGV[5] ~= '' and not redis.call('ZSCORE', KEYS[1], ARGV[5]) then return false end
local added = redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[3])
local p = redis.call('PTTL', KEYS[1])
if ttl == 0 then
  if p ~= -1 then redis.call('PERSIST', KEYS[1]) end
elseif p ~= -1 and p < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {added, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, 8)}`)

	// take empties the index and returns what it held, atomically.
	//
	// KEYS: index.
	take = newScript(1, `
local m = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return m`)
)

// DieAll ends every live token of userID and returns how many it ended.
// A token of userID created before DieAll started cannot be used once it
// returns, whatever Set, Liv, Rotate and DieAll calls run meanwhile. It
// needs Options.TrackUsers.
func (s *Store) DieAll(ctx context.Context, userID string) (int, error) {
	return s.dieAll(ctx, plain{}, userID)
}

// Count returns how many live tokens userID has. It needs
// Options.TrackUsers. Entries of expired or ended tokens it meets are
// removed from the index.
func (s *Store) Count(ctx context.Context, userID string) (int, error) {
	return s.count(ctx, plain{}, userID)
}

// Rotate issues a new token for the user of token and ends token. The new
// token keeps the old one's absolute deadline (MaxAge), so rotation never
// extends a session; its idle TTL starts afresh. Of many concurrent Rotate
// calls on one token, exactly one succeeds; the others get ErrNotFound.
//
// With Options.Replicas, an ErrNotReplicated error comes with the new
// token: the rotation happened, but the old token's end may not survive a
// failover.
func (s *Store) Rotate(ctx context.Context, token string) (string, error) {
	return s.rotate(ctx, plain{}, token)
}

// sendRegister queues register; must, when not "", is the member that has to
// be present.
func (s *Store) sendRegister(c *conn, idx, member string, score any, now time.Time, must string) error {
	var idxTTL int64
	if s.maxAge > 0 {
		// Nothing outlives MaxAge, not even a rotated token.
		idxTTL = s.maxAge
	}
	return c.sendEval(register, idx, score, member, idxTTL, now.UnixMilli(), must)
}

// registered reads register's reply: whether the member was added, which
// members are due for a check, and whether the required member was missing.
func registered(r any) (added bool, due []string, err error) {
	switch r := r.(type) {
	case nil:
		return false, nil, ErrNotFound
	case redis.Error:
		return false, nil, r
	}
	vs, err := redis.Values(r, nil)
	if err != nil || len(vs) != 2 {
		return false, nil, fmt.Errorf("unexpected register reply %v: %w", r, err)
	}
	n, _ := redis.Int(vs[0], nil)
	due, err = redis.Strings(vs[1], nil)
	return n == 1, due, err
}

// check looks up the tokens named by members of idx, drops the entries of
// those gone, re-scores the live ones, and returns how many live. Each entry
// costs one check per expiry it outlives, so the work is amortised over the
// calls that made it.
func (s *Store) check(c *conn, idx string, members []string) (int, error) {
	for _, m := range members {
		c.send("PTTL", s.keyOf(m))
	}
	rs, err := c.pipe(len(members))
	if err != nil {
		return 0, err
	}
	now := time.Now()
	live, writes := 0, 0
	for i, r := range rs {
		ms, err := redis.Int64(r, nil)
		if err != nil {
			return 0, err
		}
		switch {
		case ms == -2:
			c.send("ZREM", idx, members[i])
		case ms == -1:
			c.send("ZADD", idx, "XX", "+inf", members[i])
		default:
			c.send("ZADD", idx, "XX", now.UnixMilli()+ms, members[i])
		}
		writes++
		if ms != -2 {
			live++
		}
	}
	if writes > 0 {
		if _, err := c.pipe(writes); err != nil {
			return 0, err
		}
	}
	return live, nil
}

func (s *Store) dieAll(ctx context.Context, cd codec, userID string) (int, error) {
	const op = "dieall"
	if !s.track {
		return 0, wrap(op, errNoTracking)
	}
	if err := checkUserID(op, userID); err != nil {
		return 0, err
	}
	c, err := s.conn(ctx)
	if err != nil {
		return 0, wrap(op, err)
	}
	defer c.close()
	// Take every index first, in indexIDs' order, then end what they held.
	ids := cd.indexIDs(userID)
	for _, id := range ids {
		c.sendEval(take, s.indexKey(id))
	}
	rs, err := c.pipe(len(ids))
	if err != nil {
		return 0, wrap(op, err)
	}
	var members []string
	for _, r := range rs {
		ms, err := redis.Strings(r, nil)
		if err != nil {
			return 0, wrap(op, err)
		}
		members = append(members, ms...)
	}
	if len(members) == 0 {
		return 0, nil
	}
	per := 1 + b2i(s.capped)
	for _, m := range members {
		c.send("DEL", s.keyOf(m))
		if s.capped {
			c.send("DEL", deadlineKey(s.keyOf(m)))
		}
	}
	waits := s.sendWait(&c)
	rs, err = c.pipe(per*len(members) + waits)
	if err != nil {
		return 0, wrap(op, err)
	}
	n := 0
	for i := 0; i < per*len(members); i += per {
		switch r := rs[i].(type) {
		case redis.Error:
			return n, wrap(op, r)
		case int64:
			n += int(r)
		}
	}
	if waits > 0 {
		return n, s.waited(op, rs[len(rs)-1])
	}
	return n, nil
}

func (s *Store) count(ctx context.Context, cd codec, userID string) (int, error) {
	const op = "count"
	if !s.track {
		return 0, wrap(op, errNoTracking)
	}
	if err := checkUserID(op, userID); err != nil {
		return 0, err
	}
	c, err := s.conn(ctx)
	if err != nil {
		return 0, wrap(op, err)
	}
	defer c.close()
	n := 0
	for _, id := range cd.indexIDs(userID) {
		idx := s.indexKey(id)
		members, err := redis.Strings(c.do("ZRANGE", idx, 0, -1))
		if err != nil {
			return 0, wrap(op, err)
		}
		if len(members) == 0 {
			continue
		}
		live, err := s.check(&c, idx, members)
		if err != nil {
			return 0, wrap(op, err)
		}
		n += live
	}
	return n, nil
}

func (s *Store) rotate(ctx context.Context, cd codec, token string) (string, error) {
	const op = "rotate"
	key, ok := s.tokenKey(token)
	if !ok {
		return "", ErrNotFound
	}
	c, err := s.conn(ctx)
	if err != nil {
		return "", wrap(op, err)
	}
	defer c.close()

	// Read the user and how much absolute life is left.
	c.send("GET", key)
	switch {
	case s.capped:
		c.send("PTTL", deadlineKey(key))
	case s.maxAge > 0:
		c.send("PTTL", key)
	}
	rs, err := c.pipe(1 + b2i(s.maxAge > 0))
	if err != nil {
		return "", wrap(op, err)
	}
	if rs[0] == nil {
		return "", ErrNotFound
	}
	val, err := redis.String(rs[0], nil)
	if err != nil {
		return "", wrap(op, err)
	}
	left := s.maxAge
	if s.maxAge > 0 {
		ms, err := redis.Int64(rs[1], nil)
		if err != nil {
			return "", wrap(op, err)
		}
		if ms == -2 || ms == 0 || (ms == -1 && s.capped) {
			return "", ErrNotFound
		}
		if ms > 0 {
			left = ms
		}
	}
	userID, err := cd.open(key, val)
	if err != nil {
		return "", wrap(op, err)
	}
	tok, nkey, err := s.newToken()
	if err != nil {
		return "", wrap(op, err)
	}
	nval, err := cd.seal(nkey, userID)
	if err != nil {
		return "", wrap(op, err)
	}

	var oldIdx, newIdx string
	var added bool
	if s.track {
		// Index the new token beside the old one, but only while the old one
		// is still indexed: once DieAll has taken that index, the old token
		// is as good as dead. When the new token belongs in another index
		// (Crypt's keys[0] after a key rotation), it is indexed there too and
		// leaves the old index once the old token has ended.
		oldIdx = s.indexKey(cd.indexID(userID, val))
		newIdx = s.indexKey(cd.indexID(userID, nval))
		now := time.Now()
		score := expiry(now, s.px(left))
		s.sendRegister(&c, oldIdx, s.member(nkey), score, now, s.member(key))
		if newIdx != oldIdx {
			s.sendRegister(&c, newIdx, s.member(nkey), score, now, "")
		}
		rs, err := c.pipe(1 + b2i(newIdx != oldIdx))
		if err != nil {
			return "", wrap(op, err)
		}
		for i := len(rs) - 1; i >= 0; i-- {
			if added, _, err = registered(rs[i]); err != nil {
				if newIdx != oldIdx {
					c.do("ZREM", newIdx, s.member(nkey))
				}
				return "", wrap(op, err)
			}
		}
	}

	// Create the new token, then end the old one. The old token's DEL
	// decides which of concurrent rotations wins; a DieAll that ended it
	// first wins over all of them.
	if err := s.sendSet(&c, nkey, nval, left); err != nil {
		return "", wrap(op, err)
	}
	c.send("DEL", s.keysOf(key)...)
	writes := 2
	if s.track {
		c.send("ZREM", oldIdx, s.member(key))
		writes++
		if newIdx != oldIdx {
			c.send("ZREM", oldIdx, s.member(nkey))
			writes++
		}
	}
	waits := s.sendWait(&c)
	rs, err = c.pipe(writes + waits)
	if err != nil {
		return "", wrap(op, err)
	}
	for _, r := range rs[:writes] {
		if e, ok := r.(redis.Error); ok {
			return "", wrap(op, e)
		}
	}
	ended, _ := redis.Int(rs[1], nil)
	switch {
	case !created(rs[0]):
		// A collision: the old token is ended all the same, which fails safe.
		if s.track && added {
			c.send("ZREM", oldIdx, s.member(nkey))
			c.send("ZREM", newIdx, s.member(nkey))
			c.do("")
		}
		return "", fmt.Errorf("sesh: %s: new token collided with a live one; Rand is not random", op)
	case ended == 0:
		// Another Rotate, Die or DieAll ended the old token first.
		c.send("DEL", s.keysOf(nkey)...)
		if s.track {
			c.send("ZREM", oldIdx, s.member(nkey))
			c.send("ZREM", newIdx, s.member(nkey))
		}
		if _, err := c.do(""); err != nil {
			return "", wrap(op, err)
		}
		return "", ErrNotFound
	}
	if waits > 0 {
		return tok, s.waited(op, rs[len(rs)-1])
	}
	return tok, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
