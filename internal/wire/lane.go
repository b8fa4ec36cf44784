package wire

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

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
	b    *Lanes
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

// newLane returns a lane over c, born at now, for the group at addr.
func newLane(b *Lanes, addr string, c redis.Conn, now time.Time) *lane {
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
	Discard(l.c)
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
