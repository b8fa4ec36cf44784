package sesh_test

import (
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// TestNewRefusesATinyPool checks that New refuses a *redis.Pool whose
// MaxActive cannot hold the Store's lanes, its cache's tracking connection
// and one operation alone, before any I/O.
func TestNewRefusesATinyPool(t *testing.T) {
	_, mp := miniPool(t)
	sized := func(maxActive int) *redis.Pool {
		return &redis.Pool{DialContext: mp.DialContext, MaxActive: maxActive, Wait: true}
	}
	for _, tc := range []struct {
		name string
		pool sesh.Pool
		o    sesh.Options
		want string // "" means New accepts it
	}{
		{"MaxActive 1 is too small for the default 2 lanes", sized(1), sesh.Options{}, "MaxActive is 1, below the 3 connections"},
		{"MaxActive 3 holds 2 lanes and an operation", sized(3), sesh.Options{}, ""},
		{"MaxActive 2 holds 1 lane and an operation", sized(2), sesh.Options{Pipelines: 1}, ""},
		{"MaxActive 4 is too small for 4 lanes", sized(4), sesh.Options{Pipelines: 4}, "below the 5 connections"},
		{"MaxActive 1 holds an operation without lanes", sized(1), sesh.Options{Pipelines: sesh.NoPipelining}, ""},
		{"MaxActive 1 is too small for a cache", sized(1), sesh.Options{CacheSize: 100}, "below the 4 connections this Store holds: 2 for Pipelines, 1 for the cache's tracking"},
		{"MaxActive 1 is too small for a cache without lanes", sized(1), sesh.Options{CacheSize: 100, Pipelines: sesh.NoPipelining}, "below the 2 connections"},
		{"MaxActive 0 has no limit", sized(0), sesh.Options{Pipelines: 64}, ""},
		{"a Pool that is not a *redis.Pool is not checked", &countingPool{Pool: sized(1)}, sesh.Options{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sesh.New(tc.pool, tc.o)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("New = nil error, want one saying %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "sesh: new: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %q, want one saying %q", err, tc.want)
			}
		})
	}
}
