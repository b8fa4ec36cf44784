package wire_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seshkit/sesh/internal/wire"
)

// get runs GET key through lanes b and returns the reply.
func get(ctx context.Context, t *testing.T, p wire.Pool, b *wire.Lanes, key string) (any, error) {
	t.Helper()
	c, err := wire.Take(ctx, p, b, true, false, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do("GET", key)
}

// TestRouting checks that under interleaving each caller gets its own
// replies: single commands and pipelines from many goroutines on two lanes.
func TestRouting(t *testing.T) {
	srv := newServer()
	p := srv.pool(t)
	b := wire.NewAlways(p, 2)
	defer b.Close()
	b.OpenAll()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k1, k2 := fmt.Sprint("k", w, "-", i), fmt.Sprint("p", w, "-", i)
				c, err := wire.Take(context.Background(), p, b, true, false, nil)
				if err != nil {
					t.Error(err)
					return
				}
				v, err := c.Do("GET", k1)
				c.Send("GET", k2)
				c.Send("GET", k1)
				rs, perr := c.Pipe(2)
				c.Close()
				if err != nil || v != k1 || perr != nil || rs[0] != k2 || rs[1] != k1 {
					t.Errorf("worker %d: Do = %v, %v; Pipe = %v, %v; want %s, then [%s %s]", w, v, err, rs, perr, k1, k2, k1)
					return
				}
			}
		}()
	}
	wg.Wait()
	if batches, calls, _ := b.Stats(); batches == 0 || calls == 0 {
		t.Errorf("%d calls in %d batches: no call went through a lane", calls, batches)
	}
}

// TestRetiredOnError checks that a lane whose connection breaks retires:
// a call that writes gets the error, since it may have run; one that only
// reads runs again on a connection of its own; and the next round trip of
// the same operation reports no stale error.
func TestRetiredOnError(t *testing.T) {
	srv := newServer()
	p := srv.pool(t)
	b := wire.NewAlways(p, 2)
	defer b.Close()
	b.OpenAll()
	ctx := context.Background()

	srv.breakOn = "SET x v"
	c, err := wire.Take(ctx, p, b, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do("SET", "x", "v"); err == nil {
		t.Fatal("SET on a lane that broke = nil error; want the lane's error")
	}
	// The other lane answers the operation's next round trip.
	if v, err := c.Do("SET", "y", "v"); err != nil || v != "y" {
		t.Fatalf("the round trip after a broken one = %v, %v; want y, nil", v, err)
	}

	b.OpenAll() // the broken lane's replacement
	srv.breakOn = "GET z"
	if v, err := get(ctx, t, p, b, "z"); err != nil || v != "z" {
		t.Fatalf("GET on a lane that broke = %v, %v; want z, nil from a connection of its own", v, err)
	}
	if w := srv.writers("GET z"); len(w) != 2 {
		t.Fatalf("GET z written on %d connections; want 2: the lane, then its own", len(w))
	}
}

// inFlight fills the one lane of b with its batches, held by srv, and
// returns a function that waits for their replies.
func inFlight(t *testing.T, srv *server, p wire.Pool, b *wire.Lanes) (wait func()) {
	t.Helper()
	srv.hold()
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := get(context.Background(), t, p, b, k); err != nil || v != k {
				t.Errorf("GET %s = %v, %v", k, v, err)
			}
		}()
		srv.await(t, "GET "+k) // its own batch
	}
	return wg.Wait
}

// awaitQueued waits until n calls wait on the lanes of b.
func awaitQueued(t *testing.T, b *wire.Lanes, n int) {
	t.Helper()
	for start := time.Now(); b.Queued() != n; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d calls queued; want %d", b.Queued(), n)
		}
	}
}

// TestCancelledNeverWritten checks that a call whose caller gives up
// before the lane writes it leaves the queue at once and is never written.
func TestCancelledNeverWritten(t *testing.T) {
	srv := newServer()
	p := srv.pool(t)
	b := wire.NewAlways(p, 1)
	defer b.Close()
	b.OpenAll()
	wait := inFlight(t, srv, p, b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := get(ctx, t, p, b, "c")
		done <- err
	}()
	awaitQueued(t, b, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled GET = %v; want context.Canceled", err)
	}
	if n := b.Queued(); n != 0 {
		t.Errorf("%d calls queued after their caller gave up", n)
	}
	srv.release()
	wait()
	b.Close()
	if w := srv.writers("GET c"); len(w) != 0 {
		t.Errorf("a call whose caller gave up before it was written was written %d times", len(w))
	}
}

// TestUnsentRunsElsewhere checks that the calls a retiring lane has not
// written run on a connection of their own, and only there.
func TestUnsentRunsElsewhere(t *testing.T) {
	srv := newServer()
	p := srv.pool(t)
	b := wire.NewAlways(p, 1)
	defer b.Close()
	b.OpenAll()
	wait := inFlight(t, srv, p, b)
	lane := srv.writers("GET a")[0]
	done := make(chan error)
	go func() {
		v, err := get(context.Background(), t, p, b, "c")
		if err == nil && v != "c" {
			err = fmt.Errorf("reply %v", v)
		}
		done <- err
	}()
	awaitQueued(t, b, 1)
	b.RetireAll()
	srv.release()
	if err := <-done; err != nil {
		t.Fatalf("GET queued on a lane that retired = %v", err)
	}
	wait()
	w := srv.writers("GET c")
	if len(w) != 1 || w[0] == lane {
		t.Errorf("GET c written on %d connections, the lane's among them: %v; want once, elsewhere", len(w), w[0] == lane)
	}
}

// TestCloseInFlight checks that Close with calls written and queued lets
// every caller have its own reply, and returns once the lanes are done.
func TestCloseInFlight(t *testing.T) {
	srv := newServer()
	p := srv.pool(t)
	b := wire.NewAlways(p, 1)
	b.OpenAll()
	wait := inFlight(t, srv, p, b)
	done := make(chan error)
	go func() {
		v, err := get(context.Background(), t, p, b, "c")
		if err == nil && v != "c" {
			err = fmt.Errorf("reply %v", v)
		}
		done <- err
	}()
	awaitQueued(t, b, 1)
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	srv.release()
	if err := <-done; err != nil {
		t.Fatalf("GET queued at Close = %v", err)
	}
	wait()
	<-closed
}

// TestLaneLife checks that a lane older than its life takes no call: the
// call runs on a connection of its own. Time is the lane's birth, given.
func TestLaneLife(t *testing.T) {
	srv := newServer()
	p := srv.pool(t)
	b := wire.NewAlways(p, 1)
	defer b.Close()
	now := time.Now()
	if b.Aged(now, now.Add(time.Second-time.Nanosecond)) || !b.Aged(now, now.Add(time.Second)) {
		t.Fatal("a lane's life is not one second")
	}
	old := srv.dial()
	b.PutLane(old, now.Add(-time.Second))
	if v, err := get(context.Background(), t, p, b, "k"); err != nil || v != "k" {
		t.Fatalf("GET = %v, %v", v, err)
	}
	if w := srv.writers("GET k"); len(w) != 1 || w[0] == old {
		t.Errorf("GET k went to a lane past its life")
	}
}
