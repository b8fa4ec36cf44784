package sesh

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Auto-pipelining.
//
// A Store with batching keeps a few lanes: each a connection of its Pool,
// with one goroutine that writes and one that reads. An operation that finds
// another in flight hands each round trip to a lane as a call, the commands
// of one round trip. The writer takes every call queued since its last
// write, sends their commands in order, each call's contiguous, and flushes
// them in one write. The reader reads the replies in the same order and
// gives each call its own. redigo allows one writer and one reader on a
// connection at once, which is all this needs.
//
// An operation that finds nothing else in flight, one that waits for
// replicas, and any operation while no lane is open take a connection of
// their own, as without batching.
//
// A lane lives at most laneLife: it takes no call, and writes none, once
// older, however busy. Then, or once its connection reports an error
// (seshsentinel's do when the server answers as a replica), it retires: it
// writes nothing more, hands the calls it has not written back to their
// callers as errUnsent, to run elsewhere, reads the replies of those it
// wrote, and closes its connection without returning it to the Pool; the
// next lane takes a new one. So a lane follows a Sentinel failover within
// laneLife, and an idle Store holds no lane after laneLife.
//
// Cancellation leaves nothing behind that runs later. A caller that gives
// up on its call withdraws it unless the writer has claimed it: the two
// race on one compare-and-swap of the call's state, so a call is either
// written or abandoned, never both. An abandoned call leaves the queue at
// once, so the queue holds only calls whose callers still wait. A lane has
// at most laneBatches batches written and not yet answered: when Redis
// stalls, callers that give up meanwhile leave nothing written, and a
// stall costs at most those batches afterwards, not one call per retry.

// Auto-pipelining defaults; see Options.Pipelines.
const (
	defaultPipelines = 2
	maxPipelines     = 64

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

// batcher holds a Store's lanes: a group of them for the one server of
// a Pool, or for each master of a Redis Cluster.
type batcher struct {
	pool  Pool
	route router       // nil unless the Pool is a Redis Cluster's
	n     int          // lanes per group
	one   *group       // the group of a Pool without route
	nodes sync.Map     // with route: master address → *group
	busy  atomic.Int64 // operations in flight, batched or not
	// always gives a lane to an operation alone in flight too; see
	// internal/testknob.
	always bool
	calls  sync.Pool // of *call
	// moved, when set, hears of a slot that MOVED away from old, a master
	// it was known to be served by: the cache drops what it learnt there.
	moved func(old string)

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

// router is what auto-pipelining needs from a Pool over Redis Cluster, so
// that each call goes to a lane of the master that serves its keys.
// seshcluster's Pool implements it. The root package knows no cluster
// client: the router computes hash slots and keeps their owners.
type router interface {
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

// call is one round trip of one operation.
type call struct {
	cmds    []command
	replies []any
	err     error
	done    chan struct{} // gets one value when replies or err is set
	// state is queued until either the writer claims the call (claimed)
	// or its caller gives up on it first (abandoned).
	state atomic.Int32
}

// The states of a call.
const (
	queued int32 = iota
	claimed
	abandoned
)

type command struct {
	name string
	args []any
}

// lane is one shared connection, its writer and its reader.
type lane struct {
	b    *batcher
	addr string // its group's
	c    redis.Conn
	born time.Time
	wake chan struct{} // the writer has calls or must retire
	sent chan []*call  // batches written, not yet answered, in order
	free chan []*call  // batches the writer may fill; empty while laneBatches are in flight

	mu      sync.Mutex
	queue   []*call // not yet written; none abandoned
	closing bool    // takes no more calls, writes no more
	done    atomic.Bool
}

// newBatcher returns a batcher of n lanes per server for p, or nil when p's
// connections cannot be shared.
func newBatcher(p Pool, n int) *batcher {
	b := &batcher{pool: p, n: n, life: laneLife}
	switch p := p.(type) {
	case router:
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

// lane returns an open lane for cl, round robin within its server's group,
// or nil when none is: it then opens one in the background. With a router,
// cl's keys must all be in one hash slot.
func (b *batcher) lane(cl *call) *lane {
	g := b.one
	if b.route != nil {
		sl := b.slotOf(cl.cmds)
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

// slotOf returns the hash slot of every key of cmds, or -1 when they name
// none, span slots or hold a command it does not know.
func (b *batcher) slotOf(cmds []command) int {
	slot := -1
	for _, cm := range cmds {
		var keys []any
		switch cm.name {
		case "EVAL", "EVALSHA":
			n, ok := cm.args[1].(int)
			if !ok || n < 1 || len(cm.args) < 2+n {
				return -1
			}
			keys = cm.args[2 : 2+n]
		case "DEL", "EXISTS":
			keys = cm.args
		case "GET", "PTTL", "TTL", "SET", "GETDEL", "ZREM", "ZRANGEBYSCORE", "SPUBLISH":
			keys = cm.args[:1]
		default:
			return -1
		}
		for _, k := range keys {
			ks, ok := k.(string)
			if !ok {
				return -1
			}
			if s := b.route.Slot(ks); slot == -1 {
				slot = s
			} else if s != slot {
				return -1
			}
		}
	}
	return slot
}

// open opens a lane in sl, one of g's, in the background, unless one is
// being opened, sl is shut after a failure or the batcher is closed.
func (b *batcher) open(g *group, sl *slot) {
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
		l := newLane(b, g.addr, c, time.Now())
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.wg.Add(2)
		sl.lane.Store(l)
		b.mu.Unlock()
		go l.write()
		go l.read()
	}()
}

// close retires every lane and waits for their goroutines to end.
func (b *batcher) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	retire := func(g *group) {
		for i := range g.slots {
			if l := g.slots[i].lane.Load(); l != nil {
				l.retire()
			}
		}
	}
	if b.one != nil {
		retire(b.one)
	}
	b.nodes.Range(func(_, v any) bool {
		retire(v.(*group))
		return true
	})
	b.wg.Wait()
}

func (b *batcher) getCall() *call { return b.calls.Get().(*call) }

// putCall recycles cl, which no lane holds any more.
func (b *batcher) putCall(cl *call) {
	clear(cl.cmds)
	clear(cl.replies)
	cl.cmds, cl.replies, cl.err = cl.cmds[:0], cl.replies[:0], nil
	b.calls.Put(cl)
}

// newLane returns a lane over c, born at now, for the group at addr.
func newLane(b *batcher, addr string, c redis.Conn, now time.Time) *lane {
	l := &lane{
		b: b, addr: addr, c: c, born: now,
		wake: make(chan struct{}, 1),
		sent: make(chan []*call, laneBatches),
		free: make(chan []*call, laneBatches),
	}
	for range laneBatches {
		l.free <- nil
	}
	return l
}

// aged reports whether l is too old at now to take or write a call.
func (l *lane) aged(now time.Time) bool { return now.Sub(l.born) >= l.b.life }

// submit queues cl for the writer. It returns errUnsent when the lane takes
// no more calls.
func (l *lane) submit(cl *call) error {
	if l.aged(time.Now()) {
		l.retire()
		return errUnsent
	}
	cl.err = nil // an earlier round trip's
	cl.state.Store(queued)
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return errUnsent
	}
	l.queue = append(l.queue, cl)
	first := len(l.queue) == 1
	l.mu.Unlock()
	if first {
		l.poke()
	}
	return nil
}

// abandon withdraws cl, whose caller gave up on it, and reports true,
// unless the writer has claimed it: then it may be written, and its
// replies go to the reader as usual. A withdrawn call leaves the queue at
// once; one the writer holds in its batch, the writer recycles.
func (l *lane) abandon(cl *call) bool {
	l.mu.Lock()
	if !cl.state.CompareAndSwap(queued, abandoned) {
		l.mu.Unlock()
		return false
	}
	i := slices.Index(l.queue, cl)
	if i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
	}
	l.mu.Unlock()
	if i >= 0 {
		l.b.putCall(cl)
	}
	return true
}

func (l *lane) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// retire makes l take and write no more calls; it reads the replies of
// those it wrote, then ends.
func (l *lane) retire() {
	l.done.Store(true)
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.poke()
}

// write sends the queued calls, a batch per write, until l retires.
func (l *lane) write() {
	defer l.b.wg.Done()
	defer close(l.sent)
	life := time.NewTimer(l.b.life)
	defer life.Stop()
	for {
		batch, ok := l.gather(life.C)
		if !ok {
			return
		}
		if batch == nil {
			continue
		}
		l.send(batch)
	}
}

// gather waits for queued calls and for room for a batch, then takes the
// queue and claims its calls. It returns a nil batch when it must be
// called again, and false once l has retired: then every call still
// queued has been handed back unsent.
func (l *lane) gather(life <-chan time.Time) ([]*call, bool) {
	l.mu.Lock()
	n, closing := len(l.queue), l.closing
	l.mu.Unlock()
	switch {
	case closing:
		l.unsend(l.takeQueue(nil))
		return nil, false
	case n == 0:
		select {
		case <-l.wake:
		case <-life:
			l.retire()
		}
		return nil, true
	}
	var batch []*call
	select {
	case batch = <-l.free:
	case <-l.wake:
		return nil, true // a hint only: look again
	case <-life:
		l.retire()
		return nil, true
	}
	// Let the callers that are runnable queue their calls too: one write
	// for many is what the lane is for.
	runtime.Gosched()
	batch = l.claim(l.takeQueue(batch))
	now := time.Now()
	if l.aged(now) || l.done.Load() {
		l.retire()
		l.unsend(batch)
		l.free <- batch[:0]
		return nil, true
	}
	if len(batch) == 0 {
		l.free <- batch
		return nil, true
	}
	l.b.noteAge(now.Sub(l.born))
	return batch, true
}

// takeQueue appends the queued calls to batch and empties the queue.
func (l *lane) takeQueue(batch []*call) []*call {
	l.mu.Lock()
	batch = append(batch, l.queue...)
	clear(l.queue)
	l.queue = l.queue[:0]
	l.mu.Unlock()
	return batch
}

// claim keeps the calls of batch that the writer wins from their callers,
// and recycles those abandoned meanwhile.
func (l *lane) claim(batch []*call) []*call {
	kept := batch[:0]
	for _, cl := range batch {
		if cl.state.CompareAndSwap(queued, claimed) {
			kept = append(kept, cl)
		} else {
			l.b.putCall(cl)
		}
	}
	clear(batch[len(kept):])
	return kept
}

// unsend hands the calls of batch, claimed or not, back to their callers
// unwritten.
func (l *lane) unsend(batch []*call) {
	for _, cl := range batch {
		if cl.state.Load() != claimed && !cl.state.CompareAndSwap(queued, claimed) {
			l.b.putCall(cl)
			continue
		}
		cl.err = errUnsent
		cl.done <- struct{}{}
	}
	clear(batch)
}

// send writes batch, calls its writer claimed, in one flush and hands it
// to the reader. A write that fails retires the lane.
func (l *lane) send(batch []*call) {
	n := 0 // commands
	for i, cl := range batch {
		n += len(cl.cmds)
		for _, cm := range cl.cmds {
			if err := l.c.Send(cm.name, cm.args...); err != nil {
				// cl may be written in part: the reader fails it. Those
				// after it were not written at all.
				l.retire()
				l.unsend(batch[i+1:])
				l.sent <- batch[:i+1]
				return
			}
		}
	}
	err := l.c.Flush()
	l.sent <- batch
	if err != nil {
		l.retire()
		return
	}
	l.b.writes.Add(1)
	l.b.written.Add(uint64(len(batch)))
	l.b.cmds.Add(uint64(n))
}

// noteAge records that a lane of age d wrote a batch.
func (b *batcher) noteAge(d time.Duration) {
	for {
		o := b.oldest.Load()
		if int64(d) <= o || b.oldest.CompareAndSwap(o, int64(d)) {
			return
		}
	}
}

// read gives each written call its replies, in order, and closes the
// connection once the writer has ended.
func (l *lane) read() {
	defer l.b.wg.Done()
	var broken error
	for batch := range l.sent {
		for _, cl := range batch {
			broken = l.answer(cl, broken)
		}
		clear(batch)
		l.free <- batch[:0]
	}
	if broken != nil {
		l.c.Close()
		return
	}
	// Not back to the Pool: a Pool could hand this connection to the next
	// lane at once, and the next lane must be a new connection.
	discard(l.c)
}

// answer reads cl's replies, unless the connection broke before, and
// hands cl back to its caller. It returns the error that broke the
// connection, if any.
func (l *lane) answer(cl *call, broken error) error {
	if broken == nil {
		for range cl.cmds {
			v, err := l.c.Receive()
			if err != nil {
				if e, ok := err.(redis.Error); ok {
					v = e
				} else {
					broken = err
					break
				}
			}
			cl.replies = append(cl.replies, v)
		}
		if broken == nil && l.c.Err() != nil {
			// Answered, but the connection will not serve again: for
			// seshsentinel, the server now answers as a replica.
			l.retire()
		}
	}
	if broken != nil {
		l.retire()
		cl.replies = cl.replies[:0]
		cl.err = broken
	}
	cl.done <- struct{}{}
	return broken
}
