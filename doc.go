// Package sesh is a minimal token store on Redis: it maps random 32-byte
// tokens to opaque user IDs.
//
// A [Store] issues a token with [Store.Set], resolves it with [Store.Get],
// keeps it alive with [Store.Liv] and ends it with [Store.Die]. The value kept
// in Redis is the user ID itself, byte for byte; sesh does no serialization.
// [Crypt] wraps a Store to seal user IDs with AES-256-GCM.
//
// # Security
//
// Tokens never reach Redis. Each is stored under a key derived from the
// SHA-256 of its 32 random bytes, so a dump, a replica, a MONITOR stream or a
// backup of Redis holds no usable token. A session is one Redis hash at its
// token's key, holding the user ID (`HGET key u` shows it) and the
// session's own policy: its idle TTL, its absolute deadline and whether it
// is indexed. Set writes it in one atomic script with the key's expiry, so
// no crash can leave a key without its expiry, and every Store honours the
// policy it finds there ([Store.SetWith]).
// A malformed token is rejected with [ErrNotFound] before any round trip.
//
// # Lifecycle
//
// With [Options].TrackUsers a Store keeps a per-user index, so that
// [Store.DieAll] ends every session of a user (log out everywhere) and
// [Store.Count] counts them. [Store.Rotate] replaces a token with a fresh
// one, for example when privileges change.
//
// # Cache
//
// With [Options].CacheSize a Store keeps the user IDs that Get resolved in
// process memory, and serves them again with no round trip. Redis tells it,
// through CLIENT TRACKING (Redis 6 or later; on Redis Cluster, 7 or later,
// through seshcluster's Pool), when a token's key changes, so a token ended
// anywhere stops resolving here as soon as that message arrives. Should the
// messages stop, the cache is dropped within [Options].CacheMaxStale and
// bypassed until they resume; on Cluster, only the entries of the master
// whose messages stopped. A Store with a cache must be closed with
// [Store.Close].
//
// # Auto-pipelining
//
// Operations in flight at the same moment share a few connections per
// Redis server, and go out together in one write ([Options].Pipelines); an
// operation alone in flight goes straight out on a connection of its own.
// Nothing about an operation's result or guarantees changes.
//
// # Operating
//
// [Store.Stats] returns the Store's counters: operations and errors by
// kind, and the cache's hits, misses and time bypassed. [Options].Hook
// wraps each operation, to start a span or time it; the module
// github.com/seshkit/sesh/seshotel builds OpenTelemetry spans and metrics
// on both. [Options].Logger receives the rare events an operator must see.
// None of them sees a token or a user ID.
//
// # Errors
//
// Get, Liv and Rotate return [ErrNotFound] for a token that is not live:
// unknown, expired or ended; Die treats such a token as already ended. A
// malformed token gets ErrNotFound from every method. Any other error reads
// "sesh: <op>: ..." and
// wraps its cause, so [errors.Is] finds [context.DeadlineExceeded] or the
// network error beneath it.
package sesh
