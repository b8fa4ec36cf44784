package sesh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// tracker keeps one CLIENT TRACKING connection to one server: it turns
// tracking on, reads the invalidations and heartbeats that arrive on it,
// takes a new connection when it breaks, and publishes the heartbeats. What
// it hears goes to its sink. A tracker knows one server and one way to reach
// it (dial), so a cache over several servers can run one per server.
type tracker struct {
	dial     func(context.Context) (conn, error) // a connection to the tracked server
	pub      func(context.Context) (conn, error) // the Store's way to write, for heartbeats
	prefix   string                              // the Store's Prefix + ":"
	channel  atomic.Pointer[string]              // the heartbeat channel, private to this tracker
	shard    *shardChannel                       // on Cluster: picks a sharded channel per connection
	cur      atomic.Pointer[redis.Conn]          // the tracking connection, for kick
	maxStale time.Duration                       // silence after which the connection is given up
	every    time.Duration                       // the heartbeat period
	now      func() int64                        // the sink's clock, for heartbeats
	sink     sink

	ctx  context.Context // done once stop is called
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// sink is what a tracker reports to.
type sink interface {
	up(start int64)        // tracking is on, from a subscription sent at start
	down()                 // tracking is off
	heard(sent int64)      // a heartbeat published at sent arrived
	invalidate(key []byte) // key changed
	flushed()              // every key changed (FLUSHALL, FLUSHDB)
	gone()                 // the server is no Cluster master: the tracker has ended
	unheard(epoch uint64)  // a heartbeat published in epoch reached no one
	epoch() uint64
}

// start turns tracking on, within ctx, and then tends it from two
// goroutines until close. With probe, it first refuses a Redis Cluster.
func (t *tracker) start(ctx context.Context, probe bool) error {
	c, err := t.connect(ctx, probe)
	if err != nil {
		return err
	}
	t.ctx, t.stop = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.run(c)
	go t.beat()
	return nil
}

// startLater is start in the background: tracking comes on when it can,
// and until then the sink is down.
func (t *tracker) startLater() {
	t.ctx, t.stop = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.run(nil)
	go t.beat()
}

// close stops the tracker and waits for its goroutines: at once when Redis
// answers, and otherwise within about maxStale.
func (t *tracker) close() {
	if t.stop == nil {
		return // never started
	}
	t.stop()
	// The reader waits for a message: this one, or its read timeout.
	ctx, cancel := context.WithTimeout(context.Background(), t.every)
	t.publish(ctx, "close")
	cancel()
	t.wg.Wait()
}

// connect takes a connection and makes it the tracking connection. With
// probe, it first refuses a Redis Cluster.
func (t *tracker) connect(ctx context.Context, probe bool) (redis.Conn, error) {
	c, err := t.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("CacheSize: turning CLIENT TRACKING on: %w", err)
	}
	if probe {
		c.Send("CLUSTER", "INFO")
	}
	c.Send("CLIENT", "ID")
	rs, err := c.Pipe(1 + b2i(probe))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("CacheSize: turning CLIENT TRACKING on: %w", err)
	}
	if info, ok := rs[0].([]byte); probe && ok && strings.HasPrefix(string(info), "cluster_") {
		c.Close()
		return nil, errCluster
	}
	id, err := redis.Int64(rs[len(rs)-1], nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %w", errNoClientTracking, err)
	}
	start := t.now()
	c.Send("CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", t.prefix)
	c.Send("CLIENT", "SETNAME", trackingName)
	if t.shard == nil {
		c.Send("SUBSCRIBE", invalidations, *t.channel.Load())
	}
	// The connection now holds tracking state: it never goes back to the
	// pool whole.
	rs, err = c.Pipe(3 - b2i(t.shard != nil))
	if err == nil {
		for _, r := range rs {
			if e, ok := r.(redis.Error); ok {
				err = fmt.Errorf("%w: %w", errNoClientTracking, e)
				break
			}
		}
	}
	if err == nil && t.shard != nil {
		var ch string
		if ch, err = t.shard.subscribe(&c); err == nil {
			t.channel.Store(&ch)
			_, err = c.Do("SUBSCRIBE", invalidations)
		}
	}
	if err != nil {
		c.Drop()
		return nil, fmt.Errorf("CacheSize: turning CLIENT TRACKING on: %w", err)
	}
	t.sink.up(start)
	return c.Raw(), nil
}

// run reads the tracking connection, and takes a new one each time it
// breaks, until close.
func (t *tracker) run(c redis.Conn) {
	defer t.wg.Done()
	if c == nil {
		c = t.reconnect() // startLater
	}
	for c != nil {
		t.cur.Store(&c)
		t.read(c)
		t.cur.Store(nil)
		t.sink.down()
		discard(c)
		c = t.reconnect()
	}
}

// reconnect takes a new tracking connection, trying again after longer and
// longer pauses. It returns nil once close has started.
func (t *tracker) reconnect() redis.Conn {
	for wait := time.Duration(0); ; wait = min(max(2*wait, 10*time.Millisecond), maxRetry) {
		select {
		case <-t.ctx.Done():
			return nil
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(t.ctx, setupTimeout)
		c, err := t.connect(ctx, false)
		cancel()
		if errors.Is(err, errNotMaster) {
			// A Cluster node that serves no slot now: this tracker ends,
			// and the cache hears the node again if it masters slots again.
			t.stop()
			t.sink.gone()
			return nil
		}
		if err != nil {
			continue
		}
		if t.ctx.Err() != nil {
			// close may have published before this subscription.
			t.sink.down()
			discard(c)
			return nil
		}
		return c
	}
}

// read handles messages until the connection breaks, stays silent for
// maxStale, or close starts.
func (t *tracker) read(c redis.Conn) {
	for {
		v, err := receive(c, t.maxStale)
		if err != nil {
			return
		}
		m, ok := v.([]any)
		if !ok || len(m) != 3 {
			continue
		}
		switch kind, _ := m[0].([]byte); string(kind) {
		case "message", "smessage":
		case "sunsubscribe":
			// The heartbeat channel's slot left this master: this
			// connection proves nothing any more.
			return
		default:
			continue
		}
		switch ch, _ := m[1].([]byte); string(ch) {
		case invalidations:
			keys, ok := m[2].([]any)
			if !ok {
				t.sink.flushed() // nil: every key was invalidated
				continue
			}
			for _, k := range keys {
				if k, ok := k.([]byte); ok {
					t.sink.invalidate(k)
				}
			}
		case *t.channel.Load():
			if t.ctx.Err() != nil {
				return
			}
			p, _ := m[2].([]byte)
			if sent, err := strconv.ParseInt(string(p), 10, 64); err == nil {
				t.sink.heard(sent)
			}
		}
	}
}

// beat publishes a heartbeat every period until close.
func (t *tracker) beat() {
	defer t.wg.Done()
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(t.ctx, t.every)
		t.publish(ctx, strconv.FormatInt(t.now(), 10))
		cancel()
	}
}

// publish sends msg to the tracking connection through the way the Store
// writes. When tracking is up and the message reaches no one, the server
// the Store writes to is not the one the tracking connection listens to (a
// failover) or that connection has just died: the sink hears of it at once.
//
// On Cluster the channel is a sharded one, of a slot the tracked master
// serves, and SPUBLISH reaches only the subscribers of the master that runs
// it: a heartbeat heard proves that the Store writes that slot to the master
// it hears.
func (t *tracker) publish(ctx context.Context, msg string) {
	epoch := t.sink.epoch()
	ch := t.channel.Load()
	if ch == nil {
		return // no channel picked yet
	}
	c, err := t.pub(ctx)
	if err != nil {
		return
	}
	var v any
	if t.shard != nil {
		// SPUBLISH in a script: a replica runs a plain SPUBLISH for its
		// master's slot, but refuses a script (MOVED), so the count is the
		// master's.
		v, err = c.Eval(spublish, *ch, msg)
	} else {
		v, err = c.Do("PUBLISH", *ch, msg)
	}
	n, err := redis.Int(v, err)
	c.Close()
	if err == nil && n == 0 {
		t.sink.unheard(epoch)
	}
}

// shardChannel picks, for a tracker on a Cluster master, a heartbeat
// channel of a hash slot that master serves. It tries channel names whose
// slot the router believes the master serves, and the master itself
// settles it: SSUBSCRIBE to a slot it does not serve gets MOVED.
type shardChannel struct {
	base  string // the cache's channel name, before the hash tag
	addr  string // the master's
	route router
}

// spublish is SPUBLISH of a heartbeat, run only by the master of its
// channel's slot. KEYS: the channel. ARGV: the message.
var spublish = newScript(1, `return redis.call('SPUBLISH', KEYS[1], ARGV[1])`)

// errNotMaster says a Cluster node serves no slot.
var errNotMaster = errors.New("not a Cluster master")

// maxShardTries bounds the SSUBSCRIBEs a tracker tries on a connection.
const maxShardTries = 16

// subscribe subscribes c to a sharded channel of a slot the master serves,
// and returns the channel.
func (sc *shardChannel) subscribe(c *conn) (string, error) {
	// A replica takes SSUBSCRIBE for its master's slots too.
	role, err := redis.Values(c.Do("ROLE"))
	if err != nil {
		return "", err
	}
	if r, _ := role[0].([]byte); string(r) != "master" {
		return "", fmt.Errorf("%w: %s is a %s", errNotMaster, sc.addr, r)
	}
	tries := 0
	for i := 0; tries < maxShardTries; i++ {
		ch := sc.base + ":{" + strconv.Itoa(i) + "}"
		if i < 4*16384 && sc.route.Owner(sc.route.Slot(ch)) != sc.addr {
			continue
		}
		tries++
		_, err := c.Do("SSUBSCRIBE", ch)
		if err == nil {
			return ch, nil
		}
		e, ok := err.(redis.Error)
		if !ok {
			return "", err
		}
		f := strings.Fields(string(e))
		if len(f) != 3 || f[0] != "MOVED" {
			return "", fmt.Errorf("%w: %w", errNoClientTracking, e)
		}
		if slot, err := strconv.Atoi(f[1]); err == nil {
			sc.route.Moved(slot, f[2])
		}
	}
	return "", fmt.Errorf("%w: %s serves no slot that SSUBSCRIBE found", errNotMaster, sc.addr)
}

// kick breaks the tracking connection, if any, so that the tracker
// connects again and checks what its node is now.
func (t *tracker) kick() {
	if c := t.cur.Load(); c != nil {
		(*c).Close()
	}
}
