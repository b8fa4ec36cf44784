package sesh_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// stall pauses the server behind admin for pause, starting lead after the workers do (before them when
// lead is 0), and meanwhile runs
// workers goroutines that each call op in a loop with a context of
// deadline, until half the pause has passed. It returns once the pause
// is over, with the most calls seen queued on the lanes of s meanwhile.
func stall(t *testing.T, s *sesh.Store, admin redis.Conn, lead, pause, deadline time.Duration, workers int, op func(ctx context.Context, w int)) (maxQueued int) {
	t.Helper()
	if lead == 0 {
		if _, err := admin.Do("CLIENT", "PAUSE", pause.Milliseconds(), "ALL"); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				op(ctx, w)
				cancel()
			}
		}()
	}
	if lead > 0 {
		time.Sleep(lead)
		if _, err := admin.Do("CLIENT", "PAUSE", pause.Milliseconds(), "ALL"); err != nil {
			t.Fatal(err)
		}
	}
	var sampled atomic.Int64
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if n := int64(sesh.Queued(s)); n > sampled.Load() {
				sampled.Store(n)
			}
		}
	}()
	time.Sleep(pause / 2) // the workers have the other half to return
	close(stop)
	wg.Wait()
	<-sampling
	// admin is paused too: its reply comes once the pause is over.
	if _, err := admin.Do("PING"); err != nil {
		t.Fatal(err)
	}
	return int(sampled.Load())
}

// commandsRun returns how many commands the server behind admin ran since
// its stats were reset, not counting admin's own.
func commandsRun(t *testing.T, admin redis.Conn) int {
	t.Helper()
	info, err := redis.String(admin.Do("INFO", "commandstats"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok || name == "config|resetstat" || name == "client|pause" || name == "info" || name == "ping" {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		c, err := strconv.Atoi(calls)
		if err != nil {
			t.Fatalf("INFO commandstats: %q", line)
		}
		n += c
	}
	return n
}

// TestBatchAbandonedCalls checks that a call whose caller gave up before
// it was written never runs: 32 callers loop on Get with a 5ms deadline
// while Redis is paused, and afterwards Redis must have run about as many
// commands for the default Store as for one without auto-pipelining, which
// has nothing queued. The calls queued meanwhile stay bounded by the
// callers.
func TestBatchAbandonedCalls(t *testing.T) {
	t.Parallel()
	const callers, lanes = 32, 2
	run := func(t *testing.T, o sesh.Options) (cmds, queued int) {
		s, _, admin := privateStore(t, o)
		toks := make([]string, callers)
		for i := range toks {
			toks[i] = must2(t)(s.Set(context.Background(), fmt.Sprint("user-", i)))
		}
		if _, err := admin.Do("CONFIG", "RESETSTAT"); err != nil {
			t.Fatal(err)
		}
		queued = stall(t, s, admin, 0, 500*time.Millisecond, 5*time.Millisecond, callers, func(ctx context.Context, w int) {
			// A Store without auto-pipelining may fail to dial instead.
			if _, err := s.Get(ctx, toks[w]); err == nil {
				t.Error("Get while Redis is paused succeeded")
			}
		})
		s.Close() // the lanes read every reply they are owed
		return commandsRun(t, admin), queued
	}
	var alone, shared, queued int
	t.Run("NoPipelining", func(t *testing.T) {
		alone, _ = run(t, sesh.Options{Pipelines: sesh.NoPipelining})
	})
	t.Run("default", func(t *testing.T) {
		shared, queued = run(t, sesh.Options{})
	})
	t.Logf("commands run after the pause: %d without auto-pipelining, %d with; at most %d calls queued", alone, shared, queued)
	// Each lane may have laneBatches batches in flight when the pause
	// starts, each of at most one call per caller.
	if slack := 2 * callers; shared > alone+slack {
		t.Errorf("after the pause Redis ran %d commands for the default Store, %d without auto-pipelining: more than %d apart", shared, alone, slack)
	}
	// Queued counts lane by lane: a caller that moves on from one lane's
	// queue to another's may be counted once on each.
	if queued > lanes*callers {
		t.Errorf("%d calls queued at once for %d callers: abandoned calls stay queued", queued, callers)
	}
}

func must2(t *testing.T) func(string, error) string {
	return func(v string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// orphans returns how many live tokens user has that are not among known:
// written by a Set, Rotate or DieAll whose caller was told it failed. With
// admin, a connection to the one server of s, it reads the token keys of
// prefix; without, it asks Count, which needs TrackUsers.
func orphans(t *testing.T, s *sesh.Store, admin redis.Conn, prefix, user string, known []string) int {
	t.Helper()
	ctx := context.Background()
	if admin == nil {
		n, err := s.Count(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range known {
			if _, err := s.Get(ctx, tok); err == nil {
				n--
			}
		}
		return n
	}
	keys, err := redis.Strings(admin.Do("KEYS", prefix+":{*}"))
	if err != nil {
		t.Fatal(err)
	}
	issued := make(map[string]bool)
	for _, tok := range known {
		k, _ := sesh.TokenKey(s, tok)
		issued[k] = true
	}
	n := 0
	for _, k := range keys {
		if strings.HasSuffix(k, "}") && !issued[k] {
			n++
		}
	}
	return n
}

// cancelCleanupCases are the operations whose cleanup after a cancelled
// round trip must come after it: each runs with a 20ms deadline while
// Redis is paused for pause, and reports the tokens it was given. DieAll's
// pause is shorter than a cleanup's time (250ms), so that every cleanup of
// a lock can run once the pause is over: a lock left behind is one whose
// cleanup ran before it.
var cancelCleanupCases = []struct {
	name  string
	o     sesh.Options
	pause time.Duration
	op    func(ctx context.Context, s *sesh.Store, user string, toks []string) []string
}{
	{"Set", sesh.Options{TrackUsers: true}, 800 * time.Millisecond, func(ctx context.Context, s *sesh.Store, user string, _ []string) []string {
		if tok, err := s.Set(ctx, user); err == nil {
			return []string{tok}
		}
		return nil
	}},
	{"Rotate", sesh.Options{}, 800 * time.Millisecond, func(ctx context.Context, s *sesh.Store, _ string, toks []string) []string {
		if tok, err := s.Rotate(ctx, toks[len(toks)-1]); err == nil {
			return []string{tok}
		}
		return nil
	}},
	{"DieAll", sesh.Options{TrackUsers: true}, 100 * time.Millisecond, func(ctx context.Context, s *sesh.Store, user string, _ []string) []string {
		s.DieAll(ctx, user)
		return nil
	}},
}

// cancelCleanup runs op on s from several workers while the server behind
// admin (the master of user's index on Cluster) is paused, and returns the tokens issued to them.
func cancelCleanup(t *testing.T, s *sesh.Store, admin redis.Conn, pause time.Duration, user string, op func(ctx context.Context, s *sesh.Store, user string, toks []string) []string) []string {
	ctx := context.Background()
	const workers = 8
	toks := make([][]string, workers) // per worker: its own token, then those its operations returned
	for w := range toks {
		toks[w] = []string{must2(t)(s.Set(ctx, user))}
	}
	// The operations under way when the pause starts are caught in
	// different round trips.
	stall(t, s, admin, 5*time.Millisecond, pause, 20*time.Millisecond, workers, func(ctx context.Context, w int) {
		toks[w] = append(toks[w], op(ctx, s, user, toks[w])...)
	})
	sesh.WaitCleanups(s)
	s.Close()
	var known []string
	for _, ts := range toks {
		known = append(known, ts...)
	}
	return known
}

// TestBatchCancelCleanup checks that the cleanup of a cancelled Set, Rotate
// or DieAll runs after the round trip it cleans up, never before it on
// another connection: no live token remains that no Set or Rotate
// returned, and no DieAll's lock remains.
func TestBatchCancelCleanup(t *testing.T) {
	t.Parallel()
	for _, tc := range cancelCleanupCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.o
			o.Prefix = "cc"
			s, _, admin := privateStore(t, o)
			known := cancelCleanup(t, s, admin, tc.pause, "alice", tc.op)
			if n := orphans(t, s, admin, o.Prefix, "alice", known); n != 0 {
				t.Errorf("%d live tokens that no operation returned", n)
			}
			locks, err := redis.Strings(admin.Do("ZRANGE", "cc:u:alice", 0, -1))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range locks {
				if strings.HasPrefix(m, "!") {
					t.Errorf("a DieAll's lock %q remains after its cleanup", m)
				}
			}
		})
	}
}

// TestBatchLaneLife checks that no lane writes a call once older than its
// life, however busy: with one lane and many workers its queue never
// empties.
func TestBatchLaneLife(t *testing.T) {
	t.Parallel()
	const life = 50 * time.Millisecond
	s, _, _ := privateStore(t, sesh.Options{Pipelines: 1})
	sesh.SetLaneLife(s, life)
	ctx := context.Background()
	tok := must2(t)(s.Set(ctx, "alice"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 512 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Get(ctx, tok); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// Load for twenty lifetimes of a lane, and until it wrote enough
	// batches to be busy.
	for start := time.Now(); time.Since(start) < 20*life || s.Stats().Batches.Batches < 100 && time.Since(start) < 20*time.Second; {
		time.Sleep(life)
	}
	close(stop)
	wg.Wait()
	if st := s.Stats().Batches; st.Batches < 100 {
		t.Fatalf("%d batches written in 20s; want 100", st.Batches)
	}
	if age := sesh.OldestLane(s); age >= life {
		t.Errorf("a lane wrote a batch at age %v; its life is %v", age, life)
	}
}
