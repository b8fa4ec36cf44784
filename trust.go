package sesh

import "sync/atomic"

// trust is what the cache believes about its tracking connection: whether
// tracking is up, until when hits may be served, and which heartbeats
// still count. Its methods are its only writers, and each keeps the rules
// below; the cache calls them with cache.mu held, which orders them with
// fills and invalidations. Hits read epoch and live without the lock.
//
//   - epoch moves on whenever tracking goes up or down or everything is
//     invalidated; it is odd while tracking is up. An entry is served only
//     in the epoch it was filled in.
//   - live is the time (the cache's now()) until which hits are served: a
//     heartbeat heard at most CacheMaxStale ago.
//   - floor is when the epoch last moved: a heartbeat sent before it proves
//     nothing about the current tracking connection.
type trust struct {
	epoch atomic.Uint64
	live  atomic.Int64
	floor int64
}

// up marks tracking on, from a subscription sent at start.
func (t *trust) up(start, maxStale int64) {
	t.epoch.Add(1)
	t.live.Store(start + maxStale)
	t.floor = start
}

// reset moves the epoch on by step (1 to switch tracking on or off, 2 to
// stay), which makes every entry stale at once, sets live, and disregards
// the heartbeats sent before now.
func (t *trust) reset(step uint64, live, now int64) {
	t.epoch.Add(step)
	t.live.Store(live)
	t.floor = now
}

// heard extends live by a heartbeat sent at sent, if tracking is up and the
// heartbeat was sent after the epoch last moved.
func (t *trust) heard(sent, now, maxStale int64) {
	if t.tracking() && sent > t.floor && sent <= now && sent+maxStale > t.live.Load() {
		t.live.Store(sent + maxStale)
	}
}

// tracking reports whether tracking is up.
func (t *trust) tracking() bool { return t.epoch.Load()&1 == 1 }

// serves reports whether an entry filled in epoch may be served at now.
func (t *trust) serves(epoch uint64, now int64) bool {
	return epoch == t.epoch.Load() && now < t.live.Load()
}
