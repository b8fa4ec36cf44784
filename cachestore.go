package sesh

import (
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
)

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
	m    map[string]*entry
	list []*entry
	max  int
}

type entry struct {
	token, key string
	userID     string
	cd         codec  // the codec that opened userID: a Store and its Crypt share the cache
	node       *node  // the server it was read from, whose trust it needs
	epoch      uint64 // the node's, when it was read
	exp        int64  // when the key expires, in now() units; math.MaxInt64 for never
	dl         int64  // when the deadline key expires, for Sliding; math.MaxInt64 for never
	slot       int    // index in its shard's list
	dead       atomic.Bool
	refreshing atomic.Bool
}

// newEntries makes a store of size entries in at most maxShards shards of
// at least minPerShard each.
func newEntries(size int) entries {
	n := maxShards
	for n > 1 && size/n < minPerShard {
		n /= 2
	}
	es := entries{shards: make([]shard, n), mask: uint32(n - 1)}
	for i := range es.shards {
		es.shards[i].m = make(map[string]*entry)
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
func (es *entries) lookup(token string) *entry {
	sh := es.shard(token)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[token]
}

// put stores e in place of any entry of its token. A full shard first
// evicts an entry picked uniformly at random, which put returns; admit,
// called with the shard locked, may refuse e, and then nothing changes.
func (es *entries) put(e *entry, admit func(victim *entry) bool) {
	sh := es.shard(e.token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := sh.m[e.token]
	var victim *entry
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
	sh.m[e.token] = e
}

// drop removes e, if its shard still holds it.
func (es *entries) drop(e *entry) {
	sh := es.shard(e.token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[e.token] == e {
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
func (sh *shard) remove(e *entry) {
	last := sh.list[len(sh.list)-1]
	sh.list[e.slot] = last
	last.slot = e.slot
	sh.list[len(sh.list)-1] = nil
	sh.list = sh.list[:len(sh.list)-1]
	delete(sh.m, e.token)
}
