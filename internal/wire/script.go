package wire

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// Script is a Lua script run by hash, with its source at hand for EVAL. It
// is not redigo's redis.Script because Conn is not a redis.Conn: Conn
// bounds a connection without DoContext (redisc's) by ctx, which
// Script.DoContext refuses and Script.Do cannot.
type Script struct {
	keys      int
	src, hash string
}

// NewScript returns the script src, which takes keys keys.
func NewScript(keys int, src string) *Script {
	h := sha1.Sum([]byte(src))
	return &Script{keys, src, hex.EncodeToString(h[:])}
}

// Eval runs sc by hash, falling back to its source on NOSCRIPT.
func (c *Conn) Eval(sc *Script, keysAndArgs ...any) (any, error) {
	args := make([]any, 0, 2+len(keysAndArgs))
	args = append(append(args, sc.hash, sc.keys), keysAndArgs...)
	v, err := c.Do("EVALSHA", args...)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT ") {
		args[0] = sc.src
		v, err = c.Do("EVAL", args...)
	}
	return v, err
}

// SendEval queues sc with its source, so that a pipeline never meets
// NOSCRIPT (a script cache does not survive a restart or a failover).
func (c *Conn) SendEval(sc *Script, keysAndArgs ...any) {
	c.Send("EVAL", sc.EvalArgs(keysAndArgs...)...)
}

// EvalArgs returns the arguments of an EVAL of sc, with its source.
func (sc *Script) EvalArgs(keysAndArgs ...any) []any {
	args := make([]any, 0, 2+len(keysAndArgs))
	return append(append(args, sc.src, sc.keys), keysAndArgs...)
}

// Src returns sc's source, for a script that begins with another's.
func (sc *Script) Src() string { return sc.src }
