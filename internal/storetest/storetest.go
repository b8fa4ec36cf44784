// Package storetest is the behaviour suite of sesh's Store and Crypt. It runs
// unchanged on any Redis a [sesh.Pool] reaches: miniredis, a real server, a
// Redis Cluster or a Sentinel-managed master.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/wire"
)

// Backend is a Redis to run the suite on.
type Backend struct {
	// Name labels the subtests.
	Name string

	// Pool reaches the server. The suite writes only keys under prefixes
	// of its own, each with an expiry or ended before the suite returns.
	Pool sesh.Pool

	// Advance lets d pass on the server's clock: FastForward on miniredis,
	// a sleep on a real server.
	Advance func(t *testing.T, d time.Duration)

	// Unit is the time scale of expiry tests: long enough that scheduling
	// noise on the test machine is small beside it.
	Unit time.Duration

	// Serial runs the subtests one at a time, for a server whose clock
	// Advance moves for all of them (miniredis).
	Serial bool

	// CacheSize, when set, gives every Store of the suite a client-side
	// cache of that size, so the whole suite checks that caching changes
	// nothing a caller can see.
	CacheSize int

	// Pipelines, when set, is every Store's Options.Pipelines. Unless it is
	// sesh.NoPipelining, the Stores share connections even for an operation
	// alone in flight (wire.ShareAlways), so that the suite's one-at-a-time
	// operations run on the shared path.
	Pipelines int
}

// parallel marks t parallel unless b's clock is shared.
func parallel(t *testing.T, b Backend) {
	if !b.Serial {
		t.Parallel()
	}
}

// Run runs every test of the suite on b, in parallel subtests.
func Run(t *testing.T, b Backend) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"SetGet", testSetGet},
		{"UserIDs", testUserIDs},
		{"Malformed", testMalformed},
		{"Unknown", testUnknown},
		{"Expiry", testExpiry},
		{"Liv", testLiv},
		{"MaxAge", testMaxAge},
		{"Sliding", testSliding},
		{"Forever", testForever},
		{"Die", testDie},
		{"Collision", testCollision},
		{"Rand", testRand},
		{"Context", testContext},
		{"Replicas", testReplicas},
		{"Crypt", testCrypt},
		{"CryptTamper", testCryptTamper},
		{"CryptRotation", testCryptRotation},
		{"CryptV1", testCryptV1},
		{"Rollout", testRollout},
		{"Lifecycle", testLifecycle},
		{"IndexLife", testIndexLife},
		{"IndexSlack", testIndexSlack},
		{"RotateDuringDieAll", testRotateDuringDieAll},
		{"Prune", testPrune},
		{"Rotate", testRotate},
		{"RotateRace", testRotateRace},
		{"DieAllStress", testDieAllStress},
		{"RotateDeadline", testRotateDeadline},
		{"Creating", testCreating},
		{"StaleLock", testStaleLock},
		{"ContextBound", testContextBound},
		{"BadMembers", testBadMembers},
		{"DeadlineCaps", testDeadlineCaps},
		{"Chaos", testChaos},
		{"OwnTTL", testOwnTTL},
		{"CarryIndex", testCarryIndex},
		{"OwnDeadline", testOwnDeadline},
		{"DieAnyStore", testDieAnyStore},
		{"PolicyErrors", testPolicyErrors},
		{"Migration", testMigration},
		{"Lookup", testLookup},
		{"GraceRace", testGraceRace},
		{"GraceEnd", testGraceEnd},
		{"Reuse", testReuse},
		{"Reauth", testReauth},
		{"Sessions", testSessions},
		{"DieOthers", testDieOthers},
		{"Cap", testCap},
		{"DieEverything", testDieEverything},
		{"HandleChecks", testHandleChecks},
		{"LastUse", testLastUse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t, b)
			tc.fn(t, b)
		})
	}
}

// prefix returns a key namespace no other test uses.
func prefix(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	return "sesht-" + hex.EncodeToString(b[:])
}

func newStore(t *testing.T, b Backend, o sesh.Options) *sesh.Store {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = prefix(t)
	}
	if o.CacheSize == 0 {
		o.CacheSize = b.CacheSize
	}
	if o.Pipelines == 0 {
		o.Pipelines = b.Pipelines
	}
	s, err := newShared(b.Pool, o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var knob sync.Mutex

// newShared is sesh.New, with a Store that shares connections always
// unless o says NoPipelining.
func newShared(p sesh.Pool, o sesh.Options) (*sesh.Store, error) {
	if o.Pipelines == sesh.NoPipelining {
		return sesh.New(p, o)
	}
	knob.Lock()
	defer knob.Unlock()
	wire.ShareAlways.Store(true)
	defer wire.ShareAlways.Store(false)
	return sesh.New(p, o)
}

// api is what Store and Crypt share.
type api interface {
	Set(context.Context, string) (string, error)
	Get(context.Context, string) (string, error)
	Liv(context.Context, string) error
	Die(context.Context, string) error
	DieAll(context.Context, string) (int, error)
	Count(context.Context, string) (int, error)
	Rotate(context.Context, string) (string, error)
	Lookup(context.Context, string) (sesh.Session, error)
}

func set(t *testing.T, s api, userID string) string {
	t.Helper()
	tok, err := s.Set(context.Background(), userID)
	if err != nil {
		t.Fatalf("Set(%q): %v", userID, err)
	}
	return tok
}

func wantUser(t *testing.T, s api, tok, userID string) {
	t.Helper()
	got, err := s.Get(context.Background(), tok)
	if err != nil || got != userID {
		t.Fatalf("Get = %q, %v; want %q", got, err, userID)
	}
}

func wantGone(t *testing.T, s api, tok string) {
	t.Helper()
	if got, err := s.Get(context.Background(), tok); !errors.Is(err, sesh.ErrNotFound) {
		t.Fatalf("Get = %q, %v; want ErrNotFound", got, err)
	}
}

// key is the documented key layout: Prefix:{base64url(SHA-256(raw token))}.
func key(t *testing.T, prefix, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes of base64url: %v", tok, err)
	}
	sum := sha256.Sum256(raw)
	return prefix + ":{" + base64.RawURLEncoding.EncodeToString(sum[:]) + "}"
}

// do runs a raw command on the backend.
func do(t *testing.T, b Backend, cmd string, args ...any) any {
	t.Helper()
	c, err := b.Pool.GetContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

func pttl(t *testing.T, b Backend, k string) time.Duration {
	t.Helper()
	ms, _ := redis.Int64(do(t, b, "PTTL", k), nil)
	if ms < 0 {
		return time.Duration(ms)
	}
	return time.Duration(ms) * time.Millisecond
}

// counting counts connections taken from a Pool: zero means no round trip.
type counting struct {
	sesh.Pool
	n atomic.Int64
}

func (c *counting) GetContext(ctx context.Context) (redis.Conn, error) {
	c.n.Add(1)
	return c.Pool.GetContext(ctx)
}

func testSetGet(t *testing.T, b Backend) {
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TTL: time.Minute})
	tok := set(t, s, "alice")
	if len(tok) != 43 || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q is not 43 characters of unpadded base64url", tok)
	}
	wantUser(t, s, tok, "alice")
	// The value is the user ID, byte for byte, under the hashed key.
	if v, _ := redis.String(do(t, b, "HGET", key(t, p, tok), "u"), nil); v != "alice" {
		t.Fatalf("raw HGET u = %q, want alice", v)
	}
	if d := pttl(t, b, key(t, p, tok)); d <= 0 || d > time.Minute {
		t.Fatalf("PTTL = %v, want within (0, 1m]", d)
	}
	// The token itself appears nowhere in Redis.
	if n, _ := redis.Int(do(t, b, "EXISTS", p+":"+tok), nil); n != 0 {
		t.Fatal("the raw token is a key")
	}
	if tok2 := set(t, s, "alice"); tok2 == tok {
		t.Fatal("two Sets gave the same token")
	}
	mustDie(t, s, tok)
}

func mustDie(t *testing.T, s api, toks ...string) {
	t.Helper()
	for _, tok := range toks {
		if err := s.Die(context.Background(), tok); err != nil {
			t.Fatalf("Die: %v", err)
		}
	}
}

func testUserIDs(t *testing.T, b Backend) {
	s := newStore(t, b, sesh.Options{TTL: time.Minute})
	for _, tc := range []struct {
		name, userID string
		ok           bool
	}{
		{"an empty user ID is refused", "", false},
		{"a 1025-byte user ID is refused", strings.Repeat("x", 1025), false},
		{"a 1024-byte user ID is kept", strings.Repeat("x", 1024), true},
		{"binary bytes are kept as they are", "\x00\xff\r\n{}", true},
		{"an e-mail address is kept", "alice@example.com", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := s.Set(context.Background(), tc.userID)
			if !tc.ok {
				if err == nil || errors.Is(err, sesh.ErrNotFound) || !strings.HasPrefix(err.Error(), "sesh: set: ") {
					t.Fatalf("Set = %v; want a sesh: set: error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantUser(t, s, tok, tc.userID)
			mustDie(t, s, tok)
		})
	}
}

func testMalformed(t *testing.T, b Backend) {
	cp := &counting{Pool: b.Pool}
	s, err := sesh.New(cp, sesh.Options{Prefix: prefix(t), TrackUsers: true})
	if err != nil {
		t.Fatal(err)
	}
	good := strings.Repeat("A", 43)
	for _, tc := range []struct{ name, tok string }{
		{"empty", ""},
		{"too short", good[:42]},
		{"too long", good + "A"},
		{"padded", good[:42] + "="},
		{"standard base64 plus", "+" + good[1:]},
		{"standard base64 slash", "/" + good[1:]},
		{"a space", " " + good[1:]},
		{"non-ASCII", "é" + good[2:]},
		{"non-canonical last character", good[:42] + "B"},
	} {
		t.Run(tc.name+" is ErrNotFound without a round trip", func(t *testing.T) {
			before := cp.n.Load()
			ctx := context.Background()
			if _, err := s.Get(ctx, tc.tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Errorf("Get: %v", err)
			}
			if err := s.Liv(ctx, tc.tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Errorf("Liv: %v", err)
			}
			if err := s.Die(ctx, tc.tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Errorf("Die: %v", err)
			}
			if _, err := s.Rotate(ctx, tc.tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Errorf("Rotate: %v", err)
			}
			if n := cp.n.Load() - before; n != 0 {
				t.Errorf("%d connections taken", n)
			}
		})
	}
}

func testUnknown(t *testing.T, b Backend) {
	s := newStore(t, b, sesh.Options{TrackUsers: true})
	tok := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	ctx := context.Background()
	wantGone(t, s, tok)
	if err := s.Liv(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
		t.Errorf("Liv = %v, want ErrNotFound", err)
	}
	if _, err := s.Rotate(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
		t.Errorf("Rotate = %v, want ErrNotFound", err)
	}
	if err := s.Die(ctx, tok); err != nil {
		t.Errorf("Die = %v, want nil", err)
	}
}

func testExpiry(t *testing.T, b Backend) {
	u := b.Unit
	s := newStore(t, b, sesh.Options{TTL: 2 * u})
	tok := set(t, s, "alice")
	b.Advance(t, u)
	wantUser(t, s, tok, "alice") // Get does not slide:
	b.Advance(t, 3*u/2)
	wantGone(t, s, tok)
	if err := s.Liv(context.Background(), tok); !errors.Is(err, sesh.ErrNotFound) {
		t.Fatalf("Liv after expiry = %v", err)
	}
}

func testLiv(t *testing.T, b Backend) {
	u := b.Unit
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TTL: 2 * u})
	ctx := context.Background()
	tok := set(t, s, "alice")
	for range 3 {
		b.Advance(t, 3*u/2)
		if err := s.Liv(ctx, tok); err != nil {
			t.Fatalf("Liv: %v", err)
		}
	}
	wantUser(t, s, tok, "alice")
	// Liv never brings back an ended token.
	mustDie(t, s, tok)
	if err := s.Liv(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
		t.Fatalf("Liv after Die = %v", err)
	}
	if n, _ := redis.Int(do(t, b, "EXISTS", key(t, p, tok)), nil); n != 0 {
		t.Fatal("Liv recreated the key")
	}
}

func testMaxAge(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		o       sesh.Options
		refresh func(api, string) error
	}{
		{"Liv stops at MaxAge when TTL is shorter", sesh.Options{TTL: 2 * u, MaxAge: 5 * u}, func(s api, tok string) error { return s.Liv(ctx, tok) }},
		{"sliding Get stops at MaxAge when TTL is shorter", sesh.Options{TTL: 2 * u, MaxAge: 5 * u, Sliding: true}, func(s api, tok string) error { _, err := s.Get(ctx, tok); return err }},
		{"Liv stops at MaxAge when TTL is longer", sesh.Options{TTL: 50 * u, MaxAge: 5 * u}, func(s api, tok string) error { return s.Liv(ctx, tok) }},
		{"Liv stops at MaxAge when TTL is Forever", sesh.Options{TTL: sesh.Forever, MaxAge: 5 * u}, func(s api, tok string) error { return s.Liv(ctx, tok) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t, b)
			tc.o.Prefix = prefix(t)
			s := newStore(t, b, tc.o)
			tok := set(t, s, "alice")
			if d := pttl(t, b, key(t, tc.o.Prefix, tok)); d <= 0 || d > 5*u {
				t.Fatalf("PTTL = %v, want within (0, %v]", d, 5*u)
			}
			for range 3 { // t = 4.5u
				b.Advance(t, 3*u/2)
				if err := tc.refresh(s, tok); err != nil {
					t.Fatalf("refresh before MaxAge: %v", err)
				}
			}
			b.Advance(t, u) // t = 5.5u
			if err := tc.refresh(s, tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("refresh after MaxAge = %v, want ErrNotFound", err)
			}
			wantGone(t, s, tok)
		})
	}
}

func testSliding(t *testing.T, b Backend) {
	u := b.Unit
	s := newStore(t, b, sesh.Options{TTL: 2 * u, Sliding: true})
	tok := set(t, s, "alice")
	for range 3 {
		b.Advance(t, 3*u/2)
		wantUser(t, s, tok, "alice")
	}
	b.Advance(t, 5*u/2)
	wantGone(t, s, tok)
}

func testForever(t *testing.T, b Backend) {
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TTL: sesh.Forever})
	tok := set(t, s, "alice")
	if d := pttl(t, b, key(t, p, tok)); d != -1 {
		t.Fatalf("PTTL = %v, want -1 (no expiry)", d)
	}
	if err := s.Liv(context.Background(), tok); err != nil {
		t.Fatalf("Liv: %v", err)
	}
	wantUser(t, s, tok, "alice")
	mustDie(t, s, tok)
	if err := s.Liv(context.Background(), tok); !errors.Is(err, sesh.ErrNotFound) {
		t.Fatalf("Liv after Die = %v", err)
	}
}

func testDie(t *testing.T, b Backend) {
	for _, o := range []sesh.Options{
		{TTL: time.Minute},
		{TTL: time.Minute, MaxAge: time.Hour},
		{TTL: time.Minute, TrackUsers: true},
	} {
		p := prefix(t)
		o.Prefix = p
		s := newStore(t, b, o)
		tok := set(t, s, "alice")
		mustDie(t, s, tok, tok) // idempotent
		wantGone(t, s, tok)
		// Nothing of the token is left: no key, no deadline key.
		k := key(t, p, tok)
		if n, _ := redis.Int(do(t, b, "EXISTS", k), nil); n != 0 {
			t.Fatalf("%+v: key left", o)
		}
		if n, _ := redis.Int(do(t, b, "EXISTS", k+":m"), nil); n != 0 {
			t.Fatalf("%+v: deadline key left", o)
		}
		if o.TrackUsers {
			if n, _ := redis.Int(do(t, b, "ZCARD", p+":u:alice"), nil); n != 0 {
				t.Fatalf("index holds %d entries after Die", n)
			}
		}
	}
}

// fixed yields the same 32 bytes n times, then another 32 bytes forever.
func fixed(same byte, n int, then byte) io.Reader {
	return io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{same}, 32*n)), repeat(then))
}

type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func testCollision(t *testing.T, b Backend) {
	for _, track := range []bool{false, true} {
		p := prefix(t)
		ctx := context.Background()
		first := newStore(t, b, sesh.Options{Prefix: p, Rand: fixed(1, 1, 9), TrackUsers: track})
		victim := set(t, first, "victim")

		// Two draws collide with the victim's token, the third is new.
		s := newStore(t, b, sesh.Options{Prefix: p, Rand: fixed(1, 2, 2), TrackUsers: track})
		tok := set(t, s, "mallory")
		if tok == victim {
			t.Fatal("Set returned a live token")
		}
		wantUser(t, s, tok, "mallory")
		wantUser(t, s, victim, "victim")

		// A Rand stuck on one value gives up with an error.
		stuck := newStore(t, b, sesh.Options{Prefix: p, Rand: repeat(1), TrackUsers: track})
		if _, err := stuck.Set(ctx, "mallory"); err == nil || errors.Is(err, sesh.ErrNotFound) || !strings.Contains(err.Error(), "collided") {
			t.Fatalf("stuck Rand: Set = %v", err)
		}
		wantUser(t, s, victim, "victim")
		if track {
			// The collisions left no entry of the victim's token in
			// mallory's index, so mallory's DieAll spares it.
			if n, err := s.Count(ctx, "mallory"); n != 1 || err != nil {
				t.Fatalf("Count(mallory) = %d, %v; want 1", n, err)
			}
			if n, err := s.DieAll(ctx, "mallory"); n != 1 || err != nil {
				t.Fatalf("DieAll(mallory) = %d, %v; want 1", n, err)
			}
			wantUser(t, s, victim, "victim")
		}
		mustDie(t, s, victim, tok)
	}
}

type failing struct{}

var errEntropy = errors.New("entropy ran dry")

func (failing) Read([]byte) (int, error) { return 0, errEntropy }

func testRand(t *testing.T, b Backend) {
	s := newStore(t, b, sesh.Options{Rand: failing{}})
	_, err := s.Set(context.Background(), "alice")
	if !errors.Is(err, errEntropy) || !strings.HasPrefix(err.Error(), "sesh: set: ") {
		t.Fatalf("Set with failing Rand = %v", err)
	}
	s = newStore(t, b, sesh.Options{Rand: strings.NewReader("short")})
	if _, err := s.Set(context.Background(), "alice"); err == nil {
		t.Fatal("Set with a short Rand succeeded")
	}
}

func testContext(t *testing.T, b Backend) {
	s := newStore(t, b, sesh.Options{TrackUsers: true})
	tok := set(t, s, "alice")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"a canceled context", canceled, context.Canceled},
		{"an expired deadline", expired, context.DeadlineExceeded},
	} {
		t.Run(tc.name+" fails every method", func(t *testing.T) {
			ops := map[string]func() error{
				"set":    func() error { _, err := s.Set(tc.ctx, "alice"); return err },
				"get":    func() error { _, err := s.Get(tc.ctx, tok); return err },
				"liv":    func() error { return s.Liv(tc.ctx, tok) },
				"die":    func() error { return s.Die(tc.ctx, tok) },
				"rotate": func() error { _, err := s.Rotate(tc.ctx, tok); return err },
				"dieall": func() error { _, err := s.DieAll(tc.ctx, "alice"); return err },
				"count":  func() error { _, err := s.Count(tc.ctx, "alice"); return err },
			}
			for op, f := range ops {
				err := f()
				if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "sesh: "+op+": ") {
					t.Errorf("%s = %v; want sesh: %s: wrapping %v", op, err, op, tc.want)
				}
			}
		})
	}
	wantUser(t, s, tok, "alice")
	mustDie(t, s, tok)
}

func testReplicas(t *testing.T, b Backend) {
	// No backend of the suite has 9 replicas: every ending operation
	// reports it, and has still ended the token.
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, Replicas: 9, ReplicaTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	// Set with TrackUsers waits too, for the index entry: unacknowledged,
	// it hands out no token and leaves none behind.
	if tok, err := s.Set(ctx, "alice"); !errors.Is(err, sesh.ErrNotReplicated) || tok != "" || !strings.HasPrefix(err.Error(), "sesh: set: ") {
		t.Fatalf("Set = %q, %v; want sesh: set: wrapping ErrNotReplicated and no token", tok, err)
	}
	if n, _ := redis.Int(do(t, b, "ZCARD", p+":u:alice"), nil); n != 0 {
		t.Fatalf("an unacknowledged Set left %d index entries", n)
	}
	// The tokens come from a Store that does not wait.
	s0 := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true})
	count(t, s0, "alice", 0)
	tok := set(t, s0, "alice")
	if err := s.Die(ctx, tok); !errors.Is(err, sesh.ErrNotReplicated) || !strings.HasPrefix(err.Error(), "sesh: die: ") {
		t.Fatalf("Die = %v; want sesh: die: wrapping ErrNotReplicated", err)
	}
	wantGone(t, s, tok)
	tok = set(t, s0, "alice")
	nt, err := s.Rotate(ctx, tok)
	if !errors.Is(err, sesh.ErrNotReplicated) || nt == "" {
		t.Fatalf("Rotate = %q, %v; want a token and ErrNotReplicated", nt, err)
	}
	wantGone(t, s, tok)
	wantUser(t, s, nt, "alice")
	if n, err := s.DieAll(ctx, "alice"); n != 1 || !errors.Is(err, sesh.ErrNotReplicated) {
		t.Fatalf("DieAll = %d, %v; want 1 and ErrNotReplicated", n, err)
	}
	wantGone(t, s, nt)
	// A Die of a token in its predecessor's grace window ends both, and
	// the predecessor's end waits for replicas too: unacknowledged, both
	// are gone all the same.
	sg := newStore(t, b, sesh.Options{Prefix: p, TrackUsers: true, RotateGrace: time.Minute})
	old := set(t, sg, "alice")
	nt, err = sg.Rotate(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	wantUser(t, sg, old, "alice")
	if err := s.Die(ctx, nt); !errors.Is(err, sesh.ErrNotReplicated) {
		t.Fatalf("Die in a window = %v; want ErrNotReplicated", err)
	}
	wantGone(t, sg, nt)
	wantGone(t, sg, old)
}
