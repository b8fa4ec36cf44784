package storetest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// errInjected is the failure a faulty connection reports.
var errInjected = errors.New("injected: connection reset")

// faulty is a Pool whose connections delay some commands, and fail others:
// some before Redis sees them, some after Redis has run them and before
// the reply arrives, the worst case for a client.
type faulty struct {
	sesh.Pool
	mu  sync.Mutex
	rnd *rand.Rand
}

type faultyConn struct {
	redis.Conn
	f *faulty
}

func (f *faulty) GetContext(ctx context.Context) (redis.Conn, error) {
	c, err := f.Pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	return faultyConn{c, f}, nil
}

// roll draws a number in [0, n).
func (f *faulty) roll(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.IntN(n)
}

func (c faultyConn) Send(cmd string, args ...any) error {
	if c.f.roll(200) == 0 {
		return errInjected
	}
	return c.Conn.Send(cmd, args...)
}

func (c faultyConn) Do(cmd string, args ...any) (any, error) {
	switch c.f.roll(100) {
	case 0:
		return nil, errInjected // lost on the way out; nothing sent
	case 1:
		c.Conn.Do(cmd, args...)
		return nil, errInjected // Redis ran it; the reply is lost
	case 2, 3, 4, 5:
		time.Sleep(time.Duration(c.f.roll(3000)) * time.Microsecond)
	}
	return c.Conn.Do(cmd, args...)
}

// issued is a token as the history records it.
type issued struct {
	tok, user string
	returned  time.Time // when the Set or Rotate that issued it returned
	chain     time.Time // when the Set that began its chain of rotations returned
}

// history is what the workers of testChaos saw: every token issued, and
// every ending call that reported success, with when it began or returned.
type history struct {
	mu      sync.Mutex
	tokens  []issued
	dieAlls []struct {
		user  string
		began time.Time
	}
	ended []string // tokens a successful Die or Rotate ended
}

// testChaos drives Set, Get, Liv, Rotate, Die, DieAll and Count from many
// goroutines through a Pool that delays and fails commands, with contexts
// that time out mid-call, and then checks the promises on the history:
// Get never returns another user's ID, no token outlives a successful Die,
// Rotate or DieAll that ended it, none outlives its MaxAge deadline, no
// DieAll lock outlives its bound, and no goroutine is left behind.
func testChaos(t *testing.T, b Backend) {
	ctx := context.Background()
	p := prefix(t)
	const maxAge = 2 * time.Second
	o := sesh.Options{Prefix: p, TrackUsers: true, TTL: sesh.Forever, MaxAge: maxAge}
	clean := newStore(t, b, o)
	f := &faulty{Pool: b.Pool, rnd: rand.New(rand.NewPCG(1, 2))}
	o.CacheSize = wrappedCacheSize(b)
	s, err := sesh.New(f, o)
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"ann", "bob", "cat", "dan"}
	var h history
	start := time.Now()
	const run = time.Second
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []issued
			for time.Since(start) < run {
				octx, cancel := ctx, context.CancelFunc(func() {})
				if rnd.IntN(5) == 0 {
					octx, cancel = context.WithTimeout(ctx, time.Duration(rnd.IntN(3000))*time.Microsecond)
				}
				user := users[rnd.IntN(len(users))]
				var pick issued
				if len(mine) > 0 {
					pick = mine[rnd.IntN(len(mine))]
				}
				switch op := rnd.IntN(20); {
				case op < 4 || pick.tok == "":
					if tok, err := s.Set(octx, user); err == nil {
						now := time.Now()
						mine = append(mine, issued{tok, user, now, now})
					}
				case op < 12:
					if got, err := s.Get(octx, pick.tok); err == nil && got != pick.user {
						t.Errorf("Get of %s's token = %q", pick.user, got)
					}
				case op < 14:
					s.Liv(octx, pick.tok)
				case op < 16:
					if tok, err := s.Rotate(octx, pick.tok); err == nil {
						mine = append(mine, issued{tok, pick.user, time.Now(), pick.chain})
						h.mu.Lock()
						h.ended = append(h.ended, pick.tok)
						h.mu.Unlock()
					}
				case op < 17:
					if s.Die(octx, pick.tok) == nil {
						h.mu.Lock()
						h.ended = append(h.ended, pick.tok)
						h.mu.Unlock()
					}
				case op < 18:
					began := time.Now()
					if _, err := s.DieAll(octx, user); err == nil {
						h.mu.Lock()
						h.dieAlls = append(h.dieAlls, struct {
							user  string
							began time.Time
						}{user, began})
						h.mu.Unlock()
					}
				default:
					s.Count(octx, user)
				}
				cancel()
			}
			h.mu.Lock()
			h.tokens = append(h.tokens, mine...)
			h.mu.Unlock()
		}()
	}
	wg.Wait()
	s.Close()
	t.Logf("%d tokens issued, %d ended by Die or Rotate, %d DieAll calls succeeded", len(h.tokens), len(h.ended), len(h.dieAlls))

	live := func(tok string) bool {
		_, err := clean.Get(ctx, tok)
		if err != nil && !errors.Is(err, sesh.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, tok := range h.ended {
		if live(tok) {
			t.Errorf("a token resolves after a Die or Rotate that ended it returned")
		}
	}
	// The last successful DieAll of each user to begin.
	lastDieAll := map[string]time.Time{}
	for _, d := range h.dieAlls {
		if d.began.After(lastDieAll[d.user]) {
			lastDieAll[d.user] = d.began
		}
	}
	for _, tk := range h.tokens {
		if began, ok := lastDieAll[tk.user]; ok && tk.returned.Before(began) && live(tk.tok) {
			t.Errorf("a token of %s issued %v before a successful DieAll began resolves after it", tk.user, began.Sub(tk.returned))
		}
	}
	// No lock outlives its bound, on the server's clock.
	now := serverMS(t, b)
	for _, u := range users {
		locks, err := redis.Strings(do(t, b, "ZRANGEBYSCORE", p+":u:"+u, "-inf", "(0", "WITHSCORES"), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(locks); i += 2 {
			score, err := strconv.ParseInt(locks[i], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if left := -score - now; left > (10 * time.Second).Milliseconds() {
				t.Errorf("a DieAll lock of %s lives %dms more, past its 10s bound", u, left)
			}
		}
	}
	// No goroutine of the faulty Pool's connections is left, once the
	// commands they were abandoned in have returned.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n := stuck()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still run in the faulty Pool's connections", n)
		}
	}
	if b.Serial {
		return // keys expire on miniredis's clock, which Advance moves
	}
	// MaxAge: the chains begun in the first half of the run are all over
	// at their deadline, though later ones may live on.
	half := start.Add(run / 2)
	time.Sleep(time.Until(half.Add(maxAge + 5*time.Millisecond)))
	checked := 0
	for _, tk := range h.tokens {
		if tk.chain.Before(half) {
			checked++
			if live(tk.tok) {
				t.Errorf("a token resolves %v after its chain's MaxAge deadline", time.Since(tk.chain.Add(maxAge)))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no chain began in the first half of the run")
	}
	for _, tk := range h.tokens {
		clean.Die(ctx, tk.tok)
	}
}

// stuck counts the goroutines whose stack is in a faultyConn.
func stuck() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("storetest.faultyConn")) {
			n++
		}
	}
	return n
}

// wrappedCacheSize is b.CacheSize for a Store on a Pool that wraps b's. On
// Cluster it is 0: the cache there needs seshcluster's own Pool, which a
// wrapper hides, so the tests that wrap the Pool run without the cache.
func wrappedCacheSize(b Backend) int {
	if _, ok := b.Pool.(interface{ Masters() ([]string, error) }); ok {
		return 0
	}
	return b.CacheSize
}
