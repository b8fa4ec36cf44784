package sesh_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

func TestRotateGraceBounds(t *testing.T) {
	_, p := miniPool(t)
	for _, tc := range []struct {
		name  string
		grace time.Duration
		ok    bool
	}{
		{"zero is no window", 0, true},
		{"a minute is the most", time.Minute, true},
		{"more than a minute is refused", time.Minute + time.Millisecond, false},
		{"a negative window is refused", -time.Second, false},
		{"below 1ms is refused", time.Microsecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sesh.New(p, sesh.Options{RotateGrace: tc.grace})
			if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "RotateGrace") {
				t.Fatalf("New(RotateGrace %v) = %v; want ok %v, or an error naming RotateGrace", tc.grace, err, tc.ok)
			}
		})
	}
}

// TestReauthWithoutAuthTime checks the decision for a session recorded
// before sesh wrote its authentication time: Reauth keeps its deadline,
// since its MaxAge is not known, and records the new authentication time.
func TestReauthWithoutAuthTime(t *testing.T) {
	mr, p := miniPool(t)
	ctx := context.Background()
	s, err := sesh.New(p, sesh.Options{Prefix: "old", MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Set(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := sesh.TokenKey(s, tok)
	mr.HDel(key, "a")
	was, _ := s.Lookup(ctx, tok)
	mr.FastForward(time.Minute)
	mr.SetTime(time.Now().Add(time.Minute))
	nt, err := s.Reauth(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	se, err := s.Lookup(ctx, nt)
	if err != nil {
		t.Fatal(err)
	}
	if !se.Deadline.Equal(was.Deadline) || se.AuthTime.IsZero() {
		t.Fatalf("Reauth of a session without a: %+v; want the deadline %v kept and an authentication time", se, was.Deadline)
	}
}

// BenchmarkGrace measures what the grace window costs Get and Rotate:
// window=0s is the default, window=1m0s has Options.RotateGrace. Get/old
// is Get of a token in its window. Each Rotate rotates the token the last
// one returned, so with the window it also ends its predecessor.
func BenchmarkGrace(b *testing.B) {
	_, mini := miniPool(b)
	backends := []struct {
		name string
		pool *redis.Pool
	}{{"miniredis", mini}}
	if p := realPool(b); p != nil {
		backends = append(backends, struct {
			name string
			pool *redis.Pool
		}{"redis", p})
	}
	ctx := context.Background()
	for _, be := range backends {
		for _, grace := range []time.Duration{0, time.Minute} {
			b.Run(be.name+"/window="+grace.String(), func(b *testing.B) {
				s, err := sesh.New(be.pool, sesh.Options{Prefix: "seshbench-grace", TTL: time.Minute, RotateGrace: grace})
				if err != nil {
					b.Fatal(err)
				}
				old, err := s.Set(ctx, "user-0123456789ab")
				if err != nil {
					b.Fatal(err)
				}
				tok, err := s.Rotate(ctx, old)
				if err != nil {
					b.Fatal(err)
				}
				if grace == 0 {
					old = tok
				}
				for _, bc := range []struct {
					name string
					f    func() error
				}{
					{"Get", func() error { _, err := s.Get(ctx, tok); return err }},
					{"Get/old", func() error { _, err := s.Get(ctx, old); return err }},
					{"Rotate", func() error { tok, err = s.Rotate(ctx, tok); return err }},
				} {
					b.Run(bc.name, func(b *testing.B) {
						b.ReportAllocs()
						for range b.N {
							if err := bc.f(); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			})
		}
	}
}
