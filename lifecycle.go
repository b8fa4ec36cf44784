package sesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The user index is a sorted set per user. Token members name token keys
// (the hash inside the braces) and score when each token was last known to
// expire, in ms since the epoch (+inf for none). Lock members, "!" and a
// random suffix, mark a DieAll under way and score minus its lock's expiry,
// so locks sort below every token. The index lives in its own hash slot and
// every command on it touches it alone, so it works unchanged on Redis
// Cluster.
var (
	// register adds a token member, keeps the index alive at least as long
	// as its tokens can live, and returns {added, members due for a check}.
	// With ARGV[5] set, for Rotate, it first requires that member to be
	// indexed (false when it is not) and no DieAll to be under way (-1 when
	// one is).
	//
	// KEYS: index. ARGV: score, member, index ms (0: no expiry), now, required member.
	register = newScript(1, `
if ARGV[5] ~= '' then
  if not redis.call('ZSCORE', KEYS[1], ARGV[5]) then return false end
  local l = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(0', 'WITHSCORES', 'LIMIT', 0, 1)
  if #l > 0 and -tonumber(l[2]) > tonumber(ARGV[4]) then return -1 end
end
local added = redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl == 0 then
  redis.call('PERSIST', KEYS[1])
else
  local p = redis.call('PTTL', KEYS[1])
  if p == -1 or p < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return {added, redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[4], 'LIMIT', 0, 8)}`)

	// lock starts a DieAll: it drops expired locks, adds this one, and
	// returns every token member. The members stay indexed until their
	// tokens are deleted, so a concurrent DieAll ends them too.
	//
	// KEYS: index. ARGV: lock member, lock score, now.
	lock = newScript(1, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(-' .. ARGV[3], '(0')
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], 0, '+inf')`)
)

// lockTTL bounds how long a DieAll keeps Rotate waiting, should it die
// half-way.
const lockTTL = 10 * time.Second

// errLocked is register's answer while a DieAll is under way.
var errLocked = errors.New("a DieAll of this user is under way")

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
	case int64:
		return false, nil, errLocked
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

// userConn checks what DieAll and Count need and takes a connection.
func (s *Store) userConn(ctx context.Context, op, userID string) (conn, error) {
	if !s.track {
		return conn{}, wrap(op, errNoTracking)
	}
	if err := checkUserID(op, userID); err != nil {
		return conn{}, err
	}
	c, err := s.conn(ctx)
	return c, wrap(op, err)
}

func (s *Store) dieAll(ctx context.Context, cd codec, userID string) (int, error) {
	const op = "dieall"
	c, err := s.userConn(ctx, op, userID)
	if err != nil {
		return 0, err
	}
	defer c.close()
	// Lock every index and read it, then end what they hold, then drop
	// the entries and the locks.
	ids := cd.indexIDs(userID)
	var l [8]byte
	if _, err := rand.Read(l[:]); err != nil {
		return 0, wrap(op, err)
	}
	lockMember := "!" + hex.EncodeToString(l[:])
	now := time.Now()
	for _, id := range ids {
		c.sendEval(lock, s.indexKey(id), lockMember, -now.Add(lockTTL).UnixMilli(), now.UnixMilli())
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
	ended, err := s.end(&c, members)
	for _, m := range members {
		s.forget(s.keyOf(m))
	}
	// Drop the locks and the entries of the tokens ended here. An entry
	// whose DEL found nothing stays: its Set may have indexed it and not yet
	// written it, and a later DieAll must still find it. Check prunes it
	// once it is known dead.
	for _, id := range ids {
		args := []any{s.indexKey(id), lockMember}
		for _, m := range ended {
			args = append(args, m)
		}
		c.send("ZREM", args...)
	}
	if _, zerr := c.pipe(len(ids)); err == nil && zerr != nil {
		err = zerr
	}
	return len(ended), wrap(op, err)
}

// end deletes the tokens named by members, waiting for replicas when asked
// to, and returns the members whose tokens were live.
func (s *Store) end(c *conn, members []string) ([]string, error) {
	if len(members) == 0 {
		return nil, nil
	}
	per := 1 + b2i(s.capped)
	for _, m := range members {
		key := s.keyOf(m)
		c.send("DEL", key)
		if s.capped {
			c.send("DEL", deadlineKey(key))
		}
	}
	waits := s.sendWait(c)
	rs, err := c.pipe(per*len(members) + waits)
	if err != nil {
		return nil, err
	}
	var ended []string
	for i, r := range rs[:per*len(members)] {
		switch r := r.(type) {
		case redis.Error:
			return ended, r
		case int64:
			if i%per == 0 && r == 1 {
				ended = append(ended, members[i/per])
			}
		}
	}
	if waits > 0 {
		return ended, s.waited(rs[len(rs)-1])
	}
	return ended, nil
}

func (s *Store) count(ctx context.Context, cd codec, userID string) (int, error) {
	const op = "count"
	c, err := s.userConn(ctx, op, userID)
	if err != nil {
		return 0, err
	}
	defer c.close()
	n := 0
	for _, id := range cd.indexIDs(userID) {
		idx := s.indexKey(id)
		members, err := redis.Strings(c.do("ZRANGEBYSCORE", idx, 0, "+inf"))
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
	defer s.forget(key)
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
		// is still indexed and no DieAll is under way: otherwise DieAll
		// might miss the new token while ending the old one. When the new token belongs in another index
		// (Crypt's keys[0] after a key rotation), it is indexed there too and
		// leaves the old index once the old token has ended.
		oldIdx = s.indexKey(cd.indexID(userID, val))
		newIdx = s.indexKey(cd.indexID(userID, nval))
		// While a DieAll is under way, wait for it: it will either end the
		// old token or show it was not among those to end.
		for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
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
			added, _, err = registered(rs[0])
			if err == nil && len(rs) > 1 {
				_, _, err = registered(rs[1])
			}
			if err == nil {
				break
			}
			if newIdx != oldIdx {
				c.do("ZREM", newIdx, s.member(nkey))
			}
			if !errors.Is(err, errLocked) {
				return "", wrap(op, err)
			}
			select {
			case <-ctx.Done():
				return "", wrap(op, ctx.Err())
			case <-time.After(wait):
			}
		}
	}

	// Create the new token, then end the old one. The old token's DEL
	// decides which of concurrent rotations wins; a DieAll that ended it
	// first wins over all of them.
	if err := s.sendSet(&c, nkey, nval, left); err != nil {
		return "", wrap(op, err)
	}
	c.send("DEL", key) // alone, so its reply says whether this call ended it
	writes := 2
	if s.capped {
		c.send("DEL", deadlineKey(key))
		writes++
	}
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
		return tok, wrap(op, s.waited(rs[len(rs)-1]))
	}
	return tok, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
