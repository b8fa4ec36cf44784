package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// countall counts the live tokens under a prefix with SCAN, on every master.
func (c *cli) countall(ctx context.Context, args []string) int {
	var (
		tf     targetFlags
		prefix string
		count  int
	)
	fs := c.flags("countall", "[flags]",
		`Countall prints how many live tokens there are under -prefix: every
user's sessions, where count gives one user's. It walks the keyspace with
SCAN MATCH <prefix>:{*} COUNT -count, never KEYS, so Redis serves other
clients between batches; on a Cluster it scans every master in turn. Only
token keys count, not deadline keys (:m) or user indexes.

SCAN's guarantee applies: a token live throughout is counted, one created or
ended during the scan may or may not be, and one may be counted twice if
Redis resizes its table meanwhile. A live progress line goes to standard
error when it is a terminal.
`+targetAbout,
		"\tsesh countall -cluster 10.0.0.1:6379,10.0.0.2:6379 -prefix sesh")
	tf.register(fs, "")
	fs.StringVar(&prefix, "prefix", "sesh", "key `prefix`, as in Options.Prefix")
	fs.IntVar(&count, "count", 1000, "SCAN's COUNT hint: keys looked at per round trip")
	if _, status, ok := c.parse(fs, args, 0); !ok {
		return status
	}
	switch {
	case !tf.given():
		return c.usage(fs, errNoServer, "countall")
	case prefix == "":
		return c.usage(fs, "countall: empty -prefix")
	case count < 1:
		return c.usage(fs, "countall: -count %d: want at least 1", count)
	}
	t, err := tf.target()
	if err != nil {
		return c.usage(fs, "countall: %v", err)
	}
	b, err := t.open()
	if err != nil {
		return c.fail(ctx, "countall", err)
	}
	defer b.close()
	p := progress{w: c.progressTo()}
	n, err := countTokens(ctx, b, prefix, count, &p)
	p.done()
	if err != nil {
		return c.fail(ctx, "countall", fmt.Errorf("%s: %w", t, err))
	}
	fmt.Fprintln(c.stdout, n)
	return exitOK
}

// countTokens counts the keys shaped like token keys under prefix on every
// master of b.
func countTokens(ctx context.Context, b *backend, prefix string, count int, p *progress) (int, error) {
	n := 0
	pattern := globEscape(prefix) + ":{*}"
	err := b.eachMaster(ctx, func(addr string, conn redis.Conn) error {
		return scanKeys(ctx, conn, pattern, count, func(keys []string) error {
			for _, k := range keys {
				if isTokenKey(prefix, k) {
					n++
				}
			}
			p.show("%s: %d tokens so far, scanning %s", prefix, n, addr)
			return nil
		})
	})
	return n, err
}

// isTokenKey reports whether key is prefix:{h}, h a SHA-256 in unpadded
// base64url: the key layout of docs/api.md, without the :m of a deadline
// key.
func isTokenKey(prefix, key string) bool {
	h, ok := strings.CutPrefix(key, prefix+":{")
	if !ok {
		return false
	}
	h, ok = strings.CutSuffix(h, "}")
	return ok && isToken(h) // same alphabet and length as a token
}

// progress rewrites one line on a terminal, at most 5 times a second; with
// no terminal it does nothing.
type progress struct {
	w    io.Writer
	last time.Time
	used bool
}

func (p *progress) show(format string, args ...any) {
	if p.w == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last, p.used = time.Now(), true
	fmt.Fprintf(p.w, "\r"+format+"\033[K", args...)
}

// done erases the line.
func (p *progress) done() {
	if p.used {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
