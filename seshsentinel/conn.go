package seshsentinel

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

var errDemoted = errors.New("seshsentinel: the server is a replica now (READONLY or MASTERDOWN)")

// conn is a connection to the master that breaks itself, so that the pool
// drops it, once the server answers as a replica: it has been demoted.
type conn struct {
	redis.Conn
	demoted atomic.Bool
}

var (
	_ redis.ConnWithContext = (*conn)(nil)
	_ redis.ConnWithTimeout = (*conn)(nil)
)

// Err returns errDemoted once the server has answered as a replica.
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

// check marks c demoted when a reply, or a reply of a pipeline, says the
// server is not the master.
func (c *conn) check(v any, err error) (any, error) {
	if notMaster(err) {
		c.demoted.Store(true)
	}
	if vs, ok := v.([]any); ok {
		for _, r := range vs {
			if e, ok := r.(redis.Error); ok && notMaster(e) {
				c.demoted.Store(true)
			}
		}
	}
	return v, err
}

// notMaster reports whether err is a reply that only a replica gives:
// READONLY to a write, or MASTERDOWN when it has lost its master and may not
// serve stale data. LOADING is not one: a master that restarted answers it
// while it loads its data, and a loading replica answers READONLY to the
// first write after.
//
// Redis 7 refuses a script's write as "READONLY … script: …", but Redis 6.2
// and before put the refusal inside the script's error ("ERR Error running
// script (…): @user_script:1: @user_script: 1: -READONLY …"), and so does
// Redis 7 for a script that raises a redis.pcall error again ("ERR
// user_script:1: READONLY …"). So the code counts at the start of err or of
// any part after ": ", with or without the '-' of a quoted reply, in
// capitals and as a whole word: "readonly" inside a script's own message
// is not Redis's verdict.
func notMaster(err error) bool {
	var e redis.Error
	if !errors.As(err, &e) {
		return false
	}
	msg := string(e)
	for {
		code, _, _ := strings.Cut(strings.TrimPrefix(msg, "-"), " ")
		if code == "READONLY" || code == "MASTERDOWN" {
			return true
		}
		var more bool
		if _, msg, more = strings.Cut(msg, ": "); !more {
			return false
		}
	}
}
