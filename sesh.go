package sesh

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh/internal/wire"
)

// Pool is what a Store needs from a Redis client: a connection for the
// duration of one operation. *redis.Pool satisfies it, and so do the
// adapters in seshcluster and seshsentinel.
type Pool interface {
	GetContext(ctx context.Context) (redis.Conn, error)
}

var _ Pool = (*redis.Pool)(nil)

// Forever, as Options.TTL, means tokens have no idle expiry.
const Forever time.Duration = -1

// NoPipelining, as Options.Pipelines, turns auto-pipelining off.
const NoPipelining = -1

// maxTries bounds how many tokens Set draws when each one collides.
const maxTries = 4

// ErrNotFound is returned when a token is not live: it is unknown, has
// expired, has been ended, or is malformed.
var ErrNotFound = errors.New("sesh: token not found")

// ErrNotReplicated is returned, wrapped with the operation's name, when
// Options.Replicas is set and too few replicas acknowledged an ending
// operation (Die, DieAll or Rotate) within Options.ReplicaTimeout. The
// deletion has still happened on the master; see docs/cluster-sentinel.md for what to do.
// With TrackUsers, Set returns it too, with no token: it has ended the token
// whose index entry a failover could have lost.
var ErrNotReplicated = errors.New("sesh: not acknowledged by enough replicas")

// Options configures a Store. The zero value is a usable configuration:
// prefix "sesh", a 24-hour idle TTL, no absolute limit.
type Options struct {
	// Prefix is the key namespace. Every key the Store writes starts with
	// Prefix + ":". When empty, "sesh" is used. It may not hold white space
	// or braces.
	Prefix string

	// TTL is the idle lifetime of the sessions this Store creates, unless
	// SetWith gives one its own. It is recorded with each session, and Liv
	// (and Get when Sliding) restores the session's own, whichever Store
	// runs them. When zero, 24 hours. Forever means no idle expiry.
	TTL time.Duration

	// MaxAge is the absolute lifetime of the sessions this Store creates,
	// counted from Set, unless SetWith gives one its own. The deadline is
	// recorded with each session: nothing extends a token past it, not Liv,
	// Sliding or Rotate, whichever Store runs them. When zero, there is no
	// absolute limit.
	MaxAge time.Duration

	// Sliding makes Get also restart the idle TTL, in the same round trip.
	Sliding bool

	// Rand is the source of token entropy. When nil, crypto/rand.Reader.
	// A Rand that fails makes Set fail; there is no fallback.
	Rand io.Reader

	// TrackUsers keeps a per-user index so DieAll and Count work: the
	// sessions this Store creates are indexed, and each records it, so
	// that Rotate and Die by any Store keep the index true. It costs one
	// extra write per Set, pipelined in the same round trip.
	TrackUsers bool

	// Replicas is how many replicas must acknowledge (WAIT) the deletions
	// made by Die, DieAll and Rotate and, with TrackUsers, the index entry
	// written by Set, so that a failover can lose neither. When zero,
	// nothing waits.
	Replicas int

	// ReplicaTimeout bounds the wait for replicas. When zero, 1 second.
	// Keep it below the connections' read timeout.
	ReplicaTimeout time.Duration

	// CacheSize is how many tokens Get keeps in process memory, so that Get
	// of a token it has met needs no round trip. When zero, there is no
	// cache. With a cache, the Store holds one connection of the Pool to hear
	// Redis's invalidations (CLIENT TRACKING), New fails when it cannot turn
	// them on, and the Store must be closed with Close. On Redis Cluster it
	// needs seshcluster's Pool, Redis 7 and auto-pipelining (Pipelines not
	// NoPipelining), and holds one such connection per master. With Sliding,
	// Get restarts the idle TTL only once it has run down by
	// min(CacheMaxStale, TTL/2). See docs/cache.md.
	CacheSize int

	// Pipelines is how many connections to each Redis server the
	// operations in flight at the same moment share, so that many of them go
	// out in one write and come back in one read (auto-pipelining). An
	// operation that finds nothing else in flight, and one that waits for
	// replicas (Replicas), takes a connection of its own from the Pool
	// instead. When zero, 2. NoPipelining turns sharing off: every operation
	// takes its own connection from the Pool. See docs/pipelining.md.
	Pipelines int

	// CacheMaxStale bounds how long the cache serves tokens without hearing
	// from Redis, should the invalidation connection stall or break without
	// a word. When zero, 1 second. It may not be below 10ms.
	CacheMaxStale time.Duration

	// Hook is called around each operation, to trace or measure it; see
	// Hook. When nil, operations are only counted (Store.Stats), which
	// adds no allocation and no round trip.
	Hook Hook

	// Logger receives the rare events an operator must see: the cache's
	// tracking lost and regained, the cache bypassed and restored, a
	// Rotate waiting for a DieAll, a rotated token reused
	// (ReuseDetection). It never receives one line per request,
	// nor a token or a user ID. When nil, nothing is logged.
	Logger *slog.Logger

	// RotateGrace is how long a token that Rotate or Reauth ended still
	// resolves, to the same user, so that requests already in flight with
	// it succeed; a second Rotate of it within the window returns the same
	// new token. Only the immediate predecessor has a window: Rotate of the
	// new token ends the old one at once. Die, DieAll and Die of the new
	// token end it at once too. When zero, there is no window: the old
	// token ends with the rotation. It may not exceed 1 minute. See
	// docs/stepup.md.
	RotateGrace time.Duration

	// ReuseDetection makes a rotated token presented to Get, Liv, Rotate
	// or Reauth after its window (at once, without RotateGrace) end every
	// token of its session's chain: by RFC 9700's reasoning, either its
	// holder or the one who rotated it is a thief. Each detection is
	// counted (Stats.Reuses), logged (Logger, at Warn) and reported to the
	// Hook (Result.Reused). It costs a short key per rotation, living as
	// long as the session can, and one round trip on a miss of a
	// well-formed token; hits cost nothing. See docs/stepup.md.
	ReuseDetection bool

	// Details makes Set record, with each session, when it was created,
	// when it was last used and the Label its Policy gives, for Lookup and
	// Sessions to show. Get then records a session's last use at most once
	// per LastUseInterval. When false, Set records none of them and no Get
	// writes anything. See docs/sessions.md.
	Details bool

	// LastUseInterval is how stale a session's recorded last use may grow
	// before a Get, Lookup or cached Get records it anew, with Details.
	// When zero, 1 minute.
	LastUseInterval time.Duration

	// MaxSessions caps how many sessions each user may have at once, with
	// TrackUsers: a Set beyond it is refused with ErrTooManySessions or,
	// with EndOldest, ends the user's oldest sessions first. Rotate does not
	// count as a new session. When zero, there is no cap.
	MaxSessions int

	// EndOldest makes a Set that would pass MaxSessions end the user's
	// oldest sessions, those whose user authenticated longest ago
	// (Session.AuthTime), to make room. When false, such a Set is refused
	// with ErrTooManySessions.
	EndOldest bool
}

// Store is a token store on Redis. It issues tokens for user IDs and
// resolves them back.
//
// Most callers want [Store.Set] at login, [Store.Get] on every request and
// [Store.Die] at logout; [Store.Liv] keeps a token alive without reading it.
// A token that is unknown, expired or ended gets [ErrNotFound] from Get, Liv
// and Rotate, never a partial result, and Die treats it as already done. A
// malformed token, which cannot name any key, gets ErrNotFound from every
// method, Die included, without a round trip to Redis.
//
// With [Options].CacheSize, Get serves tokens it has met from memory, and
// [Store.Close] must be called once the Store is no longer needed.
//
// Store is safe for concurrent use by multiple goroutines.
type Store struct {
	pool     Pool
	prefix   string // Prefix + ":"
	ttl      int64  // default idle lifetime in ms; 0 means none
	maxAge   int64  // default absolute lifetime in ms; 0 means none
	capped   bool   // idle TTL shorter than MaxAge: an old-layout token without its deadline key is ended
	sliding  bool
	track    bool
	rand     io.Reader
	replicas int
	waitMS   int64
	cache    *cache      // nil without Options.CacheSize
	batch    *wire.Lanes // nil with NoPipelining or a Pool whose connections cannot be shared
	hook     Hook
	log      *slog.Logger // never nil
	stats    stats
	later    sync.WaitGroup // cleanups waiting for the round trip they undo
	grace    int64          // Options.RotateGrace in ms; 0 for none
	reuse    bool           // Options.ReuseDetection

	details   bool  // Options.Details
	lastUse   int64 // Options.LastUseInterval in ms
	maxSess   int   // Options.MaxSessions; 0 for none
	endOldest bool  // Options.EndOldest
}

// New returns a Store that keeps its tokens in the Redis behind p.
// It returns an error naming the field when o is invalid.
//
// When p is a *redis.Pool with a MaxActive, New returns an error unless
// MaxActive is at least Pipelines + 1, plus 1 with a cache: the lanes, the
// cache's tracking connection and one operation alone in flight.
//
// Without TrackUsers or a cache New does no I/O. With Options.TrackUsers it
// reads Redis's maxmemory-policy (INFO memory), within 5 seconds, and
// returns an error naming TrackUsers when Redis cannot be reached or may
// evict a user's index (see docs/security.md). With Options.CacheSize it takes a
// connection from p (on Cluster, one to each master) and turns CLIENT
// TRACKING on, within 5 seconds; it returns an error naming CacheSize when
// Redis cannot be reached, has no CLIENT TRACKING (before Redis 6,
// miniredis), or is a Redis Cluster behind a Pool other than seshcluster's
// or with NoPipelining.
func New(p Pool, o Options) (*Store, error) {
	if p == nil {
		return nil, errors.New("sesh: new: Pool is nil")
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkPoolSize(p, o); err != nil {
		return nil, err
	}
	s := &Store{
		pool:     p,
		prefix:   o.Prefix + ":",
		maxAge:   o.MaxAge.Milliseconds(),
		sliding:  o.Sliding,
		track:    o.TrackUsers,
		rand:     o.Rand,
		replicas: o.Replicas,
		waitMS:   o.ReplicaTimeout.Milliseconds(),
		hook:     o.Hook,
		log:      o.logger(),
		grace:    o.RotateGrace.Milliseconds(),
		reuse:    o.ReuseDetection,

		details:   o.Details,
		lastUse:   o.LastUseInterval.Milliseconds(),
		maxSess:   o.MaxSessions,
		endOldest: o.EndOldest,
	}
	if o.TTL != Forever {
		s.ttl = o.TTL.Milliseconds()
	}
	s.capped = s.maxAge > 0 && s.ttl > 0 && s.ttl < s.maxAge
	if o.Pipelines != NoPipelining {
		s.batch = wire.New(p, o.Pipelines)
	}
	if s.track {
		if err := s.checkEviction(); err != nil {
			return nil, fmt.Errorf("sesh: new: TrackUsers: %w", err)
		}
	}
	if o.CacheSize > 0 {
		c, err := newCache(s, o.CacheSize, o.CacheMaxStale)
		if err != nil {
			return nil, fmt.Errorf("sesh: new: %w", err)
		}
		s.cache = c
	}
	return s, nil
}

// Close releases what the Store holds between operations: the shared
// connections of auto-pipelining (Options.Pipelines) and, with
// Options.CacheSize, the connection that receives Redis's invalidations. It
// ends the goroutines that tend them and returns once they have ended: at
// once when Redis answers, and otherwise within about CacheMaxStale or the
// connections' read timeout. It also waits for the cleanups of cancelled
// operations that wait for the round trip they undo, which the lanes'
// closing answers or fails. Close the Store before its Pool. The Store goes
// on working after Close, without its cache, each operation on a connection
// of its own. A Store without a cache holds nothing for more than a second
// after its last operation, so closing it is optional. Close is a no-op
// after the first call. It returns nil.
func (s *Store) Close() error {
	if b := s.batch; b != nil {
		b.Close()
	}
	s.later.Wait()
	if c := s.cache; c != nil {
		c.t.Close()
	}
	return nil
}

// withDefaults checks o and fills in the defaults its zero fields stand
// for. Its errors name the field.
func (o Options) withDefaults() (Options, error) {
	for _, fill := range []func(*Options) error{(*Options).keyDefaults, (*Options).policyDefaults, (*Options).replicaDefaults, (*Options).machineryDefaults, (*Options).graceDefaults, (*Options).sessionDefaults} {
		if err := fill(&o); err != nil {
			return o, err
		}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o, nil
}

// keyDefaults checks and fills Prefix.
func (o *Options) keyDefaults() error {
	if o.Prefix == "" {
		o.Prefix = "sesh"
	}
	if strings.IndexFunc(o.Prefix, unicode.IsSpace) >= 0 {
		return fmt.Errorf("sesh: new: Prefix %q holds white space", o.Prefix)
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		// A brace would make Redis Cluster hash a token key and its deadline
		// key by different tags.
		return fmt.Errorf("sesh: new: Prefix %q holds a brace, { or }, which Redis Cluster reads as a hash tag", o.Prefix)
	}
	return nil
}

// policyDefaults checks and fills TTL and MaxAge, the defaults of the
// sessions the Store creates.
func (o *Options) policyDefaults() error {
	switch {
	case o.TTL == 0:
		o.TTL = 24 * time.Hour
	case o.TTL < 0 && o.TTL != Forever:
		return fmt.Errorf("sesh: new: TTL %v is negative and not Forever", o.TTL)
	case o.TTL > 0 && o.TTL < time.Millisecond:
		return fmt.Errorf("sesh: new: TTL %v is below Redis's 1ms resolution", o.TTL)
	}
	if o.MaxAge < 0 {
		return fmt.Errorf("sesh: new: MaxAge %v is negative", o.MaxAge)
	}
	if o.MaxAge > 0 && o.MaxAge < time.Millisecond {
		return fmt.Errorf("sesh: new: MaxAge %v is below Redis's 1ms resolution", o.MaxAge)
	}
	return nil
}

// replicaDefaults checks and fills Replicas and ReplicaTimeout.
func (o *Options) replicaDefaults() error {
	if o.Replicas < 0 {
		return fmt.Errorf("sesh: new: Replicas %d is negative", o.Replicas)
	}
	if o.ReplicaTimeout < 0 {
		return fmt.Errorf("sesh: new: ReplicaTimeout %v is negative", o.ReplicaTimeout)
	}
	if o.ReplicaTimeout > 0 && o.ReplicaTimeout < time.Millisecond {
		// WAIT's timeout is in ms, and WAIT n 0 would block forever.
		return fmt.Errorf("sesh: new: ReplicaTimeout %v is below Redis's 1ms resolution", o.ReplicaTimeout)
	}
	if o.ReplicaTimeout == 0 {
		o.ReplicaTimeout = time.Second
	}
	return nil
}

// machineryDefaults checks and fills Pipelines, CacheSize and
// CacheMaxStale.
func (o *Options) machineryDefaults() error {
	switch {
	case o.Pipelines == 0:
		o.Pipelines = defaultPipelines
	case o.Pipelines < 0 && o.Pipelines != NoPipelining:
		return fmt.Errorf("sesh: new: Pipelines %d is negative and not NoPipelining", o.Pipelines)
	case o.Pipelines > maxPipelines:
		return fmt.Errorf("sesh: new: Pipelines %d is more than %d", o.Pipelines, maxPipelines)
	}
	if o.CacheSize < 0 {
		return fmt.Errorf("sesh: new: CacheSize %d is negative", o.CacheSize)
	}
	switch {
	case o.CacheMaxStale == 0:
		o.CacheMaxStale = defaultMaxStale
	case o.CacheMaxStale < minMaxStale:
		return fmt.Errorf("sesh: new: CacheMaxStale %v is below %v", o.CacheMaxStale, minMaxStale)
	}
	return nil
}

// Set issues a new token for userID and returns it. The token lives for the
// idle TTL, and at most MaxAge. userID must be 1 to 1024 bytes, or Set
// returns ErrInvalidUser; it is stored as it is. Set records the Store's
// Options with the session as its policy; see SetWith.
func (s *Store) Set(ctx context.Context, userID string) (string, error) {
	return s.runSet(ctx, plain{}, userID, Policy{})
}

// SetWith is Set with a policy of the session's own, such as a longer
// MaxAge for "remember me" or a short idle TTL for an administrator. Zero
// fields of p take the Store's Options, so SetWith(ctx, userID, Policy{})
// is Set. The policy is recorded with the session in Redis: Liv, a sliding
// Get and Rotate honour it whichever Store, Crypt or sesh command runs
// them, and Rotate carries it to the new token. Whether the session is in
// its user's index is Options.TrackUsers of the Store that runs SetWith.
// It returns an error naming the field, before any round trip, for a
// negative field (TTL other than Forever) or one below 1ms.
func (s *Store) SetWith(ctx context.Context, userID string, p Policy) (string, error) {
	return s.runSet(ctx, plain{}, userID, p)
}

// Get returns the user ID of a live token, or ErrNotFound. With Sliding it
// also restarts the token's idle TTL, capped at its MaxAge, in the same
// round trip: the session's own TTL and deadline, as Liv does.
func (s *Store) Get(ctx context.Context, token string) (string, error) {
	return s.runGet(ctx, plain{}, token)
}

// Liv restarts a live token's idle TTL, capped at its MaxAge, in one round
// trip. The TTL and the deadline are the session's own, recorded at Set,
// whatever this Store's Options. It returns ErrNotFound when the token is
// gone, and never brings an ended token back. For a session without an idle
// TTL it only reports whether the token is live.
func (s *Store) Liv(ctx context.Context, token string) error {
	return s.runLiv(ctx, token)
}

// Die ends a token: it deletes every key of the session and its index
// entry, whatever this Store's Options. It returns nil when the token was
// already gone, and ErrNotFound only for a malformed token.
func (s *Store) Die(ctx context.Context, token string) error {
	return s.runDie(ctx, plain{}, token)
}

// codec turns user IDs into stored values and back; Crypt supplies one
// that encrypts.
type codec interface {
	seal(key, userID string) (string, error)
	open(key, value string) (string, error)
	// indexID names the index of a token of userID whose stored value is
	// value ("" for one about to be sealed).
	indexID(userID, value string) string
	// indexIDs names every index userID may have, in the order DieAll
	// takes them.
	indexIDs(userID string) []string
}

// plain stores user IDs as they are.
type plain struct{}

func (plain) seal(_, userID string) (string, error) { return userID, nil }
func (plain) open(_, value string) (string, error)  { return value, nil }
func (plain) indexID(userID, _ string) string       { return userID }
func (plain) indexIDs(userID string) []string       { return []string{userID} }

// wrap names the operation in err, as "sesh: op: cause". ErrNotFound is
// returned as it is, and a cause that already reads "sesh: ..." does not
// repeat the prefix.
func wrap(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	return &opError{op, err}
}

type opError struct {
	op  string
	err error
}

func (e *opError) Error() string {
	return "sesh: " + e.op + ": " + strings.TrimPrefix(e.err.Error(), "sesh: ")
}

func (e *opError) Unwrap() error { return e.err }
