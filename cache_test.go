package sesh_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// The cache's tests run on real Redis only: miniredis has no CLIENT
// TRACKING. Each uses a prefix of its own and never flushes a database.

// realURL returns SESH_REDIS_URL, or skips the test when it is not set.
func realURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("SESH_REDIS_URL")
	if url == "" {
		t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
	}
	return url
}

func cachePrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "seshc-" + hex.EncodeToString(b[:])
}

// watched is a pool that counts the reads of token keys it carries (GET,
// GETEX and scripts), knows the client ID of every connection it dialled,
// and can refuse to let the cache turn tracking on.
type watched struct {
	*redis.Pool
	reads  atomic.Int64
	refuse atomic.Bool // CLIENT ID fails, so tracking cannot be turned on
	noEval atomic.Bool // EVAL and EVALSHA fail, as on a Redis that fails writes

	mu  sync.Mutex
	ids []int64
}

// watch returns a watched pool on url, which must answer.
func watch(t testing.TB, url string) *watched {
	t.Helper()
	p, err := sesh.NewPool(url)
	if err != nil {
		t.Fatalf("NewPool(%s): %v", url, err)
	}
	w := &watched{Pool: p}
	dial := p.DialContext
	p.DialContext = func(ctx context.Context) (redis.Conn, error) {
		c, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		id, err := redis.Int64(c.Do("CLIENT", "ID"))
		if err != nil {
			c.Close()
			return nil, err
		}
		w.mu.Lock()
		w.ids = append(w.ids, id)
		w.mu.Unlock()
		return c, nil
	}
	t.Cleanup(func() { p.Close() })
	if _, err := do(t, p, "PING"); err != nil {
		t.Fatalf("%s does not answer: %v", url, err)
	}
	return w
}

func (w *watched) GetContext(ctx context.Context) (redis.Conn, error) {
	c, err := w.Pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	return watchedConn{c, w}, nil
}

func (w *watched) dialled(id int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.ids, id)
}

// watchedConn keeps DoContext and ReceiveWithTimeout, so that sesh takes the
// same paths as on a plain pool.
type watchedConn struct {
	redis.Conn
	w *watched
}

var (
	errRefused     = errors.New("tracking refused by the test")
	errRefusedEval = errors.New("script refused by the test")
)

func (c watchedConn) see(cmd string, args []any) error {
	switch strings.ToUpper(cmd) {
	case "GET", "GETEX", "HGET", "HMGET", "EVAL", "EVALSHA":
		c.w.reads.Add(1)
		if c.w.noEval.Load() && strings.HasPrefix(strings.ToUpper(cmd), "EVAL") {
			return errRefusedEval
		}
	case "CLIENT":
		if len(args) > 0 && args[0] == "ID" && c.w.refuse.Load() {
			return errRefused
		}
	}
	return nil
}

func (c watchedConn) Do(cmd string, args ...any) (any, error) {
	if err := c.see(cmd, args); err != nil {
		return nil, err
	}
	return c.Conn.Do(cmd, args...)
}

func (c watchedConn) Send(cmd string, args ...any) error {
	if err := c.see(cmd, args); err != nil {
		return err
	}
	return c.Conn.Send(cmd, args...)
}

func (c watchedConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	if err := c.see(cmd, args); err != nil {
		return nil, err
	}
	return redis.DoContext(c.Conn, ctx, cmd, args...)
}

func (c watchedConn) DoWithTimeout(d time.Duration, cmd string, args ...any) (any, error) {
	if err := c.see(cmd, args); err != nil {
		return nil, err
	}
	return redis.DoWithTimeout(c.Conn, d, cmd, args...)
}

func (c watchedConn) ReceiveWithTimeout(d time.Duration) (any, error) {
	return redis.ReceiveWithTimeout(c.Conn, d)
}

func (c watchedConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

// do runs one command on a connection of p.
func do(t testing.TB, p sesh.Pool, cmd string, args ...any) (any, error) {
	t.Helper()
	c, err := p.GetContext(context.Background())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(cmd, args...)
}

func newCached(t testing.TB, p sesh.Pool, o sesh.Options) *sesh.Store {
	t.Helper()
	s, err := sesh.New(p, o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type getter interface {
	Get(context.Context, string) (string, error)
}

// cached gets tok from s until a Get is served from memory. The first fill
// of a fresh token may be dropped: Set's own invalidation can race it.
func cached(t testing.TB, s getter, w *watched, tok, userID string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		before := w.reads.Load()
		got, err := s.Get(context.Background(), tok)
		if err != nil || got != userID {
			t.Fatalf("Get = %q, %v; want %q", got, err, userID)
		}
		if w.reads.Load() == before {
			return
		}
	}
	t.Fatal("Get was never served from memory")
}

// gone gets tok from s until ErrNotFound, and returns how long that took.
// It fails the test when userID is still returned after within.
func gone(t testing.TB, s getter, tok, userID string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, err := s.Get(context.Background(), tok)
		d := time.Since(start)
		switch {
		case errors.Is(err, sesh.ErrNotFound):
			return d
		case err != nil:
			t.Fatalf("Get: %v", err)
		case got != userID:
			t.Fatalf("Get = %q, want %q or ErrNotFound", got, userID)
		case d > within:
			t.Fatalf("Get still returns %q after %v", got, d)
		}
	}
}

// key is the documented key layout: Prefix:{base64url(SHA-256(raw token))}.
func key(t testing.TB, prefix, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes of base64url: %v", tok, err)
	}
	sum := sha256.Sum256(raw)
	return prefix + ":{" + base64.RawURLEncoding.EncodeToString(sum[:]) + "}"
}

func mustSet(t testing.TB, s interface {
	Set(context.Context, string) (string, error)
}, userID string) string {
	t.Helper()
	tok, err := s.Set(context.Background(), userID)
	if err != nil {
		t.Fatalf("Set(%q): %v", userID, err)
	}
	return tok
}

// tracker returns the client ID of the tracking connection dialled by w,
// waiting for one that is not old.
func tracker(t testing.TB, w *watched, old int64) int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		list, err := redis.String(do(t, w, "CLIENT", "LIST"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(list, "\n") {
			var id int64 = -1
			named := false
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id, _ = strconv.ParseInt(v, 10, 64)
				}
				named = named || f == "name=sesh-tracking"
			}
			if named && id != old && w.dialled(id) {
				return id
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no tracking connection")
	return 0
}

func TestCacheOptions(t *testing.T) {
	_, p := miniPool(t)
	for _, tc := range []struct {
		name  string
		o     sesh.Options
		field string
	}{
		{"a negative CacheSize is refused", sesh.Options{CacheSize: -1}, "CacheSize"},
		{"a negative CacheMaxStale is refused", sesh.Options{CacheSize: 1, CacheMaxStale: -time.Second}, "CacheMaxStale"},
		{"a CacheMaxStale below 10ms is refused", sesh.Options{CacheSize: 1, CacheMaxStale: time.Millisecond}, "CacheMaxStale"},
		{"a cache on a server without CLIENT TRACKING is refused", sesh.Options{CacheSize: 1}, "CacheSize needs CLIENT TRACKING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sesh.New(p, tc.o)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.HasPrefix(err.Error(), "sesh: new: "+tc.field) {
				t.Fatalf("New = %v; want an error naming %s", err, tc.field)
			}
		})
	}
}

func TestCacheUnreachable(t *testing.T) {
	p := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", "127.0.0.1:1") }}
	_, err := sesh.New(p, sesh.Options{CacheSize: 1})
	if err == nil || !strings.HasPrefix(err.Error(), "sesh: new: CacheSize: ") {
		t.Fatalf("New with Redis down = %v; want sesh: new: CacheSize: ...", err)
	}
}

// recording records the commands sent on its connections.
type recording struct {
	sesh.Pool
	mu    sync.Mutex
	conns int
	cmds  []string
}

type recordingConn struct {
	redis.Conn
	r *recording
}

func (r *recording) GetContext(ctx context.Context) (redis.Conn, error) {
	c, err := r.Pool.GetContext(ctx)
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	return recordingConn{c, r}, err
}

func (c recordingConn) note(cmd string) {
	c.r.mu.Lock()
	c.r.cmds = append(c.r.cmds, cmd)
	c.r.mu.Unlock()
}

func (c recordingConn) Do(cmd string, args ...any) (any, error) {
	c.note(cmd)
	return c.Conn.Do(cmd, args...)
}

func (c recordingConn) Send(cmd string, args ...any) error {
	c.note(cmd)
	return c.Conn.Send(cmd, args...)
}

func (c recordingConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	c.note(cmd)
	return redis.DoContext(c.Conn, ctx, cmd, args...)
}

func (r *recording) take() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, cmds := r.conns, r.cmds
	r.conns, r.cmds = 0, nil
	return n, cmds
}

func TestCacheOff(t *testing.T) {
	_, p := miniPool(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    sesh.Options
		want []string
	}{
		{"a Get is one HGET", sesh.Options{}, []string{"HGET"}},
		// A script, not GETEX: another Store's deadline key caps the restart.
		{"a sliding Get is one script", sesh.Options{Sliding: true}, []string{"EVALSHA"}},
		{"a sliding Get under MaxAge is one script", sesh.Options{Sliding: true, MaxAge: 48 * time.Hour}, []string{"EVALSHA"}},
	} {
		t.Run("with CacheSize 0, "+tc.name, func(t *testing.T) {
			r := &recording{Pool: p}
			s, err := sesh.New(r, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := r.take(); n != 0 {
				t.Fatalf("New took %d connections", n)
			}
			tok := mustSet(t, s, "alice")
			s.Get(ctx, tok) // loads the script, if any
			r.take()
			for range 2 {
				if got, err := s.Get(ctx, tok); got != "alice" || err != nil {
					t.Fatalf("Get = %q, %v", got, err)
				}
				if n, cmds := r.take(); n != 1 || !slices.Equal(cmds, tc.want) {
					t.Fatalf("Get took %d connections for %q; want 1 for %q", n, cmds, tc.want)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if n, _ := r.take(); n != 0 {
				t.Fatalf("Close took %d connections", n)
			}
		})
	}
}

func TestCacheCluster(t *testing.T) {
	addrs := os.Getenv("SESH_CLUSTER_ADDRS")
	if addrs == "" {
		t.Skip("SESH_CLUSTER_ADDRS is not set; .ci/run sets it")
	}
	addr, _, _ := strings.Cut(addrs, ",")
	p := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	defer p.Close()
	s, err := sesh.New(p, sesh.Options{CacheSize: 1})
	if err == nil {
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "Redis Cluster") || !strings.HasPrefix(err.Error(), "sesh: new: CacheSize") {
		t.Fatalf("New on a cluster node = %v; want a CacheSize error naming Redis Cluster", err)
	}
}

// TestCacheEnds checks that a token ended through another Store, with its
// own pool, stops resolving in the cache.
func TestCacheEnds(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	const bound = 2 * time.Second // CacheMaxStale and a margin
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    sesh.Options
		end  func(t *testing.T, b *sesh.Store, w *watched, prefix, tok string)
	}{
		{"Die", sesh.Options{}, func(t *testing.T, b *sesh.Store, _ *watched, _, tok string) {
			if err := b.Die(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}},
		{"DieAll", sesh.Options{TrackUsers: true}, func(t *testing.T, b *sesh.Store, _ *watched, _, _ string) {
			if n, err := b.DieAll(ctx, "alice"); n != 1 || err != nil {
				t.Fatalf("DieAll = %d, %v", n, err)
			}
		}},
		{"Rotate", sesh.Options{TrackUsers: true}, func(t *testing.T, b *sesh.Store, _ *watched, _, tok string) {
			if _, err := b.Rotate(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}},
		{"Die under MaxAge", sesh.Options{TTL: time.Minute, MaxAge: time.Hour}, func(t *testing.T, b *sesh.Store, _ *watched, _, tok string) {
			if err := b.Die(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}},
		{"DEL of the session's key by hand", sesh.Options{TTL: time.Minute, MaxAge: time.Hour, Sliding: true}, func(t *testing.T, _ *sesh.Store, w *watched, prefix, tok string) {
			if _, err := do(t, w, "DEL", key(t, prefix, tok)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name+" through another Store ends a cached token", func(t *testing.T) {
			t.Parallel()
			w := watch(t, url)
			tc.o.Prefix = cachePrefix()
			b := newCached(t, watch(t, url).Pool, tc.o)
			tc.o.CacheSize = 100
			a := newCached(t, w, tc.o)
			tok := mustSet(t, b, "alice")
			cached(t, a, w, tok, "alice")
			tc.end(t, b, w, tc.o.Prefix, tok)
			gone(t, a, tok, "alice", bound)
		})
	}
	t.Run("an overwrite reaches the cache", func(t *testing.T) {
		t.Parallel()
		w := watch(t, url)
		o := sesh.Options{Prefix: cachePrefix(), CacheSize: 100}
		a := newCached(t, w, o)
		tok := mustSet(t, a, "alice")
		cached(t, a, w, tok, "alice")
		if _, err := do(t, w, "HSET", key(t, o.Prefix, tok), "u", "mallory"); err != nil {
			t.Fatal(err)
		}
		for start := time.Now(); ; {
			got, err := a.Get(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if got == "mallory" {
				break
			}
			if time.Since(start) > bound {
				t.Fatalf("Get still returns %q after %v", got, bound)
			}
		}
		cached(t, a, w, tok, "mallory")
	})
	t.Run("the Store's own Die is seen at once", func(t *testing.T) {
		t.Parallel()
		w := watch(t, url)
		a := newCached(t, w, sesh.Options{Prefix: cachePrefix(), CacheSize: 100})
		for range 50 {
			tok := mustSet(t, a, "alice")
			cached(t, a, w, tok, "alice")
			if err := a.Die(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if got, err := a.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("Get right after Die = %q, %v", got, err)
			}
		}
	})
}

// TestCacheExpiry checks that a cached token ends with its key, whether or
// not Redis has sent the invalidation of its expiry yet.
func TestCacheExpiry(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	const life = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		o    sesh.Options
	}{
		{"TTL", sesh.Options{TTL: life}},
		{"MaxAge", sesh.Options{TTL: time.Hour, MaxAge: life}},
		{"TTL under MaxAge", sesh.Options{TTL: life, MaxAge: time.Hour}},
		{"MaxAge under a sliding TTL", sesh.Options{TTL: 200 * time.Millisecond, MaxAge: life, Sliding: true}},
	} {
		t.Run("a cached token ends with its "+tc.name, func(t *testing.T) {
			t.Parallel()
			w := watch(t, url)
			tc.o.Prefix, tc.o.CacheSize, tc.o.CacheMaxStale = cachePrefix(), 100, time.Hour
			a := newCached(t, w, tc.o)
			start := time.Now()
			tok := mustSet(t, a, "alice")
			set := time.Now()
			// Redis ran the SET between start and set: the key lives past
			// start + life, and not past set + life.
			cached(t, a, w, tok, "alice")
			for {
				got, err := a.Get(context.Background(), tok)
				if time.Since(start) >= life {
					break
				}
				if err != nil || got != "alice" {
					t.Fatalf("Get %v after Set = %q, %v", time.Since(start), got, err)
				}
				time.Sleep(time.Millisecond)
			}
			// Redis keeps a key through the millisecond it expires in.
			time.Sleep(time.Until(set.Add(life + 2*time.Millisecond)))
			if got, err := a.Get(context.Background(), tok); !errors.Is(err, sesh.ErrNotFound) {
				t.Fatalf("Get %v after Set = %q, %v; want ErrNotFound", time.Since(set), got, err)
			}
		})
	}
}

// TestCachePropagation measures how long a token ended by one Store keeps
// resolving in another one's cache. It reports the delay and fails only when
// a trial does not converge within CacheMaxStale and a margin. It polls
// without pause, but yields between Gets: a goroutine that never blocks can
// hold the one that reads invalidations off its processor for a preemption
// slice (10ms), which a server doing I/O never does.
func TestCachePropagation(t *testing.T) {
	url := realURL(t)
	const trials = 1000
	wa, wb := watch(t, url), watch(t, url)
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute}
	b := newCached(t, wb, o)
	o.CacheSize = 1000
	a := newCached(t, wa, o)
	ctx := context.Background()
	var seen, ended []time.Duration // until a Get went to Redis; until it said ErrNotFound
	immediate := 0
	for range trials {
		tok := mustSet(t, b, "alice")
		cached(t, a, wa, tok, "alice")
		if err := b.Die(ctx, tok); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for polls := 0; ; polls++ {
			asked := time.Since(start)
			before := wa.reads.Load()
			got, err := a.Get(ctx, tok)
			d := time.Since(start)
			if wa.reads.Load() != before && len(seen) < len(ended)+1 {
				seen = append(seen, asked)
			}
			if errors.Is(err, sesh.ErrNotFound) {
				ended = append(ended, d)
				if polls == 0 {
					immediate++
				}
				break
			}
			if err != nil || got != "alice" {
				t.Fatalf("Get = %q, %v", got, err)
			}
			if d > time.Second+time.Second {
				t.Fatalf("the token still resolves %v after Die", d)
			}
			runtime.Gosched()
		}
	}
	// For scale: the last Get of a trial is one round trip, as long as this.
	var trip []time.Duration
	tok := mustSet(t, b, "alice")
	for range trials {
		start := time.Now()
		if _, err := b.Get(ctx, tok); err != nil {
			t.Fatal(err)
		}
		trip = append(trip, time.Since(start))
	}
	q := func(ds []time.Duration, p float64) time.Duration {
		slices.Sort(ds)
		return ds[int(p*float64(len(ds)-1))]
	}
	t.Logf("%d trials; %d had ErrNotFound on the first Get after Die", trials, immediate)
	t.Logf("from Die returning until a Get first asked Redis: p50 %v, p99 %v, max %v", q(seen, .5), q(seen, .99), q(seen, 1))
	t.Logf("from Die returning until Get returned ErrNotFound: p50 %v, p99 %v, max %v", q(ended, .5), q(ended, .99), q(ended, 1))
	t.Logf("an uncached Get, for scale: p50 %v, p99 %v, max %v", q(trip, .5), q(trip, .99), q(trip, 1))
}

// TestCacheFillRace checks that a fill whose GET was answered before a write,
// and whose reply came after that write's invalidation, is never cached:
// once the invalidations have arrived, every Get returns the last value. A
// stale fill that got in would stay until the next write, so the test waits
// well beyond an invalidation's delay; its readers pause between Gets, since
// goroutines that never block delay the one that reads invalidations.
func TestCacheFillRace(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	const (
		rounds  = 60
		readers = 8
		settle  = 50 * time.Millisecond
	)
	w := watch(t, url)
	o := sesh.Options{Prefix: cachePrefix(), CacheSize: 100, CacheMaxStale: time.Hour}
	a := newCached(t, w, o)
	tok := mustSet(t, a, "v0")
	k := key(t, o.Prefix, tok)
	var want atomic.Pointer[string] // nil while values change
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				v := want.Load()
				got, err := a.Get(context.Background(), tok)
				if err != nil {
					errs <- err.Error()
					return
				}
				if v != nil && want.Load() == v && got != *v {
					errs <- fmt.Sprintf("Get = %q %v after the last write of %q", got, settle, *v)
					return
				}
				time.Sleep(20 * time.Microsecond)
			}
		}()
	}
	for i := range rounds {
		want.Store(nil)
		// Two writes close together: fills sent after the first one's
		// invalidation read a value the second one invalidates.
		for j := range 2 {
			if _, err := do(t, w, "SET", k, fmt.Sprintf("v%d", 2*i+j+1), "KEEPTTL"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(mrand.IntN(200)) * time.Microsecond)
		}
		time.Sleep(settle)
		last := fmt.Sprintf("v%d", 2*i+2)
		want.Store(&last)
		time.Sleep(5 * time.Millisecond)
		if len(errs) > 0 {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestCacheKill kills the tracking connection: the cache is dropped and
// bypassed while tracking is down, then serves again.
func TestCacheKill(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	ctx := context.Background()
	w := watch(t, url)
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute}
	b := newCached(t, watch(t, url).Pool, o)
	o.CacheSize = 100
	a := newCached(t, w, o)
	tok := mustSet(t, b, "alice")
	cached(t, a, w, tok, "alice")

	id := tracker(t, w, -1)
	w.refuse.Store(true) // keep tracking down once killed
	if n, err := redis.Int(do(t, w, "CLIENT", "KILL", "ID", id)); n != 1 || err != nil {
		t.Fatalf("CLIENT KILL = %d, %v", n, err)
	}
	// Within CacheMaxStale, and in practice at once, Gets go to Redis.
	for start := time.Now(); ; {
		before := w.reads.Load()
		if got, err := a.Get(ctx, tok); got != "alice" || err != nil {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if w.reads.Load() != before {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("the cache still serves 2s after its connection was killed")
		}
	}
	for range 3 {
		before := w.reads.Load()
		if got, err := a.Get(ctx, tok); got != "alice" || err != nil {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if w.reads.Load() == before {
			t.Fatal("Get was served from memory while tracking is down")
		}
	}
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
		t.Fatalf("Get after Die while tracking is down = %q, %v; want ErrNotFound at once", got, err)
	}

	w.refuse.Store(false)
	if next := tracker(t, w, id); next == id {
		t.Fatal("the killed connection is back")
	}
	tok = mustSet(t, b, "bob")
	cached(t, a, w, tok, "bob")
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	gone(t, a, tok, "bob", 2*time.Second)
}

// server is a redis-server of the test's own, for a test that restarts it.
type server struct {
	t    *testing.T
	port string
	cmd  *exec.Cmd
	dir  string
}

func startServer(t *testing.T) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	s := &server{t: t, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	return s
}

func (s *server) url() string { return "redis://127.0.0.1:" + s.port }

func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", s.port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if c, err := redis.Dial("tcp", "127.0.0.1:"+s.port); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return
			}
		}
	}
	s.t.Fatalf("redis-server on %s did not answer", s.port)
}

func (s *server) shutdown() {
	s.t.Helper()
	c, err := redis.Dial("tcp", "127.0.0.1:"+s.port)
	if err != nil {
		s.t.Fatal(err)
	}
	c.Do("SHUTDOWN", "NOSAVE")
	c.Close()
	s.cmd.Wait()
	s.cmd = nil
}

// TestCacheRestart restarts Redis without persistence under a cached token:
// the token is gone, and the cache must say so.
func TestCacheRestart(t *testing.T) {
	realURL(t)
	t.Parallel()
	ctx := context.Background()
	srv := startServer(t)
	w := watch(t, srv.url())
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute}
	b := newCached(t, watch(t, srv.url()).Pool, o)
	o.CacheSize = 100
	a := newCached(t, w, o)
	tok := mustSet(t, b, "alice")
	cached(t, a, w, tok, "alice")

	srv.shutdown()
	// Once a Get has failed, none may return the token again.
	failed := false
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		got, err := a.Get(ctx, tok)
		switch {
		case err != nil:
			failed = true
		case failed:
			t.Fatalf("Get = %q after a Get failed on the stopped server", got)
		}
	}
	if !failed {
		t.Fatal("Get never failed while Redis was down")
	}
	srv.start()
	for start := time.Now(); ; {
		got, err := a.Get(ctx, tok)
		if errors.Is(err, sesh.ErrNotFound) {
			break
		}
		if err == nil {
			t.Fatalf("Get after the restart = %q; want ErrNotFound", got)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Get after the restart: %v", err)
		}
	}
	// Tracking comes back on the new server.
	tracker(t, w, -1)
	for start := time.Now(); ; { // b's idle connections died with the server
		var err error
		if tok, err = b.Set(ctx, "bob"); err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Set after the restart: %v", err)
		}
	}
	cached(t, a, w, tok, "bob")
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	gone(t, a, tok, "bob", 2*time.Second)
}

// switching is a Pool that can be pointed at another server, as a Sentinel
// pool is after a failover.
type switching struct{ to atomic.Pointer[watched] }

func (s *switching) GetContext(ctx context.Context) (redis.Conn, error) {
	return s.to.Load().GetContext(ctx)
}

// TestCacheFailover points the Store's Pool at another server while the
// tracking connection stays, alive, on the first one: the tokens ended on the
// new server must not be served from memory, and tracking moves over.
func TestCacheFailover(t *testing.T) {
	realURL(t)
	t.Parallel()
	const maxStale = 100 * time.Millisecond
	ctx := context.Background()
	old, next := watch(t, startServer(t).url()), watch(t, startServer(t).url())
	p := &switching{}
	p.to.Store(old)
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute}
	a := newCached(t, p, sesh.Options{Prefix: o.Prefix, TTL: o.TTL, CacheSize: 100, CacheMaxStale: maxStale})
	tok := mustSet(t, a, "alice")
	cached(t, a, old, tok, "alice")
	// The new master has the token, as a replica would, and ends it.
	k := key(t, o.Prefix, tok)
	if _, err := do(t, next, "SET", k, "alice", "PX", time.Minute.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	p.to.Store(next)
	b := newCached(t, next, o)
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	d := gone(t, a, tok, "alice", maxStale+time.Second)
	t.Logf("a token ended on the new master stopped resolving after %v", d)
	// Tracking moves to the new master, and the cache serves again.
	tracker(t, next, -1)
	tok = mustSet(t, b, "bob")
	cached(t, a, next, tok, "bob")
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	gone(t, a, tok, "bob", 2*time.Second)
}

// TestCacheSliding checks that cached Gets keep a sliding token alive, with
// few round trips, and that Liv still works.
func TestCacheSliding(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	const (
		ttl      = 400 * time.Millisecond
		maxStale = 100 * time.Millisecond
	)
	ctx := context.Background()
	t.Run("sliding Gets keep a token alive, at least TTL-CacheMaxStale ahead", func(t *testing.T) {
		t.Parallel()
		w := watch(t, url)
		o := sesh.Options{Prefix: cachePrefix(), TTL: ttl, Sliding: true, CacheSize: 100, CacheMaxStale: maxStale}
		a := newCached(t, w, o)
		tok := mustSet(t, a, "alice")
		k := key(t, o.Prefix, tok)
		gets := 0
		r0 := w.reads.Load()
		for start := time.Now(); time.Since(start) < 3*ttl; time.Sleep(5 * time.Millisecond) {
			if got, err := a.Get(ctx, tok); got != "alice" || err != nil {
				t.Fatalf("Get = %q, %v", got, err)
			}
			got := time.Now()
			gets++
			ms, err := redis.Int64(do(t, w, "PTTL", k))
			if left := time.Duration(ms)*time.Millisecond + time.Since(got); err != nil || left < ttl-maxStale-5*time.Millisecond {
				t.Fatalf("%v after a Get, PTTL = %dms, %v; want at least %v", time.Since(got), ms, err, ttl-maxStale)
			}
		}
		reads := w.reads.Load() - r0
		t.Logf("%d Gets, %d reads in Redis", gets, reads)
		if reads > int64(gets)/2 {
			t.Fatalf("%d Gets took %d reads in Redis", gets, reads)
		}
		time.Sleep(ttl + 50*time.Millisecond)
		if got, err := a.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
			t.Fatalf("Get after TTL without Gets = %q, %v", got, err)
		}
	})
	t.Run("sliding Gets stop at MaxAge", func(t *testing.T) {
		t.Parallel()
		const maxAge = 3 * ttl
		w := watch(t, url)
		o := sesh.Options{Prefix: cachePrefix(), TTL: ttl, MaxAge: maxAge, Sliding: true, CacheSize: 100, CacheMaxStale: maxStale}
		a := newCached(t, w, o)
		start := time.Now()
		tok := mustSet(t, a, "alice")
		set := time.Now()
		for {
			asked := time.Now()
			got, err := a.Get(ctx, tok)
			if errors.Is(err, sesh.ErrNotFound) {
				break
			}
			if err != nil || got != "alice" {
				t.Fatalf("Get = %q, %v", got, err)
			}
			// Redis keeps a key through the millisecond it expires in.
			if d := asked.Sub(set); d > maxAge+2*time.Millisecond {
				t.Fatalf("Get asked %v after Set = %q", d, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if d := time.Since(start); d < maxAge-20*time.Millisecond {
			t.Fatalf("the token ended %v after Set, before MaxAge %v", d, maxAge)
		}
	})
	t.Run("Liv keeps a cached token alive", func(t *testing.T) {
		t.Parallel()
		w := watch(t, url)
		o := sesh.Options{Prefix: cachePrefix(), TTL: ttl, CacheSize: 100, CacheMaxStale: maxStale}
		a := newCached(t, w, o)
		tok := mustSet(t, a, "alice")
		for start := time.Now(); time.Since(start) < 3*ttl; time.Sleep(ttl / 4) {
			if err := a.Liv(ctx, tok); err != nil {
				t.Fatalf("Liv: %v", err)
			}
			for range 3 {
				if got, err := a.Get(ctx, tok); got != "alice" || err != nil {
					t.Fatalf("Get = %q, %v", got, err)
				}
			}
		}
		cached(t, a, w, tok, "alice")
		if err := a.Die(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := a.Liv(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
			t.Fatalf("Liv after Die = %v", err)
		}
	})
}

// TestCacheCrypt checks that Crypt caches plaintext in memory only, and that
// a Store and its Crypt do not mix up their entries.
func TestCacheCrypt(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	ctx := context.Background()
	secret := make([]byte, 32)
	rand.Read(secret)
	w := watch(t, url)
	o := sesh.Options{Prefix: cachePrefix(), TrackUsers: true}
	b, err := sesh.NewCrypt(newCached(t, watch(t, url).Pool, o), secret)
	if err != nil {
		t.Fatal(err)
	}
	o.CacheSize = 100
	plain := newCached(t, w, o)
	a, err := sesh.NewCrypt(plain, secret)
	if err != nil {
		t.Fatal(err)
	}
	const userID = "alice@example.com"
	tok := mustSet(t, b, userID)
	cached(t, a, w, tok, userID)
	// The Store under the Crypt sees the sealed value, cached or not.
	for range 3 {
		got, err := plain.Get(ctx, tok)
		if err != nil || got == userID || strings.Contains(got, userID) {
			t.Fatalf("the plain Store's Get = %q, %v; want the sealed value", got, err)
		}
	}
	cached(t, a, w, tok, userID)
	// Nothing in Redis holds the plaintext.
	keys, err := redis.Strings(do(t, w, "KEYS", o.Prefix+":*"))
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS = %q, %v", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, userID) {
			t.Fatalf("key %q names the user", k)
		}
		if v, err := redis.Bytes(do(t, w, "DUMP", k)); err != nil || bytes.Contains(v, []byte(userID)) {
			t.Fatalf("key %q holds the user ID (%v)", k, err)
		}
	}
	if err := b.Die(ctx, tok); err != nil {
		t.Fatal(err)
	}
	gone(t, a, tok, userID, 2*time.Second)
}

// TestCacheEviction checks that the cache holds at most CacheSize tokens.
func TestCacheEviction(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	const size, n = 64, 400
	ctx := context.Background()
	w := watch(t, url)
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Minute}
	b := newCached(t, watch(t, url).Pool, o)
	o.CacheSize = size
	a := newCached(t, w, o)
	toks := make([]string, n)
	for i := range toks {
		toks[i] = mustSet(t, b, "alice")
	}
	for range 2 {
		for _, tok := range toks {
			if got, err := a.Get(ctx, tok); got != "alice" || err != nil {
				t.Fatalf("Get = %q, %v", got, err)
			}
		}
	}
	served := func(toks []string) (hits int) {
		for _, tok := range toks {
			before := w.reads.Load()
			if got, err := a.Get(ctx, tok); got != "alice" || err != nil {
				t.Fatalf("Get = %q, %v", got, err)
			}
			if w.reads.Load() == before {
				hits++
			}
		}
		return hits
	}
	// Eviction is random: the last tokens filled are mostly there, and a
	// scan that meets each token once finds at most CacheSize of them.
	recent := served(toks[n-size/4:])
	all := served(toks)
	t.Logf("served from a cache of %d: %d of the last %d tokens filled, %d of all %d", size, recent, size/4, all, n)
	if recent == 0 {
		t.Fatal("none of the last tokens filled was served from memory")
	}
	if all > size {
		t.Fatalf("%d tokens served from a cache of %d", all, size)
	}
}

// TestCacheClose checks that Close ends the cache's goroutines and that the
// Store goes on without its cache. It runs alone: it reads every stack.
func TestCacheClose(t *testing.T) {
	url := realURL(t)
	ctx := context.Background()
	w := watch(t, url)
	// Other tests' caches may still be winding down: count, don't look for none.
	before := cacheGoroutines()
	a, err := sesh.New(w, sesh.Options{Prefix: cachePrefix(), CacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	tok := mustSet(t, a, "alice")
	cached(t, a, w, tok, "alice")
	if n := cacheGoroutines(); n <= before {
		t.Fatalf("%d goroutines of caches run, %d before New: none of this cache's runs", n, before)
	}
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	t.Logf("Close took %v", time.Since(start))
	// Close waits for its own goroutines; others' may end meanwhile, never start.
	if n := cacheGoroutines(); n > before {
		t.Fatalf("%d goroutines of caches run after Close, %d before New: one outlived Close", n, before)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	for range 3 {
		before := w.reads.Load()
		if got, err := a.Get(ctx, tok); got != "alice" || err != nil {
			t.Fatalf("Get after Close = %q, %v", got, err)
		}
		if w.reads.Load() == before {
			t.Fatal("Get after Close was served from memory")
		}
	}
	if list, _ := redis.String(do(t, w, "CLIENT", "LIST")); strings.Contains(list, "name=sesh-tracking") {
		for _, line := range strings.Split(list, "\n") {
			var id int64
			fmt.Sscanf(line, "id=%d", &id)
			if strings.Contains(line, "name=sesh-tracking") && w.dialled(id) {
				t.Fatalf("the tracking connection outlived Close: %s", line)
			}
		}
	}
}

// cacheGoroutines counts the goroutines, of any Store, whose stack is in a
// cache's tracker.
func cacheGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("seshkit/sesh/internal/track.(*tracker)")) {
			n++
		}
	}
	return n
}

// BenchmarkCachedGet compares, on SESH_REDIS_URL, a raw redigo GET, an
// uncached Get and a cached Get of the same tokens, and a cached Get with a
// Hook that does nothing, with 1, 16 and 64 goroutines.
func BenchmarkCachedGet(b *testing.B) {
	url := realURL(b)
	ctx := context.Background()
	p, err := sesh.NewPool(url)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	o := sesh.Options{Prefix: cachePrefix(), TTL: time.Hour}
	plain, err := sesh.New(p, o)
	if err != nil {
		b.Fatal(err)
	}
	o.CacheSize = 4096
	withCache, err := sesh.New(p, o)
	if err != nil {
		b.Fatal(err)
	}
	defer withCache.Close()
	o.Hook = func(ctx context.Context, op string) (context.Context, func(sesh.Result)) { return ctx, nil }
	hooked, err := sesh.New(p, o)
	if err != nil {
		b.Fatal(err)
	}
	defer hooked.Close()
	toks := make([]string, 1024)
	keys := make([]string, len(toks))
	for i := range toks {
		toks[i] = mustSet(b, plain, "alice")
		keys[i] = key(b, o.Prefix, toks[i])
		withCache.Get(ctx, toks[i])
		withCache.Get(ctx, toks[i])
		hooked.Get(ctx, toks[i])
		hooked.Get(ctx, toks[i])
	}
	defer func() {
		for _, tok := range toks {
			plain.Die(ctx, tok)
		}
	}()
	cases := []struct {
		name string
		get  func(i int) error
	}{
		{"redigo", func(i int) error {
			c := p.Get()
			defer c.Close()
			_, err := redis.String(c.Do("HGET", keys[i%len(keys)], "u"))
			return err
		}},
		{"uncached", func(i int) error { _, err := plain.Get(ctx, toks[i%len(toks)]); return err }},
		{"cached", func(i int) error { _, err := withCache.Get(ctx, toks[i%len(toks)]); return err }},
		{"cached+hook", func(i int) error { _, err := hooked.Get(ctx, toks[i%len(toks)]); return err }},
	}
	for _, conc := range []int{1, 16, 64} {
		for _, tc := range cases {
			b.Run(fmt.Sprintf("conc=%d/%s", conc, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				if conc == 1 {
					for i := 0; b.Loop(); i++ {
						if err := tc.get(i); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for i := mrand.Int(); pb.Next(); i++ {
						if err := tc.get(i); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// TestCacheSlidingRefreshFails checks that when a sliding cached Get is due
// to restart the TTL in Redis and that write fails, the Get reports the
// failure instead of answering from memory as if the TTL had restarted.
func TestCacheSlidingRefreshFails(t *testing.T) {
	url := realURL(t)
	t.Parallel()
	ctx := context.Background()
	w := watch(t, url)
	p := cachePrefix()
	s := newCached(t, w, sesh.Options{Prefix: p, Sliding: true, TTL: 2 * time.Second, CacheSize: 100, CacheMaxStale: 100 * time.Millisecond})
	tok := mustSet(t, s, "alice")
	cached(t, s, w, tok, "alice")
	// The TTL has run down by more than the slack (100ms), and is far from
	// its end: the next Get must restart it in Redis.
	time.Sleep(300 * time.Millisecond)
	w.noEval.Store(true)
	if got, err := s.Get(ctx, tok); !errors.Is(err, errRefusedEval) || got != "" {
		t.Fatalf("Get whose TTL restart failed = %q, %v; want the failure", got, err)
	}
	w.noEval.Store(false)
	if got, err := s.Get(ctx, tok); got != "alice" || err != nil {
		t.Fatalf("Get after the failure = %q, %v", got, err)
	}
	if ms, _ := redis.Int64(do(t, w, "PTTL", key(t, p, tok))); ms < 1500 {
		t.Fatalf("after a successful restart the token lives %dms; want about 2000", ms)
	}
}
