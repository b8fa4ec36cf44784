package track

import "time"

// The rare events an operator must see go to Config.Log. None is logged
// per request, and none carries a token, a key or a user ID.

// logUp logs tracking turned on at n (with Cache.mu held): quietly the
// first time, in New or when a master is first heard.
func (c *Cache) logUp(n *Node, first bool) {
	if first {
		c.log.Debug("sesh: cache: tracking on", n.attrs()...)
		return
	}
	c.log.Info("sesh: cache: tracking regained; cache restored", n.attrs()...)
}

// logDown logs tracking lost at n, unless the cache is closing.
func (c *Cache) logDown(n *Node) {
	if !n.tracker.closing() {
		c.log.Warn("sesh: cache: tracking lost; cache bypassed until it is back", n.attrs()...)
	}
}

// logUnheard logs a heartbeat that reached no tracking connection of n.
func (c *Cache) logUnheard(n *Node) {
	c.log.Warn("sesh: cache: a heartbeat reached no tracking connection (a failover?); cache bypassed until tracking is back", n.attrs()...)
}

// logHeard logs a heartbeat of n that ended a bypass of late ns begun when
// heartbeats came late. Cache.mu is held.
func (c *Cache) logHeard(n *Node, late int64) {
	c.log.Info("sesh: cache: heartbeat heard again; cache restored", append(n.attrs(), "bypassed", time.Duration(late).Round(time.Millisecond))...)
}

// attrs names n in a log record: on Cluster, by its master's address.
func (n *Node) attrs() []any {
	if n.addr == "" {
		return nil
	}
	return []any{"master", n.addr}
}
