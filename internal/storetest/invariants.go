package storetest

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// The tests in this file each guard a promise that an adversarial review
// once broke: a deadline that moved, an index entry pruned before its token
// was written, a lock left behind, data read back from Redis trusted, a
// context overrun and a Liv that outlived a deadline.

// testRotateDeadline checks that no chain of Rotate calls outlives the
// deadline its Set gave it, however long Rotate waits between reading the
// old token and writing the new one.
func testRotateDeadline(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	for _, o := range []sesh.Options{
		{TrackUsers: true, MaxAge: 4 * u, TTL: 2 * u},
		{TrackUsers: true, MaxAge: 4 * u, TTL: sesh.Forever},
		{MaxAge: 4 * u, TTL: 2 * u},
	} {
		name := "TTL " + o.TTL.String()
		if o.TTL == sesh.Forever {
			name = "TTL Forever"
		}
		if o.TrackUsers {
			name += " with TrackUsers"
		}
		t.Run(name+": a DieAll lock's wait is not added to the deadline", func(t *testing.T) {
			if !o.TrackUsers {
				t.Skip("no index, no lock")
			}
			o := o
			o.Prefix = prefix(t)
			s := newStore(t, b, o)
			tok := set(t, s, "alice")
			// A lock of a DieAll that died, live for 6 units: longer than
			// the session has left.
			idx := o.Prefix + ":u:alice"
			do(t, b, "ZADD", idx, -(serverMS(t, b) + (6 * u).Milliseconds()), "!planted")
			rctx, cancel := context.WithTimeout(ctx, 30*u)
			defer cancel()
			go func() { // the server's clock runs while Rotate waits
				for rctx.Err() == nil {
					b.Advance(t, u)
				}
			}()
			nt, err := s.Rotate(rctx, tok)
			if err == nil {
				// Rotate waited past the deadline: what it issued must be dead.
				if got, err := s.Get(ctx, nt); !errors.Is(err, sesh.ErrNotFound) {
					t.Fatalf("Rotate after the deadline issued a token that resolves: Get = %q, %v", got, err)
				}
			} else if !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("Rotate = %q, %v; want ErrNotFound once the deadline has passed", nt, err)
			}
		})
		t.Run(name+": back-to-back Rotate and Get end at the deadline", func(t *testing.T) {
			if b.Serial {
				t.Skip("keys expire on miniredis's clock, which Advance moves, not on the wall clock")
			}
			o := o
			o.Prefix = prefix(t)
			s := newStore(t, b, o)
			tok := set(t, s, "alice")
			deadline := time.Now().Add(o.MaxAge)
			var last time.Time // when the last successful Get began
			for time.Since(deadline) < 4*u {
				start := time.Now()
				if _, err := s.Get(ctx, tok); err != nil {
					if !errors.Is(err, sesh.ErrNotFound) {
						t.Fatal(err)
					}
					break
				}
				last = start
				nt, err := s.Rotate(ctx, tok)
				if errors.Is(err, sesh.ErrNotFound) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				tok = nt
			}
			// Redis expires keys to the ms; the clocks are one machine's.
			const slack = 5 * time.Millisecond
			if over := last.Sub(deadline); over > slack {
				t.Fatalf("a Get that began %v after the deadline resolved the rotated token", over)
			}
			time.Sleep(time.Until(deadline.Add(slack)))
			wantGone(t, s, tok)
		})
	}
}

// stepping is a Pool that sends each command of a pipeline in a round trip
// of its own, as a Pool that cannot pipeline would, and calls before ahead
// of each command. It lets a test run another operation between two
// commands of one. With reorder, it first reorders the commands of each
// pipeline, as Cluster may run commands bound for different masters.
type stepping struct {
	sesh.Pool
	before  func(cmd string, args []any)
	reorder func(cmds [][]any)
}

type steppingConn struct {
	redis.Conn
	p      *stepping
	queued [][]any
}

func (p *stepping) GetContext(ctx context.Context) (redis.Conn, error) {
	c, err := p.Pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	return &steppingConn{Conn: c, p: p}, nil
}

func (c *steppingConn) Send(cmd string, args ...any) error {
	c.queued = append(c.queued, append([]any{cmd}, args...))
	return nil
}

func (c *steppingConn) Flush() error { return nil }

func (c *steppingConn) Do(cmd string, args ...any) (any, error) {
	if cmd != "" {
		c.Send(cmd, args...)
	}
	q := c.queued
	c.queued = nil
	if c.p.reorder != nil && cmd == "" {
		c.p.reorder(q)
	}
	var rs []any
	for _, a := range q {
		c.p.before(a[0].(string), a[1:])
		v, err := c.Conn.Do(a[0].(string), a[1:]...)
		if e, ok := err.(redis.Error); ok {
			v, err = e, nil
		}
		if err != nil {
			return nil, err
		}
		rs = append(rs, v)
	}
	if cmd == "" {
		return rs, nil
	}
	if e, ok := rs[len(rs)-1].(redis.Error); ok {
		return nil, e
	}
	return rs[len(rs)-1], nil
}

// writesToken reports whether cmd creates a token key: the script of Set
// and of Rotate, which writes the session's record.
func writesToken(cmd string, args []any) bool {
	if cmd != "EVAL" {
		return false
	}
	src, _ := args[0].(string)
	return strings.Contains(src, "'HSET', KEYS[1]")
}

// testCreating checks that Count, run between the index write and the
// token write of a Set or a Rotate, cannot drop the new token's entry: a
// DieAll that starts once the Set or Rotate has returned ends its token.
func testCreating(t *testing.T, b Backend) {
	ctx := context.Background()
	for _, o := range []sesh.Options{
		{TrackUsers: true, TTL: time.Minute},
		{TrackUsers: true, TTL: time.Minute, MaxAge: time.Hour},
	} {
		name := "TTL only"
		if o.MaxAge > 0 {
			name = "with MaxAge"
		}
		for _, op := range []string{"Set", "Rotate"} {
			t.Run(op+", "+name, func(t *testing.T) {
				o := o
				o.Prefix = prefix(t)
				other := newStore(t, b, o)
				var armed, ran atomic.Bool
				step := &stepping{Pool: b.Pool}
				step.before = func(cmd string, args []any) {
					if armed.Load() && writesToken(cmd, args) && ran.CompareAndSwap(false, true) {
						if _, err := other.Count(ctx, "alice"); err != nil {
							t.Errorf("Count between index and token writes: %v", err)
						}
					}
				}
				o.CacheSize = wrappedCacheSize(b)
				s, err := sesh.New(step, o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				var tok string
				if op == "Set" {
					armed.Store(true)
					tok = set(t, s, "alice")
				} else {
					old := set(t, s, "alice")
					armed.Store(true)
					if tok, err = s.Rotate(ctx, old); err != nil {
						t.Fatal(err)
					}
				}
				if !ran.Load() {
					t.Fatal("Count did not run between the writes")
				}
				if n, err := other.DieAll(ctx, "alice"); n != 1 || err != nil {
					t.Fatalf("DieAll = %d, %v; want 1", n, err)
				}
				wantGone(t, other, tok)
			})
		}
	}
}

// testStaleLock checks that a DieAll whose context ends while it waits for
// replicas takes its lock back, so Rotate is not held up by it.
func testStaleLock(t *testing.T, b Backend) {
	if b.Serial {
		t.Skip("miniredis's WAIT does not block")
	}
	ctx := context.Background()
	p := prefix(t)
	// No backend of the suite has 9 replicas: WAIT blocks 2s.
	waiting := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, Replicas: 9, ReplicaTimeout: 2 * time.Second})
	s := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true})
	set(t, s, "alice")
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if n, err := waiting.DieAll(dctx, "alice"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DieAll = %d, %v; want context.DeadlineExceeded", n, err)
	}
	if locks, _ := redis.Strings(do(t, b, "ZRANGEBYSCORE", p+":u:alice", "-inf", "(0"), nil); len(locks) != 0 {
		t.Fatalf("DieAll left its lock %q", locks)
	}
	tok := set(t, s, "alice")
	rctx, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if _, err := s.Rotate(rctx, tok); err != nil {
		t.Fatalf("Rotate after a cancelled DieAll = %v", err)
	}
}

// testContextBound checks that the ending operations return soon after
// their context ends, while a WAIT for replicas still blocks their
// connection.
func testContextBound(t *testing.T, b Backend) {
	if b.Serial {
		t.Skip("miniredis's WAIT does not block")
	}
	ctx := context.Background()
	p := prefix(t)
	const wait = 2 * time.Second
	waiting := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, Replicas: 9, ReplicaTimeout: wait})
	s := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true})
	ops := map[string]func(context.Context) error{
		"die": func(ctx context.Context) error { return waiting.Die(ctx, set(t, s, "alice")) },
		"dieall": func(ctx context.Context) error {
			set(t, s, "alice")
			_, err := waiting.DieAll(ctx, "alice")
			return err
		},
		"rotate": func(ctx context.Context) error { _, err := waiting.Rotate(ctx, set(t, s, "alice")); return err },
	}
	for name, op := range ops {
		octx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		start := time.Now()
		err := op(octx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "sesh: "+name+": ") {
			t.Errorf("%s = %v; want sesh: %s: wrapping context.DeadlineExceeded", name, err, name)
		}
		// Not a speed test: the WAIT it abandoned blocks for 2s.
		if took >= wait/2 {
			t.Errorf("%s returned %v after a 100ms context: it waited on the abandoned command", name, took)
		}
	}
}

// testBadMembers checks that index members that cannot name a token, which
// only someone with write access to Redis can plant, are skipped and
// removed, and that nothing breaks on them.
func testBadMembers(t *testing.T, b Backend) {
	ctx := context.Background()
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true})
	idx := p + ":u:alice"
	bad := []any{"", "x", strings.Repeat("*", 43), strings.Repeat("A", 42) + "B", "{}", strings.Repeat("A", 44)}
	for _, op := range []string{"DieAll", "Count"} {
		tok := set(t, s, "alice")
		for _, m := range bad {
			do(t, b, "ZADD", idx, 1, m)
		}
		switch op {
		case "DieAll":
			if n, err := s.DieAll(ctx, "alice"); n != 1 || err != nil {
				t.Fatalf("DieAll = %d, %v; want 1", n, err)
			}
			wantGone(t, s, tok)
		case "Count":
			count(t, s, "alice", 1)
			mustDie(t, s, tok)
		}
		for _, m := range bad {
			if v := do(t, b, "ZSCORE", idx, m); v != nil {
				t.Fatalf("%s left the bad member %q", op, m)
			}
		}
	}
	// The Store still works, its cache included.
	tok := set(t, s, "alice")
	wantUser(t, s, tok, "alice")
	mustDie(t, s, tok)
	wantGone(t, s, tok)
}

// testDeadlineCaps checks that a deadline key caps Liv and a sliding Get
// from any Store, whatever its own Options: the sesh command's liv, with
// its 24h TTL and no MaxAge, cannot extend an app's capped session.
func testDeadlineCaps(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.Unit
	for _, o := range []sesh.Options{
		{MaxAge: 4 * u, TTL: u},
		{MaxAge: 4 * u, TTL: sesh.Forever},
		{MaxAge: 4 * u, TTL: 8 * u},
	} {
		t.Run("MaxAge "+o.MaxAge.String()+" TTL "+o.TTL.String(), func(t *testing.T) {
			o := o
			o.Prefix = prefix(t)
			app := newStore(t, b, o)
			cli := newStore(t, b, sesh.Options{Prefix: o.Prefix, TTL: 24 * time.Hour})
			sliding := newStore(t, b, sesh.Options{Prefix: o.Prefix, TTL: 24 * time.Hour, Sliding: true})
			tok := set(t, app, "alice")
			k := key(t, o.Prefix, tok)
			if err := cli.Liv(ctx, tok); err != nil {
				t.Fatalf("Liv = %v", err)
			}
			if d := pttl(t, b, k); d <= 0 || d > o.MaxAge {
				t.Fatalf("after another Store's Liv the token lives %v more; its MaxAge is %v", d, o.MaxAge)
			}
			wantUser(t, sliding, tok, "alice")
			if d := pttl(t, b, k); d <= 0 || d > o.MaxAge {
				t.Fatalf("after another Store's sliding Get the token lives %v more; its MaxAge is %v", d, o.MaxAge)
			}
			nt, err := cli.Rotate(ctx, tok)
			if err != nil {
				t.Fatalf("Rotate = %v", err)
			}
			if d := pttl(t, b, key(t, o.Prefix, nt)); d <= 0 || d > o.MaxAge {
				t.Fatalf("a token rotated by another Store lives %v; its MaxAge is %v", d, o.MaxAge)
			}
			mustDie(t, app, nt)
		})
	}
}
