package sesh

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"time"
)

// The grace window (Options.RotateGrace). A Rotate or Reauth that wins
// leaves the old record in place, its u untouched, so that Get of the old
// token stays one HGET; it adds g, the new token masked, and shortens the
// key's life to the window. The new record names its predecessor in p, so
// that ending the new token ends the old one too, and rotating it again
// ends the old one at once: only the immediate predecessor ever has a
// window. The old token's index entry stays until its key is gone, so
// DieAll ends it.
//
// g is the new token XOR HMAC-SHA256(old raw token, "sesh grace"): Redis
// alone does not hold the old token, only its hash, so a reader of Redis
// cannot recover the new token from g. The client that presents the old
// token can: that is a second Rotate, given the winner's token.

// maxRotateGrace bounds Options.RotateGrace: a window is for requests
// already in flight, not for a second session.
const maxRotateGrace = time.Minute

// graceDefaults checks RotateGrace.
func (o *Options) graceDefaults() error {
	switch {
	case o.RotateGrace < 0:
		return fmt.Errorf("sesh: new: RotateGrace %v is negative", o.RotateGrace)
	case o.RotateGrace > 0 && o.RotateGrace < time.Millisecond:
		return fmt.Errorf("sesh: new: RotateGrace %v is below Redis's 1ms resolution", o.RotateGrace)
	case o.RotateGrace > maxRotateGrace:
		return fmt.Errorf("sesh: new: RotateGrace %v is more than %v", o.RotateGrace, maxRotateGrace)
	}
	return nil
}

// retire ends Rotate's old token, or opens its window, and decides which of
// concurrent rotations wins: it returns 1 for the winner, the winner's
// masked token (g) when another rotation won within its window, and false
// when the token was ended first. The winner, with ReuseDetection, leaves a
// tombstone in the old token's slot that names the new token's key, living
// until the session's deadline (or for a horizon without one).
//
// KEYS: token, deadline key (old layout), tombstone. ARGV: window ms (0:
// none), masked new token, new token's member (empty for no tombstone), the
// new deadline (-1: none, 0: now + MaxAge, else ms since the epoch), MaxAge
// ms, horizon ms.
var retire = newScript(3, typeOf+`
if t == 'none' then return false end
local grace = tonumber(ARGV[1])
if t == 'hash' then
  local g = redis.call('HGET', KEYS[1], 'g')
  if g then return g end
  if not redis.call('HGET', KEYS[1], 'u') then return false end
end
if grace > 0 and t == 'hash' then
  redis.call('HSET', KEYS[1], 'g', ARGV[2])
  local p = redis.call('PTTL', KEYS[1])
  if p < 0 or p > grace then redis.call('PEXPIRE', KEYS[1], grace) end
else
  redis.call('DEL', KEYS[1], KEYS[2])
end
if ARGV[3] ~= '' then
  `+nowMS+`
  local ttl = tonumber(ARGV[6])
  local dl = tonumber(ARGV[4])
  if dl == 0 then dl = now + tonumber(ARGV[5]) end
  if dl > 0 then ttl = dl - now end
  if ttl > 0 then redis.call('SET', KEYS[3], ARGV[3], 'PX', string.format('%.0f', ttl)) end
end
return 1`)

// sendRetire queues retire of r's old token.
func (s *Store) sendRetire(c *conn, r *rotation) {
	tomb, masked := "", ""
	if s.grace > 0 {
		masked = mask(r.raw, r.tok)
	}
	if s.reuse {
		tomb = s.member(r.nkey)
	}
	c.SendEval(retire, r.key, deadlineKey(r.key), tombKey(r.key), s.grace, masked, tomb, r.deadline, r.maxAge, reuseHorizon(r.idle).Milliseconds())
}

// pad is what masks a successor in its predecessor's record.
func pad(raw *[32]byte) []byte {
	m := hmac.New(sha256.New, raw[:])
	m.Write([]byte("sesh grace"))
	return m.Sum(nil)
}

// mask hides token, the successor of the token whose raw bytes are raw.
func mask(raw *[32]byte, token string) string {
	var b [32]byte
	if n, err := b64.Decode(b[:], []byte(token)); err != nil || n != len(b) {
		panic("sesh: mask of a malformed token")
	}
	p := pad(raw)
	for i := range b {
		b[i] ^= p[i]
	}
	return b64.EncodeToString(b[:])
}

// unmask recovers the successor from g, read back from the record of the
// token whose raw bytes are raw; false when g cannot hold a token.
func unmask(raw *[32]byte, g string) (string, bool) {
	var b [32]byte
	if len(g) != tokenLen {
		return "", false
	}
	if n, err := b64.Decode(b[:], []byte(g)); err != nil || n != len(b) {
		return "", false
	}
	p := pad(raw)
	for i := range b {
		b[i] ^= p[i]
	}
	return b64.EncodeToString(b[:]), true
}

// rawToken decodes a well-formed token into its raw bytes.
func rawToken(token string) (*[32]byte, bool) {
	var raw [32]byte
	if len(token) != tokenLen {
		return nil, false
	}
	if n, err := b64.Decode(raw[:], []byte(token)); err != nil || n != len(raw) {
		return nil, false
	}
	return &raw, true
}

// chainEnds returns the commands that end a token's neighbours when the
// token ends: its predecessor, still in its window (p, a member), and its
// successor, when the token itself is in its window (g, masked; raw is the
// token's raw bytes). Both are read back from Redis, and checked.
func (s *Store) chainEnds(raw *[32]byte, p, g any) [][]any {
	var cmds [][]any
	if m, ok := p.([]byte); ok && validMember(string(m)) {
		k := s.memberKey(string(m))
		s.forget(k)
		cmds = append(cmds, []any{"DEL", k})
	}
	if m, ok := g.([]byte); ok && raw != nil {
		if next, ok := unmask(raw, string(m)); ok {
			if k, ok := s.tokenKey(next); ok {
				s.forget(k)
				cmds = append(cmds, []any{"DEL", k})
			}
		}
	}
	return cmds
}
