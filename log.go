package sesh

import (
	"log/slog"
	"time"
)

// The rare events an operator must see go to Options.Logger. None is logged
// per request, and none carries a token, a key or a user ID.

// logger returns o.Logger, or one that discards.
func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// logUp logs tracking turned on at n, at epoch (with cache.mu held):
// quietly the first time, in New or when a master is first heard.
func (c *cache) logUp(n *node, epoch uint64) {
	if epoch == 0 {
		c.s.log.Debug("sesh: cache: tracking on", n.attrs()...)
		return
	}
	c.s.log.Info("sesh: cache: tracking regained; cache restored", n.attrs()...)
}

// logDown logs tracking lost at n, unless the cache is closing.
func (c *cache) logDown(n *node) {
	if n.tracker.ctx.Err() == nil {
		c.s.log.Warn("sesh: cache: tracking lost; cache bypassed until it is back", n.attrs()...)
	}
}

// logUnheard logs a heartbeat that reached no tracking connection of n.
func (c *cache) logUnheard(n *node) {
	c.s.log.Warn("sesh: cache: a heartbeat reached no tracking connection (a failover?); cache bypassed until tracking is back", n.attrs()...)
}

// logHeard logs a heartbeat of n, heard at now when live was the old live,
// that ended a bypass begun when heartbeats came late. cache.mu is held.
func (c *cache) logHeard(n *node, live, now int64) {
	if live > 0 && now >= live && n.trust.live.Load() > now {
		c.s.log.Info("sesh: cache: heartbeat heard again; cache restored", append(n.attrs(), "bypassed", time.Duration(now-live).Round(time.Millisecond))...)
	}
}

// attrs names n in a log record: on Cluster, by its master's address.
func (n *node) attrs() []any {
	if n.addr == "" {
		return nil
	}
	return []any{"master", n.addr}
}

// logLockWait logs a Rotate that waits for a DieAll of its user.
func (s *Store) logLockWait() {
	s.log.Info("sesh: rotate: waiting for a DieAll of the same user to end")
}
