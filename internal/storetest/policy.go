package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// The tests of this file check that a session's policy is its own: it is
// recorded with the session at Set, and every Store honours it whatever its
// own Options, as the sesh command does with its defaults.

// pairs returns, for each flavour, the app over o and a foreign Store or
// Crypt over the same keys with Options other (its Prefix is o's).
func pairs(t *testing.T, b Backend, o, other sesh.Options) map[string][2]api {
	t.Helper()
	o.Prefix = prefix(t)
	other.Prefix = o.Prefix
	out := map[string][2]api{"Store": {newStore(t, b, o), newStore(t, b, other)}}
	o.Prefix = prefix(t)
	other.Prefix = o.Prefix
	k := newKey(t)
	out["Crypt"] = [2]api{newCrypt(t, newStore(t, b, o), k), newCrypt(t, newStore(t, b, other), k)}
	return out
}

// testOwnTTL: a Store with a 24h TTL calls Liv and a sliding Get on a
// session made with a 30m TTL, or given one by SetWith; it stays at 30m.
func testOwnTTL(t *testing.T, b Backend) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		app  sesh.Options
		pol  sesh.Policy
	}{
		{"TTL 30m from Options", sesh.Options{TTL: 30 * time.Minute}, sesh.Policy{}},
		{"TTL 30m from SetWith", sesh.Options{TTL: 24 * time.Hour}, sesh.Policy{TTL: 30 * time.Minute}},
	} {
		for _, sliding := range []bool{false, true} {
			name := tc.name + map[bool]string{false: ", Liv", true: ", sliding Get"}[sliding]
			t.Run(name, func(t *testing.T) {
				parallel(t, b)
				o := tc.app
				o.Prefix = prefix(t)
				app := newStore(t, b, o)
				cli := newStore(t, b, sesh.Options{Prefix: o.Prefix, TTL: 24 * time.Hour, Sliding: sliding})
				tok, err := app.SetWith(ctx, "alice", tc.pol)
				if err != nil {
					t.Fatal(err)
				}
				if sliding {
					for range 3 { // the first may fill a cache, the next hit it
						wantUser(t, cli, tok, "alice")
					}
				} else if err := cli.Liv(ctx, tok); err != nil {
					t.Fatal(err)
				}
				if d := pttl(t, b, key(t, o.Prefix, tok)); d <= 0 || d > 30*time.Minute {
					t.Fatalf("PTTL = %v after another Store's restart; want within (0, 30m]", d)
				}
			})
		}
	}
}

// testCarryIndex: a Store without TrackUsers rotates an indexed session;
// Count still counts the new token and DieAll ends it.
func testCarryIndex(t *testing.T, b Backend) {
	ctx := context.Background()
	for name, p := range pairs(t, b, sesh.Options{TrackUsers: true}, sesh.Options{}) {
		t.Run(name, func(t *testing.T) {
			parallel(t, b)
			app, cli := p[0], p[1]
			tok := set(t, app, "alice")
			nt, err := cli.Rotate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			count(t, app, "alice", 1)
			if n, err := app.DieAll(ctx, "alice"); n != 1 || err != nil {
				t.Fatalf("DieAll = %d, %v; want 1", n, err)
			}
			wantGone(t, app, nt)
			wantGone(t, cli, nt)
		})
	}
}

// testOwnDeadline: a Store without MaxAge calls Liv, a sliding Get and
// Rotate on a MaxAge session: none passes the deadline. A session is one
// key, so no eviction can leave its user ID without its deadline: the test
// checks that it is one key, and DELs the old layout's deadline key all
// the same.
func testOwnDeadline(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.Unit
	for _, tc := range []struct {
		name string
		app  sesh.Options
		pol  sesh.Policy
	}{
		{"MaxAge from Options", sesh.Options{TTL: 2 * u, MaxAge: 4 * u}, sesh.Policy{}},
		{"MaxAge from SetWith", sesh.Options{TTL: 2 * u}, sesh.Policy{MaxAge: 4 * u}},
		{"MaxAge, TTL Forever", sesh.Options{TTL: sesh.Forever, MaxAge: 4 * u}, sesh.Policy{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t, b)
			o := tc.app
			o.Prefix = prefix(t)
			app := newStore(t, b, o)
			liv := newStore(t, b, sesh.Options{Prefix: o.Prefix, TTL: 24 * time.Hour})
			slide := newStore(t, b, sesh.Options{Prefix: o.Prefix, TTL: 24 * time.Hour, Sliding: true})
			tok, err := app.SetWith(ctx, "alice", tc.pol)
			if err != nil {
				t.Fatal(err)
			}
			k := key(t, o.Prefix, tok)
			if n, _ := redis.Int(do(t, b, "EXISTS", k+":m"), nil); n != 0 {
				t.Fatal("a session has a key beside its record")
			}
			do(t, b, "DEL", k+":m") // what eviction could take: nothing
			start := serverMS(t, b)
			capped := func(what, k string) {
				t.Helper()
				// The age is read first, so that it is never more than the
				// session's when PTTL answers.
				age := time.Duration(serverMS(t, b)-start) * time.Millisecond
				d := pttl(t, b, k)
				if d == -1 || d > 4*u-age+time.Millisecond { // -1: no expiry
					t.Fatalf("after %s the session lives %v more, %v after its Set; MaxAge is %v", what, d, age, 4*u)
				}
			}
			b.Advance(t, u)
			if err := liv.Liv(ctx, tok); err != nil {
				t.Fatal(err)
			}
			capped("Liv", k)
			wantUser(t, slide, tok, "alice")
			capped("a sliding Get", k)
			nt, err := liv.Rotate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			capped("Rotate", key(t, o.Prefix, nt))
			for range 2 { // to 3u: the idle TTL alone would end it at 5u
				b.Advance(t, u)
				if err := liv.Liv(ctx, nt); err != nil {
					t.Fatal(err)
				}
				wantUser(t, slide, nt, "alice")
				capped("Liv of the rotated token", key(t, o.Prefix, nt))
			}
			b.Advance(t, u+u/2) // past the deadline
			wantGone(t, slide, nt)
			if err := liv.Liv(ctx, nt); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("Liv past the deadline = %v", err)
			}
		})
	}
}

// testDieAnyStore: after Die from any Store, no key of the session remains,
// nor its index entry.
func testDieAnyStore(t *testing.T, b Backend) {
	ctx := context.Background()
	for _, o := range []sesh.Options{
		{},
		{MaxAge: time.Hour, TTL: time.Minute},
		{TrackUsers: true},
		{TrackUsers: true, MaxAge: time.Hour, TTL: time.Minute},
	} {
		t.Run(optName(o), func(t *testing.T) {
			parallel(t, b)
			o.Prefix = prefix(t)
			app := newStore(t, b, o)
			other := newStore(t, b, sesh.Options{Prefix: o.Prefix})
			tok := set(t, app, "alice")
			k := key(t, o.Prefix, tok)
			if err := other.Die(ctx, tok); err != nil {
				t.Fatal(err)
			}
			wantGone(t, app, tok)
			if n, _ := redis.Int(do(t, b, "EXISTS", k, k+":m"), nil); n != 0 {
				t.Fatalf("%d keys of the session left after Die", n)
			}
			if o.TrackUsers {
				if v := do(t, b, "ZSCORE", o.Prefix+":u:alice", k[len(o.Prefix)+2:len(k)-1]); v != nil {
					t.Fatal("the session's index entry is left after Die")
				}
			}
		})
	}
}

func optName(o sesh.Options) string {
	s := "TTL " + o.TTL.String()
	if o.MaxAge > 0 {
		s += " MaxAge " + o.MaxAge.String()
	}
	if o.TrackUsers {
		s += " TrackUsers"
	}
	return s
}

// testPolicyErrors: SetWith refuses a bad policy before any round trip.
func testPolicyErrors(t *testing.T, b Backend) {
	var c counting
	c.Pool = b.Pool
	s, err := sesh.New(&c, sesh.Options{Prefix: prefix(t), Pipelines: sesh.NoPipelining})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []sesh.Policy{
		{TTL: -2}, {TTL: time.Microsecond}, {MaxAge: -1}, {MaxAge: time.Microsecond},
	} {
		if tok, err := s.SetWith(context.Background(), "alice", p); err == nil || tok != "" {
			t.Errorf("SetWith(%+v) = %q, %v; want an error", p, tok, err)
		}
	}
	if n := c.n.Load(); n != 0 {
		t.Fatalf("bad policies took %d connections", n)
	}
}

// oldToken draws a token and its key under prefix p.
func oldToken(t *testing.T, p string) (tok, k string) {
	t.Helper()
	var raw [32]byte
	rand.Read(raw[:])
	tok = base64.RawURLEncoding.EncodeToString(raw[:])
	return tok, key(t, p, tok)
}

// writeOld writes a session as sesh wrote it before records, with the same
// commands' effect as its create and register scripts: SET key value NX PX
// ttl; with MaxAge, key:m holding the deadline and expiring at it, and the
// key capped at it; with TrackUsers, the index entry due at max(px, 1m)
// and the index expiring 1m past the deadline (or never without MaxAge).
func writeOld(t *testing.T, b Backend, o sesh.Options, k, value, indexID string) {
	t.Helper()
	now := serverMS(t, b)
	px := o.TTL.Milliseconds()
	if o.MaxAge > 0 {
		dl := now + o.MaxAge.Milliseconds()
		do(t, b, "SET", k+":m", dl, "PXAT", dl)
		px = min(px, o.MaxAge.Milliseconds())
	}
	if o.TrackUsers {
		idx := o.Prefix + ":u:" + indexID
		do(t, b, "ZADD", idx, now+max(px, time.Minute.Milliseconds()), k[len(o.Prefix)+2:len(k)-1])
		if o.MaxAge > 0 {
			do(t, b, "PEXPIRE", idx, o.MaxAge.Milliseconds()+time.Minute.Milliseconds())
		}
	}
	do(t, b, "SET", k, value, "NX", "PX", px)
}

// testMigration: sessions written in the old layout work with every
// operation, under the Options that wrote them, and Rotate moves them to a
// record; those Crypt wrote too (migration.go).
func testMigration(t *testing.T, b Backend) {
	t.Run("Crypt", func(t *testing.T) { testCryptMigration(t, b) })
	ctx := context.Background()
	u := b.Unit
	for _, o := range []sesh.Options{
		{TTL: 4 * u},
		{TTL: 4 * u, Sliding: true},
		{TTL: 2 * u, MaxAge: 4 * u, TrackUsers: true},
		{TTL: 2 * u, MaxAge: 4 * u, TrackUsers: true, Sliding: true},
	} {
		t.Run(optName(o)+map[bool]string{true: " Sliding"}[o.Sliding], func(t *testing.T) {
			parallel(t, b)
			o.Prefix = prefix(t)
			s := newStore(t, b, o)
			old := func() (string, string) {
				tok, k := oldToken(t, o.Prefix)
				writeOld(t, b, o, k, "alice", "alice")
				return tok, k
			}
			tok, k := old()
			for range 2 {
				wantUser(t, s, tok, "alice")
			}
			if err := s.Liv(ctx, tok); err != nil {
				t.Fatalf("Liv = %v", err)
			}
			if d := pttl(t, b, k); d <= 0 || d > o.TTL {
				t.Fatalf("PTTL after Liv = %v; want within (0, %v]", d, o.TTL)
			}
			nt, err := s.Rotate(ctx, tok)
			if err != nil {
				t.Fatalf("Rotate = %v", err)
			}
			wantGone(t, s, tok)
			wantUser(t, s, nt, "alice")
			nk := key(t, o.Prefix, nt)
			if typ, _ := redis.String(do(t, b, "TYPE", nk), nil); typ != "hash" {
				t.Fatalf("Rotate left the session as a %s, not a record", typ)
			}
			if d := pttl(t, b, nk); d <= 0 || d > min(o.TTL, max(o.MaxAge, o.TTL)) {
				t.Fatalf("rotated PTTL = %v", d)
			}
			if n, _ := redis.Int(do(t, b, "EXISTS", k, k+":m"), nil); n != 0 {
				t.Fatalf("Rotate left %d keys of the old session", n)
			}
			tok2, k2 := old()
			if err := s.Die(ctx, tok2); err != nil {
				t.Fatal(err)
			}
			if n, _ := redis.Int(do(t, b, "EXISTS", k2, k2+":m"), nil); n != 0 {
				t.Fatalf("Die left %d keys of an old session", n)
			}
			if !o.TrackUsers {
				mustDie(t, s, nt)
				return
			}
			tok3, _ := old()
			// A Store without TrackUsers rotates an indexed old session:
			// the new token stays in the index.
			plain := newStore(t, b, sesh.Options{Prefix: o.Prefix})
			nt3, err := plain.Rotate(ctx, tok3)
			if err != nil {
				t.Fatalf("Rotate by a Store without TrackUsers = %v", err)
			}
			count(t, s, "alice", 2) // nt and nt3
			if n, err := s.DieAll(ctx, "alice"); n != 2 || err != nil {
				t.Fatalf("DieAll = %d, %v; want 2", n, err)
			}
			wantGone(t, s, nt)
			wantGone(t, s, nt3)
			if o.MaxAge > 0 {
				tok4, _ := old()
				for range 2 {
					b.Advance(t, 3*u/2)
					if err := s.Liv(ctx, tok4); err != nil {
						t.Fatalf("Liv = %v", err)
					}
				}
				b.Advance(t, 3*u/2) // past its deadline, before its idle TTL
				wantGone(t, s, tok4)
			}
		})
	}
}
