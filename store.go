package sesh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// evalSrc runs sc with its source, in one round trip even on a server
// that has not met it yet: for an operation whose one round trip matters
// more than the bytes of its script.
func evalSrc(c *conn, sc *script, keysAndArgs ...any) (any, error) {
	c.SendEval(sc, keysAndArgs...)
	rs, err := c.Pipe(1)
	if err != nil {
		return nil, err
	}
	if e, ok := rs[0].(redis.Error); ok {
		return nil, e
	}
	return rs[0], nil
}

// nowMS is Lua that sets now to the server's wall clock in ms. It is read
// once, when a deadline is first set; from then on the deadline is carried
// as that absolute time, never as a remaining life, so no gap between round
// trips, no app server's clock and no drift between TIME and Redis's own
// expiry clock can move it.
const nowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// setArgs are create's keys and arguments for a new session of key holding
// val, under policy p; indexed records its index entry. The session's
// authentication time is now; fields are more of its record's fields, as
// name and value pairs.
func setArgs(key, val string, p policy, indexed bool, fields ...string) []any {
	dl := int64(-1)
	if p.maxAge > 0 {
		dl = 0
	}
	args := make([]any, 0, 8+len(fields))
	args = append(args, key, val, p.ttl, dl, p.maxAge, xMark(indexed, fields), "a", "")
	for _, f := range fields {
		args = append(args, f)
	}
	return args
}

// created reports whether a reply to create created the key.
func created(r any) bool { return r == int64(1) }

func (s *Store) set(ctx context.Context, cd codec, userID string, pp Policy) (string, error) {
	const op = "set"
	if err := checkUserID(op, userID); err != nil {
		return "", err
	}
	p, err := s.policy(pp)
	if err != nil {
		return "", wrap(op, err)
	}
	c, err := s.take(ctx, !s.track || s.replicas == 0, false)
	if err != nil {
		return "", wrap(op, err)
	}
	defer c.Close()
	fields, err := s.newFields(p)
	if err != nil {
		return "", wrap(op, err)
	}
	for tries, rooms, waits := 0, 0, 0; tries < maxTries; {
		tok, key, err := s.newToken()
		if err != nil {
			return "", wrap(op, err)
		}
		val, err := cd.seal(key, userID)
		if err != nil {
			return "", wrap(op, err)
		}
		ok, err := s.create(ctx, &c, cd, userID, key, val, p, fields)
		switch {
		case err == nil && !ok:
			tries++
		case err != nil && rooms < maxRooms:
			if full := (*fullError)(nil); errors.As(err, &full) {
				// The cap is reached: make room, and try again.
				rooms++
				err = s.makeRoom(&c, s.indexKey(cd.indexID(userID, "")), full.members)
				if errors.Is(err, errRoomSoon) {
					err = waitRoom(ctx, waits)
					waits++
				}
			}
		}
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
// reports false when the key already existed. fields are more of the
// record's fields, as name and value pairs.
func (s *Store) create(ctx context.Context, c *conn, cd codec, userID, key, val string, p policy, fields []string) (bool, error) {
	args := setArgs(key, val, p, s.track, fields...)
	if !s.track {
		// By hash: the script's source costs Redis about 2 µs a call to
		// hash again. A server that has not met it (restarted, failed
		// over) answers NOSCRIPT, and Eval sends the source then.
		r, err := c.Eval(create, args...)
		return created(r), err
	}
	// The index entry goes first, in the same round trip: a crash between
	// the two leaves a harmless dangling entry, never an unindexed token.
	idx := s.indexKey(cd.indexID(userID, ""))
	member := s.member(key)
	s.sendRegisterCap(c, idx, member, p.px(), 0, p.maxAge, "", s.maxSess)
	c.SendEval(create, args...)
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
	return s.settleCreate(ctx, c, rs, waits, key, idx, member)
}

// settleCreate reads the replies rs of an indexed create's round trip, with
// waits WAIT replies last: it reports the token created, or undoes what the
// round trip left.
func (s *Store) settleCreate(ctx context.Context, c *conn, rs []any, waits int, key, idx, member string) (bool, error) {
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
		var err error
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
	userID, err := s.getFrom(ctx, cd, token)
	if s.reuse && errors.Is(err, ErrNotFound) {
		if key, ok := s.tokenKey(token); ok {
			s.missed(ctx, opGet, key)
		}
	}
	return userID, err
}

// getFrom is get from the cache or Redis.
func (s *Store) getFrom(ctx context.Context, cd codec, token string) (string, error) {
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
// it is shorter than MaxAge. It is the old layout's rule, by this Store's
// Options; a record carries its own.
func (s *Store) restarts() bool { return s.ttl > 0 && (s.maxAge == 0 || s.capped) }

// legacyTTL is the idle TTL a restart gives a session of the old layout, as
// this Store's Options gave it then: 0 for none.
func (s *Store) legacyTTL() int64 {
	if s.restarts() {
		return s.ttl
	}
	return 0
}

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
	var last []byte // the record's last use, with Details
	switch {
	case s.details:
		v, last, err = s.readUse(&c, key)
	case s.sliding:
		v, err = c.Eval(touch, key, deadlineKey(key), s.legacyTTL(), b2i(s.capped), 1)
	default:
		// One command for a record; a session of the old layout pays a
		// second round trip.
		if v, err = c.Do("HGET", key, "u"); wrongType(err) {
			v, err = c.Do("GET", key)
		}
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
	if err == nil && s.details && useDue(s, last, time.Now()) {
		// A last use that could not be recorded fails no Get.
		s.recordUse(&c, key)
	}
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
	// PEXPIRE never creates a key, so an ended token stays ended.
	v, err := c.Eval(touch, key, deadlineKey(key), s.legacyTTL(), b2i(s.capped), 0)
	if err != nil {
		return wrap(op, err)
	}
	if v == nil {
		s.missed(ctx, opLiv, key)
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
	// HMGET names the user of an indexed session, so the entry can go too;
	// the DEL that follows ends it, whichever Store made it. A session of
	// the old layout answers HMGET with WRONGTYPE: its entry, if any, is
	// pruned later.
	c.Send("HMGET", key, "u", "x", "p", "g", "h")
	c.Send("DEL", key, deadlineKey(key))
	waits := s.sendWait(&c)
	rs, err := c.Pipe(2 + waits)
	if err != nil {
		return wrap(op, err)
	}
	for _, r := range rs[1:] {
		if e, ok := r.(redis.Error); ok {
			return wrap(op, e)
		}
	}
	var more [][]any
	if rec, _ := redis.Values(rs[0], nil); len(rec) == 5 {
		if rec[0] != nil && (rec[1] != nil || rec[4] != nil) {
			if val, err := redis.String(rec[0], nil); err == nil {
				// An entry that cannot be named here is pruned later.
				if userID, err := cd.open(key, val); err == nil {
					more = append(more, []any{"ZREM", s.indexKey(cd.indexID(userID, val)), s.member(key)})
				}
			}
		}
		// A token in its window ends with its successor, and a successor
		// with its predecessor: either one ends the session.
		raw, _ := rawToken(token)
		more = append(more, s.chainEnds(raw, rec[2], rec[3])...)
	}
	var werr, merr error
	if waits > 0 {
		werr = s.waited(rs[len(rs)-1])
	}
	if len(more) > 0 {
		// With Replicas, the neighbours' ends are revocations too: they
		// wait as the token's own did, whatever its WAIT answered.
		merr = s.runWaited(&c, more)
	}
	return wrap(op, cmp.Or(merr, werr))
}

// runWaited runs cmds on c in one round trip, with a WAIT for
// Options.Replicas after them.
func (s *Store) runWaited(c *conn, cmds [][]any) error {
	for _, cmd := range cmds {
		c.Send(cmd[0].(string), cmd[1:]...)
	}
	waits := s.sendWait(c)
	rs, err := c.Pipe(len(cmds) + waits)
	if err != nil {
		return err
	}
	for _, r := range rs[:len(cmds)] {
		if e, ok := r.(redis.Error); ok {
			return e
		}
	}
	if waits > 0 {
		return s.waited(rs[len(rs)-1])
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
