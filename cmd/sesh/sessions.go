package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/seshkit/sesh"
)

// manager is what the session commands need beyond sesh.TokenStore:
// *sesh.Store and *sesh.Crypt have it.
type manager interface {
	sesh.TokenStore
	Sessions(ctx context.Context, userID string) ([]sesh.Session, error)
	DieSession(ctx context.Context, userID, handle string) error
	DieEverything(ctx context.Context) (int, error)
}

var (
	_ manager = (*sesh.Store)(nil)
	_ manager = (*sesh.Crypt)(nil)
)

// sessionsCmd lists a user's sessions.
func (c *cli) sessionsCmd(ctx context.Context, args []string) int {
	const name = "sessions"
	var f storeFlags
	fs := c.flags(name, "[flags] USERID",
		"Sessions lists the live sessions of USERID, oldest first, one a line: its handle,\n"+
			"when its user authenticated, when it was created and last used (with the\n"+
			"application's Options.Details; - without), when it ends unless used, its\n"+
			"deadline, and its label. It exits 1 when USERID has none. It lists the\n"+
			"sessions that an application with TrackUsers indexed; never a token.\n"+opsAbout,
		"\tsesh sessions -redis redis://localhost:6379 alice")
	f.register(fs)
	pos, status, ok := c.parse(fs, args, 1)
	if !ok {
		return status
	}
	in, err := sessionInput(c, &f, name, pos[0])
	if err != nil {
		return c.usage(fs, "%v", err)
	}
	return c.withManager(ctx, name, in, func(m manager) int {
		l, err := m.Sessions(ctx, in.arg)
		if err != nil {
			return c.fail(ctx, name, err)
		}
		if len(l) == 0 {
			c.noTokens(name, in)
			return exitNotFound
		}
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "HANDLE\tAUTHENTICATED\tCREATED\tLAST USE\tIDLE EXPIRY\tDEADLINE\tLABEL")
		for _, se := range l {
			label := se.Label
			if !printable(label) {
				label = strconv.Quote(label)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", se.Handle, stamp(se.AuthTime), stamp(se.Created), stamp(se.LastUse), stamp(se.IdleExpiry), stamp(se.Deadline), label)
		}
		w.Flush()
		return exitOK
	})
}

// stamp prints a time in UTC to the second, or - for the zero Time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateTime)
}

// endCmd ends one session of a user by its handle.
func (c *cli) endCmd(ctx context.Context, args []string) int {
	const name = "end"
	var f storeFlags
	fs := c.flags(name, "[flags] USERID HANDLE",
		"End ends the session of USERID whose handle is HANDLE, as sesh sessions prints\n"+
			"it, or exits 1 when USERID has no live session of that handle: a handle never\n"+
			"ends another user's session.\n"+opsAbout,
		"\tsesh end -redis redis://localhost:6379 alice Kq3x9Zb0Tn1w")
	f.register(fs)
	pos, status, ok := c.parse(fs, args, 2)
	if !ok {
		return status
	}
	in, err := sessionInput(c, &f, name, pos[0])
	if err != nil {
		return c.usage(fs, "%v", err)
	}
	handle := pos[1]
	return c.withManager(ctx, name, in, func(m manager) int {
		err := m.DieSession(ctx, in.arg, handle)
		if errors.Is(err, sesh.ErrNotFound) {
			fmt.Fprintf(c.stderr, "sesh: %s: no live session of this user ID has that handle; list them with sesh sessions\n", name)
			return exitNotFound
		}
		if err != nil {
			return c.fail(ctx, name, err)
		}
		return exitOK
	})
}

// dieEverythingCmd ends every session under a prefix.
func (c *cli) dieEverythingCmd(ctx context.Context, args []string) int {
	const name = "dieeverything"
	var f storeFlags
	var yes bool
	fs := c.flags(name, "[flags] -yes",
		"Dieeverything ends every session under -prefix that was issued before it began,\n"+
			"of every user, indexed or not, and prints how many it ended: for an\n"+
			"administrator after a breach. It scans every master (SCAN) and repeats until a\n"+
			"scan ends nothing. It refuses to run without -yes.\n"+opsAbout,
		"\tsesh dieeverything -redis redis://localhost:6379 -prefix sesh -yes")
	f.register(fs)
	fs.BoolVar(&yes, "yes", false, "confirm: end every session under -prefix")
	if _, status, ok := c.parse(fs, args, 0); !ok {
		return status
	}
	if !yes {
		return c.usage(fs, "%s ends every session under prefix %q; pass -yes to confirm", name, f.prefix)
	}
	in, err := sessionInput(c, &f, name, "")
	if err != nil {
		return c.usage(fs, "%v", err)
	}
	return c.withManager(ctx, name, in, func(m manager) int {
		n, err := m.DieEverything(ctx)
		if err != nil {
			fmt.Fprintf(c.stderr, "sesh: %s: ended %d before the error\n", name, n)
			return c.fail(ctx, name, err)
		}
		fmt.Fprintln(c.stdout, n)
		return exitOK
	})
}

// sessionInput checks what a session command was given, before any I/O:
// every error is a usage error. userID is "" for none.
func sessionInput(c *cli, f *storeFlags, name, userID string) (in input, err error) {
	if !f.given() {
		return in, fmt.Errorf(errNoServer, name)
	}
	f.track = true // the per-user index is the only way to a user's sessions
	if userID != "" || name != "dieeverything" {
		o := op{name: name, arg: "USERID", userArg: true}
		if err := o.checkArg(userID); err != nil {
			return in, err
		}
	}
	in.arg = userID
	if in.keys, err = f.keys(c.stderr); err != nil {
		return in, fmt.Errorf("%s: %v", name, err)
	}
	if in.o, err = f.options(in.keys); err != nil {
		return in, err
	}
	if in.t, err = f.target(); err != nil {
		return in, fmt.Errorf("%s: %v", name, err)
	}
	return in, nil
}

// withManager connects and runs fn with the Store or Crypt in describes.
func (c *cli) withManager(ctx context.Context, name string, in input, fn func(manager) int) int {
	b, err := in.t.open()
	if err != nil {
		return c.fail(ctx, name, err)
	}
	defer b.close()
	// The Pool itself, not b: on Cluster, DieEverything finds the masters
	// through seshcluster's Pool.
	s, err := openStore(b.Pool, in.o, in.keys)
	if err != nil {
		return c.fail(ctx, name, err)
	}
	defer s.Close()
	return fn(s.(manager))
}
