package wire

import (
	"time"

	"github.com/gomodule/redigo/redis"
)

// Discard breaks conn, so that a pool drops it instead of reusing a
// connection that tracks or subscribes, then closes it. QUIT makes the
// server hang up; reading with no time to wait breaks it at once where conn
// can be told how long to wait.
func Discard(conn redis.Conn) {
	conn.Send("QUIT")
	conn.Flush()
	for {
		_, err := Receive(conn, time.Nanosecond)
		if _, ok := err.(redis.Error); err != nil && !ok {
			break
		}
	}
	conn.Close()
}

// Receive reads a reply within d, where conn can be told how long to wait,
// and otherwise within conn's own read timeout.
func Receive(conn redis.Conn, d time.Duration) (any, error) {
	if cwt, ok := conn.(redis.ConnWithTimeout); ok {
		v, err := cwt.ReceiveWithTimeout(d)
		if _, ok := err.(redis.Error); err == nil || ok || conn.Err() != nil {
			return v, err
		}
		// A pooled connection over one that cannot be told says so, and
		// stays usable.
	}
	return conn.Receive()
}
