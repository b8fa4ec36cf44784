package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

const demoTTL = 30 * time.Minute

func (c *cli) demo(ctx context.Context, args []string) int {
	var url string
	fs := c.flags("demo", "[-redis URL]",
		`Demo runs a token's whole lifecycle and narrates each step with its
result and latency: Set, Get, Liv, Rotate, Count, DieAll, Die, expiry, and a
swap attack that Crypt stops. It runs on an embedded miniredis unless given a
server, where it works under a throwaway prefix and deletes every key it
made before it exits.`,
		"\tsesh demo\n\tsesh demo -redis redis://localhost:6379/15")
	fs.StringVar(&url, "redis", "", "run on the Redis server at `URL` (default $SESH_REDIS_URL, else embedded)")
	if _, status, ok := c.parse(fs, args, 0); !ok {
		return status
	}
	d := &demo{w: c.stdout}
	where := "an embedded miniredis (in-process, forgotten at exit)"
	url = redisURL(url)
	if url == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return c.fail(ctx, "demo", fmt.Errorf("embedded miniredis: %w", err))
		}
		defer mr.Close()
		d.mr, d.prefix = mr, "seshdemo"
		url = "redis://" + mr.Addr()
	} else {
		d.prefix = "seshdemo-" + randomHex(4)
		where = redacted(url) + " under the throwaway prefix " + d.prefix
	}
	pool, err := sesh.NewPool(url)
	if err != nil {
		return c.usage(fs, "%v", err)
	}
	defer pool.Close()
	d.pool = pool
	if err := ping(ctx, pool); err != nil {
		return c.fail(ctx, "demo", fmt.Errorf("%s: %w", redacted(url), err))
	}
	fmt.Fprintf(d.w, "sesh demo on %s\n", where)
	if d.mr == nil {
		defer func() {
			n, err := cleanup(&backend{target: target{kind: kindSingle, url: url}, Pool: pool}, d.prefix)
			if err != nil {
				fmt.Fprintf(c.stderr, "sesh: demo: cleaning up %s: %v\n", d.prefix, err)
				return
			}
			fmt.Fprintf(d.w, "\ncleaned up: deleted the %d keys left under %s:\n", n, d.prefix)
		}()
	}
	if err := d.run(ctx); err != nil {
		return c.fail(ctx, "demo", err)
	}
	return exitOK
}

// demo is one run of the narrated lifecycle.
type demo struct {
	w      io.Writer
	mr     *miniredis.Miniredis // nil on a real server
	pool   *redis.Pool
	prefix string
	key    []byte
	n      int // steps so far
}

// run narrates the lifecycle phase by phase, on a Crypt with a fresh key,
// and returns the first outcome that is not as documented.
func (d *demo) run(ctx context.Context) error {
	d.key = make([]byte, 32)
	rand.Read(d.key)
	s, err := d.crypt(demoTTL)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "Crypt over a Store{Prefix: %q, TTL: %s, TrackUsers: true}, with a fresh AES-256 key\n\n", d.prefix, short(demoTTL))

	tok, err := d.setGetLiv(ctx, s)
	if err != nil {
		return err
	}
	rotated, err := d.rotate(ctx, s, tok)
	if err != nil {
		return err
	}
	if err := d.countAndDieAll(ctx, s, rotated); err != nil {
		return err
	}
	if err := d.die(ctx, s); err != nil {
		return err
	}
	if err := d.expiry(ctx); err != nil {
		return err
	}
	return d.swap(ctx, s)
}

// setGetLiv issues alice's token, shows what Redis holds for it, looks it
// up and renews it; it returns the token.
func (d *demo) setGetLiv(ctx context.Context, s sesh.TokenStore) (string, error) {
	tok, err := d.set(ctx, s, "alice", true)
	if err != nil {
		return "", err
	}
	raw, err := redis.Bytes(d.do(ctx, "HGET", d.keyOf(tok), "u"))
	if err != nil {
		return "", err
	}
	d.note("Redis holds %s = %d bytes of ciphertext: neither the token nor \"alice\"", d.shortKey(tok), len(raw))
	if err := d.get(ctx, s, "Get(token)", tok, "alice", nil, true); err != nil {
		return "", err
	}
	start := time.Now()
	err = s.Liv(ctx, tok)
	if err := expect("Liv", err, nil); err != nil {
		return "", err
	}
	d.step(true, "Liv(token)", "ok: idle TTL back to "+short(demoTTL), time.Since(start))
	return tok, nil
}

// rotate swaps tok for a fresh token, shows that only the new one is live,
// and returns it.
func (d *demo) rotate(ctx context.Context, s sesh.TokenStore, tok string) (string, error) {
	start := time.Now()
	rotated, err := s.Rotate(ctx, tok)
	if err := expect("Rotate", err, nil); err != nil {
		return "", err
	}
	d.step(true, "Rotate(token)", "new token "+abbrev(rotated), time.Since(start))
	if err := d.get(ctx, s, "Get(old token)", tok, "", sesh.ErrNotFound, false); err != nil {
		return "", err
	}
	if err := d.get(ctx, s, "Get(new token)", rotated, "alice", nil, false); err != nil {
		return "", err
	}
	return rotated, nil
}

// countAndDieAll gives alice two more tokens beside tok, counts her three,
// and ends them all at once.
func (d *demo) countAndDieAll(ctx context.Context, s sesh.TokenStore, tok string) error {
	d.note("alice logs in on two more devices:")
	toks := []string{tok}
	for range 2 {
		t, err := d.set(ctx, s, "alice", false)
		if err != nil {
			return err
		}
		toks = append(toks, t)
	}
	start := time.Now()
	n, err := s.Count(ctx, "alice")
	if err := expect("Count", err, nil); err != nil {
		return err
	}
	if n != 3 {
		return fmt.Errorf("Count returned %d, want 3", n)
	}
	d.step(true, `Count("alice")`, fmt.Sprint(n), time.Since(start))
	start = time.Now()
	n, err = s.DieAll(ctx, "alice")
	if err := expect("DieAll", err, nil); err != nil {
		return err
	}
	if n != 3 {
		return fmt.Errorf("DieAll ended %d tokens, want 3", n)
	}
	d.step(true, `DieAll("alice")`, fmt.Sprintf("ended %d: logged out everywhere", n), time.Since(start))
	for i, t := range toks {
		if err := d.get(ctx, s, fmt.Sprintf("Get(alice's token %d)", i+1), t, "", sesh.ErrNotFound, false); err != nil {
			return err
		}
	}
	return nil
}

// die ends bob's token, and ends it again to show that is no error.
func (d *demo) die(ctx context.Context, s sesh.TokenStore) error {
	d.note("bob logs in:")
	tok, err := d.set(ctx, s, "bob", false)
	if err != nil {
		return err
	}
	start := time.Now()
	err = s.Die(ctx, tok)
	if err := expect("Die", err, nil); err != nil {
		return err
	}
	d.step(true, "Die(token)", "ok: logged out", time.Since(start))
	if err := d.get(ctx, s, "Get(token)", tok, "", sesh.ErrNotFound, false); err != nil {
		return err
	}
	start = time.Now()
	err = s.Die(ctx, tok)
	if err := expect("Die", err, nil); err != nil {
		return err
	}
	d.step(false, "Die(token) again", "ok: already gone is no error", time.Since(start))
	return nil
}

// expiry lets a token of a store whose idle TTL is short go unused past it.
func (d *demo) expiry(ctx context.Context) error {
	const ttl, wait = time.Second, 1200 * time.Millisecond
	short, err := d.crypt(ttl)
	if err != nil {
		return err
	}
	d.note("a store with TTL %v:", ttl)
	tok, err := d.set(ctx, short, "carol", false)
	if err != nil {
		return err
	}
	if d.mr != nil {
		d.note("miniredis's clock stands still, so FastForward(%v) moves it", wait)
		d.mr.FastForward(wait)
	} else {
		d.note("waiting %v on the server's clock", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return d.get(ctx, short, fmt.Sprintf("Get(token) %v later", wait), tok, "", sesh.ErrNotFound, true)
}

// swap shows what someone who can write to Redis, and holds a token of
// their own, gains by copying the victim's stored value under their own
// token's key: the victim's identity with a plain Store, ErrDecrypt with
// Crypt, which binds each value to its key.
func (d *demo) swap(ctx context.Context, crypt sesh.TokenStore) error {
	plain, err := sesh.New(d.pool, sesh.Options{Prefix: d.prefix, TTL: demoTTL})
	if err != nil {
		return err
	}
	d.heading("swap attack: mallory copies the victim's stored value under her own token's key")
	d.note("she can write to Redis, and holds a token of her own")
	for _, c := range []struct {
		name string
		s    sesh.TokenStore
		want string
		err  error
	}{
		{"Store", plain, "victim", nil},
		{"Crypt", crypt, "", sesh.ErrDecrypt},
	} {
		victim, err := c.s.Set(ctx, "victim")
		if err != nil {
			return err
		}
		mallory, err := c.s.Set(ctx, "mallory")
		if err != nil {
			return err
		}
		val, err := redis.Bytes(d.do(ctx, "HGET", d.keyOf(victim), "u"))
		if err != nil {
			return err
		}
		if _, err := d.do(ctx, "HSET", d.keyOf(mallory), "u", val); err != nil {
			return err
		}
		start := time.Now()
		got, err := c.s.Get(ctx, mallory)
		if err := expect(c.name+": Get", err, c.err); err != nil {
			return err
		}
		if got != c.want {
			return fmt.Errorf("%s: Get returned %q, want %q", c.name, got, c.want)
		}
		result := fmt.Sprintf("%q: she passes as the victim", got)
		if c.err != nil {
			result = errName(err) + ": the value is bound to its key"
		}
		d.step(false, c.name+".Get(mallory's token)", result, time.Since(start))
	}
	fmt.Fprintf(d.w, "\nall %d steps behaved as documented\n", d.n)
	return nil
}

// crypt returns a Crypt with the demo's key over a Store with the given
// idle TTL.
func (d *demo) crypt(ttl time.Duration) (*sesh.Crypt, error) {
	s, err := sesh.New(d.pool, sesh.Options{Prefix: d.prefix, TTL: ttl, TrackUsers: true})
	if err != nil {
		return nil, err
	}
	return sesh.NewCrypt(s, d.key)
}

// set issues a token for user and narrates it.
func (d *demo) set(ctx context.Context, s sesh.TokenStore, user string, numbered bool) (string, error) {
	start := time.Now()
	tok, err := s.Set(ctx, user)
	if err := expect("Set", err, nil); err != nil {
		return "", err
	}
	d.step(numbered, fmt.Sprintf("Set(%q)", user), "token "+abbrev(tok), time.Since(start))
	return tok, nil
}

// get looks tok up and checks the outcome: user, or wantErr.
func (d *demo) get(ctx context.Context, s sesh.TokenStore, call, tok, user string, wantErr error, numbered bool) error {
	start := time.Now()
	got, err := s.Get(ctx, tok)
	took := time.Since(start)
	if err := expect(call, err, wantErr); err != nil {
		return err
	}
	if got != user {
		return fmt.Errorf("%s returned %q, want %q", call, got, user)
	}
	result := fmt.Sprintf("%q", got)
	if err != nil {
		result = errName(err)
	}
	d.step(numbered, call, result, took)
	return nil
}

// expect turns an outcome of call other than want (nil, or an error
// errors.Is finds) into the demo's error.
func expect(call string, err, want error) error {
	switch {
	case want == nil && err == nil, want != nil && errors.Is(err, want):
		return nil
	case want == nil:
		return fmt.Errorf("%s: %w", call, err)
	}
	return fmt.Errorf("%s: got %v, want %s", call, err, errName(want))
}

// step prints a line of the narration; numbered ones start a new step.
func (d *demo) step(numbered bool, call, result string, took time.Duration) {
	num := ""
	if numbered {
		d.n++
		num = fmt.Sprintf("%d.", d.n)
	} else {
		call = "  " + call
	}
	fmt.Fprintf(d.w, "%4s %-32s -> %-40s %7s\n", num, call, result, latency(took))
}

// heading starts a step that is told in the lines after it.
func (d *demo) heading(text string) {
	d.n++
	fmt.Fprintf(d.w, "%4s %s\n", fmt.Sprintf("%d.", d.n), text)
}

func (d *demo) note(format string, args ...any) {
	fmt.Fprintf(d.w, "       # "+format+"\n", args...)
}

func (d *demo) do(ctx context.Context, cmd string, args ...any) (any, error) {
	conn, err := d.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return redis.DoContext(conn, ctx, cmd, args...)
}

// keyOf is the Redis key of tok: Prefix:{base64url(SHA-256(raw token))}.
func (d *demo) keyOf(tok string) string {
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	sum := sha256.Sum256(raw)
	return d.prefix + ":{" + base64.RawURLEncoding.EncodeToString(sum[:]) + "}"
}

func (d *demo) shortKey(tok string) string {
	k := d.keyOf(tok)
	return k[:len(d.prefix)+8] + "…}"
}

// errName names the sentinel errors the demo shows.
func errName(err error) string {
	switch {
	case errors.Is(err, sesh.ErrNotFound):
		return "ErrNotFound"
	case errors.Is(err, sesh.ErrDecrypt):
		return "ErrDecrypt"
	}
	return fmt.Sprint(err)
}

// abbrev shortens a token for display.
func abbrev(tok string) string {
	return fmt.Sprintf("%s…(%d chars)", tok[:6], len(tok))
}

// short formats d without zero minutes or seconds: 30m, not 30m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// latency formats d to about three significant digits.
func latency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func ping(ctx context.Context, pool *redis.Pool) error {
	conn, err := pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = redis.DoContext(conn, ctx, "PING")
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
