// Command sesh shows, operates and load-tests a sesh token store.
//
// Usage:
//
//	sesh <command> [flags] [arguments]
//
// The commands are:
//
//	demo      run the token lifecycle, narrated, on an embedded Redis
//	set       issue a token for a user ID
//	get       print the user ID of a token
//	liv       restart a token's idle TTL
//	die       end a token
//	rotate    replace a token with a fresh one
//	reauth    replace a token with a fresh one after a new login
//	dieall    end every token of a user ID
//	count     count a user ID's live tokens
//	countall  count every live token under a prefix, with SCAN
//	sessions  list a user ID's live sessions and their handles
//	end       end one session of a user ID by its handle
//	dieeverything  end every session under a prefix (with -yes)
//	doctor    check a deployment against what sesh needs
//	keygen    print a fresh encryption key for SESH_KEYS
//	bench     measure throughput and latency
//
// Run "sesh <command> -h" for a command's flags and an example.
//
// # Environment
//
// SESH_REDIS_URL is the Redis URL used when neither -redis nor -cluster is
// given; like -redis, it may name a single Redis, a Sentinel-elected master
// (redis+sentinel://) or a Cluster (redis+cluster://). SESH_KEYS
// holds the encryption keys, comma-separated, the first of which seals; when
// it is set, the operator commands go through a [sesh.Crypt]. Keys never come
// from a flag, since any user can read another's command line.
//
// # Exit status
//
//	0    success; for die, also a token already gone
//	1    nothing found: get, liv, rotate and reauth of a token that is not live
//	     (unknown, expired, ended or malformed), die of a malformed token,
//	     count and dieall of a user ID with no live token (they print 0, and
//	     say on standard error that the prefix or the keys may be wrong), or
//	     a failed doctor check (an unreachable server is one)
//	2    usage error: a flag, argument, URL, key or keys file that cannot be
//	     used, found before any request to Redis; the help of -h exits 0
//	3    any other failure: Redis unreachable, refusing the password or a
//	     command, a stored value that fails to decrypt or is not printable,
//	     bench operations that failed
//	130  interrupted
//
// A keys file that its group or others may read gets a warning on
// standard error, as ssh gives for a private key; the command still runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/seshkit/sesh"
)

// Exit statuses, as documented above.
const (
	exitOK          = 0
	exitNotFound    = 1
	exitCheckFailed = 1 // doctor
	exitUsage       = 2
	exitFailure     = 3
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// cli is one invocation's standard streams.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name, summary string
	run           func(c *cli, ctx context.Context, args []string) int
}

var commands = []command{
	{"demo", "run the token lifecycle, narrated, on an embedded Redis", (*cli).demo},
	{"set", "issue a token for a user ID", ops["set"].run},
	{"get", "print the user ID of a token", ops["get"].run},
	{"liv", "restart a token's idle TTL", ops["liv"].run},
	{"die", "end a token", ops["die"].run},
	{"rotate", "replace a token with a fresh one", ops["rotate"].run},
	{"reauth", "replace a token with a fresh one after a new login", reauthOp.run},
	{"dieall", "end every token of a user ID", ops["dieall"].run},
	{"count", "count a user ID's live tokens", ops["count"].run},
	{"countall", "count every live token under a prefix, with SCAN", (*cli).countall},
	{"sessions", "list a user ID's live sessions and their handles", (*cli).sessionsCmd},
	{"end", "end one session of a user ID by its handle", (*cli).endCmd},
	{"dieeverything", "end every session under a prefix (with -yes)", (*cli).dieEverythingCmd},
	{"doctor", "check a deployment against what sesh needs", (*cli).doctor},
	{"keygen", "print a fresh encryption key for SESH_KEYS", (*cli).keygen},
	{"bench", "measure throughput and latency", (*cli).bench},
}

// run is the whole command, minus os.Exit: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		c.overview()
		return exitUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 {
			// "sesh help set" is "sesh set -h".
			name, args = args[0], []string{"-h"}
			break
		}
		c.overview()
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == name {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			return cmd.run(c, ctx, args)
		}
	}
	fmt.Fprintf(stderr, "sesh: unknown command %q; run 'sesh help' for the list\n", name)
	return exitUsage
}

func (c *cli) overview() {
	var b strings.Builder
	b.WriteString("sesh shows, operates and load-tests a sesh token store on Redis.\n\n")
	b.WriteString("Usage:\n\n\tsesh <command> [flags] [arguments]\n\nCommands:\n\n")
	for _, cmd := range commands {
		fmt.Fprintf(&b, "\t%-8s  %s\n", cmd.name, cmd.summary)
	}
	b.WriteString(`
Run 'sesh <command> -h' for a command's flags and an example.

Environment:

	SESH_REDIS_URL  Redis URL, when neither -redis nor -cluster is given:
	                redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://
	SESH_KEYS       encryption keys, comma-separated, the first seals (see keygen);
	                during a rollout "plain" stands for sesh.PlainKey and
	                "retired:KEY" for sesh.RetiredKey(KEY) (docs/security.md)

Exit status: 0 success; 1 nothing found (a token not live, a user ID with no
live token) or a doctor check failed; 2 usage error, before any request to
Redis; 3 any other failure; 130 interrupted.
`)
	io.WriteString(c.stderr, b.String())
}

// flags returns a FlagSet for a command whose -h prints synopsis, what the
// command does, its flags and an example.
func (c *cli) flags(name, synopsis, about, example string) *flag.FlagSet {
	fs := flag.NewFlagSet("sesh "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: %s\n\n%s\n", strings.TrimSpace("sesh "+name+" "+synopsis), about)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(c.stderr, "\nFlags:\n")
			fs.PrintDefaults()
		}
		fmt.Fprintf(c.stderr, "\nExample:\n\n%s\n", example)
	}
	return fs
}

// parse parses args with fs, letting flags and arguments mix, and checks
// that exactly want arguments remain. A token may start with '-', so an
// argument spelled like a token is never read as a flag. It returns the
// arguments, or ok false with the exit status to return.
func (c *cli) parse(fs *flag.FlagSet, args []string, want int) (pos []string, status int, ok bool) {
	// A bad flag gets one line, as every other usage error does; the whole
	// usage is for -h.
	full := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = full; fs.SetOutput(c.stderr) }()
	for len(args) > 0 {
		if isToken(args[0]) {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		j := len(args)
		for i, a := range args {
			if isToken(a) {
				j = i
				break
			}
		}
		if err := fs.Parse(args[:j]); err != nil {
			fs.Usage = full
			fs.SetOutput(c.stderr)
			if errors.Is(err, flag.ErrHelp) {
				full()
				return nil, exitOK, false
			}
			return nil, c.usage(fs, "%s: %v", strings.TrimPrefix(fs.Name(), "sesh "), err), false
		}
		rest := fs.Args()
		if used := j - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(append(pos, rest...), args[j:]...)
			break
		}
		if len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
		args = append(rest[:len(rest):len(rest)], args[j:]...)
	}
	if len(pos) != want {
		what := "arguments"
		if want == 1 {
			what = "argument"
		}
		return nil, c.usage(fs, "%s takes %d %s, got %d", strings.TrimPrefix(fs.Name(), "sesh "), want, what, len(pos)), false
	}
	return pos, exitOK, true
}

// isToken reports whether s is spelled like a token: 43 characters of
// unpadded base64url.
func isToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// usage reports a usage error in one line, points at -h, and returns
// exitUsage.
func (c *cli) usage(fs *flag.FlagSet, format string, args ...any) int {
	msg := strings.TrimPrefix(fmt.Sprintf(format, args...), "sesh: ")
	fmt.Fprintf(c.stderr, "sesh: %s\n", unnest(msg))
	fmt.Fprintf(c.stderr, "run '%s -h' for usage\n", fs.Name())
	return exitUsage
}

// fail reports err from op in one line and returns the exit status it
// calls for.
func (c *cli) fail(ctx context.Context, op string, err error) int {
	switch {
	case errors.Is(err, sesh.ErrNotFound):
		fmt.Fprintf(c.stderr, "sesh: %s: token not found (unknown, expired, ended or malformed)\n", op)
		return exitNotFound
	case errors.Is(err, sesh.ErrDecrypt):
		fmt.Fprintf(c.stderr, "sesh: %s: stored value failed to decrypt: sealed with a key missing from SESH_KEYS or -keys-file, written without encryption, or tampered with\n", op)
		return exitFailure
	case ctx.Err() != nil:
		fmt.Fprintf(c.stderr, "sesh: %s: interrupted\n", op)
		return exitInterrupted
	case errors.Is(err, sesh.ErrInvalidUser):
		// The command checks user IDs as sesh does; this is a backstop.
		fmt.Fprintf(c.stderr, "sesh: %s: %s\n", op, unnest(strings.TrimPrefix(err.Error(), "sesh: ")))
		return exitUsage
	}
	msg := unnest(strings.TrimPrefix(err.Error(), "sesh: "))
	if !strings.HasPrefix(msg, op+": ") {
		msg = op + ": " + msg
	}
	fmt.Fprintln(c.stderr, "sesh: "+msg)
	return exitFailure
}

// unnest drops the "sesh: " that a wrapped error of the library adds
// inside a message, so that "get: sesh: new: ..." reads "get: new: ...".
func unnest(msg string) string { return strings.ReplaceAll(msg, ": sesh: ", ": ") }
