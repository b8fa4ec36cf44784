package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// manager is what Store and Crypt share for session management.
type manager interface {
	api
	SetWith(context.Context, string, sesh.Policy) (string, error)
	Sessions(context.Context, string) ([]sesh.Session, error)
	DieSession(context.Context, string, string) error
	DieOthers(context.Context, string) (int, error)
	DieEverything(context.Context) (int, error)
}

var (
	_ manager = (*sesh.Store)(nil)
	_ manager = (*sesh.Crypt)(nil)
)

// managers is flavours, as managers.
func managers(t *testing.T, b Backend, o sesh.Options) map[string]manager {
	t.Helper()
	out := map[string]manager{}
	for name, s := range flavours(t, b, o) {
		out[name] = s.(manager)
	}
	return out
}

func list(t *testing.T, s manager, userID string) []sesh.Session {
	t.Helper()
	l, err := s.Sessions(context.Background(), userID)
	if err != nil {
		t.Fatalf("Sessions(%q): %v", userID, err)
	}
	return l
}

func handles(l []sesh.Session) []string {
	var hs []string
	for _, se := range l {
		hs = append(hs, se.Handle)
	}
	slices.Sort(hs)
	return hs
}

// testSessions checks listing and ending one session by its handle:
// handles are stable across Rotate, a handle of one user never ends
// another's session, and an ended or expired session is never listed.
func testSessions(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	for name, s := range managers(t, b, sesh.Options{TrackUsers: true, Details: true, TTL: time.Hour, MaxAge: 2 * time.Hour}) {
		t.Run(name+" lists a user's sessions with stable handles, and ends one by its handle only for its user", func(t *testing.T) {
			parallel(t, b)
			a1, err := s.SetWith(ctx, "alice", sesh.Policy{Label: "Firefox on Linux"})
			if err != nil {
				t.Fatal(err)
			}
			a2, a3 := set(t, s, "alice"), set(t, s, "alice")
			bob := set(t, s, "bob")
			l := list(t, s, "alice")
			if len(l) != 3 {
				t.Fatalf("Sessions = %d sessions; want 3", len(l))
			}
			before := handles(l)
			for _, se := range l {
				if se.UserID != "alice" || len(se.Handle) != 12 || se.Created.IsZero() || se.LastUse.IsZero() || se.AuthTime.IsZero() || se.Deadline.IsZero() || se.IdleExpiry.IsZero() {
					t.Fatalf("Sessions lists %+v; want alice's, with a handle and every detail", se)
				}
			}
			if len(slices.Compact(slices.Clone(before))) != 3 {
				t.Fatalf("handles %q are not distinct", before)
			}
			first, err := s.Lookup(ctx, a1)
			if err != nil || first.Label != "Firefox on Linux" || !slices.Contains(before, first.Handle) {
				t.Fatalf("Lookup = %+v, %v; want the label and a listed handle", first, err)
			}

			// Rotate keeps the handle, the creation time and the label.
			n1, err := s.Rotate(ctx, a1)
			if err != nil {
				t.Fatal(err)
			}
			if after := handles(list(t, s, "alice")); !slices.Equal(after, before) {
				t.Fatalf("handles after Rotate = %q; want %q", after, before)
			}
			rot, err := s.Lookup(ctx, n1)
			if err != nil || rot.Handle != first.Handle || !rot.Created.Equal(first.Created) || rot.Label != first.Label {
				t.Fatalf("Lookup after Rotate = %+v, %v; want handle, creation and label of %+v", rot, err, first)
			}

			// A handle of alice's never ends bob's session, nor alice's
			// when given with bob's user ID.
			bobs := list(t, s, "bob")
			if len(bobs) != 1 {
				t.Fatalf("bob has %d sessions listed; want 1", len(bobs))
			}
			if err := s.DieSession(ctx, "bob", first.Handle); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("DieSession(bob, alice's handle) = %v; want ErrNotFound", err)
			}
			if err := s.DieSession(ctx, "alice", bobs[0].Handle); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("DieSession(alice, bob's handle) = %v; want ErrNotFound", err)
			}
			wantUser(t, s, n1, "alice")
			wantUser(t, s, bob, "bob")
			for _, bad := range []string{"", "short", strings.Repeat("!", 12), first.Handle + "A"} {
				if err := s.DieSession(ctx, "alice", bad); !errors.Is(err, sesh.ErrNotFound) {
					t.Fatalf("DieSession(alice, %q) = %v; want ErrNotFound", bad, err)
				}
			}

			// Ending by handle ends the rotated token; an ended session is
			// never listed.
			if err := s.DieSession(ctx, "alice", first.Handle); err != nil {
				t.Fatalf("DieSession: %v", err)
			}
			wantGone(t, s, n1)
			if err := s.DieSession(ctx, "alice", first.Handle); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("DieSession again = %v; want ErrNotFound", err)
			}
			mustDie(t, s, a2)
			l = list(t, s, "alice")
			if len(l) != 1 {
				t.Fatalf("after DieSession and Die, Sessions lists %d; want 1", len(l))
			}
			if got, err := s.Lookup(ctx, a3); err != nil || l[0].Handle != got.Handle {
				t.Fatalf("the one left is %q; want a3's, %+v, %v", l[0].Handle, got, err)
			}
			count(t, s, "alice", 1)
			mustDie(t, s, a3, bob)
			if l := list(t, s, "alice"); len(l) != 0 {
				t.Fatalf("Sessions lists %d after every session ended; want none", len(l))
			}
		})
	}

	for name, s := range managers(t, b, sesh.Options{TrackUsers: true, TTL: 2 * u}) {
		t.Run(name+" never lists an expired session, and records no details without Details", func(t *testing.T) {
			parallel(t, b)
			short := set(t, s, "carol")
			long, err := s.SetWith(ctx, "carol", sesh.Policy{TTL: time.Hour, Label: "ignored"})
			if err != nil {
				t.Fatal(err)
			}
			l := list(t, s, "carol")
			if len(l) != 2 {
				t.Fatalf("Sessions = %d; want 2", len(l))
			}
			for _, se := range l {
				if se.Handle == "" || !se.Created.IsZero() || !se.LastUse.IsZero() || se.Label != "" {
					t.Fatalf("without Details, Sessions lists %+v; want a handle and no details", se)
				}
			}
			b.Advance(t, 3*u)
			wantGone(t, s, short)
			l = list(t, s, "carol")
			lk, err := s.Lookup(ctx, long)
			if len(l) != 1 || err != nil || l[0].Handle != lk.Handle {
				t.Fatalf("after one expired, Sessions = %+v; want only the live one (%+v, %v)", l, lk, err)
			}
			mustDie(t, s, long)
		})
	}

	t.Run("every call needs TrackUsers, and a Label is bounded", func(t *testing.T) {
		s := newStore(t, b, sesh.Options{})
		tok := set(t, s, "dan")
		for name, f := range map[string]func() error{
			"Sessions":   func() error { _, err := s.Sessions(ctx, "dan"); return err },
			"DieSession": func() error { return s.DieSession(ctx, "dan", "AAAAAAAAAAAA") },
			"DieOthers":  func() error { _, err := s.DieOthers(ctx, tok); return err },
		} {
			if err := f(); err == nil || !strings.Contains(err.Error(), "TrackUsers") {
				t.Errorf("%s without TrackUsers = %v; want an error naming TrackUsers", name, err)
			}
		}
		if _, err := s.SetWith(ctx, "dan", sesh.Policy{Label: strings.Repeat("x", sesh.MaxLabel+1)}); err == nil || !strings.Contains(err.Error(), "Label") {
			t.Errorf("SetWith of a long Label = %v; want an error naming Label", err)
		}
		mustDie(t, s, tok)
	})
}

// testDieOthers checks DieOthers: every session of the caller's user but
// the caller's ends, also under concurrent Sets and Rotates.
func testDieOthers(t *testing.T, b Backend) {
	ctx := context.Background()
	for name, s := range managers(t, b, sesh.Options{TrackUsers: true, TTL: time.Minute, MaxAge: time.Hour}) {
		t.Run(name+" ends the others and keeps the caller's, under 8 goroutines of Sets", func(t *testing.T) {
			parallel(t, b)
			mine, other := set(t, s, "alice"), set(t, s, "alice")
			others := []string{set(t, s, "alice"), other, set(t, s, "alice")}
			bob := set(t, s, "bob")
			if n, err := s.DieOthers(ctx, mine); n != 3 || err != nil {
				t.Fatalf("DieOthers = %d, %v; want 3", n, err)
			}
			wantUser(t, s, mine, "alice")
			for _, tok := range others {
				wantGone(t, s, tok)
			}
			wantUser(t, s, bob, "bob")
			if _, err := s.DieOthers(ctx, other); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("DieOthers of an ended token = %v; want ErrNotFound", err)
			}

			type made struct {
				tok      string
				returned time.Time
			}
			var (
				mu    sync.Mutex
				toks  []made
				wg    sync.WaitGroup
				stop  = make(chan struct{})
				ready sync.WaitGroup
			)
			ready.Add(8)
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last string
					for i := 0; ; i++ {
						if i == 3 {
							ready.Done()
						}
						select {
						case <-stop:
							if i < 3 {
								ready.Done()
							}
							return
						default:
						}
						var tok string
						var err error
						if w%2 == 1 && last != "" && i%2 == 0 {
							tok, err = s.Rotate(ctx, last)
						} else {
							tok, err = s.Set(ctx, "alice")
						}
						if err == nil {
							last = tok
							mu.Lock()
							toks = append(toks, made{tok, time.Now()})
							mu.Unlock()
						}
					}
				}()
			}
			ready.Wait()
			began := time.Now()
			n, err := s.DieOthers(ctx, mine)
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			survivors := 0
			for _, m := range toks {
				if !m.returned.Before(began) {
					continue
				}
				if _, err := s.Get(ctx, m.tok); err == nil {
					survivors++
				}
			}
			if survivors > 0 {
				t.Fatalf("%d sessions issued before DieOthers began resolve after it (it ended %d of %d)", survivors, n, len(toks))
			}
			wantUser(t, s, mine, "alice")
			if l := list(t, s, "alice"); !slices.ContainsFunc(l, func(se sesh.Session) bool { return se.UserID == "alice" }) {
				t.Fatal("the caller's session is not listed")
			}
			if _, err := s.DieAll(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			mustDie(t, s, bob)
		})
	}
}

// testHandleChecks checks what stops a handle from reaching past its
// session: DieSession ends only a record of the user it is given, even
// when that user's index names another's; DieOthers spares a record of the
// caller's handle, as a rotated successor of the caller's session has.
func testHandleChecks(t *testing.T, b Backend) {
	ctx := context.Background()
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, TTL: time.Minute})
	mine, twin, other := set(t, s, "alice"), set(t, s, "alice"), set(t, s, "alice")
	bob := set(t, s, "bob")
	bs := list(t, s, "bob")
	// alice's index names bob's session, as a tampered index would.
	bk := key(t, p, bob)
	do(t, b, "ZADD", p+":u:alice", time.Now().Add(time.Hour).UnixMilli(), bk[len(p)+2:len(bk)-1])
	if err := s.DieSession(ctx, "alice", bs[0].Handle); !errors.Is(err, sesh.ErrNotFound) {
		t.Fatalf("DieSession(alice, bob's handle) through alice's index = %v; want ErrNotFound", err)
	}
	wantUser(t, s, bob, "bob")
	if l := list(t, s, "alice"); len(l) != 3 {
		t.Fatalf("alice's list has %d sessions; want her 3 and not bob's", len(l))
	}
	do(t, b, "ZREM", p+":u:alice", bk[len(p)+2:len(bk)-1])

	// twin carries mine's handle: DieOthers keeps it.
	me, err := s.Lookup(ctx, mine)
	if err != nil {
		t.Fatal(err)
	}
	do(t, b, "HSET", key(t, p, twin), "h", me.Handle)
	if n, err := s.DieOthers(ctx, mine); n != 1 || err != nil {
		t.Fatalf("DieOthers = %d, %v; want 1, the twin of the caller's handle kept", n, err)
	}
	wantUser(t, s, twin, "alice")
	wantGone(t, s, other)
	// Two records of one handle, as a Rotate's old token beside its new
	// one: listed once, and DieSession ends both.
	if l := list(t, s, "alice"); len(l) != 1 || l[0].Handle != me.Handle {
		t.Fatalf("Sessions = %+v; want the one session of two records", l)
	}
	if err := s.DieSession(ctx, "alice", me.Handle); err != nil {
		t.Fatal(err)
	}
	wantGone(t, s, mine)
	wantGone(t, s, twin)
	mustDie(t, s, bob)
}

// testCap checks MaxSessions under 16 goroutines of Sets of one user, with
// either policy: never more live sessions than the cap.
func testCap(t *testing.T, b Backend) {
	ctx := context.Background()
	const limit = 3
	for _, endOldest := range []bool{false, true} {
		policy := "refuses"
		if endOldest {
			policy = "ends the oldest"
		}
		for name, s := range managers(t, b, sesh.Options{TrackUsers: true, TTL: time.Minute, MaxSessions: limit, EndOldest: endOldest}) {
			t.Run(name+" "+policy+" past the cap, under 16 goroutines of Sets", func(t *testing.T) {
				parallel(t, b)
				var issued []string
				var mu sync.Mutex
				for round := range 3 {
					var wg sync.WaitGroup
					for range 16 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for range 2 {
								tok, err := s.Set(ctx, "alice")
								switch {
								case err == nil:
									mu.Lock()
									issued = append(issued, tok)
									mu.Unlock()
								case !errors.Is(err, sesh.ErrTooManySessions):
									t.Errorf("Set = %v; want nil or ErrTooManySessions", err)
								case endOldest && round == 0:
									// Room can run short when many Sets race; but
									// some must get in.
								}
							}
						}()
					}
					wg.Wait()
					live := 0
					for _, tok := range issued {
						if _, err := s.Get(ctx, tok); err == nil {
							live++
						}
					}
					if live > limit {
						t.Fatalf("round %d: %d sessions live; the cap is %d", round, live, limit)
					}
					if live < limit || len(list(t, s, "alice")) != live {
						t.Fatalf("round %d: %d live, %d listed; want the cap, %d", round, live, len(list(t, s, "alice")), limit)
					}
				}
				if !endOldest && len(issued) != limit {
					t.Fatalf("%d Sets succeeded; want the cap, %d, the others refused", len(issued), limit)
				}
				if endOldest && len(issued) < 16 {
					t.Fatalf("only %d Sets succeeded; EndOldest should make room", len(issued))
				}

				// Rotate is no new session.
				var alive string
				for _, tok := range issued {
					if _, err := s.Get(ctx, tok); err == nil {
						alive = tok
					}
				}
				nt, err := s.Rotate(ctx, alive)
				if err != nil {
					t.Fatalf("Rotate at the cap = %v", err)
				}
				count(t, s, "alice", limit)
				if !endOldest {
					// Once one ends, there is room again.
					mustDie(t, s, nt)
					set(t, s, "alice")
				}
				if _, err := s.DieAll(ctx, "alice"); err != nil {
					t.Fatal(err)
				}
			})
		}
	}

	t.Run("EndOldest ends the session authenticated longest ago", func(t *testing.T) {
		s := newStore(t, b, sesh.Options{TrackUsers: true, TTL: time.Minute, MaxSessions: 2, EndOldest: true})
		first := set(t, s, "erin")
		b.Advance(t, 5*time.Millisecond)
		second := set(t, s, "erin")
		b.Advance(t, 5*time.Millisecond)
		// A Rotate keeps the authentication time: still the oldest.
		first, err := s.Rotate(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		third := set(t, s, "erin")
		wantGone(t, s, first)
		wantUser(t, s, second, "erin")
		wantUser(t, s, third, "erin")
		count(t, s, "erin", 2)
		mustDie(t, s, second, third)
	})
}

// testDieEverything checks DieEverything: every session authenticated
// before it began ends, of every user, indexed or not, of either layout,
// and a caching Store stops serving them within its bound.
func testDieEverything(t *testing.T, b Backend) {
	ctx := context.Background()
	p := prefix(t)
	const maxStale = 200 * time.Millisecond
	o := sesh.Options{Prefix: p, TTL: time.Minute, CacheMaxStale: maxStale}
	s := newStore(t, b, o)
	o.TrackUsers = true
	tracked := newStore(t, b, o)
	sealed := newCrypt(t, tracked, newKey(t))
	var toks []string
	for _, user := range []string{"ann", "bob", "cat"} {
		toks = append(toks, set(t, s, user), set(t, tracked, user), set(t, sealed, user))
	}
	// A session of the old layout, a string key.
	old := set(t, s, "old")
	k := key(t, p, old)
	do(t, b, "DEL", k)
	do(t, b, "SET", k, "old", "PX", 60000)
	wantUser(t, s, old, "old")
	// A record authenticated after the call began is kept.
	future := set(t, s, "future")
	do(t, b, "HSET", key(t, p, future), "a", time.Now().Add(time.Hour).UnixMilli())
	// Another Store caches them all.
	other := newStore(t, b, sesh.Options{Prefix: p, CacheMaxStale: maxStale})
	for _, tok := range toks {
		if _, err := other.Get(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	n, err := tracked.DieEverything(ctx)
	if err != nil || n != len(toks)+1 {
		t.Fatalf("DieEverything = %d, %v; want %d", n, err, len(toks)+1)
	}
	for _, tok := range append(toks, old) {
		wantGone(t, tracked, tok) // its own cache forgot them at once
		wantGone(t, s, tok)
	}
	// Past the cache's bound, no other Store serves them either.
	time.Sleep(maxStale)
	for _, tok := range toks {
		wantGone(t, other, tok)
	}
	wantUser(t, s, future, "future")
	count(t, tracked, "ann", 0)
	if n, err := sealed.DieEverything(ctx); n != 0 || err != nil {
		t.Fatalf("DieEverything again = %d, %v; want 0", n, err)
	}
	mustDie(t, s, future)
	if n, _ := redis.Int(do(t, b, "EXISTS", k), nil); n != 0 {
		t.Fatal("the old layout's key is left")
	}
	// A Cluster behind a Pool that hides its router cannot be scanned
	// whole: DieEverything refuses.
	if _, ok := b.Pool.(interface{ Masters() ([]string, error) }); ok {
		hidden, err := sesh.New(struct{ sesh.Pool }{b.Pool}, sesh.Options{Prefix: p, Pipelines: sesh.NoPipelining})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hidden.DieEverything(ctx); err == nil || !strings.Contains(err.Error(), "seshcluster") {
			t.Fatalf("DieEverything on a Cluster through a Pool without its router = %v; want an error naming seshcluster", err)
		}
	}
}

// testLastUse checks Details' last use: Get records it at most once per
// LastUseInterval, through the cache too, and with Details off no Get
// writes it.
func testLastUse(t *testing.T, b Backend) {
	for _, sliding := range []bool{false, true} {
		t.Run(map[bool]string{false: "Get", true: "a sliding Get"}[sliding]+" records the last use once per interval", func(t *testing.T) {
			testLastUseOf(t, b, sliding)
		})
	}
}

func testLastUseOf(t *testing.T, b Backend, sliding bool) {
	u := b.Unit
	ctx := context.Background()
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, Details: true, TTL: time.Hour, LastUseInterval: 4 * u, Sliding: sliding})
	tok := set(t, s, "alice")
	k := key(t, p, tok)
	last := func() int64 {
		t.Helper()
		ms, err := redis.Int64(do(t, b, "HGET", k, "s"), nil)
		if err != nil {
			t.Fatalf("HGET s: %v", err)
		}
		return ms
	}
	s0 := last()
	b.Advance(t, u) // the server's clock moves, within the interval
	for range 5 {
		wantUser(t, s, tok, "alice")
	}
	if got := last(); got != s0 {
		t.Fatalf("Gets within the interval moved the last use by %dms", got-s0)
	}
	b.Advance(t, 4*u)
	wantUser(t, s, tok, "alice") // a cached Get goes to Redis once for it
	wantUser(t, s, tok, "alice")
	s1 := last()
	if s1 <= s0 {
		t.Fatalf("a Get past the interval did not record the last use: %d, then %d", s0, s1)
	}
	b.Advance(t, u)
	for range 5 {
		wantUser(t, s, tok, "alice")
	}
	if got := last(); got != s1 {
		t.Fatalf("Gets within the next interval moved the last use by %dms", got-s1)
	}
	se, err := s.Lookup(ctx, tok)
	if err != nil || se.LastUse.UnixMilli() != s1 || se.Created.UnixMilli() != s0 {
		t.Fatalf("Lookup = %+v, %v; want last use %d and creation %d", se, err, s1, s0)
	}
	mustDie(t, s, tok)

	// Without Details, nothing records a last use.
	plain := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, TTL: time.Hour, Sliding: true})
	tok = set(t, plain, "bob")
	b.Advance(t, 2*u)
	wantUser(t, plain, tok, "bob")
	// Nor does a Store with Details write one into a record without it.
	if _, err := s.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	wantUser(t, s, tok, "bob")
	if n, _ := redis.Int(do(t, b, "HEXISTS", key(t, p, tok), "s"), nil); n != 0 {
		t.Fatal("a last use was recorded without Details")
	}
	mustDie(t, plain, tok)
}
