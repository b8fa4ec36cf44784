package sesh_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// privateStore starts a private redis-server and returns a Store on it with
// o, the Store's Pool and a connection of the test's own to that server.
func privateStore(t *testing.T, o sesh.Options) (*sesh.Store, *redis.Pool, redis.Conn) {
	t.Helper()
	realURL(t) // the real-server suites start their own servers
	srv := startServer(t)
	p, err := sesh.NewPool(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	s, err := sesh.New(p, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	admin, err := redis.Dial("tcp", "127.0.0.1:"+srv.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return s, p, admin
}

// TestBatchRouting is the reply-routing stress test: many goroutines each
// Set a token for a user ID of their own and Get it back, while connections
// are killed at random, shared ones included. Every answer must be the
// caller's own user ID or an error, never another caller's.
func TestBatchRouting(t *testing.T) {
	t.Parallel()
	for _, o := range []sesh.Options{{}, {MaxAge: time.Hour}, {TrackUsers: true, Sliding: true}} {
		t.Run(fmt.Sprintf("MaxAge=%v,TrackUsers=%v", o.MaxAge, o.TrackUsers), func(t *testing.T) {
			t.Parallel()
			s, _, admin := privateStore(t, o)
			routingStress(t, s, func() bool { return killOne(t, admin, "") })
		})
	}
}

// killOne kills one client connection of the server behind admin, at
// random, among those named name ("": any but admin's). It reports whether
// it killed one.
func killOne(t *testing.T, admin redis.Conn, name string) bool {
	list, err := redis.String(admin.Do("CLIENT", "LIST", "TYPE", "normal"))
	if err != nil {
		t.Error(err)
		return false
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
		if name == "" && !strings.Contains(line, " cmd=client") || name != "" && strings.Contains(line, " name="+name+" ") {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return false
	}
	_, err = admin.Do("CLIENT", "KILL", "ID", ids[rand.IntN(len(ids))])
	return err == nil
}

// routingStress runs the reply-routing stress test on s, calling kill at
// random intervals of up to 3ms.
func routingStress(t *testing.T, s *sesh.Store, kill func() bool) {
	ctx := context.Background()
	const workers, rounds = 64, 300
	var wrong, failed, ok atomic.Int64
	stop := make(chan struct{})
	var kills int
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(rand.IntN(3000)) * time.Microsecond):
			}
			if kill() {
				kills++
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("user-%d", w)
			for range rounds {
				tok, err := s.Set(ctx, user)
				if err != nil {
					failed.Add(1)
					continue
				}
				got, err := s.Get(ctx, tok)
				switch {
				case err != nil:
					failed.Add(1)
				case got != user:
					wrong.Add(1)
					t.Errorf("worker %d: Get = %q; want %q", w, got, user)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-killed
	st := s.Stats().Batches
	writes, calls := st.Batches, st.Calls
	t.Logf("%d right, %d errors, %d wrong; %d connections killed; %d calls in %d shared writes", ok.Load(), failed.Load(), wrong.Load(), kills, calls, writes)
	if writes == 0 {
		t.Error("no operation went through a shared connection")
	}
	if kills == 0 {
		t.Error("no connection was killed")
	}
	if ok.Load() == 0 {
		t.Error("no Get succeeded")
	}
	// Once the killing stops, all is well again: a connection that died
	// idle, in the Pool or as a lane, fails the one operation that finds it
	// dead, and lanes are replaced. (On the Cluster, another package's
	// failover test may be under way: the bound is its recovery bound.)
	var again int
	start := time.Now()
	for w := range workers {
		user := fmt.Sprintf("after-%d", w)
		for {
			tok, err := s.Set(ctx, user)
			if err == nil {
				got, gerr := s.Get(ctx, tok)
				if gerr == nil && got != user {
					t.Fatalf("Get after the chaos = %q; want %q", got, user)
				}
				err = gerr
			}
			if err == nil {
				break
			}
			again++
			if time.Since(start) > 15*time.Second {
				t.Fatalf("after the chaos, still failing after 15s (%d failures): %v", again, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("after the chaos: %d failures before every worker's Set and Get succeeded", again)
}

// TestBatchContext checks that a caller whose context ends while its call
// waits on a shared connection gets its error at once, and that the
// connection stays right for everyone else: each gets its own reply.
func TestBatchContext(t *testing.T) {
	t.Parallel()
	s, _, admin := privateStore(t, sesh.Options{})
	ctx := context.Background()
	const users = 32
	toks := make([]string, users)
	for i := range toks {
		var err error
		if toks[i], err = s.Set(ctx, fmt.Sprint("user-", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Keep operations in flight, so that the Store shares connections.
	load := func(n int) (stop func() (gets int)) {
		var wg sync.WaitGroup
		done := make(chan struct{})
		var gets atomic.Int64
		for w := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					u := i % users
					got, err := s.Get(ctx, toks[u])
					if err != nil || got != fmt.Sprint("user-", u) {
						t.Errorf("Get = %q, %v; want user-%d", got, err, u)
						return
					}
					gets.Add(1)
				}
			}()
		}
		return func() int { close(done); wg.Wait(); return int(gets.Load()) }
	}
	stop := load(8)
	time.Sleep(50 * time.Millisecond)
	// Redis holds every reply for a while: calls pile up on the lanes.
	if _, err := admin.Do("CLIENT", "PAUSE", 300, "ALL"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			_, err := s.Get(cctx, toks[i])
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Get with a 20ms deadline while Redis is paused = %v; want context.DeadlineExceeded", err)
			}
			if time.Now().After(must(cctx.Deadline()).Add(100 * time.Millisecond)) {
				t.Errorf("Get returned more than 100ms after its deadline, while Redis was paused for 300ms")
			}
		}()
	}
	wg.Wait()
	time.Sleep(400 * time.Millisecond) // the pause ends; the abandoned replies arrive
	if gets := stop(); gets == 0 {
		t.Error("no Get succeeded")
	}
	st := s.Stats().Batches
	writes, calls := st.Batches, st.Calls
	if writes == 0 {
		t.Error("no operation went through a shared connection")
	}
	t.Logf("%d calls in %d shared writes", calls, writes)
}

func must[T any](v T, _ bool) T { return v }

// TestBatchWaitAlone checks that an operation that waits for replicas does
// not share a connection: with Replicas 1 and no replica, each Die blocks
// in WAIT for ReplicaTimeout, while Gets of the same Store go on.
func TestBatchWaitAlone(t *testing.T) {
	t.Parallel()
	const replicaTimeout = 300 * time.Millisecond
	s, _, _ := privateStore(t, sesh.Options{Replicas: 1, ReplicaTimeout: replicaTimeout})
	ctx := context.Background()
	tok, err := s.Set(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	var lat []time.Duration
	var mu sync.Mutex
	var dying atomic.Bool
	var during atomic.Int64 // Gets that began and ended while a Die waited
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				before := dying.Load()
				start := time.Now()
				got, err := s.Get(ctx, tok)
				d := time.Since(start)
				if err != nil || got != "reader" {
					t.Errorf("Get = %q, %v", got, err)
					return
				}
				if before && dying.Load() {
					during.Add(1)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	quiet := func() []time.Duration {
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		l := slices.Clone(lat)
		lat = lat[:0]
		return l
	}
	base := quiet()
	for range 3 {
		dead, err := s.Set(ctx, "dead")
		if err != nil {
			t.Fatal(err)
		}
		dying.Store(true)
		start := time.Now()
		err = s.Die(ctx, dead)
		took := time.Since(start)
		dying.Store(false)
		if !errors.Is(err, sesh.ErrNotReplicated) {
			t.Errorf("Die with no replica = %v; want ErrNotReplicated", err)
		}
		if took < replicaTimeout {
			t.Errorf("Die returned after %v; WAIT should have held it for %v", took, replicaTimeout)
		}
	}
	mu.Lock()
	withDies := slices.Clone(lat)
	mu.Unlock()
	close(done)
	wg.Wait()
	if during.Load() < 10 {
		t.Errorf("only %d Gets ran from start to end while a Die waited for a replica; the Gets were held behind WAIT", during.Load())
	}
	t.Logf("Get p99: %v without Dies, %v while Dies wait %v each; %d Gets ran while a Die waited", p99(base), p99(withDies), replicaTimeout, during.Load())
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)*99/100]
}

// TestBatchClose checks that Close ends the goroutines of auto-pipelining,
// is idempotent, and that the Store still works after it.
func TestBatchClose(t *testing.T) {
	realURL(t)
	srv := startServer(t)
	p, err := sesh.NewPool(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	before := runtime.NumGoroutine()
	s, err := sesh.New(p, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				tok, err := s.Set(ctx, "u")
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Get(ctx, tok); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Stats().Batches.Batches == 0 {
		t.Fatal("no operation went through a shared connection")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close has waited for the lanes' goroutines; give the runtime a
	// moment to reap the test's own.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before New:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	tok, err := s.Set(ctx, "after")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, tok); err != nil || got != "after" {
		t.Fatalf("Get after Close = %q, %v", got, err)
	}
}
