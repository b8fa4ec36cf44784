package seshtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshtest"
)

// TestRotatedChainPastMaxAge rotates a token every 10 minutes for 70 minutes
// under a MaxAge of an hour. Moving only the TTLs keeps the chain alive past
// its MaxAge, because sesh measures MaxAge on Redis's clock; Advance moves
// that clock too, and the chain ends at its MaxAge.
func TestRotatedChainPastMaxAge(t *testing.T) {
	tests := []struct {
		name    string
		advance func(*miniredis.Miniredis, time.Duration)
		alive   bool // whether the chain is alive after 70 minutes
	}{
		{"FastForward alone keeps the chain alive", (*miniredis.Miniredis).FastForward, true},
		{"Advance ends it at MaxAge", seshtest.Advance, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, pool := seshtest.Start(t)
			store, err := sesh.New(pool, sesh.Options{TTL: 15 * time.Minute, MaxAge: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			ctx := context.Background()
			token, err := store.Set(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 7; i++ {
				tt.advance(m, 10*time.Minute)
				token, err = store.Rotate(ctx, token)
				if err != nil {
					break
				}
			}
			if tt.alive {
				if err != nil {
					t.Fatalf("Rotate after 70 minutes: %v, want a new token", err)
				}
				if _, err := store.Get(ctx, token); err != nil {
					t.Errorf("Get after 70 minutes: %v, want alice", err)
				}
				return
			}
			if !errors.Is(err, sesh.ErrNotFound) {
				t.Errorf("Rotate past MaxAge: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestSetPrunes lets two tokens expire, then sets a third. Set prunes the
// user index's entries that are due on Redis's clock: moving only the TTLs
// leaves the expired entries in the index.
func TestSetPrunes(t *testing.T) {
	tests := []struct {
		name    string
		advance func(*miniredis.Miniredis, time.Duration)
		want    int // entries in the index after the third Set
	}{
		{"FastForward alone leaves expired entries", (*miniredis.Miniredis).FastForward, 3},
		{"Advance prunes them", seshtest.Advance, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, pool := seshtest.Start(t)
			store, err := sesh.New(pool, sesh.Options{TTL: time.Minute, TrackUsers: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				if i == 2 {
					tt.advance(m, 2*time.Minute)
				}
				if _, err := store.Set(ctx, "alice"); err != nil {
					t.Fatal(err)
				}
			}
			members, err := m.ZMembers("sesh:u:alice")
			if err != nil {
				t.Fatal(err)
			}
			if len(members) != tt.want {
				t.Errorf("the index holds %d entries, want %d", len(members), tt.want)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	m, pool := seshtest.Start(t)
	c := pool.Get()
	defer c.Close()
	clock := func() int64 {
		t.Helper()
		v, err := redis.Int64s(c.Do("TIME"))
		if err != nil {
			t.Fatal(err)
		}
		return v[0]
	}
	start := clock()
	m.Set("k", "v")
	m.SetTTL("k", 90*time.Minute)
	seshtest.Advance(m, time.Hour)
	if got := clock() - start; got != 3600 {
		t.Errorf("after Advance(1h) the clock moved %ds, want 3600s", got)
	}
	if !m.Exists("k") {
		t.Fatal("a key with a 90-minute TTL ended after an hour")
	}
	seshtest.Advance(m, time.Hour)
	if got := clock() - start; got != 7200 {
		t.Errorf("after two Advance(1h) the clock moved %ds, want 7200s", got)
	}
	if m.Exists("k") {
		t.Error("a key with a 90-minute TTL outlived two hours")
	}
}
