package track_test

import (
	"fmt"
	"testing"

	"github.com/seshkit/sesh/internal/track"
)

// tok returns a token-like string, distinct for each i.
func tok(i int) string { return fmt.Sprintf("AA%041d", i) }

func TestEntriesShards(t *testing.T) {
	tests := []struct {
		size, shards int
	}{
		{1, 1},
		{31, 1},
		{32, 2},
		{4096, 256},
		{1 << 20, 256},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d entries take %d shards", tt.size, tt.shards), func(t *testing.T) {
			if got := track.NewEntries(tt.size).Shards(); got != tt.shards {
				t.Errorf("shards = %d; want %d", got, tt.shards)
			}
		})
	}
}

// TestEntriesEviction checks that a full shard evicts one entry, held
// there, for each new token, and that admit can refuse the whole change.
func TestEntriesEviction(t *testing.T) {
	const size = 4
	es := track.NewEntries(size)
	admitAll := func(victim *track.Entry) bool { return true }
	held := map[string]*track.Entry{}
	for i := range size {
		e := &track.Entry{Token: tok(i)}
		es.Put(e, func(victim *track.Entry) bool {
			if victim != nil {
				t.Errorf("Put %d of %d evicts %q", i+1, size, victim.Token)
			}
			return true
		})
		held[e.Token] = e
	}
	victims := map[string]bool{}
	for i := size; i < size+100; i++ {
		e := &track.Entry{Token: tok(i)}
		var victim *track.Entry
		es.Put(e, func(v *track.Entry) bool { victim = v; return true })
		if victim == nil || held[victim.Token] != victim {
			t.Fatalf("Put into a full shard evicts %v; want an entry it held", victim)
		}
		if es.Lookup(victim.Token) != nil || es.Lookup(e.Token) != e || es.Len() != size {
			t.Fatalf("after evicting %q for %q: Lookup = %v, %v; %d held", victim.Token, e.Token, es.Lookup(victim.Token), es.Lookup(e.Token), es.Len())
		}
		delete(held, victim.Token)
		held[e.Token] = e
		victims[victim.Token] = true
	}
	if len(victims) < 2 {
		t.Errorf("100 evictions picked %d distinct victims; want a random pick", len(victims))
	}

	refused := &track.Entry{Token: tok(1000)}
	es.Put(refused, func(*track.Entry) bool { return false })
	if es.Lookup(refused.Token) != nil || es.Len() != size {
		t.Errorf("a refused Put changed the store: Lookup = %v, %d held", es.Lookup(refused.Token), es.Len())
	}
	for _, e := range held {
		if es.Lookup(e.Token) != e {
			t.Errorf("a refused Put evicted %q", e.Token)
		}
	}

	// Replacing a token's entry evicts nothing.
	var some *track.Entry
	for _, e := range held {
		some = e
		break
	}
	again := &track.Entry{Token: some.Token}
	es.Put(again, func(v *track.Entry) bool {
		if v != nil {
			t.Errorf("replacing %q evicts %q", some.Token, v.Token)
		}
		return true
	})
	if es.Lookup(some.Token) != again || es.Len() != size {
		t.Errorf("after replacing: Lookup = %v; %d held", es.Lookup(some.Token), es.Len())
	}
	// Dropping the replaced entry leaves its successor.
	es.Drop(some)
	if es.Lookup(some.Token) != again {
		t.Error("Drop of a replaced entry dropped its successor")
	}
	es.Drop(again)
	if es.Lookup(some.Token) != nil || es.Len() != size-1 {
		t.Errorf("after Drop: Lookup = %v; %d held", es.Lookup(some.Token), es.Len())
	}
	es.Put(&track.Entry{Token: tok(2000)}, admitAll)
	if es.Len() != size {
		t.Errorf("%d held after a Put into the room Drop made; want %d", es.Len(), size)
	}
}
