package seshcluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
)

// Routing for sesh's auto-pipelining (sesh.Options.Pipelines).
//
// A Store batches the commands of concurrent operations on a few shared
// connections per master. To pick the master, it asks the Pool for a key's
// hash slot (redisc's Slot) and for the slot's owner. The owners are learnt
// from Redis itself, as a cluster client is meant to: from the MOVED reply
// that a guess earns. A guess is the owner of the nearest slot below with a
// known one (masters own ranges of slots), or else a master named by a
// MOVED reply before, or one of the cluster's StartupNodes. The Store runs a redirected
// command again through this package's connections, which follow the
// redirect with redisc, so a wrong or stale owner costs a round trip, never
// a wrong answer. A node that cannot be dialled loses its slots and stops
// being guessed.

// guessReach is how many slots below an unknown one Owner looks at for a
// known owner.
const guessReach = 256

// routes is what the pool knows of the slots' owners.
type routes struct {
	owners [redisc.HashSlots]atomic.Pointer[string]

	mu      sync.Mutex
	guesses atomic.Pointer[[]string] // masters to try for a slot with no known owner
}

// Slot returns the hash slot of key, for sesh's auto-pipelining.
func (p *pool) Slot(key string) int { return redisc.Slot(key) }

// Owner returns the address of the master believed to serve slot, or ""
// when none is known; for sesh's auto-pipelining.
func (p *pool) Owner(slot int) string {
	if slot < 0 || slot >= redisc.HashSlots {
		return ""
	}
	if a := p.routes.owners[slot].Load(); a != nil {
		return *a
	}
	// Masters own ranges of slots: the nearest slot below with a known
	// owner is the best guess.
	for i := 1; i <= guessReach && i <= slot; i++ {
		if a := p.routes.owners[slot-i].Load(); a != nil {
			return *a
		}
	}
	g := p.guesses()
	if len(g) == 0 {
		return ""
	}
	return g[slot%len(g)]
}

func (p *pool) guesses() []string {
	if g := p.routes.guesses.Load(); g != nil {
		return *g
	}
	g := slices.Clone(p.cluster.StartupNodes)
	p.routes.guesses.CompareAndSwap(nil, &g)
	return *p.routes.guesses.Load()
}

// Moved records that addr serves slot, as a MOVED reply said, and returns
// the owner known before, or ""; for sesh's auto-pipelining. When the slot
// moved, it also has redisc refresh its own map.
func (p *pool) Moved(slot int, addr string) (old string) {
	if slot < 0 || slot >= redisc.HashSlots || addr == "" {
		return ""
	}
	if o := p.routes.owners[slot].Swap(&addr); o != nil {
		old = *o
	}
	if old != "" && old != addr {
		p.refresh() // the slot moved: redisc's map is stale too
	}
	p.routes.mu.Lock()
	defer p.routes.mu.Unlock()
	g := p.guesses()
	if !slices.Contains(g, addr) {
		g = append(slices.Clone(g), addr)
		p.routes.guesses.Store(&g)
	}
	return old
}

// Masters returns the addresses of the masters redisc knows, for sesh's
// cache, which hears each master's invalidations.
func (p *pool) Masters() ([]string, error) {
	var addrs []string
	err := p.cluster.EachNode(false, func(addr string, _ redis.Conn) error {
		addrs = append(addrs, addr)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seshcluster: masters: %w", err)
	}
	return addrs, nil
}

// NodeContext dials the node at addr with the cluster's DialOptions, for a
// connection that sesh's auto-pipelining shares. When the node cannot be
// dialled, its slots are forgotten and it is no longer guessed.
func (p *pool) NodeContext(ctx context.Context, addr string) (redis.Conn, error) {
	c, err := redis.DialContext(ctx, "tcp", addr, p.cluster.DialOptions...)
	if err == nil {
		return c, nil
	}
	p.forget(addr)
	return nil, fmt.Errorf("seshcluster: nodecontext: %w", err)
}

// forget drops addr from the owners and the guesses; with no guess left,
// the StartupNodes are guessed again.
func (p *pool) forget(addr string) {
	for i := range p.routes.owners {
		if a := p.routes.owners[i].Load(); a != nil && *a == addr {
			p.routes.owners[i].CompareAndSwap(a, nil)
		}
	}
	p.routes.mu.Lock()
	defer p.routes.mu.Unlock()
	g := slices.DeleteFunc(slices.Clone(p.guesses()), func(a string) bool { return a == addr })
	if len(g) == 0 {
		g = slices.Clone(p.cluster.StartupNodes)
	}
	p.routes.guesses.Store(&g)
	p.refresh()
}
