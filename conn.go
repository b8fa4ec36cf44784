package sesh

import (
	"context"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh/internal/wire"
)

// The wire under the Store: auto-pipelining, the operation's connection and
// scripts live in internal/wire.

// Auto-pipelining defaults; see Options.Pipelines.
const (
	defaultPipelines = 2
	maxPipelines     = 64
)

// conn is one operation's connection: see wire.Conn.
type conn = wire.Conn

// router is what auto-pipelining needs from a Pool over Redis Cluster:
// see wire.Router.
type router = wire.Router

// script is a Lua script: see wire.Script.
type script = wire.Script

func newScript(keys int, src string) *script { return wire.NewScript(keys, src) }

// conn takes a connection for an operation, a lane when batching finds
// another operation in flight.
func (s *Store) conn(ctx context.Context) (conn, error) { return s.take(ctx, true, false) }

// take is conn for an operation that may share a lane only when share: one
// that waits for replicas must not, or a slow replica would stall every
// operation behind it on the lane. With always, it shares a lane even when
// alone in flight: the cache's fills on Cluster must know the master that
// answered, which only a lane knows.
func (s *Store) take(ctx context.Context, share, always bool) (conn, error) {
	return wire.Take(ctx, s.pool, s.batch, share, always, s.trips(ctx))
}

// dedicated takes a connection of the Pool that is no operation's: the
// cache's tracking connection. It shares nothing.
func (s *Store) dedicated(ctx context.Context) (conn, error) {
	return wire.Own(ctx, s.pool, s.trips(ctx))
}

// wrapConn returns a conn over rc, a connection of the caller's own.
func wrapConn(ctx context.Context, rc redis.Conn) conn { return wire.Wrap(ctx, rc, nil) }

// discard breaks conn and closes it: see wire.Discard.
func discard(conn redis.Conn) { wire.Discard(conn) }

// receive reads a reply within d: see wire.Receive.
func receive(conn redis.Conn, d time.Duration) (any, error) { return wire.Receive(conn, d) }
