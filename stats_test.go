package sesh_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// TestStatsCounts checks that each operation counts under its kind, and each
// error under its own, for a Store and a Crypt over it.
func TestStatsCounts(t *testing.T) {
	ctx := context.Background()
	_, p := miniPool(t)
	s, err := sesh.New(p, sesh.Options{TrackUsers: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	plainTok := mustSet(t, s, "alice")
	cryptTok := mustSet(t, c, "bob")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		do   func() error
		ops  sesh.OpCounts
		errs sesh.ErrorCounts
	}{
		{"a Set counts as a Set", func() error { _, err := s.Set(ctx, "alice"); return err },
			sesh.OpCounts{Set: 1}, sesh.ErrorCounts{}},
		{"a Get of a live token counts no error", func() error { _, err := s.Get(ctx, plainTok); return err },
			sesh.OpCounts{Get: 1}, sesh.ErrorCounts{}},
		{"a Get of an unknown token counts as not found", func() error { _, err := s.Get(ctx, strings.Repeat("A", 43)); return err },
			sesh.OpCounts{Get: 1}, sesh.ErrorCounts{NotFound: 1}},
		{"a malformed token counts as not found", func() error { return s.Liv(ctx, "x") },
			sesh.OpCounts{Liv: 1}, sesh.ErrorCounts{NotFound: 1}},
		{"a Crypt's Get of a plain token counts as decrypt", func() error { _, err := c.Get(ctx, plainTok); return err },
			sesh.OpCounts{Get: 1}, sesh.ErrorCounts{Decrypt: 1}},
		{"a cancelled context counts as context", func() error { return s.Die(cancelled, plainTok) },
			sesh.OpCounts{Die: 1}, sesh.ErrorCounts{Context: 1}},
		{"an empty user ID counts as an invalid user", func() error { _, err := c.Count(ctx, ""); return err },
			sesh.OpCounts{Count: 1}, sesh.ErrorCounts{InvalidUser: 1}},
		{"a user ID too long counts as an invalid user", func() error { _, err := s.Set(ctx, strings.Repeat("u", 1025)); return err },
			sesh.OpCounts{Set: 1}, sesh.ErrorCounts{InvalidUser: 1}},
		{"a Rotate counts as a Rotate", func() error { _, err := c.Rotate(ctx, cryptTok); return err },
			sesh.OpCounts{Rotate: 1}, sesh.ErrorCounts{}},
		{"a DieAll counts as a DieAll", func() error { _, err := s.DieAll(ctx, "alice"); return err },
			sesh.OpCounts{DieAll: 1}, sesh.ErrorCounts{}},
		{"a Die of a token already gone counts no error", func() error { return s.Die(ctx, plainTok) },
			sesh.OpCounts{Die: 1}, sesh.ErrorCounts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			tc.do()
			after := s.Stats()
			if d := diffOps(before.Ops, after.Ops); d != tc.ops {
				t.Errorf("ops moved by %+v, want %+v", d, tc.ops)
			}
			if d := diffErrs(before.Errors, after.Errors); d != tc.errs {
				t.Errorf("errors moved by %+v, want %+v", d, tc.errs)
			}
			if after.Cache != (sesh.CacheStats{}) || after.Batches != (sesh.BatchStats{}) {
				t.Errorf("a Store without cache or batches reports %+v, %+v", after.Cache, after.Batches)
			}
		})
	}
}

// TestStatsNotReplicated checks the kind of ErrNotReplicated, on a real
// Redis that has fewer replicas than asked for.
func TestStatsNotReplicated(t *testing.T) {
	p := realPool(t)
	if p == nil {
		t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
	}
	ctx := context.Background()
	s, err := sesh.New(p, sesh.Options{Prefix: cachePrefix(), Replicas: 64, ReplicaTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tok := mustSet(t, s, "alice")
	if err := s.Die(ctx, tok); !errors.Is(err, sesh.ErrNotReplicated) {
		t.Fatalf("Die with 64 replicas = %v, want ErrNotReplicated", err)
	}
	if got := s.Stats().Errors; got != (sesh.ErrorCounts{NotReplicated: 1}) {
		t.Fatalf("Errors = %+v, want one NotReplicated", got)
	}
}

func diffOps(a, b sesh.OpCounts) sesh.OpCounts {
	return sesh.OpCounts{Set: b.Set - a.Set, Get: b.Get - a.Get, Liv: b.Liv - a.Liv, Die: b.Die - a.Die,
		DieAll: b.DieAll - a.DieAll, Count: b.Count - a.Count, Rotate: b.Rotate - a.Rotate}
}

func diffErrs(a, b sesh.ErrorCounts) sesh.ErrorCounts {
	return sesh.ErrorCounts{NotFound: b.NotFound - a.NotFound, Decrypt: b.Decrypt - a.Decrypt,
		NotReplicated: b.NotReplicated - a.NotReplicated, Context: b.Context - a.Context,
		InvalidUser: b.InvalidUser - a.InvalidUser, Other: b.Other - a.Other}
}

// TestStatsCache checks the cache's counters on real Redis: hits and
// misses, invalidations from another Store, evictions, entries, and the
// time bypassed once the tracking connection is killed.
func TestStatsCache(t *testing.T) {
	url := realURL(t)
	ctx := context.Background()
	w := watch(t, url)
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute}
	other := newCached(t, watch(t, url).Pool, o)
	var logs syncBuffer
	o.CacheSize = 16
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newCached(t, w, o)

	tok := mustSet(t, other, "alice")
	heard(t, s, 1) // or it could drop the entry after the hit
	cached(t, s, w, tok, "alice")
	st := s.Stats()
	if st.Cache.Hits != 1 || st.Cache.Misses == 0 || st.Ops.Get != st.Cache.Hits+st.Cache.Misses {
		t.Fatalf("after Gets until one hit: %+v, Ops.Get %d", st.Cache, st.Ops.Get)
	}
	if st.Cache.Entries != 1 || st.Cache.Bypassed || st.Cache.BypassedFor != 0 {
		t.Fatalf("with one token cached: %+v", st.Cache)
	}

	inv := st.Cache.Invalidations
	if err := other.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	gone(t, s, tok, "alice", time.Second)
	if st := s.Stats(); st.Cache.Invalidations <= inv || st.Cache.Entries != 0 {
		t.Fatalf("after another Store's Die: %+v, want more than %d invalidations and no entry", st.Cache, inv)
	}

	// 16 entries in one shard: the 17th token filled evicts one.
	inv = s.Stats().Cache.Invalidations
	toks := make([]string, 17)
	for i := range toks {
		toks[i] = mustSet(t, other, "bob")
	}
	heard(t, s, inv+17)
	for _, tok := range toks {
		cached(t, s, w, tok, "bob")
	}
	if st := s.Stats(); st.Cache.Evictions == 0 || st.Cache.Entries != 16 {
		t.Fatalf("after 17 tokens in a cache of 16: %+v", st.Cache)
	}

	// Killed, and kept from coming back until the test says so.
	id := tracker(t, w, 0)
	w.refuse.Store(true)
	if _, err := do(t, w, "CLIENT", "KILL", "ID", id); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !s.Stats().Cache.Bypassed; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cache is not bypassed after its tracking connection was killed")
		}
	}
	st = s.Stats()
	time.Sleep(2 * time.Millisecond)
	if later := s.Stats(); later.Cache.Entries != 0 || later.Cache.BypassedFor <= st.Cache.BypassedFor {
		t.Fatalf("while bypassed: %+v, then %+v; want no entry and BypassedFor growing", st.Cache, later.Cache)
	}
	w.refuse.Store(false)
	tracker(t, w, id)
	cached(t, s, w, mustSet(t, other, "carol"), "carol")
	st = s.Stats()
	if st.Cache.Bypassed || st.Cache.BypassedFor <= 0 {
		t.Fatalf("after tracking came back: %+v, want a time bypassed", st.Cache)
	}
	if later := s.Stats(); later.Cache.BypassedFor != st.Cache.BypassedFor {
		t.Fatalf("BypassedFor moved from %v to %v while not bypassed", st.Cache.BypassedFor, later.Cache.BypassedFor)
	}
	t.Logf("bypassed for %v; log:\n%s", st.Cache.BypassedFor, logs.String())
	for _, want := range []string{"tracking on", "tracking lost", "tracking regained"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %q", want)
		}
	}
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), "alice") {
		t.Error("the log names a token or a user")
	}
}

// heard waits until s has heard of n invalidations since New.
func heard(t *testing.T, s *sesh.Store, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Cache.Invalidations < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d invalidations heard, want %d", s.Stats().Cache.Invalidations, n)
		}
	}
}

// TestStatsCachedGetAllocs checks that a cached Get, counted in Stats and
// with no Hook, allocates nothing.
func TestStatsCachedGetAllocs(t *testing.T) {
	url := realURL(t)
	w := watch(t, url)
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute, CacheSize: 64}
	s := newCached(t, w, o)
	tok := mustSet(t, s, "alice")
	cached(t, s, w, tok, "alice")
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() { s.Get(ctx, tok) })
	if allocs != 0 {
		t.Fatalf("a cached Get allocates %v times", allocs)
	}
	if hits := s.Stats().Cache.Hits; hits < 1000 {
		t.Fatalf("Hits = %d after 1000 cached Gets", hits)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestHook checks what a Hook sees of each operation: its name, the
// context it returned carried down to the Pool, the round trips, whether a
// Get was cached, and the error.
func TestHook(t *testing.T) {
	ctx := context.Background()
	_, mini := miniPool(t)
	p := &ctxPool{Pool: mini}
	var got []string
	var results []sesh.Result
	hook := func(ctx context.Context, op string) (context.Context, func(sesh.Result)) {
		return context.WithValue(ctx, hookMark{}, op), func(r sesh.Result) {
			got = append(got, op)
			results = append(results, r)
		}
	}
	s, err := sesh.New(p, sesh.Options{TrackUsers: true, Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	tok := mustSet(t, s, "alice")
	s.Get(ctx, tok)
	c.Get(ctx, tok)
	s.Liv(ctx, "x")
	s.Count(ctx, "nobody")
	s.Die(ctx, tok)
	want := []struct {
		op    string
		trips int
		err   error
	}{
		{"set", 1, nil},
		{"get", 1, nil},
		{"get", 1, sesh.ErrDecrypt},
		{"liv", 0, sesh.ErrNotFound},
		{"count", 1, nil}, // an empty index
		{"die", 2, nil},   // GETDEL, then ZREM of the entry
	}
	if len(results) != len(want) {
		t.Fatalf("the hook saw %v, want %d operations", got, len(want))
	}
	for i, w := range want {
		r := results[i]
		if got[i] != w.op || r.RoundTrips != w.trips || !errors.Is(r.Err, w.err) || (w.err == nil) != (r.Err == nil) || r.Cached {
			t.Errorf("operation %d: %s %+v, want %s with %d round trips and error %v", i, got[i], r, w.op, w.trips, w.err)
		}
	}
	if p.marks != 5 {
		t.Errorf("the Pool saw the hook's context on %d connections, want 5", p.marks)
	}
}

// hookMark is the key of the value TestHook's hook adds to the context.
type hookMark struct{}

// ctxPool counts the connections asked for with a context marked by
// TestHook's hook.
type ctxPool struct {
	*redis.Pool
	marks int
}

func (p *ctxPool) GetContext(ctx context.Context) (redis.Conn, error) {
	if ctx.Value(hookMark{}) != nil {
		p.marks++
	}
	return p.Pool.GetContext(ctx)
}

// TestHookCached checks that a Hook sees a cached Get as cached, with no
// round trip, and a miss as a round trip.
func TestHookCached(t *testing.T) {
	url := realURL(t)
	w := watch(t, url)
	var last sesh.Result
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute, CacheSize: 64,
		Hook: func(ctx context.Context, op string) (context.Context, func(sesh.Result)) {
			return ctx, func(r sesh.Result) { last = r }
		}}
	s := newCached(t, w, o)
	tok := mustSet(t, s, "alice")
	for range 100 {
		before := w.reads.Load()
		if _, err := s.Get(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		hit := w.reads.Load() == before
		if last.Cached != hit || (last.RoundTrips == 0) != hit {
			t.Fatalf("a Get that read Redis %v times: %+v", w.reads.Load()-before, last)
		}
		if hit {
			return
		}
	}
	t.Fatal("no Get was served from memory")
}

// TestLoggerLockWait checks that a Rotate held up by a DieAll of its user
// logs it once, without naming the user or the token.
func TestLoggerLockWait(t *testing.T) {
	mr, p := miniPool(t)
	var logs syncBuffer
	s, err := sesh.New(p, sesh.Options{TrackUsers: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tok := mustSet(t, s, "alice")
	// A DieAll's lock on alice's index, as DieAll writes it, for a minute.
	lockUntil := time.Now().Add(time.Minute).UnixMilli()
	if _, err := mr.ZAdd("sesh:u:alice", float64(-lockUntil), "!0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Rotate(context.Background(), tok)
		done <- err
	}()
	// Once Rotate says it waits, the DieAll ends, and Rotate goes on.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "waiting for a DieAll"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Rotate under a DieAll's lock logged nothing:\n%s", logs.String())
		}
	}
	if _, err := mr.ZRem("sesh:u:alice", "!0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Rotate once the lock is gone: %v", err)
	}
	out := logs.String()
	if n := strings.Count(out, "waiting for a DieAll"); n != 1 {
		t.Fatalf("the log says %d times that Rotate waits:\n%s", n, out)
	}
	if strings.Contains(out, "alice") || strings.Contains(out, tok) {
		t.Fatalf("the log names the user or the token:\n%s", out)
	}
}

// TestHookNil checks that a Hook may return no context and no function.
func TestHookNil(t *testing.T) {
	_, p := miniPool(t)
	calls := 0
	s, err := sesh.New(p, sesh.Options{Hook: func(context.Context, string) (context.Context, func(sesh.Result)) {
		calls++
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	tok := mustSet(t, s, "alice")
	if got, err := s.Get(context.Background(), tok); got != "alice" || err != nil || calls != 2 {
		t.Fatalf("Get = %q, %v after %d calls of the Hook", got, err, calls)
	}
}
