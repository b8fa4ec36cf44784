package sesh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh/internal/wire"
)

// endBefore is DieEverything's end of one session: it deletes a record
// whose user authenticated at or before ARGV[1], or that has no
// authentication time, and a session of the old layout, with its deadline
// key, and returns 1; 0 when it kept the session or found none.
//
// KEYS: token, deadline key. ARGV: the call's start, in ms on the server's
// clock.
var endBefore = newScript(2, typeOf+`
if t == 'hash' then
  local a = tonumber(redis.call('HGET', KEYS[1], 'a'))
  if a and a > tonumber(ARGV[1]) then return 0 end
elseif t ~= 'string' then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1`)

const (
	// maxPasses bounds DieEverything's scans of the keyspace.
	maxPasses = 8
	// scanCount is the COUNT hint of DieEverything's SCAN: how many keys a
	// round trip looks at.
	scanCount = 1000
)

func (s *Store) dieEverything(ctx context.Context) (int, error) {
	const op = "dieeverything"
	nodes, err := s.masters(ctx)
	defer func() {
		for _, c := range nodes {
			c.Close()
		}
	}()
	if err != nil {
		return 0, wrap(op, err)
	}
	// The call's start on the servers' clocks: the latest of the masters',
	// each read after the call began, so no session authenticated before it
	// on any master is kept.
	var start int64
	for i := range nodes {
		t, err := redis.Int64s(nodes[i].Do("TIME"))
		if err != nil || len(t) != 2 {
			return 0, wrap(op, cmp.Or(err, errors.New("unexpected TIME reply")))
		}
		start = max(start, t[0]*1000+t[1]/1000)
	}
	n := 0
	for pass := 1; ; pass++ {
		ended := 0
		for i := range nodes {
			k, err := s.endScanned(&nodes[i], start)
			ended += k
			if err != nil {
				return n + ended, wrap(op, err)
			}
		}
		n += ended
		if ended == 0 {
			s.log.Warn("sesh: dieeverything: ended every session issued before it began", "ended", n, "passes", pass)
			return n, nil
		}
		if pass == maxPasses {
			return n, wrap(op, fmt.Errorf("sessions issued before the call were still found after %d scans: sessions are rotated faster than they are ended; run it again", maxPasses))
		}
	}
}

// masters returns a connection to every master: on Cluster, through the
// Pool's router, one per master; otherwise one connection of the Pool.
func (s *Store) masters(ctx context.Context) ([]conn, error) {
	r, ok := s.pool.(router)
	if !ok {
		c, err := s.take(ctx, false, false)
		if err != nil {
			return nil, err
		}
		// A Cluster behind a Pool that hides its router would be scanned on
		// one master only: refuse rather than end a part and report success.
		info, err := redis.String(c.Do("INFO", "cluster"))
		if err == nil && strings.Contains(info, "cluster_enabled:1") {
			c.Close()
			return nil, errors.New("the Redis is a Cluster and the Pool is not seshcluster's, which DieEverything needs to reach every master")
		}
		return []conn{c}, nil
	}
	addrs, err := r.Masters()
	if err != nil {
		return nil, err
	}
	var cs []conn
	for _, a := range addrs {
		rc, err := r.NodeContext(ctx, a)
		if err != nil {
			return cs, err
		}
		cs = append(cs, wire.Wrap(ctx, rc, s.trips(ctx)))
	}
	return cs, nil
}

// endScanned makes one scan of the server behind c for the Store's token
// keys, and ends the sessions among them authenticated at or before start.
// It returns how many it ended.
func (s *Store) endScanned(c *conn, start int64) (int, error) {
	pattern := globEscape(s.prefix) + "{*}"
	n := 0
	for cursor := "0"; ; {
		vs, err := redis.Values(c.Do("SCAN", cursor, "MATCH", pattern, "COUNT", scanCount))
		if err != nil {
			return n, err
		}
		if len(vs) != 2 {
			return n, fmt.Errorf("unexpected SCAN reply, %s", shape(vs))
		}
		cursor, _ = redis.String(vs[0], nil)
		keys, err := redis.Strings(vs[1], nil)
		if err != nil {
			return n, err
		}
		var sent []string
		for _, k := range keys {
			m, ok := strings.CutPrefix(k, s.prefix+"{")
			if m, ok2 := strings.CutSuffix(m, "}"); ok && ok2 && validMember(m) {
				c.SendEval(endBefore, k, deadlineKey(k), start)
				sent = append(sent, k)
			}
		}
		if len(sent) > 0 {
			waits := s.sendWait(c)
			rs, err := c.Pipe(len(sent) + waits)
			if err != nil {
				return n, err
			}
			for i, r := range rs[:len(sent)] {
				if e, ok := r.(redis.Error); ok {
					return n, e
				}
				if r == int64(1) {
					s.forget(sent[i])
					n++
				}
			}
			if waits > 0 {
				if err := s.waited(rs[len(rs)-1]); err != nil {
					return n, err
				}
			}
		}
		if cursor == "0" {
			return n, nil
		}
	}
}

// globEscape escapes the characters that SCAN's MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
