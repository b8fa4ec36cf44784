package wire_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// errBroken is the read error of a fake connection that broke.
var errBroken = errors.New("fake: connection broken")

// server is a fake Redis: each connection it dials answers a command with
// its first argument ("GET k" with "k"), or OK without one. It records what
// each connection wrote, can hold every reply until released, and can
// break the connection that reads the reply to one command.
type server struct {
	mu      sync.Mutex
	conns   []*fakeConn
	gate    chan struct{} // closed: replies flow; open: each reply waits
	breakOn string        // a command whose reply breaks its connection, once
}

func newServer() *server {
	s := &server{gate: make(chan struct{})}
	close(s.gate)
	return s
}

// pool returns a Pool of s's connections.
func (s *server) pool(t *testing.T) *redis.Pool {
	p := &redis.Pool{Dial: func() (redis.Conn, error) { return s.dial(), nil }}
	t.Cleanup(func() { p.Close() })
	return p
}

func (s *server) dial() *fakeConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &fakeConn{s: s, in: make(chan string, 1<<16)}
	s.conns = append(s.conns, c)
	return c
}

// hold makes replies wait until release.
func (s *server) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *server) release() {
	s.mu.Lock()
	close(s.gate)
	s.mu.Unlock()
}

func (s *server) gateNow() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gate
}

// writers returns the connections that were written cmd, in dial order.
func (s *server) writers(cmd string) []*fakeConn {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	var out []*fakeConn
	for _, c := range conns {
		if slices.Contains(c.log(), cmd) {
			out = append(out, c)
		}
	}
	return out
}

// await waits until some connection was written cmd.
func (s *server) await(t *testing.T, cmd string) {
	t.Helper()
	for start := time.Now(); len(s.writers(cmd)) == 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%q was never written", cmd)
		}
	}
}

// fakeConn is one connection to a server.
type fakeConn struct {
	s  *server
	in chan string // written, not yet answered

	mu      sync.Mutex
	pending []string // sent, not yet flushed
	written []string // flushed, in order
	unread  int      // flushed, not yet received
	err     error
}

func (c *fakeConn) log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.written)
}

func (c *fakeConn) Send(cmd string, args ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	parts := []string{cmd}
	for _, a := range args {
		parts = append(parts, fmt.Sprint(a))
	}
	c.pending = append(c.pending, strings.Join(parts, " "))
	return nil
}

func (c *fakeConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	for _, p := range c.pending {
		c.written = append(c.written, p)
		c.in <- p
	}
	c.unread += len(c.pending)
	c.pending = c.pending[:0]
	return nil
}

func (c *fakeConn) Receive() (any, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.mu.Unlock()
	cmd := <-c.in
	<-c.s.gateNow()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unread--
	c.s.mu.Lock()
	broke := cmd == c.s.breakOn
	if broke {
		c.s.breakOn = ""
	}
	c.s.mu.Unlock()
	switch {
	case broke:
		c.err = errBroken
		return nil, c.err
	case cmd == "QUIT":
		c.err = io.EOF
		return "OK", nil
	}
	if _, arg, ok := strings.Cut(cmd, " "); ok {
		key, _, _ := strings.Cut(arg, " ")
		return key, nil
	}
	return "OK", nil
}

func (c *fakeConn) Do(cmd string, args ...any) (any, error) {
	if cmd != "" {
		if err := c.Send(cmd, args...); err != nil {
			return nil, err
		}
	}
	if err := c.Flush(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	n := c.unread
	c.mu.Unlock()
	var rs []any
	for range n {
		v, err := c.Receive()
		if err != nil {
			return nil, err
		}
		rs = append(rs, v)
	}
	if cmd == "" {
		return rs, nil
	}
	return rs[len(rs)-1], nil
}

func (c *fakeConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *fakeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = io.EOF
	}
	return nil
}
