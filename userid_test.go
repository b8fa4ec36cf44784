package sesh_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// countingPool counts the connections taken from its Pool.
type countingPool struct {
	sesh.Pool
	n atomic.Int64
}

func (p *countingPool) GetContext(ctx context.Context) (redis.Conn, error) {
	p.n.Add(1)
	return p.Pool.GetContext(ctx)
}

// TestInvalidUser checks that a user ID no token can have gets
// ErrInvalidUser from every method that takes one, from a Store and a
// Crypt, before any connection is taken.
func TestInvalidUser(t *testing.T) {
	_, mp := miniPool(t)
	p := &countingPool{Pool: mp}
	s, err := sesh.New(p, sesh.Options{TrackUsers: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, st := range []struct {
		name string
		s    sesh.TokenStore
	}{{"Store", s}, {"Crypt", c}} {
		ops := []struct {
			name string
			do   func(user string) error
		}{
			{"set", func(u string) error { _, err := st.s.Set(ctx, u); return err }},
			{"dieall", func(u string) error { _, err := st.s.DieAll(ctx, u); return err }},
			{"count", func(u string) error { _, err := st.s.Count(ctx, u); return err }},
		}
		for _, op := range ops {
			for _, tc := range []struct {
				name, user, reason string
			}{
				{"an empty user ID is invalid", "", "it is empty"},
				{"a user ID of 1,025 bytes is invalid", strings.Repeat("u", 1025), "it is 1025 bytes, more than 1024"},
			} {
				t.Run(st.name+"/"+op.name+"/"+tc.name, func(t *testing.T) {
					before := p.n.Load()
					err := op.do(tc.user)
					if !errors.Is(err, sesh.ErrInvalidUser) {
						t.Fatalf("err = %v, want ErrInvalidUser", err)
					}
					if want := "sesh: " + op.name + ": invalid user ID: " + tc.reason; err.Error() != want {
						t.Errorf("err = %q, want %q", err, want)
					}
					if n := p.n.Load() - before; n != 0 {
						t.Errorf("took %d connections for a user ID refused on sight", n)
					}
				})
			}
		}
		t.Run(st.name+"/a user ID of 1,024 bytes is valid", func(t *testing.T) {
			user := strings.Repeat("u", 1024)
			tok, err := st.s.Set(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := st.s.Get(ctx, tok); got != user || err != nil {
				t.Fatalf("Get = %d bytes, %v", len(got), err)
			}
		})
	}
}
