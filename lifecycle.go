package sesh

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The user index is a sorted set per user. Token members name token keys
// (the hash inside the braces) and score when the entry is next due for a
// check, in ms since the epoch on the server's clock: when its token was
// last known to expire, and never sooner than createWindow after it was
// written. Lock members, "!" and a random suffix, mark a DieAll under way
// and score minus its lock's expiry, so locks sort below every token. The
// index lives in its own hash slot and every command on it touches it alone,
// so it works unchanged on Redis Cluster.
//
// An entry is written before its token, and pruned only when it is due and
// its token is gone. createWindow bounds how long an operation may take
// between writing an entry and writing its token, so an entry is never
// pruned before its token could have been written.
var (
	// register adds a token member due at max(px, window) from now (px 0: a
	// token without expiry, checked again after recheck), keeps the index
	// alive until window past the token's deadline, and returns {added,
	// members due for a check}. With ARGV[4] set, for Rotate, it first
	// requires that member to be indexed (false when it is not) and no
	// DieAll to be under way (-1 when one is).
	//
	// The index's life only ever grows, whatever the Options of the Stores
	// that share it: an index that existed without an expiry keeps none (a
	// Store without MaxAge put its tokens there), and one with an expiry is
	// never made to expire sooner. The window covers a Set's token, whose
	// deadline starts when it is written, up to window after its entry.
	//
	// With a cap (ARGV[8] above 0), a new member is not added while the
	// index holds cap token members or more: it returns {-1, every token
	// member} instead, for Set to make room (cap.go). Every live token has
	// an entry, so the entries bound the live tokens.
	//
	// KEYS: index. ARGV: member, px, deadline (-1: none, 0: now + MaxAge,
	// else ms since the epoch), required member, window ms, recheck ms,
	// MaxAge ms, cap (0: none).
	register = newScript(1, nowMS+`
if ARGV[4] ~= '' then
  if not redis.call('ZSCORE', KEYS[1], ARGV[4]) then return false end
  local l = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(0', 'WITHSCORES', 'LIMIT', 0, 1)
  if #l > 0 and -tonumber(l[2]) > now then return -1 end
end
local cap = tonumber(ARGV[8])
if cap > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCOUNT', KEYS[1], 0, '+inf') >= cap then
  return {-1, redis.call('ZRANGEBYSCORE', KEYS[1], 0, '+inf')}
end
local px, window = tonumber(ARGV[2]), tonumber(ARGV[5])
if px == 0 then px = tonumber(ARGV[6]) end
local due = now + math.max(px, window)
local existed = redis.call('EXISTS', KEYS[1])
local added = redis.call('ZADD', KEYS[1], string.format('%.0f', due), ARGV[1])
local dl = tonumber(ARGV[3])
if dl < 0 then
  redis.call('PERSIST', KEYS[1])
else
  if dl == 0 then dl = now + tonumber(ARGV[7]) end
  local ttl = math.max(dl - now, 0) + window
  local p = redis.call('PTTL', KEYS[1])
  if existed == 0 or (p >= 0 and p < ttl) then
    redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))
  end
end
return {added, redis.call('ZRANGEBYSCORE', KEYS[1], 0, string.format('%.0f', now), 'LIMIT', 0, 8)}`)

	// rescore takes what a check found: it drops the entries of gone tokens
	// that are due, and makes the others due when their tokens expire. It
	// returns how many entries it dropped.
	//
	// KEYS: index. ARGV: recheck ms, then member and PTTL pairs.
	rescore = newScript(1, nowMS+`
local dropped = 0
for i = 2, #ARGV, 2 do
  local m, ms = ARGV[i], tonumber(ARGV[i + 1])
  if ms == -2 then
    local due = redis.call('ZSCORE', KEYS[1], m)
    if due and tonumber(due) <= now then
      dropped = dropped + redis.call('ZREM', KEYS[1], m)
    end
  else
    if ms == -1 then ms = tonumber(ARGV[1]) end
    redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now + ms), m)
  end
end
return dropped`)

	// lock starts a DieAll: it drops expired locks, adds this one for ttl
	// ms, and returns every token member. The members stay indexed until
	// their tokens are deleted, so a concurrent DieAll ends them too.
	//
	// KEYS: index. ARGV: lock member, lock ms.
	lock = newScript(1, `
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
`+nowMS+`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(-' .. string.format('%.0f', now), '(0')
redis.call('ZADD', KEYS[1], string.format('%.0f', -(now + tonumber(ARGV[2]))), ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], 0, '+inf')`)

	// end is DieAll's end of one token: it deletes the token and its
	// deadline key and returns 1, or, when the token is not there, marks
	// its name ended for ms and returns 0. A Rotate that indexed its new
	// token before DieAll's lock may write it after this ran (on Cluster,
	// the token and the old one it ends live on different masters, written
	// in any order): the mark makes that write fail.
	//
	// With ARGV[2] not empty, a record whose handle it is is spared, and 2
	// returned: DieOthers keeps the caller's session.
	//
	// KEYS: token, deadline, mark. ARGV: mark ms, handle to spare.
	end = newScript(3, `
if ARGV[2] ~= '' and redis.pcall('HGET', KEYS[1], 'h') == ARGV[2] then return 2 end
redis.call('DEL', KEYS[2])
if redis.call('DEL', KEYS[1]) == 1 then return 1 end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
return 0`)
)

// endedKey names the mark that end leaves for a token it did not find.
func endedKey(key string) string { return key + ":x" }

const (
	// createWindow bounds the time between writing an index entry and
	// writing its token, and is the slack by which an index outlives its
	// tokens' deadlines. Set writes both in one round trip, and ends its
	// token when that took more than half the window; Rotate gives up when
	// half the window has passed between its round trips, and a check gives
	// up pruning when half of it has passed since it read the tokens.
	createWindow = time.Minute

	// recheck is how often an entry of a token without expiry is checked.
	recheck = 24 * time.Hour

	// lockTTL bounds how long a DieAll's lock can keep Rotate waiting,
	// should the DieAll die half-way and its cleanup fail. A DieAll whose
	// context has a deadline holds its lock at most until that deadline
	// plus lockSlack.
	lockTTL   = 10 * time.Second
	lockSlack = time.Second
)

// checkEviction refuses a maxmemory-policy under which Redis may evict a
// user's index: DieAll would then end nothing and report success. Every
// allkeys-* policy may evict it, and a volatile-* policy may once it has an
// expiry, which it has with MaxAge. Where Redis does not say (INFO refused
// by an ACL or renamed, miniredis), New goes on; docs/security.md asks
// operators to check.
func (s *Store) checkEviction() error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	c, err := s.conn(ctx)
	if err != nil {
		return fmt.Errorf("cannot read maxmemory-policy: %w", err)
	}
	defer c.Close()
	info, err := redis.String(c.Do("INFO", "memory"))
	if _, ok := err.(redis.Error); ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read maxmemory-policy: %w", err)
	}
	var policy string
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok {
			policy = v
		}
	}
	switch {
	case strings.HasPrefix(policy, "allkeys-"):
		return fmt.Errorf("Redis's maxmemory-policy is %s, which may evict a user's index, so that DieAll misses its tokens; use noeviction, or a volatile-* policy without MaxAge", policy)
	case strings.HasPrefix(policy, "volatile-") && s.maxAge > 0:
		return fmt.Errorf("Redis's maxmemory-policy is %s, which may evict a user's index, which expires with MaxAge, so that DieAll misses its tokens; use noeviction", policy)
	}
	return nil
}

// errLocked is register's answer while a DieAll is under way.
var errLocked = errors.New("a DieAll of this user is under way")

// DieAll ends every live token of userID and returns how many it ended.
// A token of userID created before DieAll started cannot be used once it
// returns, whatever Set, Liv, Rotate and DieAll calls run meanwhile. It
// needs Options.TrackUsers.
func (s *Store) DieAll(ctx context.Context, userID string) (int, error) {
	return s.runDieAll(ctx, plain{}, userID)
}

// Count returns how many live tokens userID has. It needs
// Options.TrackUsers. Entries of expired or ended tokens it meets are
// removed from the index.
func (s *Store) Count(ctx context.Context, userID string) (int, error) {
	return s.runCount(ctx, plain{}, userID)
}

// Rotate issues a new token for the user of token and ends token. The new
// token keeps the old one's policy: its absolute deadline (MaxAge), so
// rotation never extends a session, its own idle TTL, which starts afresh,
// and its place in its user's index, whatever this Store's Options. Of many concurrent Rotate
// calls on one token, exactly one succeeds; the others get ErrNotFound.
// With Options.RotateGrace, the old token still resolves for the window,
// and every Rotate of it within the window returns the winner's token.
//
// With Options.Replicas, an ErrNotReplicated error comes with the new
// token: the rotation happened, but the old token's end may not survive a
// failover.
func (s *Store) Rotate(ctx context.Context, token string) (string, error) {
	return s.runRotate(ctx, plain{}, token)
}

// sendRegister queues register of member in idx, for a token that expires
// in px ms (0: never) and whose deadline is dl (-1: none, 0: maxAge ms from
// now, else ms since the epoch on the server's clock); must, when not "",
// is the member that has to be present.
func (s *Store) sendRegister(c *conn, idx, member string, px, dl, maxAge int64, must string) {
	s.sendRegisterCap(c, idx, member, px, dl, maxAge, must, 0)
}

// sendRegisterCap is sendRegister that adds member only while idx holds
// fewer than limit token members (0: no limit).
func (s *Store) sendRegisterCap(c *conn, idx, member string, px, dl, maxAge int64, must string, limit int) {
	if s.maxAge == 0 {
		// Without MaxAge, this Store may index tokens that live forever, and
		// Redis's maxmemory-policy was checked for an index without expiry
		// only: its indexes keep none, whatever a session's own deadline.
		dl = -1
	}
	c.SendEval(register, idx, member, px, dl, must, createWindow.Milliseconds(), recheck.Milliseconds(), maxAge, limit)
}

// registered reads register's reply: whether the member was added, which
// members are due for a check, and whether the required member was missing.
func registered(r any) (added bool, due []string, err error) {
	switch r := r.(type) {
	case nil:
		return false, nil, ErrNotFound
	case int64:
		return false, nil, errLocked
	case redis.Error:
		return false, nil, r
	}
	vs, err := redis.Values(r, nil)
	if err != nil || len(vs) != 2 {
		return false, nil, fmt.Errorf("unexpected register reply, %s", shape(r))
	}
	n, _ := redis.Int(vs[0], nil)
	due, err = redis.Strings(vs[1], nil)
	if err == nil && n == -1 {
		return false, nil, &fullError{due}
	}
	return n == 1, due, err
}

// shape describes a reply by its type and length, never its content, for
// an error message: a reply may hold a stored value, which is a user ID in
// a plain Store.
func shape(v any) string {
	switch v := v.(type) {
	case []any:
		return fmt.Sprintf("an array of %d", len(v))
	case []byte:
		return fmt.Sprintf("a string of %d bytes", len(v))
	case nil:
		return "nil"
	}
	return fmt.Sprintf("a %T", v)
}

// prune looks up the tokens named by members of idx, drops the entries that
// are due and whose tokens are gone, makes the others due when their tokens
// expire, and returns how many tokens live. Members that cannot name a token
// (read back from Redis, they are not trusted) are dropped unread. Each
// entry costs one check per expiry it outlives, so the work is amortised
// over the calls that made it.
func (s *Store) prune(c *conn, idx string, members []string) (int, error) {
	members, bad := validMembers(members)
	if len(bad) > 0 {
		c.Send("ZREM", append([]any{idx}, bad...)...)
		if _, err := c.Pipe(1); err != nil {
			return 0, err
		}
	}
	if len(members) == 0 {
		return 0, nil
	}
	start := time.Now()
	for _, m := range members {
		c.Send("PTTL", s.memberKey(m))
	}
	rs, err := c.Pipe(len(members))
	if err != nil {
		return 0, err
	}
	live := 0
	args := []any{idx, recheck.Milliseconds()}
	for i, r := range rs {
		ms, err := redis.Int64(r, nil)
		if err != nil {
			return 0, err
		}
		if ms != -2 {
			live++
		}
		args = append(args, members[i], ms)
	}
	if time.Since(start) > createWindow/2 {
		// What was read may predate tokens written since: judge nothing.
		return live, nil
	}
	_, err = c.Eval(rescore, args...)
	return live, err
}

// validMembers splits members read from an index into those that name a
// token and the others.
func validMembers(members []string) (ok []string, bad []any) {
	ok = members[:0:0]
	for _, m := range members {
		if validMember(m) {
			ok = append(ok, m)
		} else {
			bad = append(bad, m)
		}
	}
	return ok, bad
}

// userConn checks what DieAll and Count need and takes a connection.
// DieAll waits for replicas with Options.Replicas, so it shares no lane then.
func (s *Store) userConn(ctx context.Context, op, userID string, share bool) (conn, error) {
	if !s.track {
		return conn{}, wrap(op, errNoTracking)
	}
	if err := checkUserID(op, userID); err != nil {
		return conn{}, err
	}
	c, err := s.take(ctx, share, false)
	return c, wrap(op, err)
}

func (s *Store) dieAll(ctx context.Context, cd codec, userID string) (int, error) {
	return s.dieAllBut(ctx, "dieall", cd, userID, spare{})
}

// spare names the session that DieOthers keeps: its token's index member,
// and its handle, which also spares a record of the same session under
// another key. Zero for DieAll.
type spare struct{ member, handle string }

// dieAllBut is DieAll, which keeps sp.
func (s *Store) dieAllBut(ctx context.Context, op string, cd codec, userID string, sp spare) (int, error) {
	c, err := s.userConn(ctx, op, userID, s.replicas == 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// Lock every index and read it, then end what they hold, then drop
	// the entries and the locks.
	ids := cd.indexIDs(userID)
	var l [8]byte
	if _, err := rand.Read(l[:]); err != nil {
		return 0, wrap(op, err)
	}
	lockMember := "!" + hex.EncodeToString(l[:])
	ttl := lockTTL
	if dl, ok := ctx.Deadline(); ok {
		ttl = min(ttl, time.Until(dl)+lockSlack)
	}
	for _, id := range ids {
		c.SendEval(lock, s.indexKey(id), lockMember, max(ttl.Milliseconds(), 1))
	}
	rs, err := c.Pipe(len(ids))
	var members []string
	for _, r := range rs {
		ms, rerr := redis.Strings(r, nil)
		if rerr != nil {
			err = rerr
			break
		}
		members = append(members, ms...)
	}
	members, bad := validMembers(members)
	if sp.member != "" {
		members = slices.DeleteFunc(members, func(m string) bool { return m == sp.member })
	}
	var ended []string
	if err == nil {
		ended, err = s.deleteTokens(&c, members, sp.handle)
	}
	for _, m := range members {
		s.forget(s.memberKey(m))
	}
	// Drop the locks, the entries of the tokens ended here and those that
	// cannot name a token. An entry whose DEL found nothing stays: its Set
	// may have indexed it and not yet written it, and a later DieAll must
	// still find it. A check prunes it once it is known dead. After a
	// failure this runs on a fresh connection: a lock left behind would
	// hold up Rotate until it expires.
	cmds := make([][]any, len(ids))
	for i, id := range ids {
		cmds[i] = append([]any{"ZREM", s.indexKey(id), lockMember}, bad...)
		for _, m := range ended {
			cmds[i] = append(cmds[i], m)
		}
	}
	if cerr := s.cleanup(ctx, &c, err != nil, cmds...); err == nil {
		err = cerr
	}
	return len(ended), wrap(op, err)
}

// deleteTokens deletes the tokens named by members, but for a record of
// the handle spared (when not ""), waiting for replicas when asked to, and
// returns the members whose tokens were live and are ended.
func (s *Store) deleteTokens(c *conn, members []string, spared string) ([]string, error) {
	if len(members) == 0 {
		return nil, nil
	}
	for _, m := range members {
		key := s.memberKey(m)
		// The mark outlives any write of a Rotate that indexed its token
		// before this DieAll's lock: Rotate gives up after createWindow/2
		// between indexing and writing, and after as long again writing.
		c.SendEval(end, key, deadlineKey(key), endedKey(key), createWindow.Milliseconds(), spared)
	}
	waits := s.sendWait(c)
	rs, err := c.Pipe(len(members) + waits)
	if err != nil {
		return nil, err
	}
	var ended []string
	for i, r := range rs[:len(members)] {
		switch r := r.(type) {
		case redis.Error:
			return ended, r
		case int64:
			if r == 1 {
				ended = append(ended, members[i])
			}
		}
	}
	if waits > 0 {
		return ended, s.waited(rs[len(rs)-1])
	}
	return ended, nil
}

func (s *Store) count(ctx context.Context, cd codec, userID string) (int, error) {
	const op = "count"
	c, err := s.userConn(ctx, op, userID, true)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n := 0
	for _, id := range cd.indexIDs(userID) {
		idx := s.indexKey(id)
		members, err := redis.Strings(c.Do("ZRANGEBYSCORE", idx, 0, "+inf"))
		if err != nil {
			return 0, wrap(op, err)
		}
		if len(members) == 0 {
			continue
		}
		live, err := s.prune(&c, idx, members)
		if err != nil {
			return 0, wrap(op, err)
		}
		n += live
	}
	return n, nil
}

// rotation is one Rotate under way: the token it ends and the one it
// issues.
type rotation struct {
	key, val, userID string    // the old token's key, stored value and user
	idle             int64     // the session's idle TTL in ms; 0 for none
	deadline         int64     // absolute, in ms on the server's clock; -1 for none
	inIndex          bool      // the session is in its user's index
	unknown          bool      // an old-layout session: its index must say
	fields           []string  // the record's carried fields, as name and value pairs
	raw              *[32]byte // the old token's raw bytes, which mask its successor
	auth             int64     // the authentication time (a) in ms; 0 when unknown
	maxAge           int64     // with deadline 0 (Reauth), the MaxAge it counts from now
	pred             any       // the predecessor in its window (p), as read
	g                string    // the successor masked (g), when the old token is in its window
	tok, nkey, nval  string    // the new token, its key and stored value
	oldIdx, newIdx   string    // the indexes of the old and the new token
	indexed          []string  // the indexes that hold an entry of the new token
	registered       time.Time // when the new token's entries were sent
}

func (s *Store) rotate(ctx context.Context, cd codec, token string) (string, error) {
	return s.renew(ctx, cd, token, opRotate)
}

// renew is Rotate, and Reauth with o opReauth: Reauth's new token is a new
// authentication, with its idle TTL, deadline and authentication time
// counted from now.
func (s *Store) renew(ctx context.Context, cd codec, token string, o op) (string, error) {
	op := o.String()
	key, ok := s.tokenKey(token)
	if !ok {
		return "", ErrNotFound
	}
	defer s.forget(key)
	c, err := s.take(ctx, s.replicas == 0, false)
	if err != nil {
		return "", wrap(op, err)
	}
	defer c.Close()
	r, err := s.readOld(&c, cd, key, o == opReauth)
	if errors.Is(err, ErrNotFound) {
		s.missed(ctx, o, key)
	}
	if err != nil {
		return "", wrap(op, err)
	}
	r.raw, _ = rawToken(token)
	if next, ok := r.successor(); ok {
		// In its window: the rotation that opened it won.
		return next, nil
	}
	if r.inIndex {
		if err := s.indexNew(ctx, &c, cd, r); err != nil {
			return "", wrap(op, errors.Join(err, s.undoRotate(ctx, &c, r, false, err)))
		}
		if took := time.Since(r.registered); took > createWindow/2 {
			err := fmt.Errorf("indexing the new token took %v, more than %v", took.Round(time.Millisecond), createWindow/2)
			return "", wrap(op, errors.Join(err, s.undoRotate(ctx, &c, r, false, err)))
		}
	}
	err = s.swap(&c, r)
	switch {
	case err == nil || errors.Is(err, ErrNotReplicated):
		return r.tok, wrap(op, err)
	case errors.Is(err, errLostInWindow):
		// Another rotation won, and its token is the answer. What is left
		// of this one is a token nobody holds, bounded by its expiry.
		s.undoRotate(ctx, &c, r, true, nil)
		if next, ok := r.successor(); ok {
			return next, nil
		}
		return "", wrap(op, errors.New("unexpected successor in the old record"))
	case errors.Is(err, ErrNotFound):
		return "", errors.Join(err, wrap(op, s.undoRotate(ctx, &c, r, true, nil)))
	}
	return "", wrap(op, errors.Join(err, s.undoRotate(ctx, &c, r, true, err)))
}

// errLostInWindow is swap's answer when another rotation of the old token
// won, and opened its window: r.g holds its token.
var errLostInWindow = errors.New("another rotation won")

// successor returns the old token's successor when it is in its window.
func (r *rotation) successor() (string, bool) {
	if r.g == "" || r.raw == nil {
		return "", false
	}
	return unmask(r.raw, r.g)
}

// readOld reads the old token's user and policy, and draws the new token.
func (s *Store) readOld(c *conn, cd codec, key string, reauth bool) (*rotation, error) {
	v, err := c.Eval(read, key, deadlineKey(key), b2i(s.capped), s.maxAge, s.ttl, 2*b2i(s.track)-1)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, ErrNotFound
	}
	r := &rotation{key: key}
	if err := r.scan(v); err != nil {
		return nil, err
	}
	if reauth {
		r.reauth()
	}
	if r.userID, err = cd.open(key, r.val); err != nil {
		return nil, err
	}
	if r.unknown {
		// A session of the old layout read by a Store without TrackUsers:
		// its user's index says whether another Store indexed it.
		in, err := c.Do("ZSCORE", s.indexKey(cd.indexID(r.userID, r.val)), s.member(key))
		if err != nil {
			return nil, err
		}
		r.inIndex = in != nil
	}
	if r.tok, r.nkey, err = s.newToken(); err != nil {
		return nil, err
	}
	if r.nval, err = cd.seal(r.nkey, r.userID); err != nil {
		return nil, err
	}
	return r, nil
}

// scan reads read's reply into r. The reply is read back from Redis: a
// record someone else wrote is input, checked like a request.
func (r *rotation) scan(v any) error {
	vs, err := redis.Values(v, nil)
	if err != nil || len(vs) < 4 || len(vs)%2 != 0 {
		return fmt.Errorf("unexpected read reply, %s", shape(v))
	}
	for i := 4; i < len(vs); i += 2 {
		name, err1 := redis.String(vs[i], nil)
		val, err2 := redis.String(vs[i+1], nil)
		if err1 != nil || err2 != nil || len(val) > maxCarried {
			continue
		}
		switch {
		case carried[name]:
			r.fields = append(r.fields, name, val)
			if name == "a" {
				r.auth, _ = strconv.ParseInt(val, 10, 64)
			}
		case name == "g":
			r.g = val
		case name == "p":
			r.pred = []byte(val)
		}
	}
	r.val, err = redis.String(vs[0], nil)
	idle, err1 := redis.Int64(vs[1], nil)
	dl, err2 := redis.Int64(vs[2], nil)
	in, err3 := redis.Int(vs[3], nil)
	if err := errors.Join(err, err1, err2, err3); err != nil || idle < 0 || dl < -1 || dl == 0 || in < -1 || in > 1 {
		return fmt.Errorf("unexpected record: idle %s, deadline %s", shape(vs[1]), shape(vs[2]))
	}
	r.idle, r.deadline, r.inIndex, r.unknown = idle, dl, in == 1, in == -1
	return nil
}

// indexNew indexes the new token beside the old one, but only while the old
// one is still indexed and no DieAll is under way: otherwise DieAll might
// miss the new token while ending the old one. When the new token belongs
// in another index (Crypt's newest key after a key rotation), it is indexed
// there too, and leaves the old index once the old token has ended. While a
// DieAll is under way it waits, until ctx is done, for it to end the old
// token or to show that the old token was not among those to end.
func (s *Store) indexNew(ctx context.Context, c *conn, cd codec, r *rotation) error {
	r.oldIdx = s.indexKey(cd.indexID(r.userID, r.val))
	r.newIdx = s.indexKey(cd.indexID(r.userID, r.nval))
	px := r.idle
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		r.registered = time.Now()
		s.sendRegister(c, r.oldIdx, s.member(r.nkey), px, r.deadline, r.maxAge, s.member(r.key))
		if r.newIdx != r.oldIdx {
			s.sendRegister(c, r.newIdx, s.member(r.nkey), px, r.deadline, r.maxAge, "")
		}
		rs, err := c.Pipe(1 + b2i(r.newIdx != r.oldIdx))
		if err != nil {
			r.indexed = []string{r.oldIdx, r.newIdx}
			return err
		}
		r.indexed = r.indexed[:0]
		for i, idx := range []string{r.oldIdx, r.newIdx}[:len(rs)] {
			added, _, rerr := registered(rs[i])
			if added {
				r.indexed = append(r.indexed, idx)
			}
			err = cmp.Or(err, rerr)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, errLocked) {
			return err
		}
		if wait == time.Millisecond {
			s.logLockWait()
		}
		if len(r.indexed) > 0 {
			if err := s.undoRotate(ctx, c, r, false, nil); err != nil {
				return err
			}
			r.indexed = r.indexed[:0]
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// swap creates the new token with the old one's policy, then ends the old
// one, or opens its window (Options.RotateGrace). The old token's retire
// decides which of concurrent rotations wins; a DieAll that ended it first
// wins over all of them. It returns ErrNotFound when the old token was
// ended first or its deadline has passed, and errLostInWindow when another
// rotation won and opened its window.
func (s *Store) swap(c *conn, r *rotation) error {
	args := []any{r.nkey, endedKey(r.nkey), r.nval, r.idle, r.deadline, r.maxAge, xMark(r.inIndex, r.fields)}
	for _, f := range r.fields {
		args = append(args, f)
	}
	if s.grace > 0 {
		args = append(args, "p", s.member(r.key))
	}
	c.SendEval(createNew, args...)
	s.sendRetire(c, r)
	writes := 2
	if r.inIndex {
		if s.grace == 0 {
			// With a window, the old token's entry stays until its key is
			// gone, so that DieAll ends it.
			c.Send("ZREM", r.oldIdx, s.member(r.key))
			writes++
		}
		if r.newIdx != r.oldIdx {
			c.Send("ZREM", r.oldIdx, s.member(r.nkey))
			writes++
		}
	}
	// Only the immediate predecessor has a window: it ends now.
	for _, cmd := range s.chainEnds(nil, r.pred, nil) {
		c.Send(cmd[0].(string), cmd[1:]...)
		writes++
	}
	waits := s.sendWait(c)
	start := time.Now()
	rs, err := c.Pipe(writes + waits)
	if err != nil {
		return err
	}
	if took := time.Since(start); took > createWindow/2 {
		// A DieAll's mark on the new token's name may have expired first.
		return fmt.Errorf("writing the new token took %v, more than %v", took.Round(time.Millisecond), createWindow/2)
	}
	for _, r := range rs[:writes] {
		if e, ok := r.(redis.Error); ok {
			return e
		}
	}
	if g, ok := rs[1].([]byte); ok {
		r.g = string(g)
		return errLostInWindow
	}
	switch won := rs[1] == int64(1); {
	case rs[0] == int64(0):
		// The old token is ended all the same, which fails safe.
		return joinErr(errors.New("new token collided with a live one; Rand is not random"), s.endOld(c, r, won))
	case rs[0] == int64(-1) || !won:
		// The deadline has passed, a DieAll ended the new token's name, or
		// another Rotate, Die or DieAll ended the old token first.
		return joinErr(ErrNotFound, s.endOld(c, r, won))
	}
	if waits > 0 {
		return s.waited(rs[len(rs)-1])
	}
	return nil
}

// joinErr is errors.Join that leaves err as it is when more is nil.
func joinErr(err, more error) error {
	if more == nil {
		return err
	}
	return errors.Join(err, more)
}

// endOld ends the old token of a rotation that failed after its retire
// won and opened a window that has no successor to lead to.
func (s *Store) endOld(c *conn, r *rotation, won bool) error {
	if !won || s.grace == 0 {
		return nil
	}
	_, err := c.Do("DEL", r.key)
	return err
}

// undoRotate takes back what a Rotate that lost or failed wrote: the new
// token's index entries and, when written is set, the new token. After a
// failure (cause not nil) it runs on a fresh connection.
func (s *Store) undoRotate(ctx context.Context, c *conn, r *rotation, written bool, cause error) error {
	var cmds [][]any
	if written {
		cmds = append(cmds, []any{"DEL", r.nkey, deadlineKey(r.nkey)})
	}
	for _, idx := range r.indexed {
		cmds = append(cmds, []any{"ZREM", idx, s.member(r.nkey)})
	}
	if len(cmds) == 0 {
		return nil
	}
	return s.cleanup(ctx, c, cause != nil, cmds...)
}
