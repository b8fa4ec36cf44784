package sesh

import (
	"context"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/seshkit/sesh/internal/track"
)

// storeSource is the Store as its cache sees it: the one way the cache
// reaches the Store.
type storeSource struct {
	s     *Store
	route router // nil unless the Pool is a Redis Cluster's
}

var _ track.Source = (*storeSource)(nil)

// Dial returns a connection of the Pool that is no operation's, or on
// Cluster a new connection to the master at addr.
func (src *storeSource) Dial(ctx context.Context, addr string) (track.Conn, error) {
	if src.route == nil {
		c, err := src.s.dedicated(ctx)
		if err != nil {
			return nil, err
		}
		return &trackConn{c}, nil
	}
	rc, err := src.route.NodeContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &trackConn{wrapConn(ctx, rc)}, nil
}

// spublish is SPUBLISH of a heartbeat, run only by the master of its
// channel's slot. KEYS: the channel. ARGV: the message.
var spublish = newScript(1, `return redis.call('SPUBLISH', KEYS[1], ARGV[1])`)

// Publish publishes through the Store's own way to write. On Cluster it
// runs SPUBLISH in a script: a replica runs a plain SPUBLISH for its
// master's slot, but refuses a script (MOVED), so the count is the
// master's.
func (src *storeSource) Publish(ctx context.Context, channel, msg string) (int, error) {
	c, err := src.s.conn(ctx)
	if err != nil {
		return 0, err
	}
	var v any
	if src.route != nil {
		v, err = c.Eval(spublish, channel, msg)
	} else {
		v, err = c.Do("PUBLISH", channel, msg)
	}
	n, err := redis.Int(v, err)
	c.Close()
	return n, err
}

// EntryKey maps an invalidated key to its token key: a token key stands
// for itself, a deadline key for its token key. Other keys under the
// prefix (user indexes) stand for none.
func (src *storeSource) EntryKey(k []byte) (string, bool) {
	p := src.s.prefix
	n := len(p) + tokenLen + 2
	if len(k) == n+2 && string(k[n:]) == ":m" {
		k = k[:n]
	}
	if len(k) != n || string(k[:len(p)]) != p || k[len(p)] != '{' || k[n-1] != '}' {
		return "", false
	}
	return string(k), true
}

// trackConn is a connection of the cache's tracker.
type trackConn struct{ c conn }

var _ track.Conn = (*trackConn)(nil)

func (tc *trackConn) Send(cmd string, args ...any)            { tc.c.Send(cmd, args...) }
func (tc *trackConn) Pipe(want int) ([]any, error)            { return tc.c.Pipe(want) }
func (tc *trackConn) Do(cmd string, args ...any) (any, error) { return tc.c.Do(cmd, args...) }
func (tc *trackConn) Receive(d time.Duration) (any, error)    { return receive(tc.c.Raw(), d) }
func (tc *trackConn) Close()                                  { tc.c.Close() }
func (tc *trackConn) Drop()                                   { tc.c.Drop() }
