package sesh_test

import (
	"strings"
	"testing"
	"time"

	"github.com/seshkit/sesh"
)

// TestTrackUsersEviction checks, on a private redis-server, that New
// refuses TrackUsers under every maxmemory-policy that may evict a user's
// index, and names the setting.
func TestTrackUsersEviction(t *testing.T) {
	realURL(t) // the real-server suites start their own servers
	t.Parallel()
	srv := startServer(t)
	p, err := sesh.NewPool(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := p.Get()
	defer c.Close()
	for _, tc := range []struct {
		policy string
		maxAge time.Duration
		refuse bool
	}{
		{"noeviction", 0, false},
		{"noeviction", time.Hour, false},
		{"volatile-lru", 0, false},
		{"volatile-ttl", 0, false},
		{"volatile-lru", time.Hour, true},
		{"volatile-random", time.Hour, true},
		{"allkeys-lru", 0, true},
		{"allkeys-lfu", time.Hour, true},
		{"allkeys-random", 0, true},
	} {
		if _, err := c.Do("CONFIG", "SET", "maxmemory-policy", tc.policy); err != nil {
			t.Fatal(err)
		}
		_, err := sesh.New(p, sesh.Options{TrackUsers: true, MaxAge: tc.maxAge})
		switch {
		case tc.refuse && (err == nil || !strings.HasPrefix(err.Error(), "sesh: new: TrackUsers: ") || !strings.Contains(err.Error(), "maxmemory-policy is "+tc.policy)):
			t.Errorf("%s, MaxAge %v: New = %v; want an error naming TrackUsers and the policy", tc.policy, tc.maxAge, err)
		case !tc.refuse && err != nil:
			t.Errorf("%s, MaxAge %v: New = %v", tc.policy, tc.maxAge, err)
		}
		// A Store without an index does not care.
		if _, err := sesh.New(p, sesh.Options{MaxAge: tc.maxAge}); err != nil {
			t.Errorf("%s without TrackUsers: New = %v", tc.policy, err)
		}
	}
	srv.shutdown()
	if _, err := sesh.New(p, sesh.Options{TrackUsers: true}); err == nil || !strings.HasPrefix(err.Error(), "sesh: new: TrackUsers: cannot read maxmemory-policy") {
		t.Errorf("New with Redis down = %v; want an error naming TrackUsers", err)
	}
}
