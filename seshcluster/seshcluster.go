package seshcluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/wire"
)

// Retry settings; see the package comment.
const (
	retryFirst  = 20 * time.Millisecond
	retryMax    = 400 * time.Millisecond
	retryBudget = 3 * time.Second

	// redisc.RetryConn's own limits, for TRYAGAIN and redirects.
	retryConnAttempts = 3
	tryAgainDelay     = 20 * time.Millisecond
)

// pool hands out connections to one cluster.
type pool struct {
	cluster    *redisc.Cluster
	refreshing atomic.Bool
	routes     routes
}

var _ sesh.Pool = (*pool)(nil)

// sesh's lanes find these by type assertion: the Pool routes each call to
// a lane of the master that serves its keys, and a connection's Do tells
// when an abandoned Do can change nothing more.
var (
	_ wire.Router   = (*pool)(nil)
	_ wire.Notifier = (*conn)(nil)
)

// New returns a Pool whose connections run commands on the cluster c,
// following MOVED and ASK redirects. c must not be nil; New changes none of
// its fields, and c stays the caller's to Refresh and Close.
func New(c *redisc.Cluster) sesh.Pool {
	if c == nil {
		panic("seshcluster: new: Cluster is nil")
	}
	return &pool{cluster: c}
}

// GetContext returns a connection to the cluster. It does no I/O: it fails
// only when ctx is done or the cluster is closed.
func (p *pool) GetContext(ctx context.Context) (redis.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("seshcluster: getcontext: %w", err)
	}
	rc := p.cluster.Get() // unbound: no I/O
	err := rc.Err()
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("seshcluster: getcontext: %w", err)
	}
	return &conn{
		p:      p,
		ctx:    ctx,
		bySlot: make(map[int]*node),
		byAddr: make(map[string]*node),
	}, nil
}

// refresh has redisc reload its slot map in the background, unless a
// refresh asked for here is already under way.
func (p *pool) refresh() {
	if !p.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.refreshing.Store(false)
		_ = p.cluster.Refresh() // a failed refresh leaves the old map; the next failure asks again
	}()
}
