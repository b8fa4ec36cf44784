package track

import (
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Entry is what the cache holds of one token: the user ID a fill read, and
// until when it may be served. The fill protocol fills the exported fields
// and hands the entry to [Cache.Insert]; after that it only reads them.
type Entry struct {
	Token    string // the entry's token, which the Store's Get is given
	Key      string // the token's Redis key
	UserID   string
	Opener   any   // what opened UserID from the stored value: a Store and its Crypt share the cache
	Expiry   int64 // when the key expires, on the cache's clock (see Expires)
	Deadline int64 // when the deadline key expires, for Sliding; math.MaxInt64 for never
	Used     int64 // the session's recorded last use, in ms since the epoch; 0 for none

	node       *Node  // the node it was read from, whose trust it needs
	epoch      uint64 // the node's, when it was read
	slot       int    // index in its shard's list
	dead       atomic.Bool
	refreshing atomic.Bool
}

// Serves reports whether e may be served at now: it was not invalidated,
// its node's epoch has not moved since it was read and a heartbeat was
// heard within MaxStale, and its key has not expired.
func (e *Entry) Serves(now int64) bool {
	return !e.dead.Load() && e.node.trust.serves(e.epoch, now) && now < e.Expiry
}

// Refresh reports whether the caller is the one to restart e's TTL in
// Redis: the first since e was filled, or since RefreshFailed.
func (e *Entry) Refresh() bool { return e.refreshing.CompareAndSwap(false, true) }

// RefreshFailed lets another Get try the restart that Refresh granted.
func (e *Entry) RefreshFailed() { e.refreshing.Store(false) }

// Expires turns a PTTL reply read at now into when the key expires, on the
// cache's clock: never (math.MaxInt64) for -1, and in the past for -2 (no
// key) or anything unexpected.
func Expires(now int64, pttl any) int64 {
	ms, err := redis.Int64(pttl, nil)
	switch {
	case err != nil || ms < -1:
		return math.MinInt64
	case ms == -1:
		return math.MaxInt64
	}
	return now + ms*int64(time.Millisecond)
}

// entries is the cache's passive store: entries by token, in shards picked
// by the token's first characters. It knows nothing of Redis or of trust.
type entries struct {
	shards []shard
	mask   uint32 // len(shards) - 1
}

// shard holds a share of the entries, by token. Its entries also sit in a
// dense list, so that a full shard can evict one picked at random.
type shard struct {
	mu   sync.RWMutex
	hits atomic.Uint64 // Gets answered from this shard; beside mu, which each of them writes already
	m    map[string]*Entry
	list []*Entry
	max  int
}

const (
	maxShards   = 256
	minPerShard = 16
)

// newEntries makes a store of size entries in at most maxShards shards of
// at least minPerShard each.
func newEntries(size int) entries {
	n := maxShards
	for n > 1 && size/n < minPerShard {
		n /= 2
	}
	es := entries{shards: make([]shard, n), mask: uint32(n - 1)}
	for i := range es.shards {
		es.shards[i].m = make(map[string]*Entry)
		es.shards[i].max = size / n
		if i < size%n {
			es.shards[i].max++
		}
	}
	return es
}

// b64Index maps each base64url character to its 6-bit value, so that a
// token or a key picks its shard and bucket without hashing: both are
// uniformly random already.
var b64Index = func() (t [256]uint8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = uint8(i)
	}
	return t
}()

func (es *entries) shard(token string) *shard {
	return &es.shards[(uint32(b64Index[token[0]])<<6|uint32(b64Index[token[1]]))&es.mask]
}

// lookup returns the entry of token, or nil.
func (es *entries) lookup(token string) *Entry {
	sh := es.shard(token)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[token]
}

// hit counts a Get answered from memory, in token's shard.
func (es *entries) hit(token string) { es.shard(token).hits.Add(1) }

// hits totals the Gets answered from memory.
func (es *entries) hits() uint64 {
	var n uint64
	for i := range es.shards {
		n += es.shards[i].hits.Load()
	}
	return n
}

// put stores e in place of any entry of its token. A full shard first
// evicts an entry picked uniformly at random, which put returns; admit,
// called with the shard locked, may refuse e, and then nothing changes.
func (es *entries) put(e *Entry, admit func(victim *Entry) bool) {
	sh := es.shard(e.Token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := sh.m[e.Token]
	var victim *Entry
	if old == nil && len(sh.list) >= sh.max {
		victim = sh.list[mrand.IntN(len(sh.list))]
	}
	if !admit(victim) {
		return
	}
	if victim != nil {
		sh.remove(victim)
	}
	if old != nil {
		e.slot = old.slot
		sh.list[e.slot] = e
	} else {
		e.slot = len(sh.list)
		sh.list = append(sh.list, e)
	}
	sh.m[e.Token] = e
}

// drop removes e, if its shard still holds it.
func (es *entries) drop(e *Entry) {
	sh := es.shard(e.Token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[e.Token] == e {
		sh.remove(e)
	}
}

// clear removes every entry.
func (es *entries) clear() {
	for i := range es.shards {
		sh := &es.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		clear(sh.list)
		sh.list = sh.list[:0]
		sh.mu.Unlock()
	}
}

// remove drops e, which sh holds; sh.mu is held.
func (sh *shard) remove(e *Entry) {
	last := sh.list[len(sh.list)-1]
	sh.list[e.slot] = last
	last.slot = e.slot
	sh.list[len(sh.list)-1] = nil
	sh.list = sh.list[:len(sh.list)-1]
	delete(sh.m, e.Token)
}
