package sesh

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gomodule/redigo/redis"
)

// ErrTooManySessions is returned by Set and SetWith, wrapped with the
// operation's name, when Options.MaxSessions is set and the user already
// has that many sessions: always without Options.EndOldest, and with it
// when no room could be made (the places are held, for longer than about
// 130ms, by sessions being created or ended at this moment, or other Sets
// took the room first, many times in a row). No token is issued.
var ErrTooManySessions = errors.New("sesh: too many sessions")

// maxRooms bounds how many times one Set makes room under the cap before it
// gives up with ErrTooManySessions: each time it lost, another Set of the
// same user took the room.
const maxRooms = 32

// errRoomSoon is makeRoom's answer when entries of gone tokens, not yet
// due, hold the places: Set waits a little and tries again.
var errRoomSoon = errors.New("sesh: the entries at the cap are of gone tokens")

// maxWaits bounds how many times one Set waits for room (errRoomSoon),
// 1ms and doubling to 32ms: about 130ms in all.
const maxWaits = 8

// waitRoom waits before the Set's try after its nth errRoomSoon, or returns
// ErrTooManySessions when it has waited enough, or ctx's error.
func waitRoom(ctx context.Context, n int) error {
	if n >= maxWaits {
		return ErrTooManySessions
	}
	t := time.NewTimer(time.Millisecond << min(n, 5))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fullError is register's answer when the user's index is at the cap: it
// holds every token member, for makeRoom.
type fullError struct{ members []string }

func (e *fullError) Error() string        { return ErrTooManySessions.Error() }
func (e *fullError) Is(target error) bool { return target == ErrTooManySessions }

// makeRoom is what a Set does when idx is at the cap, given its members:
// it drops the entries of tokens that are gone and due, and reports nil when
// it did, for the Set to try again. Otherwise, with EndOldest, it ends the
// oldest live sessions, enough to leave one place, and reports nil;
// without, it returns ErrTooManySessions. When gone tokens' entries, not
// yet due, hold the places that live sessions do not, it returns
// errRoomSoon.
//
// Every live token has an entry, written before the token and dropped
// after it, so the entries bound the live tokens and the cap holds however
// many Sets run at once. An entry of a token that is gone but not yet due
// (a Set under way, or a token that ended within createWindow of its Set)
// still counts.
func (s *Store) makeRoom(c *conn, idx string, members []string) error {
	members, bad := validMembers(members)
	if len(bad) > 0 {
		// Entries that cannot name a token hold places: drop them.
		_, err := c.Do("ZREM", append([]any{idx}, bad...)...)
		return err
	}
	start := time.Now()
	// A run of one command name, then another: see readIndex.
	for _, m := range members {
		c.Send("HGET", s.memberKey(m), "a")
	}
	for _, m := range members {
		c.Send("PTTL", s.memberKey(m))
	}
	rs, err := c.Pipe(2 * len(members))
	if err != nil {
		return err
	}
	type live struct {
		member string
		auth   int64
	}
	var lives []live
	args := []any{idx, recheck.Milliseconds()}
	for i, m := range members {
		ms, err := redis.Int64(rs[len(members)+i], nil)
		if err != nil {
			return err
		}
		args = append(args, m, ms)
		if ms != -2 {
			// A record without "a", or of the old layout, is the oldest.
			a, _ := redis.Int64(rs[i], nil)
			lives = append(lives, live{m, a})
		}
	}
	if len(lives) < len(members) && time.Since(start) < createWindow/2 {
		dropped, err := redis.Int(c.Eval(rescore, args...))
		if err != nil || dropped > 0 {
			return err
		}
	}
	excess := len(members) - s.maxSess + 1
	switch {
	case len(lives) >= s.maxSess && !s.endOldest, excess <= 0:
		return ErrTooManySessions
	case len(lives) < s.maxSess && !s.endOldest, excess > len(lives):
		// Entries of gone tokens hold places: tokens that a DieAll under
		// way has ended, whose entries it drops as it returns, or whose
		// Set is under way. They go soon.
		return errRoomSoon
	}
	slices.SortFunc(lives, func(a, b live) int { return cmp.Or(cmp.Compare(a.auth, b.auth), cmp.Compare(a.member, b.member)) })
	victims := lives[:excess]
	// The tokens go first, in their own round trip, then their entries: no
	// token ever lives without its entry, not even on Cluster, where they
	// are on other masters.
	zrem := []any{idx}
	for _, v := range victims {
		key := s.memberKey(v.member)
		s.forget(key)
		c.Send("DEL", key, deadlineKey(key))
		zrem = append(zrem, v.member)
	}
	waits := s.sendWait(c)
	rs, err = c.Pipe(len(victims) + waits)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if e, ok := r.(redis.Error); ok {
			return e
		}
	}
	if waits > 0 {
		if err := s.waited(rs[len(rs)-1]); err != nil {
			return err
		}
	}
	_, err = c.Do("ZREM", zrem...)
	return err
}
