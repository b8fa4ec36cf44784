package seshtest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshtest"
)

// An application tests its session policy: a session survives 20 minutes
// of idleness, ends after 30, and ends at its MaxAge however often it is
// rotated. In a test function, seshtest.Start(t) gives the server and the
// Pool and closes them at the end of the test.
func Example() {
	m, _ := miniredis.Run()
	defer m.Close()
	m.SetTime(time.Now()) // Start does this: the clock moves only with Advance
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", m.Addr()) }}
	defer pool.Close()
	store, err := sesh.New(pool, sesh.Options{TTL: 30 * time.Minute, MaxAge: 8 * time.Hour})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()

	idle, _ := store.Set(ctx, "alice")
	seshtest.Advance(m, 20*time.Minute)
	_, err = store.Get(ctx, idle)
	fmt.Println("idle 20 minutes:", err)
	seshtest.Advance(m, 31*time.Minute)
	_, err = store.Get(ctx, idle)
	fmt.Println("idle 31 more minutes:", errors.Is(err, sesh.ErrNotFound))

	token, _ := store.Set(ctx, "bob")
	for n := 0; ; n++ {
		seshtest.Advance(m, 25*time.Minute)
		if token, err = store.Rotate(ctx, token); err != nil {
			fmt.Printf("rotated every 25 minutes, ended after %d rotations: %v\n", n, errors.Is(err, sesh.ErrNotFound))
			break
		}
	}
	// Output:
	// idle 20 minutes: <nil>
	// idle 31 more minutes: true
	// rotated every 25 minutes, ended after 19 rotations: true
}

// Advance moves the clock that sesh reads for MaxAge together with the
// keys' TTLs.
func ExampleAdvance() {
	m, _ := miniredis.Run()
	defer m.Close()
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", m.Addr()) }}
	defer pool.Close()
	store, _ := sesh.New(pool, sesh.Options{TTL: time.Hour, MaxAge: 2 * time.Hour})
	defer store.Close()
	ctx := context.Background()

	token, _ := store.Set(ctx, "alice")
	seshtest.Advance(m, 50*time.Minute)
	token, _ = store.Rotate(ctx, token)
	seshtest.Advance(m, 50*time.Minute)
	token, _ = store.Rotate(ctx, token)
	seshtest.Advance(m, 50*time.Minute) // 2.5 hours since Set
	_, err := store.Get(ctx, token)
	fmt.Println(errors.Is(err, sesh.ErrNotFound))
	// Output: true
}
