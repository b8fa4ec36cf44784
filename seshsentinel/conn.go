package seshsentinel

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

var errDemoted = errors.New("seshsentinel: the server is a replica now (READONLY)")

// conn is a connection to the master that breaks itself, so that the pool
// drops it, once the server answers READONLY: it has been made a replica.
type conn struct {
	redis.Conn
	demoted atomic.Bool
}

var (
	_ redis.ConnWithContext = (*conn)(nil)
	_ redis.ConnWithTimeout = (*conn)(nil)
)

// Err returns errDemoted once the server has answered READONLY.
func (c *conn) Err() error {
	if c.demoted.Load() {
		return errDemoted
	}
	return c.Conn.Err()
}

func (c *conn) Do(cmd string, args ...any) (any, error) {
	return c.check(c.Conn.Do(cmd, args...))
}

func (c *conn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	return c.check(redis.DoContext(c.Conn, ctx, cmd, args...))
}

func (c *conn) DoWithTimeout(d time.Duration, cmd string, args ...any) (any, error) {
	return c.check(redis.DoWithTimeout(c.Conn, d, cmd, args...))
}

func (c *conn) Receive() (any, error) {
	return c.check(c.Conn.Receive())
}

func (c *conn) ReceiveContext(ctx context.Context) (any, error) {
	return c.check(redis.ReceiveContext(c.Conn, ctx))
}

func (c *conn) ReceiveWithTimeout(d time.Duration) (any, error) {
	return c.check(redis.ReceiveWithTimeout(c.Conn, d))
}

// check marks c demoted when a reply, or a reply of a pipeline, is READONLY.
func (c *conn) check(v any, err error) (any, error) {
	if readOnly(err) {
		c.demoted.Store(true)
	}
	if vs, ok := v.([]any); ok {
		for _, r := range vs {
			if e, ok := r.(redis.Error); ok && readOnly(e) {
				c.demoted.Store(true)
			}
		}
	}
	return v, err
}

// readOnly reports whether err is Redis refusing a write on a replica:
// READONLY as the reply, or as the cause of a failed script, which Redis 6.2
// reports as "ERR Error running script ...: -READONLY ..." and Redis 7 as
// "READONLY ... script: ...".
func readOnly(err error) bool {
	var e redis.Error
	if !errors.As(err, &e) {
		return false
	}
	s := string(e)
	return strings.HasPrefix(s, "READONLY ") ||
		strings.HasPrefix(s, "ERR ") && strings.Contains(s, "-READONLY You can't write against a read only replica")
}
