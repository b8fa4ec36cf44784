// Package seshsentinel returns a *redis.Pool that always talks to the
// master elected by Redis Sentinel, through github.com/FZambia/sentinel.
//
//	pool, err := seshsentinel.New("mymaster", []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
//		redis.DialPassword(os.Getenv("REDIS_PASSWORD")))
//	if err != nil { ... }
//	defer pool.Close()
//	store, err := sesh.New(pool, sesh.Options{TrackUsers: true, Replicas: 1})
//
// # Finding the master
//
// Each new connection asks the sentinels, in turn, where the master is
// (SENTINEL get-master-addr-by-name), dials that address with the options
// given to [New], and checks with ROLE that it is a master before the pool
// hands it out. A sentinel is dialled for each question and closed after
// it, with 500ms timeouts, so closing the Pool leaves nothing open; the
// list of sentinels is refreshed from the sentinels (Discover) at most once
// a minute.
//
// # After a failover
//
// A pooled connection to a demoted master must not serve another write.
// Sentinel closes the client connections of an instance it turns into a
// replica; a connection idle for a second or more is checked with ROLE
// before it is reused; and a connection that gets an error reply only a
// replica gives, READONLY or MASTERDOWN, directly or within a script's
// error, is dropped from the pool when it is closed. Checking every
// connection on every borrow would cost each call a round trip. A
// connection to a master that died fails its next call with a read or
// write error, and is dropped too. So during a failover calls fail with
// clear errors, and once the sentinels name the new master, new
// connections reach it.
//
// # Limits and timeouts
//
// The pool keeps at most 64 idle connections for 5 minutes and opens at
// most 1024; a caller beyond that waits for a free one, bounded by its
// context. Connections dial within 5s, and each read and write is bounded
// by 5s, unless the options given to New say otherwise. The options apply
// to the master only: sentinels are dialled without them, so without a
// password or TLS.
package seshsentinel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/FZambia/sentinel"
	"github.com/gomodule/redigo/redis"
)

// Pool and dial settings; see the package comment.
const (
	sentinelTimeout = 500 * time.Millisecond
	dialTimeout     = 5 * time.Second
	readTimeout     = 5 * time.Second
	writeTimeout    = 5 * time.Second
	maxIdle         = 64
	maxActive       = 1024
	idleTimeout     = 5 * time.Minute
	checkAfter      = time.Second // idle time after which ROLE is checked on borrow
	discoverEvery   = time.Minute
)

// New returns a pool of connections to the current master of masterName,
// found through the sentinels at sentinelAddrs ("host:port"). opts apply
// when dialling the master. New does no I/O; it returns an error for an
// empty masterName or address, and for no addresses.
func New(masterName string, sentinelAddrs []string, opts ...redis.DialOption) (*redis.Pool, error) {
	if masterName == "" {
		return nil, errors.New("seshsentinel: new: empty master name")
	}
	if len(sentinelAddrs) == 0 {
		return nil, errors.New("seshsentinel: new: no sentinel addresses")
	}
	if i := slices.Index(sentinelAddrs, ""); i >= 0 {
		return nil, fmt.Errorf("seshsentinel: new: sentinel address %d is empty", i)
	}
	s := &sentinel.Sentinel{
		Addrs:      slices.Clone(sentinelAddrs), // the sentinel reorders it
		MasterName: masterName,
		Dial: func(addr string) (redis.Conn, error) {
			return redis.Dial("tcp", addr,
				redis.DialConnectTimeout(sentinelTimeout),
				redis.DialReadTimeout(sentinelTimeout),
				redis.DialWriteTimeout(sentinelTimeout))
		},
	}
	// A pool that keeps no idle connection: none outlives its question.
	s.Pool = func(addr string) *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return s.Dial(addr) }}
	}
	m := &master{
		s: s,
		opts: append([]redis.DialOption{
			redis.DialConnectTimeout(dialTimeout),
			redis.DialReadTimeout(readTimeout),
			redis.DialWriteTimeout(writeTimeout),
		}, opts...),
	}
	return &redis.Pool{
		DialContext:         m.dial,
		TestOnBorrowContext: m.test,
		MaxIdle:             maxIdle,
		MaxActive:           maxActive,
		IdleTimeout:         idleTimeout,
		Wait:                true,
	}, nil
}

// master dials whichever server the sentinels name master.
type master struct {
	// mu serializes the questions to s: its MasterAddr and Discover reorder
	// and extend its address list without a lock of their own, so two dials
	// at once would race on it.
	mu         sync.Mutex
	s          *sentinel.Sentinel
	opts       []redis.DialOption
	discovered atomic.Int64 // when Discover last started, in Unix ns
}

// dial connects to the current master and checks its role.
func (m *master) dial(ctx context.Context) (redis.Conn, error) {
	addr, err := m.addr(ctx)
	if err != nil {
		return nil, fmt.Errorf("seshsentinel: dial: asking the sentinels for %q: %w", m.s.MasterName, err)
	}
	c, err := redis.DialContext(ctx, "tcp", addr, m.opts...)
	if err != nil {
		return nil, fmt.Errorf("seshsentinel: dial: master %q at %s: %w", m.s.MasterName, addr, err)
	}
	if !sentinel.TestRole(ctxConn{c, ctx}, "master") {
		c.Close()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("seshsentinel: dial: %w", err)
		}
		return nil, fmt.Errorf("seshsentinel: dial: %s, named master of %q by the sentinels, is not a master", addr, m.s.MasterName)
	}
	m.discover()
	return &conn{Conn: c}, nil
}

// addr asks the sentinels for the master's address, within ctx. Each
// sentinel answers within its timeouts, so an abandoned question ends soon.
func (m *master) addr(ctx context.Context) (string, error) {
	type result struct {
		addr string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		m.mu.Lock()
		a, err := m.s.MasterAddr()
		m.mu.Unlock()
		ch <- result{a, err}
	}()
	select {
	case r := <-ch:
		return r.addr, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// discover adds the sentinels the sentinels know of to the list, in the
// background and at most once every discoverEvery.
func (m *master) discover() {
	now := time.Now().UnixNano()
	last := m.discovered.Load()
	if last != 0 && now-last < int64(discoverEvery) || !m.discovered.CompareAndSwap(last, now) {
		return
	}
	go func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.s.Discover() //nolint:errcheck // the list stays as it was
	}()
}

// test checks, before reuse, that a connection idle for checkAfter or more
// still reaches a master.
func (m *master) test(ctx context.Context, c redis.Conn, idle time.Time) error {
	if time.Since(idle) < checkAfter {
		return nil
	}
	if !sentinel.TestRole(ctxConn{c, ctx}, "master") {
		return errors.New("seshsentinel: not a master any more")
	}
	return nil
}

// ctxConn runs Do within ctx, for sentinel.TestRole.
type ctxConn struct {
	redis.Conn
	ctx context.Context
}

func (c ctxConn) Do(cmd string, args ...any) (any, error) {
	return redis.DoContext(c.Conn, c.ctx, cmd, args...)
}
