package wire

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Lane defaults.
const (
	// laneLife bounds how long a lane uses one connection.
	laneLife = time.Second
	// laneDial bounds the opening of a lane's connection.
	laneDial = 5 * time.Second
	// laneRetry is how long a lane whose opening failed stays shut.
	laneRetry = 100 * time.Millisecond
	// laneBatches bounds the batches written and not yet answered on a
	// lane; a writer that reaches it waits for the reader.
	laneBatches = 2
)

// errUnsent is the error of a call that no lane wrote: it may run
// elsewhere.
var errUnsent = errors.New("sesh: pipeline closed before the call was sent")

// Pool is what the lanes need from a Redis client: sesh.Pool.
type Pool interface {
	GetContext(ctx context.Context) (redis.Conn, error)
}

// Lanes holds a Store's lanes: a group of them for the one server of a
// Pool, or for each master of a Redis Cluster.
type Lanes struct {
	pool  Pool
	route Router       // nil unless the Pool is a Redis Cluster's
	n     int          // lanes per group
	one   *group       // the group of a Pool without route
	nodes sync.Map     // with route: master address → *group
	busy  atomic.Int64 // operations in flight, batched or not
	// always gives a lane to an operation alone in flight too; see
	// ShareAlways.
	always bool
	calls  sync.Pool // of *call
	// moved, when set, hears of a slot that MOVED away from old, a master
	// it was known to be served by: the cache drops what it learnt there.
	moved atomic.Pointer[func(old string)]

	// life is how long a lane may take and write calls: laneLife, or
	// shorter in tests.
	life time.Duration

	writes  atomic.Uint64 // batches written
	written atomic.Uint64 // calls written
	cmds    atomic.Uint64 // commands written
	oldest  atomic.Int64  // the age in ns of the oldest lane that wrote a batch

	mu     sync.Mutex // guards closed against wg.Add
	closed bool
	wg     sync.WaitGroup
}

// Router is what auto-pipelining needs from a Pool over Redis Cluster, so
// that each call goes to a lane of the master that serves its keys.
// seshcluster's Pool implements it, and asserts so. wire knows no cluster
// client: the Router computes hash slots and keeps their owners.
type Router interface {
	// Slot returns the hash slot of key.
	Slot(key string) int
	// Owner returns the address of the master believed to serve slot, or
	// "" when no master is known. A wrong guess costs a MOVED reply.
	Owner(slot int) string
	// Moved records that slot is served by addr, as a MOVED reply said,
	// and returns the owner it knew before, or "".
	Moved(slot int, addr string) (old string)
	// Masters returns the addresses of the cluster's masters, as the
	// cluster client knows them now.
	Masters() ([]string, error)
	// NodeContext returns a new connection to the node at addr, which
	// follows no redirects and allows one writer and one reader at once.
	NodeContext(ctx context.Context, addr string) (redis.Conn, error)
}

// group is the lanes to one server.
type group struct {
	addr  string // "" for the server of a Pool without route
	slots []slot
	next  atomic.Uint32
}

// slot is where one lane lives, and is replaced.
type slot struct {
	lane    atomic.Pointer[lane]
	opening atomic.Bool
	shutTil atomic.Int64 // unix ns before which no lane opens, after a failure
}

// New returns Lanes of n per server for p, or nil when p's connections
// cannot be shared. With always, or while ShareAlways is set, every
// operation that may share a lane gets one, even alone in flight.
func New(p Pool, n int) *Lanes {
	b := &Lanes{pool: p, n: n, life: laneLife, always: ShareAlways.Load()}
	switch p := p.(type) {
	case Router:
		b.route = p
	case *redis.Pool:
		// redigo's connections allow one writer and one reader at once.
		b.one = &group{slots: make([]slot, n)}
	default:
		return nil
	}
	b.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	return b
}

// Route returns the Router of a Pool over Redis Cluster, or nil.
func (b *Lanes) Route() Router { return b.route }

// SetMoved makes f hear of each slot that MOVED away from old, a master it
// was known to be served by. It may be called while operations run.
func (b *Lanes) SetMoved(f func(old string)) { b.moved.Store(&f) }

// movedFrom tells the function of SetMoved, if any, that a slot left old.
func (b *Lanes) movedFrom(old string) {
	if f := b.moved.Load(); f != nil {
		(*f)(old)
	}
}

// Stats returns how many batches, calls and commands the lanes wrote.
func (b *Lanes) Stats() (batches, calls, cmds uint64) {
	return b.writes.Load(), b.written.Load(), b.cmds.Load()
}

// lane returns an open lane for cl, round robin within its server's group,
// or nil when none is: it then opens one in the background. With a Router,
// cl's keys must all be in one hash slot.
func (b *Lanes) lane(cl *call) *lane {
	g := b.one
	if b.route != nil {
		sl := slotOf(b.route, cl.cmds)
		if sl < 0 {
			return nil
		}
		addr := b.route.Owner(sl)
		if addr == "" {
			return nil
		}
		v, ok := b.nodes.Load(addr)
		if !ok {
			v, _ = b.nodes.LoadOrStore(addr, &group{addr: addr, slots: make([]slot, b.n)})
		}
		g = v.(*group)
	}
	i := g.next.Add(1) % uint32(len(g.slots))
	sl := &g.slots[i]
	if l := sl.lane.Load(); l != nil && !l.done.Load() {
		return l
	}
	b.open(g, sl)
	return nil
}

// open opens a lane in sl, one of g's, in the background, unless one is
// being opened, sl is shut after a failure or the batcher is closed.
func (b *Lanes) open(g *group, sl *slot) {
	if time.Now().UnixNano() < sl.shutTil.Load() || !sl.opening.CompareAndSwap(false, true) {
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		sl.opening.Store(false)
		return
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer sl.opening.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), laneDial)
		var c redis.Conn
		var err error
		if b.route != nil {
			c, err = b.route.NodeContext(ctx, g.addr)
		} else {
			c, err = b.pool.GetContext(ctx)
		}
		cancel()
		if err != nil {
			sl.shutTil.Store(time.Now().Add(laneRetry).UnixNano())
			return
		}
		if !b.start(sl, newLane(b, g.addr, c, time.Now())) {
			c.Close()
		}
	}()
}

// start makes l the lane of sl and starts its writer and reader, unless
// the Lanes are closed.
func (b *Lanes) start(sl *slot, l *lane) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(2)
	sl.lane.Store(l)
	go l.write()
	go l.read()
	return true
}

// Close retires every lane and waits for their goroutines to end.
func (b *Lanes) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	b.eachLane((*lane).retire)
	b.wg.Wait()
}

func (b *Lanes) getCall() *call { return b.calls.Get().(*call) }

// putCall recycles cl, which no lane holds any more.
func (b *Lanes) putCall(cl *call) {
	clear(cl.cmds)
	clear(cl.replies)
	cl.cmds, cl.replies, cl.err = cl.cmds[:0], cl.replies[:0], nil
	b.calls.Put(cl)
}

// noteAge records that a lane of age d wrote a batch.
func (b *Lanes) noteAge(d time.Duration) {
	for {
		o := b.oldest.Load()
		if int64(d) <= o || b.oldest.CompareAndSwap(o, int64(d)) {
			return
		}
	}
}

// SetLife sets how long a lane may take and write calls, laneLife unless
// set: for tests, before the first operation.
func (b *Lanes) SetLife(d time.Duration) { b.life = d }

// Oldest returns the age of the oldest lane that wrote a batch.
func (b *Lanes) Oldest() time.Duration { return time.Duration(b.oldest.Load()) }

// Queued returns how many calls wait, unwritten, on the lanes, counted
// lane by lane.
func (b *Lanes) Queued() int {
	n := 0
	b.eachLane(func(l *lane) {
		l.mu.Lock()
		n += len(l.queue)
		l.mu.Unlock()
	})
	return n
}

// eachLane calls f with every lane open now.
func (b *Lanes) eachLane(f func(*lane)) {
	each := func(g *group) {
		for i := range g.slots {
			if l := g.slots[i].lane.Load(); l != nil {
				f(l)
			}
		}
	}
	if b.one != nil {
		each(b.one)
	}
	b.nodes.Range(func(_, v any) bool {
		each(v.(*group))
		return true
	})
}
