package sesh

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Store's counters, from [Store.Stats]. Every
// count is monotonic from New, except Cache.Entries and Cache.Bypassed,
// which say how things stand. A Store and every Crypt over it share one
// set of counters.
type Stats struct {
	// Ops counts the operations that returned, by kind, whatever their
	// result.
	Ops OpCounts

	// Errors counts the operations that returned an error, by kind.
	Errors ErrorCounts

	// Cache counts the work of the cache; it is zero without
	// Options.CacheSize.
	Cache CacheStats

	// Batches counts the batches of auto-pipelining (Options.Pipelines);
	// it is zero with NoPipelining, or while every operation runs alone.
	Batches BatchStats

	// Reuses counts the rotated tokens presented after their grace window,
	// each of which ended its session's chain (Options.ReuseDetection).
	Reuses uint64
}

// OpCounts counts operations by kind, each under the method's name. A
// Crypt's operations count under the same names.
type OpCounts struct {
	Set, Get, Liv, Die, DieAll, Count, Rotate uint64

	// Lookup, Sessions, DieSession, DieOthers, DieEverything and Reauth
	// count the methods of those names.
	Lookup, Sessions, DieSession, DieOthers, DieEverything, Reauth uint64
}

// ErrorCounts counts the errors operations returned, each under one kind:
// the first of the fields below that [errors.Is] finds in it.
type ErrorCounts struct {
	// NotFound counts ErrNotFound: a token that is not live, or malformed.
	// Die of a token already gone returns nil and is not counted.
	NotFound uint64
	// Decrypt counts ErrDecrypt, from a Crypt.
	Decrypt uint64
	// NotReplicated counts ErrNotReplicated.
	NotReplicated uint64
	// Context counts errors caused by the context: context.Canceled and
	// context.DeadlineExceeded.
	Context uint64
	// InvalidUser counts ErrInvalidUser: a user ID that no token can have,
	// refused before any round trip.
	InvalidUser uint64
	// Other counts every other error: Redis unreachable or refusing a
	// command, a failing Rand.
	Other uint64
}

// CacheStats counts the work of the cache of a Store made with
// Options.CacheSize.
type CacheStats struct {
	// Hits counts the Gets answered from process memory, with no round
	// trip.
	Hits uint64
	// Misses counts the Gets of well-formed tokens that went to Redis: the
	// token was not cached, its entry was stale, the cache was bypassed, or
	// a sliding token's TTL was due for a restart. Hits / (Hits + Misses)
	// is the hit ratio.
	Misses uint64
	// DroppedFills counts the values read by a miss that were not cached
	// because the key was invalidated, or tracking went down, during the
	// round trip.
	DroppedFills uint64
	// Invalidations counts the token keys Redis said had changed. Every
	// write under the prefix, by any client, counts, whether the token was
	// cached or not.
	Invalidations uint64
	// Evictions counts the entries dropped to make room in a full shard.
	Evictions uint64
	// Entries is how many tokens the cache holds now.
	Entries int
	// Bypassed reports whether every Get goes to Redis now: tracking is
	// down, or no heartbeat was heard within CacheMaxStale.
	Bypassed bool
	// BypassedFor is the total time the cache has been bypassed since New,
	// including now.
	BypassedFor time.Duration
}

// BatchStats counts the batches of auto-pipelining: the round trips of
// operations in flight together, sent on a shared connection in one write
// (Options.Pipelines). All zero with NoPipelining.
type BatchStats struct {
	// Batches counts the batches written.
	Batches uint64
	// Calls counts the round trips of operations those batches held;
	// Calls / Batches is the mean number of round trips per write.
	Calls uint64
	// Commands counts the commands those batches held.
	Commands uint64
}

// op names an operation kind, as its errors and Stats do.
type op uint8

const (
	opSet op = iota
	opGet
	opLiv
	opDie
	opDieAll
	opCount
	opRotate
	opLookup
	opSessions
	opDieSession
	opDieOthers
	opDieEverything
	opReauth
	numOps
)

var opNames = [numOps]string{"set", "get", "liv", "die", "dieall", "count", "rotate",
	"lookup", "sessions", "diesession", "dieothers", "dieeverything", "reauth"}

func (o op) String() string { return opNames[o] }

// stats holds a Store's counters. The cached Get touches none of them: its
// hits count in the cache's shards, beside the lock the hit already takes.
type stats struct {
	ops    [numOps]atomic.Uint64 // Get of a Store with a cache counts here only when it is not a hit
	errs   [6]atomic.Uint64      // by errKind
	misses atomic.Uint64         // the cache keeps its other counters
	reuses atomic.Uint64         // Stats.Reuses
}

// errKind is the index in stats.errs of the kind of an error.
func errKind(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return 0
	case errors.Is(err, ErrDecrypt):
		return 1
	case errors.Is(err, ErrNotReplicated):
		return 2
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 3
	case errors.Is(err, ErrInvalidUser):
		return 4
	}
	return 5
}

// done counts an operation that returned err. A Get of a Store with a
// cache was counted by the cache.
func (st *stats) done(o op, cached bool, err error) {
	if o != opGet || !cached {
		st.ops[o].Add(1)
	}
	if err != nil {
		st.errs[errKind(err)].Add(1)
	}
}

// uncachedGet counts a Get of a Store with a cache that is not a hit; miss
// says whether it goes to Redis.
func (st *stats) uncachedGet(miss bool) {
	st.ops[opGet].Add(1)
	if miss {
		st.misses.Add(1)
	}
}

// Stats returns a snapshot of the Store's counters. It is cheap enough to
// call every second, does no I/O, and may be called concurrently with any
// operation; the counters are read one by one, so a snapshot taken while
// operations run may be off by those operations.
func (s *Store) Stats() Stats {
	st := &s.stats
	var out Stats
	out.Ops = OpCounts{
		Set:    st.ops[opSet].Load(),
		Get:    st.ops[opGet].Load(),
		Liv:    st.ops[opLiv].Load(),
		Die:    st.ops[opDie].Load(),
		DieAll: st.ops[opDieAll].Load(),
		Count:  st.ops[opCount].Load(),
		Rotate: st.ops[opRotate].Load(),

		Lookup:        st.ops[opLookup].Load(),
		Sessions:      st.ops[opSessions].Load(),
		DieSession:    st.ops[opDieSession].Load(),
		DieOthers:     st.ops[opDieOthers].Load(),
		DieEverything: st.ops[opDieEverything].Load(),
		Reauth:        st.ops[opReauth].Load(),
	}
	out.Errors = ErrorCounts{
		NotFound:      st.errs[0].Load(),
		Decrypt:       st.errs[1].Load(),
		NotReplicated: st.errs[2].Load(),
		Context:       st.errs[3].Load(),
		InvalidUser:   st.errs[4].Load(),
		Other:         st.errs[5].Load(),
	}
	out.Reuses = st.reuses.Load()
	if b := s.batch; b != nil {
		writes, calls, cmds := b.Stats()
		out.Batches = BatchStats{Batches: writes, Calls: calls, Commands: cmds}
	}
	if c := s.cache; c != nil {
		out.Cache = c.stats()
		out.Ops.Get += out.Cache.Hits
	}
	return out
}

// stats reads the cache's counters.
func (c *cache) stats() CacheStats {
	misses := c.s.stats.misses.Load()
	st := c.t.Stats()
	return CacheStats{
		Hits:          st.Hits,
		Misses:        misses,
		DroppedFills:  st.DroppedFills,
		Invalidations: st.Invalidations,
		Evictions:     st.Evictions,
		Entries:       st.Entries,
		Bypassed:      st.Bypassed,
		BypassedFor:   st.BypassedFor,
	}
}
