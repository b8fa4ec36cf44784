package sesh

import (
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// A session is one Redis hash at its token's key, its record:
//
//	u  the stored value: the user ID byte for byte, or Crypt's sealed value
//	i  the idle TTL in ms; absent when the session has none
//	d  the absolute deadline in ms since the epoch, on the server's clock;
//	   absent when it has none
//	x  "1" when the session is in its user's index (TrackUsers at Set) and
//	   has no handle (h), which says so itself
//	a  when the user last authenticated, in ms since the epoch on the
//	   server's clock: written by Set, kept by Rotate, renewed by Reauth
//	g  on a rotated token in its grace window: its successor, masked
//	   (grace.go)
//	p  on the successor: its predecessor's member while one may be in
//	   its window, so that ending it ends both (grace.go)
//	   server's clock: written by Set, kept by Rotate
//	h  the session's handle, 12 characters of base64url: written by Set
//	   when it indexes the session, kept by Rotate
//	c  when the session was created, s when it was last used (to within
//	   Options.LastUseInterval), l its label: written with Options.Details,
//	   kept by Rotate
//
// Fields named in carried are the session's own beyond its policy: Rotate
// copies them to the new token as they are.
//
// The key expires at min(now + idle, deadline), set in the same script that
// writes it. Every operation reads the session's policy from its record, so
// no Store's Options can stretch a session, drop it from its index or leave
// a key of it behind; and eviction, which takes whole keys, cannot separate
// the policy from the session. `HGET key u` shows the user ID.
//
// Sessions written before the record are a string key (the value) and, with
// MaxAge, a deadline key beside it (key + ":m"). Every operation still
// serves them, with the Options of the Store that runs it, as it did then:
// a non-sliding Get pays a second round trip for them (HGET meets
// WRONGTYPE), the scripts branch on TYPE, and Rotate moves them to a record.
// Field names are one byte each: a session's memory is the point.

// Policy is one session's own idle TTL and absolute lifetime, for
// [Store.SetWith] and [Crypt.SetWith]. A zero field takes the Store's
// Options. The policy is recorded with the session, so every Store, Crypt
// and the sesh command honour it, whatever their own Options.
type Policy struct {
	// TTL is the session's idle lifetime, restored by Liv and by a sliding
	// Get. When zero, Options.TTL. Forever means no idle expiry.
	TTL time.Duration

	// MaxAge is the session's absolute lifetime, counted from SetWith.
	// When zero, Options.MaxAge.
	MaxAge time.Duration

	// Label is a short text the app gives the session, such as "Firefox
	// on Linux", which Lookup and Sessions show. sesh never parses it. It
	// is at most MaxLabel bytes, or SetWith returns an error. It is
	// recorded only with Options.Details, and ignored without.
	Label string
}

// MaxLabel bounds Policy.Label, in bytes, so that a record stays small.
const MaxLabel = 64

// policy is a Policy resolved against a Store's Options, in ms; 0 means none.
type policy struct {
	ttl, maxAge int64
	label       string // recorded with Options.Details
}

// policy checks p and fills its zero fields from s's Options.
func (s *Store) policy(p Policy) (policy, error) {
	r := policy{ttl: s.ttl, maxAge: s.maxAge}
	if len(p.Label) > MaxLabel {
		return r, fmt.Errorf("policy Label is %d bytes, more than %d", len(p.Label), MaxLabel)
	}
	if s.details {
		r.label = p.Label
	}
	switch {
	case p.TTL == Forever:
		r.ttl = 0
	case p.TTL < 0:
		return r, fmt.Errorf("policy TTL %v is negative and not Forever", p.TTL)
	case p.TTL > 0 && p.TTL < time.Millisecond:
		return r, fmt.Errorf("policy TTL %v is below Redis's 1ms resolution", p.TTL)
	case p.TTL > 0:
		r.ttl = p.TTL.Milliseconds()
	}
	switch {
	case p.MaxAge < 0:
		return r, fmt.Errorf("policy MaxAge %v is negative", p.MaxAge)
	case p.MaxAge > 0 && p.MaxAge < time.Millisecond:
		return r, fmt.Errorf("policy MaxAge %v is below Redis's 1ms resolution", p.MaxAge)
	case p.MaxAge > 0:
		r.maxAge = p.MaxAge.Milliseconds()
	}
	return r, nil
}

// px is how long a new session's key lives at most, for its index entry's
// check; 0 means no expiry.
func (p policy) px() int64 {
	if p.ttl > 0 && (p.maxAge == 0 || p.ttl < p.maxAge) {
		return p.ttl
	}
	return p.maxAge
}

// typeOf is Lua that sets t to the type of KEYS[1]: 'hash' for a record,
// 'string' for a session written before records, 'none' when gone.
const typeOf = `local t = redis.call('TYPE', KEYS[1])['ok']
`

// legacyRestart is Lua for a session written before records: it restarts
// its idle TTL as the Store running it (ARGV[1] idle ms, 0 for none;
// ARGV[2] '1' in capped mode) did then, capped by the deadline key KEYS[2].
// It ends with live true, or false when the session was ended.
const legacyRestart = `local live = true
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  local d = redis.call('PTTL', KEYS[2])
  if d >= 0 then
    if d == 0 then redis.call('DEL', KEYS[1]) live = false end
    if d < ttl then ttl = d end
  elseif ARGV[2] == '1' then
    redis.call('DEL', KEYS[1])
    live = false
  end
  if live then redis.call('PEXPIRE', KEYS[1], ttl) end
end
`

var (
	// create writes a new record: the value, the policy, and the index
	// mark, with the key's expiry, in one script, so that no key ever lives
	// without its expiry. It returns 1, 0 when the key exists (a collision),
	// and -1 when the deadline has passed.
	//
	// KEYS: token. ARGV: value, idle ms (0: none), deadline (-1: none, 0:
	// now + MaxAge, else ms since the epoch), MaxAge ms, indexed ('1').
	create = newScript(1, createSrc)

	// createNew is create for Rotate's new token, which it does not write
	// (returning -1) under a mark of DieAll's end.
	//
	// KEYS: token, mark. ARGV: as create's.
	createNew = newScript(2, `
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end`+createSrc)

	// touch restarts a session's idle TTL, never past its deadline, and
	// returns its value (ARGV[3] '1', for a sliding Get) or 1; false when it
	// is not live. A record without an idle TTL, or in its grace window
	// (g), is left as it is.
	//
	// KEYS: token, deadline key (old layout). ARGV: the Store's idle ms (0:
	// none) and capped mode, for the old layout; '1' to return the value.
	touch = newScript(2, typeOf+`
local v = 1
if t == 'hash' then
  local r = redis.call('HMGET', KEYS[1], 'u', 'i', 'd', 'g')
  if not r[1] then return false end
  if ARGV[3] == '1' then v = r[1] end
  local idle = tonumber(r[2])
  if not idle or r[4] then return v end
  if r[3] then
    `+nowMS+`
    local dl = tonumber(r[3])
    if not dl or dl <= now then redis.call('DEL', KEYS[1]) return false end
    if dl < now + idle then
      redis.call('PEXPIREAT', KEYS[1], r[3])
      return v
    end
  end
  redis.call('PEXPIRE', KEYS[1], idle)
  return v
end
if t ~= 'string' then return false end
if ARGV[3] == '1' then v = redis.call('GET', KEYS[1]) end
`+legacyRestart+`
if not live then return false end
return v`)

	// read reads a session for Rotate: {value, idle ms (0: none), deadline
	// (-1: none), indexed (0 or 1; -1 for unknown), then the record's other
	// fields as name and value pairs}, or false when it is not live. A session of the old layout is read with the Store's
	// Options, as the old layout's Rotate read it; it is indexed when the
	// Store tracks users, and unknown otherwise: its index says.
	//
	// KEYS: token, deadline key (old layout). ARGV: the Store's capped
	// mode, MaxAge ms, idle ms and TrackUsers (1, else -1), for the old
	// layout.
	read = newScript(2, typeOf+`
if t == 'hash' then
  local all = redis.call('HGETALL', KEYS[1])
  local r = {}
  for k = 1, #all, 2 do r[all[k]] = all[k + 1] end
  if not r.u then return false end
  local x = 0
  if r.x or r.h then x = 1 end
  local out = {r.u, r.i or '0', r.d or '-1', x}
  for k = 1, #all, 2 do
    local n = all[k]
    if n ~= 'u' and n ~= 'i' and n ~= 'd' and n ~= 'x' then
      out[#out + 1] = n
      out[#out + 1] = all[k + 1]
    end
  end
  return out
end
if t ~= 'string' then return false end
local v = redis.call('GET', KEYS[1])
local old = {v, ARGV[3], '-1', tonumber(ARGV[4])}
local left = redis.call('PTTL', KEYS[2])
if left >= 0 then
  if left == 0 then return false end
  local dl = tonumber(redis.call('GET', KEYS[2]))
  if dl and dl > 1 then
    old[3] = string.format('%.0f', dl)
    return old
  end
  -- A deadline key from before sesh wrote the deadline into it.
else
  if ARGV[1] == '1' then return false end
  if tonumber(ARGV[2]) == 0 then return old end
  -- Set before deadline keys were written whenever MaxAge is set: the
  -- token's own expiry is its deadline.
  left = redis.call('PTTL', KEYS[1])
  if left == -1 then left = tonumber(ARGV[2]) end
  if left <= 0 then return false end
end
`+nowMS+`
old[3] = string.format('%.0f', now + left)
return old`)
)

// createSrc is create's body, which createNew shares. After its five
// arguments come field and value pairs that it writes as they are, but for
// an empty value, which stands for the server's clock in ms.
const createSrc = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
` + nowMS + `
local idle, dl = tonumber(ARGV[2]), tonumber(ARGV[3])
local f = {'u', ARGV[1]}
if idle > 0 then f[3] = 'i' f[4] = ARGV[2] end
local at = nil
if dl >= 0 then
  if dl == 0 then dl = now + tonumber(ARGV[4]) end
  if dl <= now then return -1 end
  f[#f + 1] = 'd'
  f[#f + 1] = string.format('%.0f', dl)
  if idle == 0 or dl < now + idle then at = f[#f] end
end
if ARGV[5] == '1' then f[#f + 1] = 'x' f[#f + 1] = '1' end
for k = 6, #ARGV - 1, 2 do
  local v = ARGV[k + 1]
  if v == '' then v = string.format('%.0f', now) end
  f[#f + 1] = ARGV[k]
  f[#f + 1] = v
end
redis.call('HSET', KEYS[1], unpack(f))
if at then redis.call('PEXPIREAT', KEYS[1], at)
elseif idle > 0 then redis.call('PEXPIRE', KEYS[1], idle) end
return 1`

// carried names the record's fields that Rotate copies to the new token as
// they are. Each is one byte; a field read back from Redis is copied only
// when it is named here, and only when its value is short.
var carried = map[string]bool{"a": true, "h": true, "c": true, "s": true, "l": true}

// xMark is create's indexed argument: 1 writes the x field. A record with
// a handle (h) is indexed, which the handle says: x marks an indexed
// record without one, so that the common case costs one field less.
func xMark(indexed bool, fields []string) int {
	return b2i(indexed && !has(fields, "h"))
}

// maxCarried bounds a carried field's value, in bytes.
const maxCarried = 128

// wrongType reports whether err is Redis's answer to a command for one type
// run on a key of another: HGET on a session of the old layout.
func wrongType(err error) bool {
	e, ok := err.(redis.Error)
	return ok && len(e) >= 9 && string(e[:9]) == "WRONGTYPE"
}
