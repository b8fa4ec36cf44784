package sesh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// nowMS is Lua that sets now to the server's wall clock in ms. It is read
// once, when a deadline is first set; from then on the deadline is carried
// as that absolute time, never as a remaining life, so no gap between round
// trips, no app server's clock and no drift between TIME and Redis's own
// expiry clock can move it.
const nowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// Scripts for tokens with a deadline. Whenever MaxAge is set, a deadline key
// (same hash slot) holds the token's absolute deadline, in ms since the
// epoch, and expires at it (PXAT). Whatever restarts an idle TTL consults
// it, whatever the caller's Options, so no Store can extend a token past
// the deadline its Set gave it. In the capped mode, where the idle TTL is
// shorter than MaxAge, a token key found without its deadline key predates
// MaxAge and cannot prove its age, so it is ended; elsewhere a token without
// one has no deadline.
var (
	// create creates a token key that lives idle ms (0: no idle expiry),
	// and with a deadline (ARGV[3] > 0, or now + MaxAge when 0) writes the
	// deadline key and caps the token at it. It returns 1, 0 when the key
	// exists, and -1 when the deadline has passed.
	//
	// KEYS: token, deadline. ARGV: value, idle ms, deadline (-1: none), MaxAge ms.
	create = newScript(2, `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local px, dl = tonumber(ARGV[2]), tonumber(ARGV[3])
if dl == 0 then
  `+nowMS+`
  dl = now + tonumber(ARGV[4])
end
if dl > 0 then
  local at = string.format('%.0f', dl)
  redis.call('SET', KEYS[2], at, 'PXAT', at)
  local left = redis.call('PTTL', KEYS[2])
  if left <= 0 then
    redis.call('DEL', KEYS[2])
    return -1
  end
  if px == 0 or left < px then px = left end
end
if px > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
else redis.call('SET', KEYS[1], ARGV[1]) end
return 1`)

	// deadline reads a token for Rotate: its value and its absolute
	// deadline (-1: none), or nil when it is not live.
	//
	// KEYS: token, deadline. ARGV: strict ('1' in capped mode), MaxAge ms.
	deadline = newScript(2, `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local left = redis.call('PTTL', KEYS[2])
if left >= 0 then
  if left == 0 then return false end
  local dl = tonumber(redis.call('GET', KEYS[2]))
  if dl and dl > 1 then return {v, string.format('%.0f', dl)} end
  -- A deadline key from before sesh wrote the deadline into it.
else
  if ARGV[1] == '1' then return false end
  if tonumber(ARGV[2]) == 0 then return {v, -1} end
  -- Set before deadline keys were written whenever MaxAge is set: the
  -- token's own expiry is its deadline.
  left = redis.call('PTTL', KEYS[1])
  if left == -1 then left = tonumber(ARGV[2]) end
  if left <= 0 then return false end
end
`+nowMS+`
return {v, string.format('%.0f', now + left)}`)

	// restart restarts a token's idle TTL, capped by its deadline key.
	//
	// KEYS: token, deadline. ARGV: idle ms, strict ('1' in capped mode).
	restart = newScript(2, `
local t = tonumber(ARGV[1])
local d = redis.call('PTTL', KEYS[2])
if d >= 0 then
  if d == 0 then redis.call('DEL', KEYS[1]) return 0 end
  if d < t then t = d end
elseif ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
  return 0
end
return redis.call('PEXPIRE', KEYS[1], t)`)

	// getRestart is GET and restart in one.
	//
	// KEYS: token, deadline. ARGV: idle ms, strict ('1' in capped mode).
	getRestart = newScript(2, `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local t = tonumber(ARGV[1])
local d = redis.call('PTTL', KEYS[2])
if d >= 0 then
  if d == 0 then redis.call('DEL', KEYS[1]) return false end
  if d < t then t = d end
elseif ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
  return false
end
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

// setCmd is the command that creates a token key holding val: one
// SET NX PX, or with MaxAge one script (sent with its source, so a pipeline
// never meets NOSCRIPT) that also writes the deadline key.
func (s *Store) setCmd(key, val string) (string, []any) {
	switch {
	case s.maxAge > 0:
		return "EVAL", create.EvalArgs(key, deadlineKey(key), val, s.ttl, 0, s.maxAge)
	case s.ttl > 0:
		return "SET", []any{key, val, "NX", "PX", s.ttl}
	default:
		return "SET", []any{key, val, "NX"}
	}
}

// created reports whether a reply to setCmd's command or to create created
// the key.
func created(r any) bool { return r == int64(1) || r == "OK" }

func (s *Store) set(ctx context.Context, cd codec, userID string) (string, error) {
	const op = "set"
	if err := checkUserID(op, userID); err != nil {
		return "", err
	}
	c, err := s.take(ctx, !s.track || s.replicas == 0, false)
	if err != nil {
		return "", wrap(op, err)
	}
	defer c.Close()
	for range maxTries {
		tok, key, err := s.newToken()
		if err != nil {
			return "", wrap(op, err)
		}
		val, err := cd.seal(key, userID)
		if err != nil {
			return "", wrap(op, err)
		}
		ok, err := s.create(ctx, &c, cd, userID, key, val)
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
func (s *Store) create(ctx context.Context, c *conn, cd codec, userID, key, val string) (bool, error) {
	cmd, args := s.setCmd(key, val)
	if !s.track {
		r, err := c.Do(cmd, args...)
		return created(r), err
	}
	// The index entry goes first, in the same round trip: a crash between
	// the two leaves a harmless dangling entry, never an unindexed token.
	idx := s.indexKey(cd.indexID(userID, ""))
	member := s.member(key)
	s.sendRegister(c, idx, member, s.px(s.maxAge), 0, "")
	c.Send(cmd, args...)
	// With Replicas, the entry must be on the replicas before the token is
	// handed out: a failover that lost the entry but kept the token (on
	// Cluster they live on different masters) would hide it from DieAll.
	waits := s.sendWait(c)
	start := time.Now()
	rs, err := c.Pipe(2 + waits)
	if err == nil && time.Since(start) > createWindow/2 {
		// The index outlives the token by createWindow at most: a token
		// written later than that after its entry could outlive it.
		err = fmt.Errorf("writing the token took %v, more than %v", time.Since(start).Round(time.Millisecond), createWindow/2)
	}
	if err != nil {
		// Whether the token was written is unknown: it must not live
		// unindexed, and its entry goes once it is known dead.
		s.cleanup(ctx, c, true, []any{"DEL", key, deadlineKey(key)})
		return false, err
	}
	added, due, regErr := registered(rs[0])
	if e, ok := rs[1].(redis.Error); ok {
		regErr = errors.Join(regErr, e)
	}
	ok := created(rs[1])
	switch {
	case regErr != nil && ok:
		// The token must not live unindexed.
		return false, errors.Join(regErr, s.cleanup(ctx, c, false, []any{"DEL", key, deadlineKey(key)}))
	case regErr != nil:
		return false, regErr
	case !ok:
		// The key was another token's: take back the entry if it was ours.
		if added {
			err = s.cleanup(ctx, c, false, []any{"ZREM", idx, member})
		}
		return false, err
	}
	if waits > 0 {
		if err := s.waited(rs[2]); err != nil {
			// Nobody has the token yet: end it rather than hand out one
			// that a failover could hide from DieAll.
			return false, errors.Join(err, s.cleanup(ctx, c, false, []any{"DEL", key, deadlineKey(key)}, []any{"ZREM", idx, member}))
		}
	}
	if len(due) > 0 {
		if _, err := s.prune(c, idx, due); err != nil {
			return false, err
		}
	}
	return true, nil
}

// cleanup runs cmds, each a command and its arguments, to put back what a
// failed or losing operation left behind. When failed, c may be broken or
// its context done, so cmds run on a fresh connection, bounded by
// cleanupTimeout whatever ctx says. Other cleanups run on c, and on a
// fresh connection too if ctx ends meanwhile.
//
// A failed cleanup never races what it cleans up: when c's caller gave up
// on a round trip that may run yet, cmds wait until it has been answered.
// If that takes longer than cleanupTimeout, they run in the background once
// it has, and cleanup returns the timeout's error.
func (s *Store) cleanup(ctx context.Context, c *conn, failed bool, cmds ...[]any) error {
	if !failed {
		err := runCleanup(c, cmds)
		if err == nil || ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// The caller gave up meanwhile: what it left must still go.
	}
	ctx = context.WithoutCancel(ctx)
	tctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	if !c.Settled(tctx) {
		ready := c.Unsettled()
		s.later.Add(1)
		go func() {
			defer s.later.Done()
			<-ready
			s.cleanupFresh(ctx, cmds)
		}()
		return fmt.Errorf("cleanup waits for the round trip it undoes: %w", tctx.Err())
	}
	return s.cleanupFresh(tctx, cmds)
}

// cleanupFresh runs cmds on a fresh connection, within cleanupTimeout.
func (s *Store) cleanupFresh(ctx context.Context, cmds [][]any) error {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	fresh, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer fresh.Close()
	return runCleanup(&fresh, cmds)
}

// runCleanup runs cmds on c, in one round trip.
func runCleanup(c *conn, cmds [][]any) error {
	for _, cmd := range cmds {
		c.Send(cmd[0].(string), cmd[1:]...)
	}
	rs, err := c.Pipe(len(cmds))
	if err != nil {
		return err
	}
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			return e
		}
	}
	return nil
}

// cleanupTimeout bounds a cleanup after a failed or cancelled operation,
// which has a fresh connection and its own time: it is the slack by which a
// method may overrun its context, when Redis answers slowly. What a cleanup
// leaves undone is harmless or bounded: an index entry of a dead token,
// pruned later; a new token nobody was given, which expires; or a DieAll
// lock, which expires lockSlack after the DieAll's deadline.
const cleanupTimeout = 250 * time.Millisecond

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

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// restarts reports whether the idle TTL can be restarted: there is one, and
// it is shorter than MaxAge.
func (s *Store) restarts() bool { return s.ttl > 0 && (s.maxAge == 0 || s.capped) }

// fetch is Get on Redis alone: one round trip, which restarts the TTL when
// Sliding.
func (s *Store) fetch(ctx context.Context, cd codec, key string) (string, error) {
	v, _, err := s.fetchOn(ctx, cd, key, false)
	return v, err
}

// fetchOn is fetch, on a lane even when alone with onLane, and also
// returns the master that answered, when a lane on Cluster says ("" when
// none does).
func (s *Store) fetchOn(ctx context.Context, cd codec, key string, onLane bool) (userID, addr string, err error) {
	const op = "get"
	c, err := s.take(ctx, true, onLane)
	if err != nil {
		return "", "", wrap(op, err)
	}
	defer c.Close()
	var v any
	if s.sliding && s.restarts() {
		v, err = c.Eval(getRestart, key, deadlineKey(key), s.ttl, b2i(s.capped))
	} else {
		v, err = c.Do("GET", key)
	}
	if err != nil {
		return "", "", wrap(op, err)
	}
	if v == nil {
		return "", c.Addr(), ErrNotFound
	}
	val, err := redis.String(v, nil)
	if err != nil {
		return "", "", wrap(op, err)
	}
	userID, err = cd.open(key, val)
	return userID, c.Addr(), wrap(op, err)
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
	defer c.Close()
	var v any
	if s.restarts() {
		// PEXPIRE never creates a key, so an ended token stays ended.
		v, err = c.Eval(restart, key, deadlineKey(key), s.ttl, b2i(s.capped))
	} else {
		// Forever, or a TTL no shorter than MaxAge: nothing to extend.
		v, err = c.Do("EXISTS", key)
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
	c, err := s.take(ctx, s.replicas == 0, false)
	if err != nil {
		return wrap(op, err)
	}
	defer c.Close()
	n := 1
	if s.track {
		// GETDEL names the user, so the index entry can go too.
		c.Send("GETDEL", key)
	} else {
		c.Send("DEL", key)
	}
	if s.maxAge > 0 {
		c.Send("DEL", deadlineKey(key))
		n++
	}
	waits := s.sendWait(&c)
	rs, err := c.Pipe(n + waits)
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
				if _, err := c.Do("ZREM", s.indexKey(cd.indexID(userID, val)), s.member(key)); err != nil {
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
	if c.Shared() {
		// take gives no lane to an operation that waits.
		panic("sesh: WAIT on a shared connection")
	}
	c.Send("WAIT", s.replicas, s.waitMS)
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
