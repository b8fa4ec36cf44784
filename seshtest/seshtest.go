// Package seshtest helps an application test its use of sesh on miniredis,
// with no Redis server.
//
// Time does not pass by itself in miniredis: [miniredis.Miniredis.FastForward]
// expires keys whose TTL ran out, and [miniredis.Miniredis.SetTime] sets the
// clock that the TIME command and scripts read. sesh reads that clock for
// Options.MaxAge and for pruning the user index, so a test that moves only
// FastForward sees a rotated chain of tokens outlive its MaxAge and expired
// index entries stay counted. [Advance] moves both together.
package seshtest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
)

// Start starts a miniredis server for the test and returns it with a Pool
// that dials it; both are closed when the test ends. The server's clock is
// set to the time Start was called and stands still until [Advance] moves
// it, so the test does not depend on how fast it runs. Whatever waits for
// the server's clock to move by itself, such as a Rotate waiting for an
// unfinished DieAll's lock to expire, waits until its context ends.
func Start(tb testing.TB) (*miniredis.Miniredis, *redis.Pool) {
	tb.Helper()
	m := miniredis.RunT(tb)
	m.SetTime(time.Now())
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", m.Addr()) }}
	tb.Cleanup(func() { pool.Close() })
	return m, pool
}

// Advance moves m's time forward by d: its clock (SetTime), which sesh reads
// for MaxAge and for pruning, and its keys' TTLs (FastForward). From then on
// m's clock stands still until the next Advance. Advance reads m's clock with
// the TIME command, and panics when m does not answer, as when it is closed.
func Advance(m *miniredis.Miniredis, d time.Duration) {
	m.SetTime(now(m).Add(d))
	m.FastForward(d)
}

// now returns the time m's TIME command answers.
func now(m *miniredis.Miniredis) time.Time {
	c, err := redis.Dial("tcp", m.Addr())
	if err != nil {
		panic(fmt.Sprintf("seshtest: advance: %v", err))
	}
	defer c.Close()
	parts, err := redis.Strings(c.Do("TIME"))
	if err == nil && len(parts) != 2 {
		err = fmt.Errorf("TIME answered %q", parts)
	}
	var sec, usec int64
	if err == nil {
		sec, err = strconv.ParseInt(parts[0], 10, 64)
	}
	if err == nil {
		usec, err = strconv.ParseInt(parts[1], 10, 64)
	}
	if err != nil {
		panic(fmt.Sprintf("seshtest: advance: %v", err))
	}
	return time.Unix(sec, usec*1000)
}
