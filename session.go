package sesh

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Session is what sesh knows of one live session, from [Store.Lookup]. It
// never holds the token.
type Session struct {
	// UserID is the session's user.
	UserID string

	// Handle names the session among its user's, stably across Rotate, so
	// that a page can say "this device". It is not a secret: nothing learnt
	// from it helps to resolve or forge a token. It is "" for a session
	// outside its user's index (made without Options.TrackUsers).
	Handle string

	// AuthTime is when the session's user last authenticated: its Set, or
	// its last Reauth. Rotate keeps it. It reads the server's clock, and is
	// zero for a session written before sesh recorded it.
	AuthTime time.Time

	// Created is when the session's token chain began, LastUse when it was
	// last used (to within Options.LastUseInterval), and Label what the app
	// gave SetWith. They are zero without Options.Details.
	Created, LastUse time.Time
	Label            string

	// IdleExpiry is when the session ends unless it is used (Liv, or a
	// sliding Get), as the app server's clock reads it; the zero Time when it
	// never does. Deadline is when it ends whatever happens (its MaxAge), on
	// the server's clock; the zero Time for none.
	IdleExpiry, Deadline time.Time
}

// Lookup is Get with the fuller answer: the user ID of a live token with
// what sesh knows of its session, or ErrNotFound. It takes one round trip,
// also with Options.CacheSize, whose cache it does not use. With Sliding it
// restarts the idle TTL, as Get does.
func (s *Store) Lookup(ctx context.Context, token string) (Session, error) {
	return s.runLookup(ctx, plain{}, token)
}

// Lookup is Get with the fuller answer. See Store.Lookup.
func (c *Crypt) Lookup(ctx context.Context, token string) (Session, error) {
	return c.s.runLookup(ctx, c, token)
}

// recordFields are the fields Lookup reads, in the order of Session's.
var recordFields = []any{"u", "h", "a", "c", "s", "l", "d"}

func (s *Store) lookup(ctx context.Context, cd codec, token string) (Session, error) {
	const op = "lookup"
	key, ok := s.tokenKey(token)
	if !ok {
		return Session{}, ErrNotFound
	}
	c, err := s.take(ctx, true, false)
	if err != nil {
		return Session{}, wrap(op, err)
	}
	defer c.Close()
	n := 2
	if s.sliding {
		c.SendEval(touch, key, deadlineKey(key), s.legacyTTL(), b2i(s.capped), 0)
		n++
	}
	c.Send("HMGET", append([]any{key}, recordFields...)...)
	c.Send("PTTL", key)
	now := time.Now()
	rs, err := c.Pipe(n)
	if err != nil {
		return Session{}, wrap(op, err)
	}
	rs = rs[n-2:]
	if e, ok := rs[0].(redis.Error); ok && wrongType(e) {
		return s.lookupLegacy(&c, cd, key, now)
	}
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			return Session{}, wrap(op, e)
		}
	}
	vs, err := redis.Strings(rs[0], nil)
	ttl, err1 := redis.Int64(rs[1], nil)
	if err != nil || err1 != nil || len(vs) != len(recordFields) {
		return Session{}, wrap(op, fmt.Errorf("unexpected HMGET reply, %s", shape(rs[0])))
	}
	if vs[0] == "" || ttl == -2 {
		return Session{}, ErrNotFound
	}
	se, err := sessionOf(cd, key, vs, ttl, now)
	if err == nil && s.details && useDue(s, vs[4], now) {
		// A last use that could not be recorded fails no Lookup.
		s.recordUse(&c, key)
	}
	return se, wrap(op, err)
}

// sessionOf reads a record's fields, in recordFields' order, and its key's
// PTTL read at now.
func sessionOf(cd codec, key string, vs []string, pttl int64, now time.Time) (Session, error) {
	userID, err := cd.open(key, vs[0])
	if err != nil {
		return Session{}, err
	}
	se := Session{
		UserID:   userID,
		Handle:   vs[1],
		AuthTime: unixField(vs[2], time.Millisecond),
		Created:  unixField(vs[3], time.Millisecond),
		LastUse:  unixField(vs[4], time.Millisecond),
		Label:    vs[5],
		Deadline: unixField(vs[6], time.Millisecond),
	}
	if pttl >= 0 {
		se.IdleExpiry = now.Add(time.Duration(pttl) * time.Millisecond)
	}
	return se, nil
}

// unixField reads a record's time field, counted in unit since the epoch;
// the zero Time when it is absent or not a positive number.
func unixField(v string, unit time.Duration) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > int64(1<<62)/int64(unit) {
		return time.Time{}
	}
	return time.Unix(0, n*int64(unit))
}

// lookupLegacy is Lookup of a session written before records: the user ID
// and the key's expiry, with the deadline its deadline key holds.
func (s *Store) lookupLegacy(c *conn, cd codec, key string, now time.Time) (Session, error) {
	const op = "lookup"
	c.Send("GET", key)
	c.Send("PTTL", key)
	c.Send("GET", deadlineKey(key))
	rs, err := c.Pipe(3)
	if err != nil {
		return Session{}, wrap(op, err)
	}
	if rs[0] == nil {
		return Session{}, ErrNotFound
	}
	val, err := redis.String(rs[0], nil)
	ttl, err1 := redis.Int64(rs[1], nil)
	if err != nil || err1 != nil {
		return Session{}, wrap(op, fmt.Errorf("unexpected GET reply, %s", shape(rs[0])))
	}
	dl, _ := redis.String(rs[2], nil)
	if dl == "1" {
		// A deadline key from before sesh wrote the deadline into it.
		dl = ""
	}
	se, err := sessionOf(cd, key, []string{val, "", "", "", "", "", dl}, ttl, now)
	return se, wrap(op, err)
}
