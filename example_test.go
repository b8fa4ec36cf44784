package sesh_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// embedded starts an in-process Redis for an example; a real program uses
// sesh.NewPool("redis://...") instead.
func embedded() (*redis.Pool, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	p := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", mr.Addr()) }}
	return p, func() { p.Close(); mr.Close() }
}

func Example() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, err := sesh.New(pool, sesh.Options{TTL: 30 * time.Minute})
	if err != nil {
		panic(err)
	}
	token, err := s.Set(ctx, "alice") // at login: hand token to the client
	if err != nil {
		panic(err)
	}
	fmt.Println(len(token), "characters")

	userID, err := s.Get(ctx, token) // on every request
	fmt.Println(userID, err)

	if err := s.Die(ctx, token); err != nil { // at logout
		panic(err)
	}
	_, err = s.Get(ctx, token)
	fmt.Println(errors.Is(err, sesh.ErrNotFound))
	// Output:
	// 43 characters
	// alice <nil>
	// true
}

func ExampleStore_Liv() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{TTL: 15 * time.Minute, MaxAge: 12 * time.Hour})
	token, _ := s.Set(ctx, "alice")
	fmt.Println(s.Liv(ctx, token)) // the user is active: another 15 minutes, never past 12 hours
	s.Die(ctx, token)
	fmt.Println(errors.Is(s.Liv(ctx, token), sesh.ErrNotFound))
	// Output:
	// <nil>
	// true
}

// Log out everywhere, for example after a password change.
// "Remember me": one session lives 30 days beside the Store's 12-hour
// ones. Its policy is recorded with it, so any Store, whatever its own
// Options, keeps it to 30 days and never stretches a 12-hour one.
func ExampleStore_SetWith() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{TTL: time.Hour, MaxAge: 12 * time.Hour})
	day, _ := s.Set(ctx, "alice")
	remembered, _ := s.SetWith(ctx, "alice", sesh.Policy{TTL: 7 * 24 * time.Hour, MaxAge: 30 * 24 * time.Hour})

	// A Store with other Options, such as the sesh command's defaults.
	other, _ := sesh.New(pool, sesh.Options{TTL: 24 * time.Hour})
	fmt.Println(other.Liv(ctx, day))        // back to 1 hour, not 24
	fmt.Println(other.Liv(ctx, remembered)) // back to 7 days, never past 30
	_, err := s.SetWith(ctx, "alice", sesh.Policy{TTL: -time.Hour})
	fmt.Println(err)
	// Output:
	// <nil>
	// <nil>
	// sesh: set: policy TTL -1h0m0s is negative and not Forever
}

func ExampleStore_DieAll() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{TrackUsers: true})
	laptop, _ := s.Set(ctx, "alice")
	phone, _ := s.Set(ctx, "alice")
	bob, _ := s.Set(ctx, "bob")
	n, _ := s.Count(ctx, "alice")
	fmt.Println("alice has", n, "sessions")

	n, err := s.DieAll(ctx, "alice")
	fmt.Println("ended", n, err)
	for _, tok := range []string{laptop, phone, bob} {
		userID, err := s.Get(ctx, tok)
		fmt.Printf("%q %v\n", userID, errors.Is(err, sesh.ErrNotFound))
	}
	// Output:
	// alice has 2 sessions
	// ended 2 <nil>
	// "" true
	// "" true
	// "bob" false
}

// Rotate on a privilege change, so that a token fixed before the change
// is worthless after it.
func ExampleStore_Rotate() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{MaxAge: 24 * time.Hour})
	before, _ := s.Set(ctx, "alice")
	// ... alice confirms her password to become an administrator ...
	after, err := s.Rotate(ctx, before)
	if err != nil {
		panic(err)
	}
	_, err = s.Get(ctx, before)
	fmt.Println("old token:", errors.Is(err, sesh.ErrNotFound))
	userID, _ := s.Get(ctx, after)
	fmt.Println("new token:", userID)
	// Output:
	// old token: true
	// new token: alice
}

// An encrypted store: Redis holds sealed user IDs, each bound to its key.
func ExampleNewCrypt() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	// In production the secret comes from a secret manager: 32+ random bytes.
	key, err := sesh.KeyFromSecret("example-secret-of-at-least-32-bytes!")
	if err != nil {
		panic(err)
	}
	s, _ := sesh.New(pool, sesh.Options{})
	c, err := sesh.NewCrypt(s, key)
	if err != nil {
		panic(err)
	}
	token, _ := c.Set(ctx, "alice@example.com")
	userID, err := c.Get(ctx, token)
	fmt.Println(userID, err)

	_, err = sesh.KeyFromSecret("squirrel")
	fmt.Println(err != nil)
	// Output:
	// alice@example.com <nil>
	// true
}

// A key rotation, each step deployed to every server before the next: at
// every step, and beside servers at the step before, every server opens
// every live token and DieAll from any of them ends all of a user's.
func ExampleNewCrypt_rotation() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()
	s, _ := sesh.New(pool, sesh.Options{TrackUsers: true})
	oldKey, _ := sesh.KeyFromSecret("the-old-secret-0123456789abcdefghij")
	newKey, _ := sesh.KeyFromSecret("the-new-secret-0123456789abcdefghij")

	before, _ := sesh.NewCrypt(s, oldKey)
	token, _ := before.Set(ctx, "alice")

	held, _ := sesh.NewCrypt(s, oldKey, newKey)    // step 1: hold the new key, still seal with the old
	sealing, _ := sesh.NewCrypt(s, newKey, oldKey) // step 2: seal with the new key
	fresh, _ := sealing.Set(ctx, "alice")
	userID, _ := held.Get(ctx, fresh)
	fmt.Println("step 1 opens step 2's token:", userID)

	// step 3, unless MaxAge has passed since step 2: end the old key's sessions
	retiring, _ := sesh.NewCrypt(s, newKey, sesh.RetiredKey(oldKey))
	_, err := retiring.Get(ctx, token)
	fmt.Println("step 3 opens the old key's token:", !errors.Is(err, sesh.ErrDecrypt))

	after, _ := sesh.NewCrypt(s, newKey) // step 4: drop the old key
	n, _ := after.DieAll(ctx, "alice")
	fmt.Println("DieAll ended:", n)
	// Output:
	// step 1 opens step 2's token: alice
	// step 3 opens the old key's token: false
	// DieAll ended: 1
}

// Turning encryption on in a live deployment, each step deployed to every
// server before the next.
func ExamplePlainKey() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()
	s, _ := sesh.New(pool, sesh.Options{TrackUsers: true})
	key, _ := sesh.KeyFromSecret("the-secret-0123456789abcdefghijklmn")
	token, _ := s.Set(ctx, "alice") // a plain Store, before

	held, _ := sesh.NewCrypt(s, sesh.PlainKey, key)    // step 1: hold the key, still store plain
	sealing, _ := sesh.NewCrypt(s, key, sesh.PlainKey) // step 2: seal, still open plain values
	userID, _ := sealing.Get(ctx, token)
	fmt.Println("step 2 opens a plain token:", userID)
	n, _ := held.DieAll(ctx, "alice")
	fmt.Println("step 1's DieAll ended:", n)
	// step 3, unless MaxAge has passed since step 2: sesh.RetiredKey(sesh.PlainKey)
	// step 4: sesh.NewCrypt(s, key)
	// Output:
	// step 2 opens a plain token: alice
	// step 1's DieAll ended: 1
}

// Counters an operator can poll, every second if need be.
func ExampleStore_Stats() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{})
	token, _ := s.Set(ctx, "alice")
	s.Get(ctx, token)
	s.Die(ctx, token)
	s.Get(ctx, token)

	st := s.Stats()
	fmt.Printf("%+v\n", st.Ops)
	fmt.Printf("%+v\n", st.Errors)
	// Output:
	// {Set:1 Get:2 Liv:0 Die:1 DieAll:0 Count:0 Rotate:0 Lookup:0 Sessions:0 DieSession:0 DieOthers:0 DieEverything:0 Reauth:0}
	// {NotFound:1 Decrypt:0 NotReplicated:0 Context:0 InvalidUser:0 Other:0}
}

// A Hook that times each operation; seshotel's starts a span and records a
// histogram in the same place.
func ExampleHook() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	hook := func(ctx context.Context, op string) (context.Context, func(sesh.Result)) {
		start := time.Now()
		return ctx, func(r sesh.Result) {
			_ = time.Since(start) // record it
			fmt.Printf("%s: %d round trip(s), cached %v, error %v\n", op, r.RoundTrips, r.Cached, r.Err)
		}
	}
	s, _ := sesh.New(pool, sesh.Options{Hook: hook})
	s.Set(ctx, "bob") // the first Set on a server also sends Set's script
	token, _ := s.Set(ctx, "alice")
	s.Get(ctx, token)
	s.Die(ctx, token)
	s.Get(ctx, token)
	s.Get(ctx, "malformed")
	// Output:
	// set: 2 round trip(s), cached false, error <nil>
	// set: 1 round trip(s), cached false, error <nil>
	// get: 1 round trip(s), cached false, error <nil>
	// die: 1 round trip(s), cached false, error <nil>
	// get: 1 round trip(s), cached false, error sesh: token not found
	// get: 0 round trip(s), cached false, error sesh: token not found
}

// The path from "sesh keygen" to a Crypt: the application reads the key
// that keygen printed, as the sesh command reads SESH_KEYS, and decodes it
// with ParseKey. Both then open what the other sealed.
func ExampleParseKey() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	// What "sesh keygen" printed, kept in the app's secret store; a real
	// app reads it from there or from the environment.
	const printed = "kPe1UvW0Rk2Vj7iQb8f9Z3xYcL4mN6oA1sD2gH5jK8E"
	key, err := sesh.ParseKey(printed)
	if err != nil {
		panic(err)
	}
	s, _ := sesh.New(pool, sesh.Options{})
	c, err := sesh.NewCrypt(s, key)
	if err != nil {
		panic(err)
	}
	token, _ := c.Set(ctx, "alice")
	fmt.Println(c.Get(ctx, token))

	// KeyFromSecret derives a different key from the same text: a Crypt
	// made with it cannot open what the keygen key sealed.
	derived, _ := sesh.KeyFromSecret(printed)
	other, _ := sesh.NewCrypt(s, derived)
	_, err = other.Get(ctx, token)
	fmt.Println(errors.Is(err, sesh.ErrDecrypt))

	_, err = sesh.ParseKey("not a key")
	fmt.Println(err)
	// Output:
	// alice <nil>
	// true
	// sesh: parsekey: not the base64 of 32 bytes; make a key with sesh keygen
}

// An application tells a user ID that no token can have from a failing
// Redis, so that it answers 400 rather than 503.
func ExampleErrInvalidUser() {
	pool, stop := embedded()
	defer stop()

	s, _ := sesh.New(pool, sesh.Options{})
	_, err := s.Set(context.Background(), "")
	fmt.Println(err)
	fmt.Println(errors.Is(err, sesh.ErrInvalidUser))
	fmt.Println(s.Stats().Errors.InvalidUser)
	// Output:
	// sesh: set: invalid user ID: it is empty
	// true
	// 1
}

func ExampleStore_Sessions() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{TrackUsers: true, Details: true})
	laptop, _ := s.SetWith(ctx, "alice", sesh.Policy{Label: "Firefox on Linux"})
	phone, _ := s.SetWith(ctx, "alice", sesh.Policy{Label: "Safari on iOS"})

	// "Where am I logged in?", with this device marked.
	me, _ := s.Lookup(ctx, laptop)
	list, _ := s.Sessions(ctx, "alice")
	for _, se := range list {
		fmt.Println(se.Label, se.Handle == me.Handle)
	}

	// End the phone's session by its handle: it takes the user ID too, so
	// a handle never reaches another user's session.
	other, _ := s.Lookup(ctx, phone)
	fmt.Println(errors.Is(s.DieSession(ctx, "bob", other.Handle), sesh.ErrNotFound))
	fmt.Println(s.DieSession(ctx, "alice", other.Handle))
	_, err := s.Get(ctx, phone)
	fmt.Println(errors.Is(err, sesh.ErrNotFound))
	// Unordered output:
	// Firefox on Linux true
	// Safari on iOS false
	// true
	// <nil>
	// true
}

func ExampleStore_DieOthers() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{TrackUsers: true})
	current, _ := s.Set(ctx, "alice")
	s.Set(ctx, "alice")
	s.Set(ctx, "alice")

	// After a password change: log out the other devices.
	n, err := s.DieOthers(ctx, current)
	fmt.Println(n, err)
	userID, _ := s.Get(ctx, current)
	fmt.Println(userID)
	// Output:
	// 2 <nil>
	// alice
}

func ExampleErrTooManySessions() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{TrackUsers: true, MaxSessions: 2})
	s.Set(ctx, "alice")
	s.Set(ctx, "alice")
	_, err := s.Set(ctx, "alice")
	fmt.Println(errors.Is(err, sesh.ErrTooManySessions))
	// Output:
	// true
}

func ExampleStore_Lookup() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{TTL: 30 * time.Minute, MaxAge: 12 * time.Hour})
	token, _ := s.Set(ctx, "alice")

	// Get answers with the user ID; Lookup with the session around it.
	se, err := s.Lookup(ctx, token)
	if err != nil {
		panic(err)
	}
	fmt.Println(se.UserID)
	fmt.Println("logged in within the minute:", time.Since(se.AuthTime) < time.Minute)
	fmt.Println("ends by its deadline:", se.Deadline.Sub(se.AuthTime) == 12*time.Hour)
	fmt.Println("or after 30 idle minutes:", time.Until(se.IdleExpiry) <= 30*time.Minute)
	// Output:
	// alice
	// logged in within the minute: true
	// ends by its deadline: true
	// or after 30 idle minutes: true
}

// After the user has proven themselves again, Reauth swaps the token for
// a fresh one with a new authentication time and a new deadline; Rotate
// keeps both.
func ExampleStore_Reauth() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{MaxAge: 12 * time.Hour})
	login, _ := s.Set(ctx, "alice")
	before, _ := s.Lookup(ctx, login)

	rotated, _ := s.Rotate(ctx, login)
	r, _ := s.Lookup(ctx, rotated)
	fmt.Println("Rotate keeps the authentication time:", r.AuthTime.Equal(before.AuthTime))

	time.Sleep(5 * time.Millisecond)
	// ... alice types her password again ...
	fresh, err := s.Reauth(ctx, rotated)
	if err != nil {
		panic(err)
	}
	after, _ := s.Lookup(ctx, fresh)
	fmt.Println("Reauth sets it anew:", after.AuthTime.After(before.AuthTime))
	fmt.Println("and the deadline:", after.Deadline.After(before.Deadline))
	_, err = s.Get(ctx, rotated)
	fmt.Println("old token:", errors.Is(err, sesh.ErrNotFound))
	// Output:
	// Rotate keeps the authentication time: true
	// Reauth sets it anew: true
	// and the deadline: true
	// old token: true
}

// With a grace window, requests sent in parallel with one token all
// survive its rotation: the old token resolves for the window, and every
// Rotate of it returns the same new token.
func ExampleOptions_rotateGrace() {
	pool, stop := embedded()
	defer stop()
	ctx := context.Background()

	s, _ := sesh.New(pool, sesh.Options{RotateGrace: 10 * time.Second})
	old, _ := s.Set(ctx, "alice")
	first, _ := s.Rotate(ctx, old)
	second, err := s.Rotate(ctx, old) // a parallel request, a moment later
	fmt.Println(second == first, err)
	userID, _ := s.Get(ctx, old)
	fmt.Println("old token, in its window:", userID)

	// Ending the new token ends the old one at once, window or not.
	s.Die(ctx, first)
	_, err = s.Get(ctx, old)
	fmt.Println("after Die of the new one:", errors.Is(err, sesh.ErrNotFound))
	// Output:
	// true <nil>
	// old token, in its window: alice
	// after Die of the new one: true
}
