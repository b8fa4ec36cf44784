package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// flavours returns a plain Store and a Crypt over o, for suites that both
// must pass.
func flavours(t *testing.T, b Backend, o sesh.Options) map[string]api {
	t.Helper()
	plain := newStore(t, b, o)
	o.Prefix = prefix(t)
	sealed := newCrypt(t, newStore(t, b, o), newKey(t))
	return map[string]api{"Store": plain, "Crypt": sealed}
}

func count(t *testing.T, s api, userID string, want int) {
	t.Helper()
	if n, err := s.Count(context.Background(), userID); n != want || err != nil {
		t.Fatalf("Count(%q) = %d, %v; want %d", userID, n, err, want)
	}
}

func testLifecycle(t *testing.T, b Backend) {
	ctx := context.Background()
	untracked := newStore(t, b, sesh.Options{})
	for name, f := range map[string]func() error{
		"DieAll": func() error { _, err := untracked.DieAll(ctx, "alice"); return err },
		"Count":  func() error { _, err := untracked.Count(ctx, "alice"); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "TrackUsers") {
			t.Errorf("%s without TrackUsers = %v; want an error naming TrackUsers", name, err)
		}
	}

	for name, s := range flavours(t, b, sesh.Options{TrackUsers: true, TTL: time.Minute, MaxAge: time.Hour}) {
		t.Run(name+" ends every session of one user and only those", func(t *testing.T) {
			alice := []string{set(t, s, "alice"), set(t, s, "alice"), set(t, s, "alice")}
			bob := set(t, s, "bob")
			count(t, s, "alice", 3)
			count(t, s, "bob", 1)
			count(t, s, "carol", 0)
			if err := s.Die(ctx, alice[0]); err != nil {
				t.Fatal(err)
			}
			count(t, s, "alice", 2)
			n, err := s.DieAll(ctx, "alice")
			if n != 2 || err != nil {
				t.Fatalf("DieAll = %d, %v; want 2", n, err)
			}
			for _, tok := range alice {
				wantGone(t, s, tok)
			}
			wantUser(t, s, bob, "bob")
			count(t, s, "alice", 0)
			if n, err := s.DieAll(ctx, "alice"); n != 0 || err != nil {
				t.Fatalf("second DieAll = %d, %v", n, err)
			}
			// A login after DieAll is a new session.
			fresh := set(t, s, "alice")
			wantUser(t, s, fresh, "alice")
			count(t, s, "alice", 1)
			mustDie(t, s, fresh, bob)
		})
	}

	t.Run("the index key reveals the user ID only without Crypt", func(t *testing.T) {
		p := prefix(t)
		s := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, MaxAge: time.Hour})
		tok := set(t, s, "alice@example.com")
		if n, _ := redis.Int(do(t, b, "ZCARD", p+":u:alice@example.com"), nil); n != 1 {
			t.Fatalf("plain index holds %d entries, want 1", n)
		}
		if d := pttl(t, b, p+":u:alice@example.com"); d <= 0 || d > time.Hour+time.Minute {
			t.Fatalf("index PTTL = %v, want within MaxAge and a minute", d)
		}
		p2 := prefix(t)
		c := newCrypt(t, newStore(t, b, sesh.Options{Prefix: p2, TrackUsers: true}), newKey(t))
		ctok := set(t, c, "alice@example.com")
		if n, _ := redis.Int(do(t, b, "EXISTS", p2+":u:alice@example.com"), nil); n != 0 {
			t.Fatal("Crypt's index key holds the user ID")
		}
		count(t, c, "alice@example.com", 1)
		mustDie(t, s, tok)
		mustDie(t, c, ctok)
	})

	t.Run("Crypt's DieAll reaches tokens sealed and rotated across a key rotation", func(t *testing.T) {
		s := newStore(t, b, sesh.Options{TrackUsers: true, MaxAge: time.Hour})
		k1, k2 := newKey(t), newKey(t)
		old := set(t, newCrypt(t, s, k1), "alice")
		c := newCrypt(t, s, k2, k1)
		rotated, err := c.Rotate(ctx, set(t, newCrypt(t, s, k1), "alice"))
		if err != nil {
			t.Fatal(err)
		}
		fresh := set(t, c, "alice")
		count(t, c, "alice", 3)
		if n, err := c.DieAll(ctx, "alice"); n != 3 || err != nil {
			t.Fatalf("DieAll = %d, %v; want 3", n, err)
		}
		for _, tok := range []string{old, rotated, fresh} {
			wantGone(t, c, tok)
		}
	})
}

// serverMS reads the server's clock, in ms since the epoch.
func serverMS(t *testing.T, b Backend) int64 {
	t.Helper()
	vs, err := redis.Int64s(do(t, b, "TIME"), nil)
	if err != nil || len(vs) != 2 {
		t.Fatalf("TIME = %v, %v", vs, err)
	}
	return vs[0]*1000 + vs[1]/1000
}

// plant writes n index entries of tokens that do not exist, due at score,
// and returns them.
func plant(t *testing.T, b Backend, idx string, n int, score int64) []string {
	t.Helper()
	args := []any{idx}
	var ms []string
	for range n {
		var raw [32]byte
		rand.Read(raw[:])
		sum := sha256.Sum256(raw[:])
		m := base64.RawURLEncoding.EncodeToString(sum[:])
		ms = append(ms, m)
		args = append(args, score, m)
	}
	do(t, b, "ZADD", args...)
	return ms
}

// testPrune checks that the entries of gone tokens leave the index once
// they are due, and not before: an entry younger than the creation window
// may belong to a token that is being written.
func testPrune(t *testing.T, b Backend) {
	p := prefix(t)
	ctx := context.Background()
	idx := p + ":u:alice"
	long := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, TTL: time.Minute})
	// Entries as a minute's expired tokens leave them: due, tokens gone.
	const expired = 2000
	plant(t, b, idx, expired, serverMS(t, b)-1)
	do(t, b, "PEXPIRE", idx, time.Minute.Milliseconds())
	// Ordinary Sets prune the due entries, a few at a time.
	var live []string
	for range expired/8 + 10 {
		live = append(live, set(t, long, "alice"))
	}
	if n, _ := redis.Int(do(t, b, "ZCARD", idx), nil); n != len(live) {
		t.Fatalf("after %d Sets the index holds %d entries, want %d: due entries were not pruned", len(live), n, len(live))
	}
	count(t, long, "alice", len(live))
	// Count prunes what is due, all at once, and keeps what is not: the
	// entry of a token being written looks like a gone token's.
	plant(t, b, idx, 50, serverMS(t, b)-1)
	young := plant(t, b, idx, 1, serverMS(t, b)+time.Minute.Milliseconds())[0]
	count(t, long, "alice", len(live))
	if n, _ := redis.Int(do(t, b, "ZCARD", idx), nil); n != len(live)+1 {
		t.Fatalf("after Count the index holds %d entries, want %d", n, len(live)+1)
	}
	if v := do(t, b, "ZSCORE", idx, young); v == nil {
		t.Fatal("Count pruned an entry younger than the creation window")
	}
	if n, err := long.DieAll(ctx, "alice"); n != len(live) || err != nil {
		t.Fatalf("DieAll = %d, %v", n, err)
	}
	// DieAll keeps the young entry too: its token may be about to appear.
	if ms, _ := redis.Strings(do(t, b, "ZRANGE", idx, 0, -1), nil); len(ms) != 1 || ms[0] != young {
		t.Fatalf("after DieAll the index holds %q, want only the young entry", ms)
	}
}

func testRotate(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	for name, s := range flavours(t, b, sesh.Options{TrackUsers: true, TTL: 2 * u, MaxAge: 5 * u}) {
		t.Run(name+" keeps the user and the deadline, and restarts the idle TTL", func(t *testing.T) {
			parallel(t, b)
			tok := set(t, s, "alice")
			b.Advance(t, 3*u/2)
			nt, err := s.Rotate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if nt == tok || len(nt) != 43 {
				t.Fatalf("Rotate gave %q", nt)
			}
			wantGone(t, s, tok)
			wantUser(t, s, nt, "alice")
			count(t, s, "alice", 1)
			b.Advance(t, 3*u/2) // 3u: older than the old TTL, younger than the new
			if err := s.Liv(ctx, nt); err != nil {
				t.Fatalf("Liv after rotation: %v", err)
			}
			b.Advance(t, 3*u/2) // 4.5u
			if err := s.Liv(ctx, nt); err != nil {
				t.Fatalf("Liv before MaxAge: %v", err)
			}
			b.Advance(t, u) // 5.5u: past the first token's MaxAge
			wantGone(t, s, nt)
			if _, err := s.Rotate(ctx, nt); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("Rotate of an expired token = %v", err)
			}
		})
	}
	for name, s := range flavours(t, b, sesh.Options{TrackUsers: true, TTL: sesh.Forever}) {
		t.Run(name+" without MaxAge indexes the new token for DieAll", func(t *testing.T) {
			parallel(t, b)
			tok := set(t, s, "alice")
			nt, err := s.Rotate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			count(t, s, "alice", 1)
			if n, err := s.DieAll(ctx, "alice"); n != 1 || err != nil {
				t.Fatalf("DieAll = %d, %v", n, err)
			}
			wantGone(t, s, nt)
		})
	}
}

func testRotateRace(t *testing.T, b Backend) {
	ctx := context.Background()
	for _, track := range []bool{false, true} {
		s := newStore(t, b, sesh.Options{TrackUsers: track, TTL: time.Minute})
		for round := range 5 {
			tok := set(t, s, "alice")
			const n = 16
			var (
				wg       sync.WaitGroup
				won      []string
				mu       sync.Mutex
				notFound atomic.Int64
			)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					nt, err := s.Rotate(ctx, tok)
					switch {
					case err == nil:
						mu.Lock()
						won = append(won, nt)
						mu.Unlock()
					case errors.Is(err, sesh.ErrNotFound):
						notFound.Add(1)
					default:
						t.Errorf("Rotate: %v", err)
					}
				}()
			}
			wg.Wait()
			if len(won) != 1 || notFound.Load() != n-1 {
				t.Fatalf("track=%v round %d: %d rotations won, %d got ErrNotFound; want 1 and %d", track, round, len(won), notFound.Load(), n-1)
			}
			wantUser(t, s, won[0], "alice")
			wantGone(t, s, tok)
			if track {
				count(t, s, "alice", 1)
			}
			mustDie(t, s, won[0])
		}
	}
}

// testDieAllStress runs Set, Liv, Rotate and DieAll on one user from many
// goroutines, and checks after each DieAll that no token issued before it
// started is still usable.
func testDieAllStress(t *testing.T, b Backend) {
	ctx := context.Background()
	for name, s := range flavours(t, b, sesh.Options{TrackUsers: true, TTL: time.Minute, MaxAge: 10 * time.Minute}) {
		t.Run(name, func(t *testing.T) {
			parallel(t, b)
			const user = "victim"
			var (
				mu     sync.Mutex
				issued []string // tokens in the order Set or Rotate returned them
				stop   atomic.Bool
				wg     sync.WaitGroup
				ops    atomic.Int64
			)
			var pending atomic.Int64 // issued, not yet checked
			add := func(tok string) {
				mu.Lock()
				issued = append(issued, tok)
				mu.Unlock()
				pending.Add(1)
			}
			pick := func(i int) string {
				mu.Lock()
				defer mu.Unlock()
				if len(issued) == 0 {
					return ""
				}
				return issued[len(issued)-1-i%min(8, len(issued))]
			}
			worker := func(w int) {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					if pending.Load() > 256 {
						// Let the checker keep up.
						time.Sleep(time.Millisecond)
						continue
					}
					ops.Add(1)
					switch (w + i) % 4 {
					case 0:
						if tok, err := s.Set(ctx, user); err == nil {
							add(tok)
						} else {
							t.Errorf("Set: %v", err)
						}
					case 1:
						if tok := pick(i); tok != "" {
							if nt, err := s.Rotate(ctx, tok); err == nil {
								add(nt)
							} else if !errors.Is(err, sesh.ErrNotFound) {
								t.Errorf("Rotate: %v", err)
							}
						}
					case 2:
						if tok := pick(i); tok != "" {
							if err := s.Liv(ctx, tok); err != nil && !errors.Is(err, sesh.ErrNotFound) {
								t.Errorf("Liv: %v", err)
							}
						}
					case 3:
						if _, err := s.DieAll(ctx, user); err != nil {
							t.Errorf("DieAll: %v", err)
						}
					}
				}
			}
			for w := range 8 {
				wg.Add(1)
				go worker(w)
			}
			checked := 0 // tokens before this were seen dead, and stay dead
			for round := range 12 {
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				before := append([]string(nil), issued[checked:]...)
				mu.Unlock()
				if _, err := s.DieAll(ctx, user); err != nil {
					t.Fatal(err)
				}
				for _, tok := range before {
					if got, err := s.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
						stop.Store(true)
						wg.Wait()
						t.Fatalf("round %d: token issued before DieAll still resolves: %q, %v", round, got, err)
					}
				}
				checked += len(before)
				pending.Add(-int64(len(before)))
			}
			stop.Store(true)
			wg.Wait()
			if _, err := s.DieAll(ctx, user); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d concurrent operations, %d tokens issued", name, ops.Load(), len(issued))
			if ops.Load() < 100 {
				t.Fatalf("only %d operations ran: the stress test did not stress", ops.Load())
			}
		})
	}
}

// testIndexLife checks that no Store shortens the life of an index that
// another Store's tokens need: DieAll stays complete beside a Store with
// other Options on the same Prefix, and after MaxAge is turned on.
func testIndexLife(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	keep := sesh.Options{TrackUsers: true, TTL: time.Hour}
	short := sesh.Options{TrackUsers: true, TTL: time.Hour, MaxAge: 4 * u}
	long := sesh.Options{TrackUsers: true, TTL: time.Hour, MaxAge: 40 * u}
	for _, tc := range []struct {
		name         string
		first, then  sesh.Options // the Stores that Set, in this order
		dieAllByThen bool         // DieAll from the second Store, else from the first
	}{
		{"a Store with MaxAge spares the index of a Store without", keep, short, false},
		{"turning MaxAge on spares the index of earlier tokens", keep, short, true},
		{"a shorter MaxAge does not shorten the index", long, short, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t, b)
			p := prefix(t)
			tc.first.Prefix, tc.then.Prefix = p, p
			first, then := newStore(t, b, tc.first), newStore(t, b, tc.then)
			tok := set(t, first, "alice")
			later := set(t, then, "alice")
			b.Advance(t, 6*u) // past the shorter MaxAge, before any other deadline
			wantUser(t, first, tok, "alice")
			s := first
			if tc.dieAllByThen {
				s = then
			}
			if n, err := s.DieAll(ctx, "alice"); n != 1 || err != nil {
				t.Fatalf("DieAll = %d, %v; want 1: the index expired before its tokens", n, err)
			}
			// Asked of the Store that ran DieAll: another's cache hears
			// of the end a moment later.
			wantGone(t, s, tok)
			wantGone(t, s, later)
		})
	}
}

// testIndexSlack checks that an index outlives its last token's deadline
// even when the token is written well after its entry (on Cluster, they go
// to different masters): a DieAll in the token's last moments ends it.
func testIndexSlack(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	o := sesh.Options{Prefix: prefix(t), TrackUsers: true, TTL: sesh.Forever, MaxAge: 4 * u}
	var armed, delayed atomic.Bool
	step := &stepping{Pool: b.Pool}
	step.before = func(cmd string, args []any) {
		if armed.Load() && writesToken(cmd, args) && delayed.CompareAndSwap(false, true) {
			b.Advance(t, 4*u) // the token is written 4u after its entry
		}
	}
	o.CacheSize = wrappedCacheSize(b)
	s, err := sesh.New(step, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	armed.Store(true)
	tok := set(t, s, "alice")
	armed.Store(false)
	if !delayed.Load() {
		t.Fatal("the token write was not delayed")
	}
	b.Advance(t, 2*u) // 6u after the entry, 2u past MaxAge: the token has 2u to live
	wantUser(t, s, tok, "alice")
	if n, err := s.DieAll(ctx, "alice"); n != 1 || err != nil {
		t.Fatalf("DieAll = %d, %v; want 1: the index expired before its token", n, err)
	}
	wantGone(t, s, tok)
}

// testRotateDuringDieAll checks that a Rotate that indexed its new token
// before a DieAll's lock, and writes it after DieAll looked for it, cannot
// keep it. On Cluster DieAll's deletions reach their masters in any order,
// so the Rotate can also end the old token before DieAll does; DieAll then
// returns nil, and the new token must not live.
func testRotateDuringDieAll(t *testing.T, b Backend) {
	ctx := context.Background()
	for _, o := range []sesh.Options{
		{TrackUsers: true, TTL: time.Minute},
		{TrackUsers: true, TTL: time.Minute, MaxAge: time.Hour},
	} {
		o.Prefix = prefix(t)
		o.CacheSize = wrappedCacheSize(b)
		s := newStore(t, b, o)
		old := set(t, s, "alice")
		oldKey := key(t, o.Prefix, old)
		touchesOld := func(args []any) bool { return slices.Contains(args, any(oldKey)) }

		// The Rotate stops before writing its new token.
		ready, release := make(chan struct{}), make(chan struct{})
		var held atomic.Bool
		rotating := &stepping{Pool: b.Pool}
		rotating.before = func(cmd string, args []any) {
			if writesToken(cmd, args) && held.CompareAndSwap(false, true) {
				close(ready)
				<-release
			}
		}
		type result struct {
			tok string
			err error
		}
		done := make(chan result, 1)
		go func() {
			tok, err := newOn(t, rotating, o).Rotate(ctx, old)
			done <- result{tok, err}
		}()
		select {
		case <-ready:
		case r := <-done:
			t.Fatalf("Rotate = %q, %v before writing its token", r.tok, r.err)
		}

		// DieAll ends the new token's name first, then lets the Rotate
		// finish, then ends the old token.
		var r result
		var let atomic.Bool
		dying := &stepping{Pool: b.Pool}
		dying.reorder = func(q [][]any) {
			slices.SortStableFunc(q, func(x, y []any) int { return b2i(touchesOld(x[1:])) - b2i(touchesOld(y[1:])) })
		}
		dying.before = func(cmd string, args []any) {
			if touchesOld(args) && let.CompareAndSwap(false, true) {
				close(release)
				r = <-done
			}
		}
		if _, err := newOn(t, dying, o).DieAll(ctx, "alice"); err != nil {
			t.Fatalf("DieAll: %v", err)
		}
		if !let.Load() {
			t.Fatal("the Rotate did not run between DieAll's deletions")
		}
		wantGone(t, s, old)
		if r.err == nil {
			wantGone(t, s, r.tok)
		} else if !errors.Is(r.err, sesh.ErrNotFound) {
			t.Fatalf("Rotate = %v", r.err)
		}
		count(t, s, "alice", 0)
	}
}

// newOn is sesh.New on a Pool that wraps b's.
func newOn(t *testing.T, p sesh.Pool, o sesh.Options) *sesh.Store {
	t.Helper()
	s, err := sesh.New(p, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
