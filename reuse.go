package sesh

import (
	"context"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Reuse detection (Options.ReuseDetection). The Rotate or Reauth that wins
// leaves a tombstone in the old token's slot (tombKey) naming the new
// token's key, and living as long as the session can: until its deadline,
// or for reuseHorizon without one. A miss of a well-formed token, by Get,
// Liv, Rotate or Reauth, looks for its tombstone; one found means a rotated
// token was presented after its window, and the chain is followed from
// tombstone to tombstone, ending each token on it. A hit never looks, so it
// costs nothing; a miss costs one round trip, and each token of an ended
// chain one more.

// tombKey names the tombstone a rotated token leaves: in its key's slot.
func tombKey(key string) string { return key + ":r" }

// maxChain bounds how many tokens one detection follows and ends: a chain
// read back from Redis is input, and could loop.
const maxChain = 64

// reuseHorizon is how long the tombstone of a session without a deadline
// lives: a day, or its idle TTL (in ms; 0 for none) when that is longer.
func reuseHorizon(idle int64) time.Duration {
	return max(24*time.Hour, time.Duration(idle)*time.Millisecond)
}

// unchain takes one step along a chain: it ends the token, takes its
// tombstone, and returns {the next token's member or empty, 1 when it ended a
// live token}.
//
// KEYS: token, deadline key (old layout), tombstone.
var unchain = newScript(3, `
local n = redis.call('GET', KEYS[3])
if n then redis.call('DEL', KEYS[3]) end
local e = redis.call('DEL', KEYS[1], KEYS[2])
return {n or '', e}`)

// missed is called when an operation o found no live token at key: with
// ReuseDetection, it looks for the tombstone of a rotated token, and ends
// its chain when there is one. What goes wrong here is logged, not
// returned: the operation's answer, ErrNotFound, stands.
func (s *Store) missed(ctx context.Context, o op, key string) {
	if !s.reuse {
		return
	}
	c, err := s.take(ctx, s.replicas == 0, false)
	if err != nil {
		s.log.Warn("sesh: reuse detection could not look for a tombstone", "op", o.String(), "err", err)
		return
	}
	defer c.Close()
	ended, found := 0, false
	for range maxChain {
		v, err := c.Eval(unchain, key, deadlineKey(key), tombKey(key))
		if err != nil {
			s.log.Warn("sesh: reuse detection failed half-way along a chain", "op", o.String(), "err", err)
			break
		}
		vs, err := redis.Values(v, nil)
		if err != nil || len(vs) != 2 {
			break
		}
		if n, _ := redis.Int(vs[1], nil); n == 1 && found {
			ended++
		}
		s.forget(key)
		next, _ := redis.String(vs[0], nil)
		if next == "" || !validMember(next) {
			break
		}
		found = true
		key = s.memberKey(next)
	}
	if !found {
		return
	}
	if ended > 0 && s.replicas > 0 {
		// With Replicas, the chain's end waits as Die's does.
		if err := s.runWaited(&c, nil); err != nil {
			s.log.Warn("sesh: reuse detection ended a chain that replicas may not have", "op", o.String(), "err", err)
		}
	}
	s.stats.reuses.Add(1)
	if t, ok := ctx.Value(tripsKey{}).(*tripsCtx); ok {
		t.reused.Store(true)
	}
	s.log.Warn("sesh: a rotated token was presented after its grace window; its session chain is ended", "op", o.String(), "ended", ended)
}
