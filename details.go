package sesh

import (
	"cmp"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// A session's handle is 9 random bytes from Options.Rand, 12 characters of
// base64url. It names the session among its user's, and is no secret: it
// shares no bit with the token, and DieSession asks for the user ID too.
const (
	handleBytes = 9
	handleLen   = 12
)

// defaultLastUse is Options.LastUseInterval when zero.
const defaultLastUse = time.Minute

// sessionDefaults checks and fills Details, LastUseInterval, MaxSessions
// and EndOldest.
func (o *Options) sessionDefaults() error {
	switch {
	case o.LastUseInterval == 0:
		o.LastUseInterval = defaultLastUse
	case o.LastUseInterval < time.Millisecond:
		return fmt.Errorf("sesh: new: LastUseInterval %v is below Redis's 1ms resolution", o.LastUseInterval)
	}
	switch {
	case o.MaxSessions < 0:
		return fmt.Errorf("sesh: new: MaxSessions %d is negative", o.MaxSessions)
	case o.MaxSessions > 0 && !o.TrackUsers:
		return fmt.Errorf("sesh: new: MaxSessions needs TrackUsers, whose index counts a user's sessions")
	case o.EndOldest && o.MaxSessions == 0:
		return fmt.Errorf("sesh: new: EndOldest needs MaxSessions")
	}
	return nil
}

// newFields returns the record's fields that Set writes beyond its policy,
// as name and value pairs: the handle when the session is indexed, and
// with Details its creation, its last use (both "now") and its label.
func (s *Store) newFields(p policy) ([]string, error) {
	var f []string
	if s.track {
		var raw [handleBytes]byte
		if _, err := io.ReadFull(s.rand, raw[:]); err != nil {
			return nil, fmt.Errorf("handle entropy: %w", err)
		}
		f = append(f, "h", b64.EncodeToString(raw[:]))
	}
	if s.details {
		f = append(f, "c", "", "s", "")
		if p.label != "" {
			f = append(f, "l", p.label)
		}
	}
	return f, nil
}

// validHandle reports whether h can be a handle: 12 characters of strict
// base64url.
func validHandle(h string) bool {
	if len(h) != handleLen {
		return false
	}
	var raw [handleBytes]byte
	n, err := b64.Decode(raw[:], []byte(h))
	return err == nil && n == handleBytes
}

// used records a session's last use, when the recorded one is ARGV[1] ms
// old or older on the server's clock. It writes only to a record that has a
// last use, so it never creates a key, which would live without expiry,
// and leaves the key's expiry as it is. It returns 1 when it wrote.
//
// KEYS: token. ARGV: interval ms.
var used = newScript(1, `
local s = redis.pcall('HGET', KEYS[1], 's')
if type(s) ~= 'string' then return 0 end
`+nowMS+`
local last = tonumber(s)
if last and last + tonumber(ARGV[1]) > now then return 0 end
redis.call('HSET', KEYS[1], 's', string.format('%.0f', now))
return 1`)

// useDue reports whether a record's last use field, read at now, is due to
// be recorded anew: it is present and LastUseInterval old, or unreadable.
// The app's clock only decides whether to ask; the script decides on the
// server's. It takes the field as Redis sent it, so that Get allocates no
// string for it.
func useDue[T ~string | ~[]byte](s *Store, field T, now time.Time) bool {
	if len(field) == 0 {
		return false
	}
	var ms int64
	for i := range len(field) {
		d := field[i]
		if d < '0' || d > '9' || ms > (1<<62)/10 {
			return true
		}
		ms = ms*10 + int64(d-'0')
	}
	return now.UnixMilli()-ms >= s.lastUse
}

// recordUse runs used on key.
func (s *Store) recordUse(c *conn, key string) error {
	_, err := c.Eval(used, key, s.lastUse)
	return err
}

// touchSHA is the SHA-1 of touch's source, for EVALSHA in a pipeline.
var touchSHA = func() string {
	h := sha1.Sum([]byte(touch.Src()))
	return hex.EncodeToString(h[:])
}()

// readUse is fetch's read with Details: the value, as fetch reads it, and
// the record's last use, in one round trip: HMGET u s, or with Sliding the
// touch and HGET s.
func (s *Store) readUse(c *conn, key string) (v any, last []byte, err error) {
	if !s.sliding {
		v, err = c.Do("HMGET", key, "u", "s")
		if wrongType(err) {
			// A session of the old layout: no last use.
			v, err = c.Do("GET", key)
			return v, nil, err
		}
		vs, _ := redis.Values(v, nil)
		if err != nil || len(vs) != 2 {
			return nil, nil, cmp.Or(err, fmt.Errorf("unexpected HMGET reply, %s", shape(v)))
		}
		last, _ = vs[1].([]byte)
		return vs[0], last, nil
	}
	// By hash, as a sliding Get without Details sends it: the source only
	// when the server has not met it.
	args := []any{key, deadlineKey(key), s.legacyTTL(), b2i(s.capped), 1}
	c.Send("EVALSHA", append([]any{touchSHA, 2}, args...)...)
	c.Send("HGET", key, "s")
	rs, err := c.Pipe(2)
	if err != nil {
		return nil, nil, err
	}
	if e, ok := rs[0].(redis.Error); ok && strings.HasPrefix(string(e), "NOSCRIPT ") {
		// HGET read the last use before the touch: as good.
		rs[0], err = c.Eval(touch, args...)
		if err != nil {
			return nil, nil, err
		}
	} else if ok {
		return nil, nil, e
	}
	// HGET meets WRONGTYPE on a session of the old layout: no last use.
	last, _ = rs[1].([]byte)
	return rs[0], last, nil
}
