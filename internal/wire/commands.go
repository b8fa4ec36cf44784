package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// What sesh knows of Redis commands and of Redis Cluster's replies: which
// commands only read, where their keys are, and how a reply says that a
// command did not run. The lanes, seshcluster and the cache's trackers read
// them here.

// slotOf returns the hash slot, by route, of every key of cmds, or -1 when they name
// none, span slots or hold a command it does not know.
func slotOf(route Router, cmds []command) int {
	slot := -1
	for _, cm := range cmds {
		var keys []any
		switch cm.name {
		case "EVAL", "EVALSHA":
			n, ok := cm.args[1].(int)
			if !ok || n < 1 || len(cm.args) < 2+n {
				return -1
			}
			keys = cm.args[2 : 2+n]
		case "DEL", "EXISTS":
			keys = cm.args
		case "GET", "HGET", "HMGET", "PTTL", "TTL", "TYPE", "SET", "GETDEL", "ZREM", "ZSCORE", "ZRANGEBYSCORE", "SPUBLISH":
			keys = cm.args[:1]
		case "TIME":
			// No key: it runs on whichever master the call's keys name.
		default:
			return -1
		}
		for _, k := range keys {
			ks, ok := k.(string)
			if !ok {
				return -1
			}
			if s := route.Slot(ks); slot == -1 {
				slot = s
			} else if s != slot {
				return -1
			}
		}
	}
	return slot
}

// reads reports whether cmds only read, so that running them again is
// harmless: they may run again on a connection of the operation's own when
// their lane broke before they were answered, written or not.
func reads(cmds []command) bool {
	for _, cm := range cmds {
		switch cm.name {
		case "GET", "HGET", "HMGET", "PTTL", "EXISTS", "TYPE", "ZSCORE", "TIME":
		default:
			return false
		}
	}
	return true
}

// KeyOf returns the key a command is routed by: its first argument, as in
// redisc, or the first key of a script or function call.
func KeyOf(cmd string, args []any) (string, bool) {
	i := 0
	switch strings.ToUpper(cmd) {
	case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
		if len(args) < 3 {
			return "", false
		}
		if n, err := strconv.Atoi(argString(args[1])); err != nil || n < 1 {
			return "", false
		}
		i = 2
	}
	if len(args) <= i {
		return "", false
	}
	return argString(args[i]), true
}

func argString(a any) string {
	switch a := a.(type) {
	case string:
		return a
	case []byte:
		return string(a)
	default:
		return fmt.Sprint(a)
	}
}

// Scatters reports whether consecutive commands named cmd may run on their
// nodes at once, in any order: deletions, and reads of one key.
func Scatters(cmd string) bool {
	switch strings.ToUpper(cmd) {
	case "DEL", "GET", "HGET", "HMGET", "PTTL", "TTL", "EXISTS":
		return true
	}
	return false
}

// Redirect is what a MOVED or ASK reply says.
type Redirect struct {
	Ask  bool   // ASK: the slot is being migrated, ask Addr for this command only
	Slot int    // the hash slot of the command's key
	Addr string // the node to ask
}

// ParseRedirect reads err as a MOVED or ASK reply ("MOVED 3999
// 127.0.0.1:6381"), and reports false for any other error.
func ParseRedirect(err error) (Redirect, bool) {
	var e redis.Error
	if !errors.As(err, &e) {
		return Redirect{}, false
	}
	f := strings.Fields(string(e))
	if len(f) != 3 || f[0] != "MOVED" && f[0] != "ASK" {
		return Redirect{}, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 || n > 16383 {
		return Redirect{}, false
	}
	return Redirect{Ask: f[0] == "ASK", Slot: n, Addr: f[2]}, true
}

// Transient reports whether e says the command did not run, for a reason
// that passes: a slot being moved (TRYAGAIN), a failover (CLUSTERDOWN), a
// node loading its data (LOADING).
func Transient(e redis.Error) bool {
	switch code(e) {
	case "TRYAGAIN", "CLUSTERDOWN", "LOADING":
		return true
	}
	return false
}

// refused reports whether e says a cluster node did not run the command,
// and the Pool's connection would run it elsewhere or later: MOVED and ASK,
// whose redirects it follows, TRYAGAIN and CLUSTERDOWN, which it retries.
func refused(e redis.Error) bool {
	switch code(e) {
	case "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN":
		return true
	}
	return false
}

// code returns the first word of a Redis error.
func code(e redis.Error) string {
	c, _, _ := strings.Cut(string(e), " ")
	return c
}
