package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seshkit/sesh"
)

// stepper is what Store and Crypt share beyond api: Reauth and Stats.
type stepper interface {
	api
	Reauth(context.Context, string) (string, error)
	Stats() sesh.Stats
}

// steppers is flavours, as steppers.
func steppers(t *testing.T, b Backend, o sesh.Options) map[string]stepper {
	t.Helper()
	out := map[string]stepper{}
	for name, s := range flavours(t, b, o) {
		out[name] = s.(stepper)
	}
	return out
}

func rotate(t *testing.T, s api, tok string) string {
	t.Helper()
	nt, err := s.Rotate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return nt
}

func lookup(t *testing.T, s api, tok string) sesh.Session {
	t.Helper()
	se, err := s.Lookup(context.Background(), tok)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return se
}

// testGraceRace checks the window under parallel requests: concurrent
// Rotates of one token all get the same new token, and Gets racing them
// all resolve.
func testGraceRace(t *testing.T, b Backend) {
	ctx := context.Background()
	for name, s := range steppers(t, b, sesh.Options{TrackUsers: true, RotateGrace: time.Minute, MaxAge: time.Hour}) {
		t.Run(name+" gives 16 concurrent Rotates one new token, and 64 Gets during them the user", func(t *testing.T) {
			parallel(t, b)
			tok := set(t, s, "alice")
			var wg sync.WaitGroup
			toks := make([]string, 16)
			errs := make([]error, 16+64)
			start := make(chan struct{})
			for i := range 16 + 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if i < 16 {
						toks[i], errs[i] = s.Rotate(ctx, tok)
						return
					}
					var u string
					if u, errs[i] = s.Get(ctx, tok); errs[i] == nil && u != "alice" {
						errs[i] = errors.New("Get resolved " + u)
					}
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			for _, nt := range toks {
				if nt != toks[0] || nt == tok {
					t.Fatalf("Rotates returned different tokens")
				}
			}
			wantUser(t, s, toks[0], "alice")
			wantUser(t, s, tok, "alice")
			// The losers took back what they wrote: one session besides
			// the old token in its window.
			count(t, s, "alice", 2)
			if _, err := s.DieAll(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			wantGone(t, s, tok)
			wantGone(t, s, toks[0])
		})
	}
}

// testGraceEnd checks what ends a token in its window, and that the window
// ends.
func testGraceEnd(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	for name, s := range steppers(t, b, sesh.Options{TrackUsers: true, RotateGrace: 2 * u, TTL: time.Hour, MaxAge: time.Hour}) {
		t.Run(name+" ends the old token after the window, and keeps the new one", func(t *testing.T) {
			parallel(t, b)
			tok := set(t, s, "alice")
			nt := rotate(t, s, tok)
			wantUser(t, s, tok, "alice")
			// Neither Liv nor Rotate of the old token stretches its window.
			if err := s.Liv(ctx, tok); err != nil {
				t.Fatalf("Liv in the window: %v", err)
			}
			if again := rotate(t, s, tok); again != nt {
				t.Fatalf("a second Rotate in the window returned another token")
			}
			if left := time.Until(lookup(t, s, tok).IdleExpiry); left > 2*u {
				t.Fatalf("old token's idle expiry in %v; want within the window %v", left, 2*u)
			}
			b.Advance(t, 3*u)
			wantGone(t, s, tok)
			if _, err := s.Rotate(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("Rotate after the window = %v; want ErrNotFound", err)
			}
			wantUser(t, s, nt, "alice")
			if n := s.Stats().Reuses; n != 0 {
				t.Fatalf("Reuses = %d without ReuseDetection", n)
			}
		})
		t.Run(name+" ends both tokens on Die of either, and on DieAll", func(t *testing.T) {
			parallel(t, b)
			for _, end := range []string{"new", "old", "all"} {
				tok := set(t, s, "bob")
				nt := rotate(t, s, tok)
				var err error
				switch end {
				case "new":
					err = s.Die(ctx, nt)
				case "old":
					err = s.Die(ctx, tok)
				case "all":
					_, err = s.DieAll(ctx, "bob")
				}
				if err != nil {
					t.Fatal(err)
				}
				wantGone(t, s, tok)
				wantGone(t, s, nt)
			}
		})
		t.Run(name+" gives only the immediate predecessor a window", func(t *testing.T) {
			parallel(t, b)
			tok := set(t, s, "carol")
			nt := rotate(t, s, tok)
			nt2 := rotate(t, s, nt)
			wantGone(t, s, tok)
			wantUser(t, s, nt, "carol")
			wantUser(t, s, nt2, "carol")
		})
	}
	pre := prefix(t)
	reader := newStore(t, b, sesh.Options{Prefix: pre, TTL: time.Hour})
	rotator := newStore(t, b, sesh.Options{Prefix: pre, TTL: time.Hour, RotateGrace: 2 * u})
	t.Run("another Store's Get, which read the token before, stops at the window's end", func(t *testing.T) {
		tok := set(t, reader, "erin")
		wantUser(t, reader, tok, "erin") // with a cache, now cached for an hour
		nt := rotate(t, rotator, tok)
		wantUser(t, reader, tok, "erin")
		b.Advance(t, 3*u)
		wantGone(t, reader, tok)
		wantUser(t, reader, nt, "erin")
	})
	sliding := newStore(t, b, sesh.Options{RotateGrace: 2 * u, TTL: time.Hour, Sliding: true})
	t.Run("a sliding Get of a token in its window does not restart its TTL", func(t *testing.T) {
		tok := set(t, sliding, "dave")
		rotate(t, sliding, tok)
		for range 3 {
			wantUser(t, sliding, tok, "dave")
		}
		if left := time.Until(lookup(t, sliding, tok).IdleExpiry); left > 2*u {
			t.Fatalf("old token's idle expiry in %v after sliding Gets; want within the window %v", left, 2*u)
		}
	})
}

// testReuse checks reuse detection: a rotated token presented after its
// window ends its chain, and is reported.
func testReuse(t *testing.T, b Backend) {
	u := b.Unit
	for _, grace := range []time.Duration{0, 2 * u} {
		var reused atomic.Int32
		hook := func(ctx context.Context, op string) (context.Context, func(sesh.Result)) {
			return ctx, func(r sesh.Result) {
				if r.Reused {
					reused.Add(1)
				}
			}
		}
		o := sesh.Options{TrackUsers: true, RotateGrace: grace, TTL: time.Hour, MaxAge: time.Hour, ReuseDetection: true, Hook: hook}
		for name, s := range steppers(t, b, o) {
			t.Run(name+" ends the chain of a token presented after its window of "+grace.String(), func(t *testing.T) {
				reused.Store(0)
				tok := set(t, s, "alice")
				nt := rotate(t, s, tok)
				b.Advance(t, 3*u)
				nt2 := rotate(t, s, nt)
				b.Advance(t, 3*u)
				other := set(t, s, "alice")
				wantUser(t, s, nt2, "alice")
				// The thief presents the first token.
				wantGone(t, s, tok)
				wantGone(t, s, nt2)
				wantUser(t, s, other, "alice")
				if n := s.Stats().Reuses; n != 1 {
					t.Fatalf("Reuses = %d; want 1", n)
				}
				if n := reused.Load(); n != 1 {
					t.Fatalf("Hook saw %d reuses; want 1", n)
				}
				// The chain is gone: a second presentation finds nothing.
				wantGone(t, s, nt)
				if n := s.Stats().Reuses; n != 1 {
					t.Fatalf("Reuses = %d after the chain ended; want 1", n)
				}
			})
		}
	}
}

// testReauth checks that Reauth renews the authentication time, the idle
// TTL and the deadline, and Rotate only the idle TTL.
func testReauth(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	for name, s := range steppers(t, b, sesh.Options{TrackUsers: true, TTL: 8 * u, MaxAge: time.Hour}) {
		t.Run(name+" resets both timeouts and the authentication time, and Rotate does not", func(t *testing.T) {
			parallel(t, b)
			tok := set(t, s, "alice")
			se := lookup(t, s, tok)
			b.Advance(t, 2*u)
			rt := rotate(t, s, tok)
			re := lookup(t, s, rt)
			if !re.AuthTime.Equal(se.AuthTime) || !re.Deadline.Equal(se.Deadline) {
				t.Fatalf("Rotate moved the authentication time or the deadline: %+v, was %+v", re, se)
			}
			b.Advance(t, 2*u)
			at, err := s.Reauth(ctx, rt)
			if err != nil {
				t.Fatal(err)
			}
			wantGone(t, s, rt)
			ae := lookup(t, s, at)
			if ae.UserID != "alice" || ae.AuthTime.Sub(se.AuthTime) < 4*u {
				t.Fatalf("after Reauth, Lookup = %+v; want alice authenticated at least %v after %v", ae, 4*u, se.AuthTime)
			}
			if d := ae.Deadline.Sub(ae.AuthTime); d != time.Hour {
				t.Fatalf("after Reauth, Deadline - AuthTime = %v; want the session's MaxAge, 1h", d)
			}
			if left := time.Until(ae.IdleExpiry); left <= 6*u || left > 8*u {
				t.Fatalf("after Reauth, idle expiry in %v; want the idle TTL %v afresh", left, 8*u)
			}
			count(t, s, "alice", 1)
			if _, err := s.Reauth(ctx, rt); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("Reauth of an ended token = %v; want ErrNotFound", err)
			}
			if _, err := s.DieAll(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			wantGone(t, s, at)
		})
	}
}
