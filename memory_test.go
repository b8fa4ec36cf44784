package sesh_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// TestMemoryPerSession measures, on real Redis, the bytes a live session
// costs: the sum of MEMORY USAGE over every key the store wrote, divided by
// the number of sessions. The README quotes its log.
func TestMemoryPerSession(t *testing.T) {
	p := realPool(t)
	if p == nil {
		t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
	}
	ctx := context.Background()
	const users, perUser = 500, 10
	for _, tc := range []struct {
		name  string
		o     sesh.Options
		crypt bool
	}{
		{"TTL only", sesh.Options{TTL: time.Hour}, false},
		{"TTL and TrackUsers", sesh.Options{TTL: time.Hour, TrackUsers: true}, false},
		{"TTL shorter than MaxAge", sesh.Options{TTL: time.Hour, MaxAge: 12 * time.Hour}, false},
		{"MaxAge, TTL Forever", sesh.Options{TTL: sesh.Forever, MaxAge: 12 * time.Hour}, false},
		{"TTL shorter than MaxAge, TrackUsers", sesh.Options{TTL: time.Hour, MaxAge: 12 * time.Hour, TrackUsers: true}, false},
		{"Crypt, TTL and TrackUsers", sesh.Options{TTL: time.Hour, TrackUsers: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Prefix = fmt.Sprintf("seshmem%d", time.Now().UnixNano())
			s, err := sesh.New(p, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var set func(context.Context, string) (string, error) = s.Set
			if tc.crypt {
				c, err := sesh.NewCrypt(s, make([]byte, 32))
				if err != nil {
					t.Fatal(err)
				}
				set = c.Set
			}
			for u := range users {
				for range perUser {
					if _, err := set(ctx, fmt.Sprintf("user-%08d@example.com", u)); err != nil {
						t.Fatal(err)
					}
				}
			}
			c := p.Get()
			defer c.Close()
			var total, keys int
			for cur := 0; ; {
				vs, err := redis.Values(c.Do("SCAN", cur, "MATCH", tc.o.Prefix+":*", "COUNT", 1000))
				if err != nil {
					t.Fatal(err)
				}
				cur, _ = redis.Int(vs[0], nil)
				ks, _ := redis.Strings(vs[1], nil)
				for _, k := range ks {
					n, err := redis.Int(c.Do("MEMORY", "USAGE", k, "SAMPLES", 0))
					if err != nil {
						t.Fatal(err)
					}
					total += n
					keys++
					c.Do("UNLINK", k)
				}
				if cur == 0 {
					break
				}
			}
			if keys < users*perUser {
				t.Fatalf("found %d keys for %d sessions", keys, users*perUser)
			}
			t.Logf("%-38s %4d bytes per session (%d keys, %d sessions, 28-byte user IDs)", tc.name, total/(users*perUser), keys, users*perUser)
		})
	}
}
