package sesh

import (
	"context"
	"sync/atomic"
)

// Hook observes each operation of a Store, and of every Crypt over it, to
// trace or measure it (see seshotel). It is called when an operation
// begins, with the caller's context and the operation's name, as its errors
// spell it: "set", "get", "liv", "die", "dieall", "count", "rotate",
// "lookup", "sessions", "diesession", "dieothers", "dieeverything" or
// "reauth". The
// operation runs with the context the Hook returns (the caller's when it
// returns nil), so that a span started there is the parent of whatever the
// Pool does; the function the Hook returns, when not nil, is called once
// with the result when the operation ends, on the same goroutine.
//
// A Hook is given only the operation's name and its Result: never a token,
// and never a user ID, whether plain or under Crypt. It is called on every
// operation, cached Gets included, so it should be quick.
type Hook func(ctx context.Context, op string) (context.Context, func(Result))

// Result is what a Hook learns of an operation that ended.
type Result struct {
	// Cached reports whether a Get was answered from process memory
	// (Options.CacheSize), with no round trip.
	Cached bool
	// RoundTrips is how many round trips to Redis the operation took,
	// counting a cleanup after a failure.
	RoundTrips int
	// Err is the error the operation returned, or nil.
	Err error
	// Reused reports that the operation met a rotated token presented
	// after its grace window, and ended its session's chain
	// (Options.ReuseDetection). Err is ErrNotFound then.
	Reused bool
}

// run runs the operation f: it counts it in the Store's Stats and, with a
// Hook, calls the Hook around it. Without a Hook it adds no allocation.
func run[T any](s *Store, ctx context.Context, o op, f func(context.Context) (T, error)) (T, error) {
	if s.hook == nil {
		v, err := f(ctx)
		s.stats.done(o, s.cache != nil, err)
		return v, err
	}
	return hooked(s, ctx, o, f)
}

// hooked is run with a Hook.
func hooked[T any](s *Store, ctx context.Context, o op, f func(context.Context) (T, error)) (T, error) {
	hctx, end := s.hook(ctx, o.String())
	if hctx == nil {
		hctx = ctx
	}
	t := &tripsCtx{Context: hctx}
	v, err := f(t)
	s.stats.done(o, s.cache != nil, err)
	if end != nil {
		n := int(t.n.Load())
		end(Result{Cached: o == opGet && s.cache != nil && err == nil && n == 0, RoundTrips: n, Err: err, Reused: t.reused.Load()})
	}
	return v, err
}

// tripsCtx is the context of an operation run with a Hook: it carries the
// count of the operation's round trips, which its connections add to
// (conn.do). It is context.WithValue and the counter in one allocation.
type tripsCtx struct {
	context.Context
	n      atomic.Int32
	reused atomic.Bool // see Result.Reused
}

// tripsKey is the key under which a tripsCtx finds itself.
type tripsKey struct{}

func (c *tripsCtx) Value(key any) any {
	if key == (tripsKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// trips returns the round-trip counter of the operation of ctx, or nil.
func (s *Store) trips(ctx context.Context) *atomic.Int32 {
	if s.hook == nil {
		return nil
	}
	if t, ok := ctx.Value(tripsKey{}).(*tripsCtx); ok {
		return &t.n
	}
	return nil
}

// The operations, as run calls them.

func (s *Store) runSet(ctx context.Context, cd codec, userID string, p Policy) (string, error) {
	return run(s, ctx, opSet, func(ctx context.Context) (string, error) { return s.set(ctx, cd, userID, p) })
}

func (s *Store) runGet(ctx context.Context, cd codec, token string) (string, error) {
	return run(s, ctx, opGet, func(ctx context.Context) (string, error) { return s.get(ctx, cd, token) })
}

func (s *Store) runLiv(ctx context.Context, token string) error {
	_, err := run(s, ctx, opLiv, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.liv(ctx, token) })
	return err
}

func (s *Store) runDie(ctx context.Context, cd codec, token string) error {
	_, err := run(s, ctx, opDie, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.die(ctx, cd, token) })
	return err
}

func (s *Store) runDieAll(ctx context.Context, cd codec, userID string) (int, error) {
	return run(s, ctx, opDieAll, func(ctx context.Context) (int, error) { return s.dieAll(ctx, cd, userID) })
}

func (s *Store) runCount(ctx context.Context, cd codec, userID string) (int, error) {
	return run(s, ctx, opCount, func(ctx context.Context) (int, error) { return s.count(ctx, cd, userID) })
}

func (s *Store) runRotate(ctx context.Context, cd codec, token string) (string, error) {
	return run(s, ctx, opRotate, func(ctx context.Context) (string, error) { return s.rotate(ctx, cd, token) })
}

func (s *Store) runLookup(ctx context.Context, cd codec, token string) (Session, error) {
	return run(s, ctx, opLookup, func(ctx context.Context) (Session, error) { return s.lookup(ctx, cd, token) })
}

func (s *Store) runReauth(ctx context.Context, cd codec, token string) (string, error) {
	return run(s, ctx, opReauth, func(ctx context.Context) (string, error) { return s.renew(ctx, cd, token, opReauth) })
}

func (s *Store) runSessions(ctx context.Context, cd codec, userID string) ([]Session, error) {
	return run(s, ctx, opSessions, func(ctx context.Context) ([]Session, error) { return s.sessions(ctx, cd, userID) })
}

func (s *Store) runDieSession(ctx context.Context, cd codec, userID, handle string) error {
	_, err := run(s, ctx, opDieSession, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.dieSession(ctx, cd, userID, handle)
	})
	return err
}

func (s *Store) runDieOthers(ctx context.Context, cd codec, token string) (int, error) {
	return run(s, ctx, opDieOthers, func(ctx context.Context) (int, error) { return s.dieOthers(ctx, cd, token) })
}

func (s *Store) runDieEverything(ctx context.Context) (int, error) {
	return run(s, ctx, opDieEverything, s.dieEverything)
}
