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

// logUp logs tracking turned on, from a cache at epoch (with cache.mu
// held): quietly the first time, in New.
func (c *cache) logUp(epoch uint64) {
	if epoch == 0 {
		c.s.log.Debug("sesh: cache: tracking on")
		return
	}
	c.s.log.Info("sesh: cache: tracking regained; cache restored")
}

// logDown logs tracking lost, unless the cache is closing.
func (c *cache) logDown() {
	if c.tracker.ctx.Err() == nil {
		c.s.log.Warn("sesh: cache: tracking lost; cache bypassed until it is back")
	}
}

// logUnheard logs a heartbeat that reached no tracking connection.
func (c *cache) logUnheard() {
	c.s.log.Warn("sesh: cache: a heartbeat reached no tracking connection (a failover?); cache bypassed until tracking is back")
}

// logHeard logs a heartbeat, heard at now when live was the old live, that
// ended a bypass begun when heartbeats came late. cache.mu is held.
func (c *cache) logHeard(live, now int64) {
	if live > 0 && now >= live && c.trust.live.Load() > now {
		c.s.log.Info("sesh: cache: heartbeat heard again; cache restored", "bypassed", time.Duration(now-live).Round(time.Millisecond))
	}
}

// logLockWait logs a Rotate that waits for a DieAll of its user.
func (s *Store) logLockWait() {
	s.log.Info("sesh: rotate: waiting for a DieAll of the same user to end")
}
