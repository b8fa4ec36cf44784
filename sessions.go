package sesh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Sessions returns the live sessions of userID, oldest first (by
// AuthTime, then Handle): each one's handle, details and expiry, never its
// token. It needs Options.TrackUsers, and lists the sessions in the user's
// index: those made by a Store with TrackUsers. It never lists a session
// that has ended or expired, and drops the index entries of those it meets.
//
// Its cost grows with the user's sessions only: one round trip for the
// index, and one per 512 sessions, whose records it reads with HMGET and
// PTTL. See docs/sessions.md for a user with 10,000 sessions.
func (s *Store) Sessions(ctx context.Context, userID string) ([]Session, error) {
	return s.runSessions(ctx, plain{}, userID)
}

// DieSession ends the session of userID whose handle is handle, as Die ends
// its token: its record and its index entry go, with Options.Replicas
// waited for. It returns ErrNotFound when userID has no live session of
// that handle, which is what a handle of another user's session gets: a
// handle never ends a session of another user. It needs Options.TrackUsers.
func (s *Store) DieSession(ctx context.Context, userID, handle string) error {
	return s.runDieSession(ctx, plain{}, userID, handle)
}

// DieOthers ends every session of token's user but token's own, and returns
// how many it ended: "log out my other devices". It gives DieAll's
// guarantee: no session of the user created before DieOthers began, but
// the caller's, can be used once it returns, whatever Set, Rotate and
// DieAll calls run meanwhile. The caller's session is kept by its handle,
// so that a Rotate of it during the call keeps it too. It returns
// ErrNotFound when token is not live, and needs Options.TrackUsers.
func (s *Store) DieOthers(ctx context.Context, token string) (int, error) {
	return s.runDieOthers(ctx, plain{}, token)
}

// DieEverything ends every session of every user under the Store's
// Prefix, for an administrator after a breach, and returns how many it
// ended. It needs no index: it scans every master (SCAN, on Cluster each
// master in turn) for the Prefix's token keys, and ends each session whose
// user authenticated before the call began, or that predates the record.
// It scans again until a scan ends nothing, at most 8 times, so that a
// token that a Rotate issued meanwhile (which keeps the authentication
// time) ends too.
//
// No token issued before DieEverything began resolves once it returns, but
// for a Rotate that moves a session behind the last scan's cursor during
// that very scan (see docs/sessions.md). Caches hear of each end as of a
// Die: a Store's own forgets at once, others within their bound. Sessions
// that users create while it runs are kept. Index entries of ended
// sessions are pruned later, as those of expired ones are. It logs the
// count at Warn. It costs a pass over the whole keyspace: it is not for a
// request path.
func (s *Store) DieEverything(ctx context.Context) (int, error) {
	return s.runDieEverything(ctx)
}

// Sessions returns the live sessions of userID. See Store.Sessions. It
// reads the indexes of every key c holds, and each session's user ID,
// which Redis holds sealed.
func (c *Crypt) Sessions(ctx context.Context, userID string) ([]Session, error) {
	return c.s.runSessions(ctx, c, userID)
}

// DieSession ends the session of userID whose handle is handle. See
// Store.DieSession.
func (c *Crypt) DieSession(ctx context.Context, userID, handle string) error {
	return c.s.runDieSession(ctx, c, userID, handle)
}

// DieOthers ends every session of token's user but token's own. See
// Store.DieOthers.
func (c *Crypt) DieOthers(ctx context.Context, token string) (int, error) {
	return c.s.runDieOthers(ctx, c, token)
}

// DieEverything ends every session under the Store's Prefix. See
// Store.DieEverything; a Crypt's sessions are no different.
func (c *Crypt) DieEverything(ctx context.Context) (int, error) {
	return c.s.runDieEverything(ctx)
}

// listChunk is how many records Sessions and DieSession read per round
// trip: a bounded reply, whatever the user's count.
const listChunk = 512

// member is one index entry as Sessions reads it: its token's record, in
// recordFields' order (nil when the token is gone), and its key's PTTL.
type indexed struct {
	idx, member string
	fields      []string
	pttl        int64
}

// readIndex reads userID's index entries, and for each its record's fields
// (names) and PTTL, listChunk entries per round trip. A session of the old
// layout is read with GET, into the first field. Entries whose token is
// gone have no fields.
func (s *Store) readIndex(c *conn, cd codec, userID string, names []any) ([]indexed, error) {
	var out []indexed
	for _, id := range cd.indexIDs(userID) {
		idx := s.indexKey(id)
		ms, err := redis.Strings(c.Do("ZRANGEBYSCORE", idx, 0, "+inf"))
		if err != nil {
			return nil, err
		}
		ms, _ = validMembers(ms)
		for chunk := range slices.Chunk(ms, listChunk) {
			// Each command name in a run of its own: on Cluster, seshcluster
			// sends a run of one name to every master in one round trip.
			for _, m := range chunk {
				c.Send("HMGET", append([]any{s.memberKey(m)}, names...)...)
			}
			for _, m := range chunk {
				c.Send("PTTL", s.memberKey(m))
			}
			rs, err := c.Pipe(2 * len(chunk))
			if err != nil {
				return nil, err
			}
			recs, ttls := rs[:len(chunk)], rs[len(chunk):]
			for i, m := range chunk {
				e := indexed{idx: idx, member: m}
				if e.pttl, err = redis.Int64(ttls[i], nil); err != nil {
					return nil, err
				}
				if r, ok := recs[i].(redis.Error); ok && wrongType(r) {
					v, err := redis.String(c.Do("GET", s.memberKey(m)))
					if err == nil {
						e.fields = make([]string, len(names))
						e.fields[0] = v
					} else if !errors.Is(err, redis.ErrNil) {
						return nil, err
					}
				} else if vs, err := redis.Values(recs[i], nil); err != nil || len(vs) != len(names) {
					return nil, fmt.Errorf("unexpected HMGET reply, %s", shape(recs[i]))
				} else if vs[0] != nil {
					e.fields, _ = redis.Strings(vs, nil)
				}
				if e.pttl == -2 {
					e.fields = nil
				}
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func (s *Store) sessions(ctx context.Context, cd codec, userID string) ([]Session, error) {
	const op = "sessions"
	c, err := s.userConn(ctx, op, userID, true)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	start := time.Now()
	es, err := s.readIndex(&c, cd, userID, recordFields)
	if err != nil {
		return nil, wrap(op, err)
	}
	var list []Session
	var gone []indexed
	for _, e := range es {
		if e.fields == nil {
			gone = append(gone, e)
			continue
		}
		se, err := sessionOf(cd, s.memberKey(e.member), e.fields, e.pttl, start)
		if err != nil || se.UserID != userID {
			// A value that does not open, or another user's, is not this
			// user's session: never listed.
			continue
		}
		list = append(list, se)
	}
	if len(gone) > 0 && time.Since(start) < createWindow/2 {
		// What was read may predate tokens written since: then judge nothing.
		if err := s.dropGone(&c, gone); err != nil {
			return nil, wrap(op, err)
		}
	}
	return oneEach(list), nil
}

// oneEach sorts a list of sessions, oldest first, and keeps one record of
// each handle: a session has two for a moment while a Rotate's old token
// lives on beside its new one, which is the one that expires last.
func oneEach(list []Session) []Session {
	later := func(a, b time.Time) int {
		switch {
		case a.Equal(b):
			return 0
		case a.IsZero():
			return 1
		case b.IsZero():
			return -1
		}
		return a.Compare(b)
	}
	slices.SortFunc(list, func(a, b Session) int {
		return cmp.Or(a.AuthTime.Compare(b.AuthTime), cmp.Compare(a.Handle, b.Handle), -later(a.IdleExpiry, b.IdleExpiry))
	})
	return slices.CompactFunc(list, func(a, b Session) bool { return a.Handle != "" && a.Handle == b.Handle })
}

// dropGone drops the entries of gone tokens that are due, as a check does.
func (s *Store) dropGone(c *conn, gone []indexed) error {
	byIdx := map[string][]any{}
	for _, e := range gone {
		byIdx[e.idx] = append(byIdx[e.idx], e.member, -2)
	}
	for idx, pairs := range byIdx {
		c.SendEval(rescore, append([]any{idx, recheck.Milliseconds()}, pairs...)...)
	}
	rs, err := c.Pipe(len(byIdx))
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

func (s *Store) dieSession(ctx context.Context, cd codec, userID, handle string) error {
	const op = "diesession"
	if s.track && !validHandle(handle) && checkUserID(op, userID) == nil {
		return ErrNotFound // before any connection
	}
	c, err := s.userConn(ctx, op, userID, s.replicas == 0)
	if err != nil {
		return err
	}
	defer c.Close()
	// Every record of the handle ends: a session has two for a moment
	// while a Rotate's old token lives on beside its new one.
	endedAny := false
	for range maxTries {
		es, err := s.readIndex(&c, cd, userID, []any{"u", "h"})
		if err != nil {
			return wrap(op, err)
		}
		es = slices.DeleteFunc(es, func(e indexed) bool {
			if e.fields == nil || e.fields[1] != handle {
				return true
			}
			u, err := cd.open(s.memberKey(e.member), e.fields[0])
			return err != nil || u != userID
		})
		if len(es) == 0 && endedAny {
			return nil
		}
		if len(es) == 0 {
			return ErrNotFound
		}
		all := true
		for _, e := range es {
			ended, err := s.endMember(&c, e.idx, e.member)
			if err != nil {
				return wrap(op, err)
			}
			endedAny, all = endedAny || ended, all && ended
		}
		if all {
			return nil
		}
		// A record went between the read and the DEL: ended, or rotated
		// to a new token, which the next read finds.
	}
	return wrap(op, errors.New("the session's token kept changing"))
}

// endMember ends the token of an index member, as Die does, and reports
// whether it was live: the token's keys in one round trip, then its entry,
// so that no token lives without its entry, even on Cluster.
func (s *Store) endMember(c *conn, idx, member string) (bool, error) {
	key := s.memberKey(member)
	defer s.forget(key)
	c.Send("DEL", key) // alone, so its reply says whether the token was live
	c.Send("DEL", deadlineKey(key))
	waits := s.sendWait(c)
	rs, err := c.Pipe(2 + waits)
	if err != nil {
		return false, err
	}
	for _, r := range rs[:2] {
		if e, ok := r.(redis.Error); ok {
			return false, e
		}
	}
	if rs[0] != int64(1) {
		return false, nil
	}
	if _, err := c.Do("ZREM", idx, member); err != nil {
		return true, err
	}
	if waits > 0 {
		return true, s.waited(rs[2])
	}
	return true, nil
}

func (s *Store) dieOthers(ctx context.Context, cd codec, token string) (int, error) {
	const op = "dieothers"
	if !s.track {
		return 0, wrap(op, errNoTracking)
	}
	key, ok := s.tokenKey(token)
	if !ok {
		return 0, ErrNotFound
	}
	userID, handle, err := s.whose(ctx, cd, key)
	if err != nil {
		return 0, wrap(op, err)
	}
	return s.dieAllBut(ctx, op, cd, userID, spare{s.member(key), handle})
}

// whose reads the user and the handle of the session at key.
func (s *Store) whose(ctx context.Context, cd codec, key string) (userID, handle string, err error) {
	c, err := s.take(ctx, true, false)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	var val string
	vs, err := redis.Strings(c.Do("HMGET", key, "u", "h"))
	switch {
	case wrongType(err):
		// A session of the old layout has no handle.
		val, err = redis.String(c.Do("GET", key))
		if errors.Is(err, redis.ErrNil) {
			return "", "", ErrNotFound
		}
	case err == nil && len(vs) == 2:
		val, handle = vs[0], vs[1]
		if val == "" {
			return "", "", ErrNotFound
		}
	case err == nil:
		err = fmt.Errorf("unexpected HMGET reply of %d", len(vs))
	}
	if err != nil {
		return "", "", err
	}
	userID, err = cd.open(key, val)
	return userID, handle, err
}
