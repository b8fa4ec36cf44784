package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The checks of sesh doctor, one function each. Each returns one finding
// and never fails: what goes wrong is the finding.

// parseInfo reads INFO's field:value lines.
func parseInfo(s string) map[string]string {
	m := make(map[string]string)
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// versionAtLeast reports whether version (such as 7.0.15) is at least
// major.minor.
func versionAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func versionCheck(version, kind string) finding {
	f := finding{Check: checkVersion}
	switch {
	case version == "":
		f.Status, f.Detail = statusWarn, "INFO server refused or without redis_version: cannot tell the version"
		f.Fix = "grant +info, and check that Redis is 6.2 or later"
	case !versionAtLeast(version, 6, 2):
		f.Status, f.Detail = statusFail, "Redis "+version+": sesh supports 6.2 or later (CLIENT TRACKING needs 6.0)"
		f.Fix = "upgrade Redis to 6.2 or later, 7.0 or later on a Cluster"
	case kind == kindCluster && !versionAtLeast(version, 7, 0):
		f.Status, f.Detail = statusWarn, "Redis "+version+": a Cluster before 7.0 has no sharded pub/sub"
		f.Fix = "upgrade to 7.0 or later"
	default:
		f.Status, f.Detail = statusOK, "Redis "+version+": 6.2 or later, CLIENT TRACKING (6.0), sharded pub/sub (7.0)"
		if !versionAtLeast(version, 7, 0) {
			f.Detail = "Redis " + version + ": 6.2 or later, CLIENT TRACKING (6.0); no sharded pub/sub before 7.0"
		}
	}
	return f
}

// evictionCheck judges maxmemory-policy as sesh.New does for TrackUsers
// (lifecycle.go's checkEviction) and as docs/security.md's "What each
// guarantee assumes" does for plain tokens.
func evictionCheck(memory map[string]string, o doctorOptions) finding {
	f := finding{Check: checkEviction}
	policy, ok := memory["maxmemory_policy"]
	if !ok {
		f.Status, f.Detail = statusWarn, "INFO memory refused: cannot read maxmemory-policy, and neither can sesh.New"
		f.Fix = "grant +info, or check that maxmemory-policy is noeviction yourself"
		return f
	}
	const fix = "CONFIG SET maxmemory-policy noeviction (and in redis.conf)"
	allkeys, volatile := strings.HasPrefix(policy, "allkeys-"), strings.HasPrefix(policy, "volatile-")
	switch {
	case o.track && allkeys:
		f.Status, f.Fix = statusFail, fix
		f.Detail = policy + " may evict a user's index, so DieAll would miss tokens; sesh.New refuses TrackUsers"
	case o.track && volatile && o.maxAge > 0:
		f.Status, f.Fix = statusFail, fix
		f.Detail = policy + " may evict a user's index, which expires with MaxAge; sesh.New refuses TrackUsers with MaxAge"
	case allkeys || volatile:
		// A plain Store fails safe: an evicted key ends a session early.
		f.Status, f.Fix = statusWarn, fix
		f.Detail = policy + ": sessions may end early when Redis is full (safe, but users log in again)"
		switch {
		case !o.track && allkeys:
			f.Detail += "; TrackUsers would be refused"
		case !o.track:
			f.Detail += "; TrackUsers with MaxAge would be refused"
		}
	default:
		f.Status = statusOK
		f.Detail = policy + ": nothing is evicted; when Redis is full, Set fails with OOM and Get still works"
	}
	return f
}

// trackingCheck turns CLIENT TRACKING on as a cache would, on a connection
// of a pool of its own, then off, and closes that pool so that the
// connection is never reused.
func trackingCheck(ctx context.Context, t target, o doctorOptions) finding {
	p, err := t.pool()
	if err != nil {
		return trackingFinding(o, err)
	}
	defer p.Close()
	conn, err := p.GetContext(ctx)
	if err != nil {
		return trackingFinding(o, err)
	}
	defer conn.Close()
	return trackingOn(conn, o)
}

// trackingOn turns CLIENT TRACKING on at conn's server, as a cache would,
// and off again.
func trackingOn(conn redis.Conn, o doctorOptions) finding {
	id, err := redis.Int64(conn.Do("CLIENT", "ID"))
	if err == nil {
		_, err = conn.Do("CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", o.prefix+":")
	}
	if err == nil {
		_, err = conn.Do("CLIENT", "TRACKING", "OFF")
	}
	return trackingFinding(o, err)
}

// trackingFinding reports whether CLIENT TRACKING could be turned on.
func trackingFinding(o doctorOptions, err error) finding {
	f := finding{Check: checkTracking}
	if err != nil {
		f.Status, f.Detail = statusWarn, "CLIENT TRACKING cannot be turned on, so CacheSize would make sesh.New fail: "+err.Error()
		f.Fix = "Redis 6 or later (7 on a Cluster), and grant +client|id +client|tracking +client|setname +subscribe +publish (+ssubscribe +spublish on a Cluster); or leave CacheSize 0"
		return f
	}
	f.Status, f.Detail = statusOK, "CLIENT TRACKING turns on (BCAST, PREFIX "+o.prefix+":), so CacheSize works"
	return f
}

// A use is a command sesh sends, with arguments shaped like sesh's, and
// the feature that needs it; "" is every Store.
type use struct {
	need string
	args []any
}

// uses lists every command sesh sends, directly or from its scripts.
func uses(prefix string) []use {
	k := prefix + ":{doctor}"
	m, idx, ch := k+":m", prefix+":u:doctor", prefix+":cache:doctor"
	return []use{
		{"", []any{"PING"}},
		{"", []any{"GET", k}},
		{"", []any{"HGET", k, "u"}},
		{"", []any{"HMGET", k, "u", "i"}},
		{"", []any{"HSET", k, "u", "v"}},
		{"", []any{"TYPE", k}},
		{"", []any{"PEXPIREAT", k, 1}},
		{"", []any{"SET", k, "v", "NX", "PX", 1}},
		{"", []any{"EXISTS", k}},
		{"", []any{"DEL", k, m}},
		{"", []any{"PEXPIRE", k, 1}},
		{"", []any{"PTTL", k}},
		{"", []any{"PERSIST", k}},
		{"", []any{"EVAL", "return 1", 2, k, m}},
		{"", []any{"EVALSHA", strings.Repeat("0", 40), 2, k, m}},
		{"", []any{"TIME"}},
		{"TrackUsers", []any{"ZADD", idx, 1, "x"}},
		{"TrackUsers", []any{"ZSCORE", idx, "x"}},
		{"TrackUsers", []any{"ZREM", idx, "x"}},
		{"TrackUsers", []any{"ZRANGEBYSCORE", idx, 0, "+inf"}},
		{"TrackUsers", []any{"ZREMRANGEBYSCORE", idx, 0, 1}},
		{"TrackUsers", []any{"INFO", "memory"}},
		{"Replicas", []any{"WAIT", 0, 0}},
		{"CacheSize", []any{"CLIENT", "ID"}},
		{"CacheSize", []any{"CLIENT", "TRACKING", "ON"}},
		{"CacheSize", []any{"CLIENT", "SETNAME", "sesh"}},
		{"CacheSize", []any{"SUBSCRIBE", "__redis__:invalidate", ch}},
		{"CacheSize", []any{"PUBLISH", ch, "x"}},
	}
}

// aclCheck asks Redis, with ACL DRYRUN (7.0), whether the connecting user
// may run each command sesh sends on keys and channels under the prefix.
// Before 7.0 it reads ACL GETUSER and can only tell a user with every
// command. A refused ACL command is a warning: the check could not run.
func aclCheck(conn redis.Conn, version string, o doctorOptions) finding {
	f := finding{Check: checkACL}
	user, err := redis.String(conn.Do("ACL", "WHOAMI"))
	if err != nil {
		f.Status, f.Detail = statusWarn, "ACL WHOAMI refused, cannot check permissions: "+err.Error()
		f.Fix = "grant +acl|whoami +acl|dryrun to check, or compare the user's ACL with the command list in sesh's docs/operating.md"
		return f
	}
	if !versionAtLeast(version, 7, 0) {
		return aclGetUser(conn, user, f)
	}
	var denied, grants []string
	failed := false
	for _, u := range uses(o.prefix) {
		reply, err := redis.String(conn.Do("ACL", append([]any{"DRYRUN", user}, u.args...)...))
		if err != nil {
			f.Status, f.Detail = statusWarn, fmt.Sprintf("ACL DRYRUN refused for user %q, cannot check permissions: %v", user, err)
			f.Fix = "grant +acl|dryrun to check, or compare the user's ACL with the command list in sesh's docs/operating.md"
			return f
		}
		if reply == "OK" {
			continue
		}
		name := strings.ToLower(fmt.Sprint(u.args[0]))
		if u.args[0] == "CLIENT" || u.args[0] == "INFO" {
			name += "|" + strings.ToLower(fmt.Sprint(u.args[1]))
		}
		need := u.need
		switch {
		case need == "", need == "TrackUsers" && o.track && name != "info|memory":
			failed = true
			if need == "" {
				need = "every Store"
			}
		}
		denied = append(denied, fmt.Sprintf("%s (%s)", name, need))
		grants = append(grants, "+"+name)
	}
	switch {
	case len(denied) == 0:
		f.Status, f.Detail = statusOK, fmt.Sprintf("user %q may run all %d commands sesh sends, on keys under %s:", user, len(uses(o.prefix)), o.prefix)
	case failed:
		f.Status = statusFail
	default:
		f.Status = statusWarn
	}
	if len(denied) > 0 {
		f.Detail = fmt.Sprintf("user %q may not run: %s", user, strings.Join(denied, ", "))
		f.Fix = fmt.Sprintf("ACL SETUSER %s %s (sesh's keys are ~%s:*, its channels &%s:cache:* &__redis__:invalidate)", user, strings.Join(grants, " "), o.prefix, o.prefix)
	}
	return f
}

// aclGetUser is aclCheck before Redis 7.0.
func aclGetUser(conn redis.Conn, user string, f finding) finding {
	v, err := redis.Values(conn.Do("ACL", "GETUSER", user))
	if err != nil {
		f.Status, f.Detail = statusWarn, "ACL GETUSER refused, cannot check permissions: "+err.Error()
		f.Fix = "grant +acl|getuser to check, or compare the user's ACL with the command list in sesh's docs/operating.md"
		return f
	}
	m, _ := redis.StringMap(v, nil)
	if cmds := m["commands"]; cmds == "+@all" {
		f.Status, f.Detail = statusOK, fmt.Sprintf("user %q may run every command (+@all)", user)
		return f
	}
	f.Status, f.Detail = statusWarn, fmt.Sprintf("user %q has commands %q; before Redis 7.0 there is no ACL DRYRUN to check each", user, m["commands"])
	f.Fix = "compare with the command list in sesh's docs/operating.md"
	return f
}

// replicasCheck reads INFO replication: sesh writes, so it must reach a
// master, and Options.Replicas needs replicas that keep up.
func replicasCheck(repl map[string]string) finding {
	f := finding{Check: checkReplicas}
	if repl == nil {
		f.Status, f.Detail, f.Fix = statusWarn, "INFO replication refused: cannot count replicas", "grant +info"
		return f
	}
	if role := repl["role"]; role != "master" {
		f.Status, f.Detail = statusFail, "this server is a "+role+": sesh writes, so it must reach a master"
		f.Fix = "point sesh at the master, or use redis+sentinel:// to follow it"
		return f
	}
	n, _ := strconv.Atoi(repl["connected_slaves"])
	if n == 0 {
		f.Status, f.Detail = statusWarn, "no replica: Options.Replicas must stay 0, and a crash loses what was not persisted"
		f.Fix = "add a replica if revocation must survive a failover"
		return f
	}
	offset, _ := strconv.ParseInt(repl["master_repl_offset"], 10, 64)
	var lags []string
	maxLagSeen := 0
	for i := range n {
		fields := make(map[string]string)
		for kv := range strings.SplitSeq(repl["slave"+strconv.Itoa(i)], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				fields[k] = v
			}
		}
		lag, _ := strconv.Atoi(fields["lag"])
		off, _ := strconv.ParseInt(fields["offset"], 10, 64)
		maxLagSeen = max(maxLagSeen, lag)
		lags = append(lags, fmt.Sprintf("%s:%s %s, lag %ds, %d bytes behind", fields["ip"], fields["port"], fields["state"], lag, max(offset-off, 0)))
	}
	f.Status = statusOK
	f.Detail = fmt.Sprintf("%d replica(s): %s; Options.Replicas may be up to %d", n, strings.Join(lags, "; "), n)
	if time.Duration(maxLagSeen)*time.Second > maxLag {
		f.Status, f.Fix = statusWarn, "check the network and the replicas' load; with Replicas, writes wait for them"
	}
	return f
}

// clusterCheck reads CLUSTER INFO on a Cluster master.
func clusterCheck(conn redis.Conn, kind string) finding {
	f := finding{Check: checkCluster}
	if kind != kindCluster {
		f.Status, f.Detail = statusSkip, "not a Redis Cluster"
		return f
	}
	s, err := redis.String(conn.Do("CLUSTER", "INFO"))
	if err != nil {
		f.Status, f.Detail, f.Fix = statusFail, "CLUSTER INFO: "+err.Error(), "grant +cluster|info"
		return f
	}
	m := parseInfo(s)
	assigned, _ := strconv.Atoi(m["cluster_slots_assigned"])
	slotsOK, _ := strconv.Atoi(m["cluster_slots_ok"])
	f.Detail = fmt.Sprintf("state %s, %d of 16384 slots assigned, %d ok, %d pfail, %d fail, %s nodes",
		m["cluster_state"], assigned, slotsOK, atoi(m["cluster_slots_pfail"]), atoi(m["cluster_slots_fail"]), m["cluster_known_nodes"])
	if m["cluster_state"] != "ok" || assigned != 16384 || slotsOK != 16384 {
		f.Status, f.Fix = statusFail, "assign every slot and bring the failing nodes back (redis-cli --cluster fix)"
		return f
	}
	f.Status = statusOK
	return f
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// latencyCheck times a few PINGs and reports their median.
func latencyCheck(conn redis.Conn) finding {
	f := finding{Check: checkLatency}
	var rtts []time.Duration
	for range pings {
		t0 := time.Now()
		if _, err := conn.Do("PING"); err != nil {
			f.Status, f.Detail = statusFail, "PING: "+err.Error()
			return f
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	med := rtts[len(rtts)/2]
	f.Status, f.Detail = statusOK, fmt.Sprintf("median round trip %v over %d PINGs (each sesh call takes one or two)", latency(med), pings)
	if med > slowPing {
		f.Status, f.Fix = statusWarn, "run sesh near Redis: every call waits for at least one round trip"
	}
	return f
}

// clockCheck compares Redis's TIME with this machine's clock, read at the
// middle of the round trip.
func clockCheck(conn redis.Conn) finding {
	f := finding{Check: checkClock}
	t0 := time.Now()
	v, err := redis.Int64s(conn.Do("TIME"))
	t1 := time.Now()
	if err != nil || len(v) != 2 {
		f.Status, f.Detail = statusWarn, fmt.Sprintf("TIME: %v", errors.Join(err, errors.New("cannot compare clocks")))
		return f
	}
	redisNow := time.Unix(v[0], v[1]*1000)
	skew := redisNow.Sub(t0.Add(t1.Sub(t0) / 2))
	side := "ahead of"
	if skew < 0 {
		side = "behind"
	}
	f.Status = statusOK
	f.Detail = fmt.Sprintf("Redis's clock is %v %s this machine's (±%v)", latency(skew.Abs()), side, latency(t1.Sub(t0)/2))
	if skew.Abs() > maxSkew {
		f.Status = statusWarn
		f.Fix = "run NTP on Redis's host (and every Cluster node): MaxAge deadlines are on Redis's clock"
	}
	return f
}
