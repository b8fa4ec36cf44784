package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/internal/redact"
)

// storeFlags are the operator commands' flags. -prefix and the keys must
// match the application's; -ttl, -maxage and -track-users are only the
// policy of the sessions that set creates: every other command honours the
// policy each session recorded at its Set.
type storeFlags struct {
	targetFlags
	prefix   string
	ttl      time.Duration
	maxAge   time.Duration
	track    bool
	keysFile string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	f.targetFlags.register(fs, "")
	fs.StringVar(&f.prefix, "prefix", "sesh", "key `prefix`, as in Options.Prefix")
	f.ttl = 24 * time.Hour
	fs.Var(ttlValue{&f.ttl}, "ttl", "idle TTL of the tokens set creates, as in Options.TTL: a `duration` or forever")
	fs.DurationVar(&f.maxAge, "maxage", 0, "absolute lifetime of the tokens set creates, as in Options.MaxAge; 0 means none")
	fs.BoolVar(&f.track, "track-users", false, "index the tokens set creates, as Options.TrackUsers, for dieall and count")
	fs.StringVar(&f.keysFile, "keys-file", "", "read encryption keys from `file`, one a line, # comments; mode 600 (default $SESH_KEYS)")
}

// ttlValue is a positive duration or "forever".
type ttlValue struct{ d *time.Duration }

func (v ttlValue) String() string {
	if v.d == nil {
		return ""
	}
	if *v.d == sesh.Forever {
		return "forever"
	}
	return short(*v.d)
}

func (v ttlValue) Set(s string) error {
	if s == "forever" {
		*v.d = sesh.Forever
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errors.New("want a positive duration, such as 30m, or forever")
	}
	*v.d = d
	return nil
}

// redisURL returns the -redis flag's value, or else SESH_REDIS_URL's.
func redisURL(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv("SESH_REDIS_URL")
}

// redacted is u with its user-info hidden, for messages.
func redacted(u string) string { return redact.URL(u) }

// errNoServer explains why the operator commands have no embedded default.
const errNoServer = "%s needs a Redis server: pass -redis URL or -cluster ADDRS, or set SESH_REDIS_URL " +
	"(an embedded Redis would forget every token when sesh exits)"

// options returns the Options the flags describe and checks them, and
// the keys, without I/O: New reaches Redis only for TrackUsers or a
// cache, so a Store without them over a Pool that never connects says
// whether the flags are valid. A bad flag is then a usage error, and what
// New reads from Redis later is not.
func (f *storeFlags) options(keys [][]byte) (sesh.Options, error) {
	o := sesh.Options{Prefix: f.prefix, TTL: f.ttl, MaxAge: f.maxAge, TrackUsers: f.track}
	dry := o
	dry.TrackUsers = false
	s, err := sesh.New(noPool{}, dry)
	if err != nil {
		return o, err
	}
	if len(keys) > 0 {
		if _, err := sesh.NewCrypt(s, keys...); err != nil {
			return o, err
		}
	}
	return o, nil
}

// noPool is a Pool that never connects.
type noPool struct{}

func (noPool) GetContext(context.Context) (redis.Conn, error) {
	return nil, errors.New("no connection")
}

// openStore returns the Store o describes over pool, or a Crypt over it when
// there are keys. Its errors come from Redis: options has checked the rest.
func openStore(pool sesh.Pool, o sesh.Options, keys [][]byte) (sesh.TokenStore, error) {
	s, err := sesh.New(pool, o)
	switch {
	case err != nil:
		return nil, err
	case len(keys) == 0:
		return s, nil
	}
	c, err := sesh.NewCrypt(s, keys...)
	if err != nil {
		s.Close()
		return nil, err
	}
	return c, nil
}

// keys reads the encryption keys from -keys-file, or else SESH_KEYS. None
// means no encryption. Messages name a bad key by its place, never by its
// value. A keys file that others may read gets a warning on warn.
func (f *storeFlags) keys(warn io.Writer) ([][]byte, error) {
	if f.keysFile != "" {
		b, err := readKeysFile(f.keysFile, warn)
		if err != nil {
			return nil, fmt.Errorf("keys file: %w", err)
		}
		var lines []string
		for l := range strings.Lines(string(b)) {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			return nil, fmt.Errorf("keys file %s holds no key", f.keysFile)
		}
		return decodeKeys(f.keysFile, lines)
	}
	// Empty entries are skipped, so that "$(sesh keygen),$SESH_KEYS" works
	// when SESH_KEYS was empty.
	var entries []string
	for _, e := range strings.Split(os.Getenv("SESH_KEYS"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return decodeKeys("SESH_KEYS", entries)
}

// readKeysFile reads the keys file at path, and warns on warn when its
// group or others have any access to it, as ssh does for a private key.
func readKeysFile(path string, warn io.Writer) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 && runtime.GOOS != "windows" {
		fmt.Fprintf(warn, "sesh: warning: keys file %s has mode %04o, open to group or others; run chmod 600 %s\n", path, m, path)
	}
	return io.ReadAll(fh)
}

// decodeKeys decodes keys as sesh keygen prints them, with sesh.ParseKey,
// and the two words of a rollout (docs/security.md): "plain" stands for
// sesh.PlainKey, and "retired:" before a key or "plain" for sesh.RetiredKey,
// so that the command's DieAll and Count reach what the application's do at
// every step. The errors never show a key.
func decodeKeys(source string, encoded []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(encoded))
	for i, e := range encoded {
		k, err := decodeKey(e)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d is not the base64 of 32 bytes, \"plain\" or \"retired:\" before one; make a key with 'sesh keygen'", source, i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// decodeKey decodes one entry of decodeKeys.
func decodeKey(e string) ([]byte, error) {
	if r, ok := strings.CutPrefix(e, "retired:"); ok {
		k, err := decodeKey(r)
		if err != nil || strings.HasPrefix(r, "retired:") {
			return nil, errors.New("not a key")
		}
		return sesh.RetiredKey(k), nil
	}
	if e == "plain" {
		return sesh.PlainKey, nil
	}
	return sesh.ParseKey(e)
}

// op describes one operator command.
type op struct {
	name, arg, about, example string
	userArg                   bool // the argument is a user ID, not a token
	counts                    bool // it prints how many tokens the user has or had
	do                        func(ctx context.Context, s sesh.TokenStore, arg string) (string, error)
}

var ops = map[string]op{
	"set": {
		name: "set", arg: "USERID", userArg: true,
		about: "Set issues a token for USERID and prints it. USERID is 1 to 1024 bytes of\n" +
			"printable UTF-8, so that sesh get can print it back.",
		example: "\tTOKEN=$(sesh set -redis redis://localhost:6379 alice)",
		do:      func(ctx context.Context, s sesh.TokenStore, user string) (string, error) { return s.Set(ctx, user) },
	},
	"get": {
		name: "get", arg: "TOKEN",
		about:   "Get prints the user ID of TOKEN, or exits 1 when TOKEN is not live.\nIt never renews TOKEN, whatever the application's Options.Sliding.",
		example: "\techo \"$TOKEN\" | sesh get -redis redis://localhost:6379 -",
		do:      func(ctx context.Context, s sesh.TokenStore, tok string) (string, error) { return s.Get(ctx, tok) },
	},
	"liv": {
		name: "liv", arg: "TOKEN",
		about:   "Liv restarts TOKEN's idle TTL, its own, never past its deadline, or exits 1\nwhen TOKEN is not live.",
		example: "\tsesh liv -redis redis://localhost:6379 \"$TOKEN\"",
		do: func(ctx context.Context, s sesh.TokenStore, tok string) (string, error) {
			return "", s.Liv(ctx, tok)
		},
	},
	"die": {
		name: "die", arg: "TOKEN",
		about:   "Die ends TOKEN. A token already gone is not an error.",
		example: "\tsesh die -redis redis://localhost:6379 \"$TOKEN\"",
		do: func(ctx context.Context, s sesh.TokenStore, tok string) (string, error) {
			return "", s.Die(ctx, tok)
		},
	},
	"rotate": {
		name: "rotate", arg: "TOKEN",
		about:   "Rotate ends TOKEN and prints a fresh token for its user, with the same policy:\nits idle TTL, absolute deadline and place in the user's index.",
		example: "\tTOKEN=$(sesh rotate -redis redis://localhost:6379 \"$TOKEN\")",
		do:      func(ctx context.Context, s sesh.TokenStore, tok string) (string, error) { return s.Rotate(ctx, tok) },
	},
	"dieall": {
		name: "dieall", arg: "USERID", userArg: true, counts: true,
		about: "Dieall ends every token of USERID and prints how many it ended, or exits 1 when it\n" +
			"found none. It finds the tokens that an application with TrackUsers indexed.",
		example: "\tsesh dieall -redis redis://localhost:6379 alice",
		do: func(ctx context.Context, s sesh.TokenStore, user string) (string, error) {
			n, err := s.DieAll(ctx, user)
			return fmt.Sprint(n), err
		},
	},
	"count": {
		name: "count", arg: "USERID", userArg: true, counts: true,
		about: "Count prints how many live tokens USERID has, and exits 1 when it has none.\n" +
			"It counts the tokens that an application with TrackUsers indexed.",
		example: "\tsesh count -redis redis://localhost:6379 alice",
		do: func(ctx context.Context, s sesh.TokenStore, user string) (string, error) {
			n, err := s.Count(ctx, user)
			return fmt.Sprint(n), err
		},
	},
}

const opsAbout = `
-prefix must match the application's Options.Prefix. Each token keeps the
policy its Set recorded (idle TTL, deadline, index); -ttl, -maxage and
-track-users apply only to the tokens that set creates.
With SESH_KEYS or -keys-file, values are sealed and opened with sesh.Crypt.
` + targetAbout

const tokenAbout = `
A TOKEN of - is read from standard input, which keeps it out of ps.`

// run runs the operator command o and prints its result on a line of its own.
func (o op) run(c *cli, ctx context.Context, args []string) int {
	about := o.about + "\n" + opsAbout
	if !o.userArg {
		about += tokenAbout
	}
	var f storeFlags
	fs := c.flags(o.name, "[flags] "+o.arg, about, o.example)
	f.register(fs)
	pos, status, ok := c.parse(fs, args, 1)
	if !ok {
		return status
	}
	in, err := o.input(c, &f, pos[0])
	if err != nil {
		return c.usage(fs, "%v", err)
	}
	return o.exec(ctx, c, in)
}

// input is what an operator command has checked before any I/O.
type input struct {
	arg  string
	t    target
	o    sesh.Options
	keys [][]byte
}

// input checks the flags and the argument, reads a TOKEN of - from
// standard input and reads the keys: every error it returns is a usage
// error, found before any request to Redis.
func (o op) input(c *cli, f *storeFlags, arg string) (in input, err error) {
	switch {
	case !f.given():
		return in, fmt.Errorf(errNoServer, o.name)
	case o.counts:
		// The per-user index is the only way to a user's tokens.
		f.track = true
	}
	if arg == "-" && !o.userArg {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if line = strings.TrimSpace(line); line == "" {
			if err == nil {
				err = errors.New("empty line")
			}
			return in, fmt.Errorf("%s: reading TOKEN from standard input: %v", o.name, err)
		}
		arg = line
	}
	if err := o.checkArg(arg); err != nil {
		return in, err
	}
	in.arg = arg
	if in.keys, err = f.keys(c.stderr); err != nil {
		return in, fmt.Errorf("%s: %v", o.name, err)
	}
	if in.o, err = f.options(in.keys); err != nil {
		return in, err
	}
	if in.t, err = f.target(); err != nil {
		return in, fmt.Errorf("%s: %v", o.name, err)
	}
	return in, nil
}

// maxUserID is the longest user ID sesh.Set accepts, in bytes.
const maxUserID = 1024

// checkArg refuses an empty argument, a user ID that sesh would refuse,
// and, for set, one that get could not print back.
func (o op) checkArg(arg string) error {
	switch {
	case arg == "":
		return fmt.Errorf("%s: empty %s", o.name, o.arg)
	case !o.userArg:
		return nil
	case len(arg) > maxUserID:
		return fmt.Errorf("%s: USERID is %d bytes, more than %d", o.name, len(arg), maxUserID)
	case o.name == "set" && !printable(arg):
		return fmt.Errorf("%s: USERID holds a control character, such as a newline, or is not UTF-8; sesh get could not print it", o.name)
	}
	return nil
}

// exec connects, runs o and prints its result.
func (o op) exec(ctx context.Context, c *cli, in input) int {
	b, err := in.t.open()
	if err != nil {
		return c.fail(ctx, o.name, err)
	}
	defer b.close()
	s, err := openStore(b, in.o, in.keys)
	if err != nil {
		return c.fail(ctx, o.name, err)
	}
	defer s.Close()
	out, err := o.do(ctx, s, in.arg)
	if err != nil {
		return c.fail(ctx, o.name, err)
	}
	if !printable(out) {
		// Most likely a sealed value read without its keys; never spill
		// ciphertext onto a terminal or into a script.
		fmt.Fprintf(c.stderr, "sesh: %s: the user ID is %d bytes that are not printable text; if the application uses Crypt, set SESH_KEYS or -keys-file\n", o.name, len(out))
		return exitFailure
	}
	if out != "" {
		fmt.Fprintln(c.stdout, out)
	}
	if o.counts && out == "0" {
		c.noTokens(o.name, in)
		return exitNotFound
	}
	return exitOK
}

// noTokens explains, after count or dieall found no token, the two
// mistakes that look the same from here: a prefix that is not the
// application's, and, for a Crypt, keys that are not its keys, which name
// other indexes.
func (c *cli) noTokens(op string, in input) {
	hint := "if the application uses Crypt, set SESH_KEYS or -keys-file to its keys; check that -prefix is its Options.Prefix"
	if len(in.keys) > 0 {
		hint = "check that SESH_KEYS or -keys-file holds the application's keys, and that -prefix is its Options.Prefix"
	}
	fmt.Fprintf(c.stderr, "sesh: %s: no live token of this user ID under prefix %q; %s\n", op, in.o.Prefix, hint)
}

// printable reports whether s is UTF-8 text without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// cleanup deletes every key under prefix + ":" on every master, with a
// context of its own so that it runs even after an interrupt, and returns
// how many it deleted. It scans the keyspace, which is fine for a throwaway
// prefix and never done on a hot path. Keys are deleted one per command, in
// a pipeline: on a Cluster node, keys of different slots cannot share one.
func cleanup(b *backend, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	err := b.eachMaster(ctx, func(_ string, conn redis.Conn) error {
		return scanKeys(ctx, conn, globEscape(prefix)+":*", 1000, func(keys []string) error {
			for _, k := range keys {
				conn.Send("DEL", k)
			}
			if err := conn.Flush(); err != nil {
				return err
			}
			for range keys {
				d, err := redis.Int(conn.Receive())
				if err != nil {
					return err
				}
				n += d
			}
			return nil
		})
	})
	return n, err
}

// scanKeys runs SCAN with MATCH pattern and COUNT count over the whole
// keyspace of conn's server, calling fn with each batch. It checks ctx
// between batches.
func scanKeys(ctx context.Context, conn redis.Conn, pattern string, count int, fn func(keys []string) error) error {
	cursor := "0"
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", pattern, "COUNT", count))
		if err != nil {
			return err
		}
		var keys []string
		if _, err := redis.Scan(v, &cursor, &keys); err != nil {
			return err
		}
		if err := fn(keys); err != nil {
			return err
		}
		if cursor == "0" {
			return nil
		}
	}
}

// globEscape quotes the characters SCAN's MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
