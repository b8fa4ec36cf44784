package track

import (
	"sync"
	"sync/atomic"
)

// trust is what the cache believes about one node's tracking connection:
// whether tracking is up, until when hits may be served, and which
// heartbeats still count. Its methods are its only writers, and each keeps
// the rules below; the cache calls them with Cache.mu held, which orders
// them with fills and invalidations. Hits read epoch and live without a
// lock, through serves.
//
//   - epoch moves on whenever tracking goes up or down or everything is
//     invalidated; it is odd while tracking is up (see upIn). An entry is
//     served only in the epoch it was filled in.
//   - live is the time (the cache's clock, Cache.Now) until which hits are
//     served: a heartbeat heard at most MaxStale ago.
//   - floor is when the epoch last moved: a heartbeat sent before it proves
//     nothing about the current tracking connection.
//   - bypass totals the time hits were not served.
//
// Every time is a parameter, so that the rules can be checked without a
// clock.
type trust struct {
	epoch atomic.Uint64
	live  atomic.Int64

	mu     sync.Mutex // guards floor and bypass
	floor  int64
	bypass bypass
}

// upIn reports whether tracking is up in epoch: the one place that reads
// the epoch's parity.
func upIn(epoch uint64) bool { return epoch&1 == 1 }

// up marks tracking on, at now, from a subscription sent at start. It
// reports whether tracking was never on before.
func (t *trust) up(start, now, maxStale int64) (first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bypass.note(t, now)
	first = t.epoch.Load() == 0
	t.epoch.Add(1)
	t.live.Store(start + maxStale)
	t.floor = start
	return first
}

// down marks tracking off at now: every entry is stale, and no hit is
// served until up.
func (t *trust) down(now int64) { t.reset(1, 0, now) }

// distrust makes every entry stale at now and serves no hit until a
// heartbeat sent after now is heard; tracking stays on.
func (t *trust) distrust(now int64) { t.reset(2, 0, now) }

// flush makes every entry stale at now (everything was invalidated);
// tracking stays on, and hits of entries filled from now on are served as
// before.
func (t *trust) flush(now int64) { t.reset(2, t.live.Load(), now) }

// reset moves the epoch on by step (1 to switch tracking on or off, 2 to
// stay), which makes every entry stale at once, sets live, and disregards
// the heartbeats sent before now.
func (t *trust) reset(step uint64, live, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bypass.note(t, now)
	t.epoch.Add(step)
	t.live.Store(live)
	t.floor = now
}

// heard extends live by a heartbeat sent at sent and heard at now, if
// tracking is up and the heartbeat was sent after the epoch last moved.
// When the heartbeat ends a bypass begun because heartbeats came late,
// restored is true and late is how long hits were bypassed.
func (t *trust) heard(sent, now, maxStale int64) (late int64, restored bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bypass.note(t, now)
	live := t.live.Load()
	if t.tracking() && sent > t.floor && sent <= now && sent+maxStale > live {
		t.live.Store(sent + maxStale)
	}
	return now - live, live > 0 && now >= live && t.live.Load() > now
}

// tracking reports whether tracking is up.
func (t *trust) tracking() bool { return upIn(t.epoch.Load()) }

// current reports whether epoch is the epoch now.
func (t *trust) current(epoch uint64) bool { return t.epoch.Load() == epoch }

// serves reports whether an entry filled in epoch may be served at now.
func (t *trust) serves(epoch uint64, now int64) bool {
	return t.current(epoch) && now < t.live.Load()
}

// begin returns the epoch in which a fill at now fills its entry, and
// false when no entry may be filled at now: tracking is down, or no
// heartbeat was heard within MaxStale.
func (t *trust) begin(now int64) (epoch uint64, ok bool) {
	epoch = t.epoch.Load()
	return epoch, upIn(epoch) && now < t.live.Load()
}

// bypassed reports whether hits are bypassed at now, and for how long they
// have been in all, now included.
func (t *trust) bypassed(now int64) (bool, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return now >= t.live.Load(), t.bypass.total + t.bypass.since(t, now)
}

// bypass totals the time hits are bypassed: whenever now is at or past
// trust.live. Between two changes of live they are bypassed from
// max(live, the change) on, so noting each change accounts for every
// bypass, the ones that only a late heartbeat ends too. trust.mu guards it.
type bypass struct {
	total int64 // ns bypassed until last
	last  int64 // when live last changed
}

// since returns how long hits have been bypassed since the last change of
// live.
func (b *bypass) since(t *trust, now int64) int64 {
	if t.epoch.Load() == 0 {
		return 0 // before the first up: New has not returned
	}
	return max(0, now-max(t.live.Load(), b.last))
}

// note is called just before live changes at now.
func (b *bypass) note(t *trust, now int64) {
	b.total += b.since(t, now)
	b.last = now
}
