package track_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/seshkit/sesh/internal/track"
)

const prefix = "p:"

// source is a Store with no Redis: the tests never Start the cache.
type source struct{}

var _ track.Source = source{}

func (source) Dial(ctx context.Context, addr string) (track.Conn, error) {
	return nil, errors.New("no Redis")
}

func (source) Publish(ctx context.Context, channel, msg string) (int, error) {
	return 0, errors.New("no Redis")
}

// EntryKey maps a deadline key to its token key, and refuses user indexes.
func (source) EntryKey(k []byte) (string, bool) {
	s := strings.TrimSuffix(string(k), ":m")
	return s, strings.HasPrefix(s, prefix+"{")
}

// newCache returns a cache of one node whose tracking is up, served for an
// hour.
func newCache(t *testing.T, size int) (*track.Cache, *track.Node) {
	t.Helper()
	c := track.New(track.Config{Size: size, MaxStale: time.Hour, Prefix: prefix, Channel: "p:cache", Source: source{}, Log: slog.New(slog.DiscardHandler)})
	n := c.One()
	n.Up(c.Now())
	return c, n
}

// key returns a token key whose hash starts with h, so that keys sharing h
// share an invalidation bucket.
func key(h string, i int) string {
	return prefix + "{" + h + strings.Repeat("x", 40) + string(rune('a'+i)) + "}"
}

// fill begins a fill of key, as the Store's fill does before its round trip.
func fill(t *testing.T, c *track.Cache, key string) (*track.Entry, track.Fill) {
	t.Helper()
	f, ok := c.Begin(c.NodeOf(key), key, c.Now())
	if !ok {
		t.Fatal("Begin refuses a fill while tracking is up")
	}
	return &track.Entry{Token: "T" + key, Key: key, UserID: "alice", Expiry: math.MaxInt64, Deadline: math.MaxInt64}, f
}

// TestCacheBuckets checks that a fill is dropped when its key, or a key of
// the same bucket, is invalidated during its round trip, or its node's
// epoch moves, and kept otherwise.
func TestCacheBuckets(t *testing.T) {
	tests := []struct {
		name   string
		during func(c *track.Cache, n *track.Node, k string)
		kept   bool
	}{
		{"nothing happens", func(c *track.Cache, n *track.Node, k string) {}, true},
		{"its key is forgotten", func(c *track.Cache, n *track.Node, k string) { c.Forget(k) }, false},
		{"its key is invalidated", func(c *track.Cache, n *track.Node, k string) { n.Invalidate([]byte(k)) }, false},
		{"its deadline key is invalidated", func(c *track.Cache, n *track.Node, k string) { n.Invalidate([]byte(k + ":m")) }, false},
		{"a key of its bucket is invalidated", func(c *track.Cache, n *track.Node, k string) { n.Invalidate([]byte(key("AB", 9))) }, false},
		{"a key of another bucket is invalidated", func(c *track.Cache, n *track.Node, k string) { n.Invalidate([]byte(key("BA", 0))) }, true},
		{"a user index is invalidated", func(c *track.Cache, n *track.Node, k string) { n.Invalidate([]byte(prefix + "u:alice")) }, true},
		{"everything is invalidated", func(c *track.Cache, n *track.Node, k string) { n.Flushed() }, false},
		{"tracking goes down", func(c *track.Cache, n *track.Node, k string) { n.Down() }, false},
		{"a heartbeat reaches no one", func(c *track.Cache, n *track.Node, k string) { n.Unheard(n.Epoch()) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := newCache(t, 16)
			k := key("AB", 0)
			e, f := fill(t, c, k)
			tt.during(c, n, k)
			c.Insert(e, f)
			got := c.Lookup(e.Token)
			st := c.Stats()
			if tt.kept {
				if got != e || !got.Serves(c.Now()) || st.Entries != 1 || st.DroppedFills != 0 {
					t.Fatalf("fill not kept: Lookup = %v, Stats = %+v", got, st)
				}
				return
			}
			if got != nil || st.Entries != 0 || st.DroppedFills != 1 {
				t.Fatalf("fill kept: Lookup = %v, Stats = %+v", got, st)
			}
		})
	}
}

// TestCacheInvalidate checks that an entry held is dead at once when its
// key is invalidated, and that only keys that stand for an entry count.
func TestCacheInvalidate(t *testing.T) {
	c, n := newCache(t, 16)
	k := key("AB", 0)
	e, f := fill(t, c, k)
	c.Insert(e, f)
	n.Invalidate([]byte(prefix + "u:alice"))
	if !e.Serves(c.Now()) {
		t.Fatal("an entry stops being served when a user index changes")
	}
	n.Invalidate([]byte(k))
	if e.Serves(c.Now()) || c.Lookup(e.Token) != nil {
		t.Fatal("an invalidated entry is still served")
	}
	if st := c.Stats(); st.Invalidations != 1 || st.Entries != 0 {
		t.Fatalf("Stats = %+v; want 1 invalidation, no entry", st)
	}
}

// TestCacheEvictions checks that a full cache evicts, and counts it.
func TestCacheEvictions(t *testing.T) {
	c, _ := newCache(t, 2)
	for i := range 5 {
		e, f := fill(t, c, key("AB", i))
		c.Insert(e, f)
	}
	if st := c.Stats(); st.Entries != 2 || st.Evictions != 3 {
		t.Fatalf("Stats = %+v; want 2 entries, 3 evictions", st)
	}
}

// TestExpires checks how a PTTL reply read at a time turns into an expiry.
func TestExpires(t *testing.T) {
	const now = 1000
	tests := []struct {
		name string
		pttl any
		want int64
	}{
		{"a key with a TTL expires that long after now", int64(1500), now + 1500*int64(time.Millisecond)},
		{"a key with no TTL never expires", int64(-1), math.MaxInt64},
		{"no key has expired", int64(-2), math.MinInt64},
		{"a nonsense TTL has expired", int64(-3), math.MinInt64},
		{"a reply that is no integer has expired", []byte("x"), math.MinInt64},
		{"no reply has expired", nil, math.MinInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := track.Expires(now, tt.pttl); got != tt.want {
				t.Errorf("Expires(%d, %v) = %d; want %d", now, tt.pttl, got, tt.want)
			}
		})
	}
}

// TestEntryExpiry checks that an entry is served until its expiry, not at
// it, with the time passed in.
func TestEntryExpiry(t *testing.T) {
	c, _ := newCache(t, 16)
	e, f := fill(t, c, key("AB", 0))
	now := c.Now()
	e.Expiry = track.Expires(now, int64(100))
	c.Insert(e, f)
	exp := now + 100*int64(time.Millisecond)
	if !e.Serves(exp - 1) {
		t.Error("entry not served just before its key expires")
	}
	if e.Serves(exp) {
		t.Error("entry served when its key expires")
	}
}
