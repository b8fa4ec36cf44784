package main

import (
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitStatus runs every command into each exit status it documents
// (main.go's package comment) and checks the status, that stdout holds the
// result or nothing, and that an error is one line, or two for a usage
// error (the line and the pointer to -h).
func TestExitStatus(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	down := downURL(t)
	auth, authURL := server(t)
	auth.RequireAuth("right")
	wrongPW := "redis://wrong@" + strings.TrimPrefix(authURL, "redis://")
	r := "-redis=" + url
	key := keygen(t)
	// tok issues a fresh token of alice, indexed, for each case that needs one.
	tok := func() string {
		t.Helper()
		status, out, errOut := runSesh(t, "", "set", r, "-track-users", "alice")
		if status != exitOK {
			t.Fatalf("set: %d %s", status, errOut)
		}
		return strings.TrimSpace(out)
	}
	sealed := func() string {
		t.Helper()
		t.Setenv("SESH_KEYS", key)
		defer t.Setenv("SESH_KEYS", "")
		status, out, errOut := runSesh(t, "", "set", r, "-track-users", "carol")
		if status != exitOK {
			t.Fatalf("set with SESH_KEYS: %d %s", status, errOut)
		}
		return strings.TrimSpace(out)
	}
	unknown := strings.Repeat("A", 43)
	for _, c := range []struct {
		name   string
		args   []string
		status int
		stdout string // a prefix of stdout; "" wants nothing
		stderr string // a part of stderr; "" wants nothing
	}{
		{"help exits 0", []string{"help"}, exitOK, "", "Commands:"},
		{"no command exits 2", nil, exitUsage, "", "Commands:"},
		{"an unknown command exits 2", []string{"nope"}, exitUsage, "", `unknown command "nope"`},

		{"set of a user exits 0", []string{"set", r, "alice"}, exitOK, "", ""},
		{"set of a user ID with a newline exits 2", []string{"set", r, "ali\nce"}, exitUsage, "", "control character"},
		{"set of a user ID with a tab exits 2", []string{"set", r, "ali\tce"}, exitUsage, "", "control character"},
		{"set of a user ID that is not UTF-8 exits 2", []string{"set", r, "ali\xffce"}, exitUsage, "", "not UTF-8"},
		{"set of 1,025 bytes exits 2", []string{"set", r, strings.Repeat("u", 1025)}, exitUsage, "", "1025 bytes, more than 1024"},
		{"set with a bad -ttl exits 2 in one line", []string{"set", r, "-ttl", "soon", "alice"}, exitUsage, "", `invalid value "soon" for flag -ttl`},
		{"set with an unknown flag exits 2 in one line", []string{"set", r, "-nope", "alice"}, exitUsage, "", "flag provided but not defined: -nope"},
		{"set with a bad -prefix exits 2 before any I/O", []string{"set", "-redis", down, "-track-users", "-prefix", "a b", "alice"}, exitUsage, "", "Prefix"},
		{"set with a negative -maxage exits 2", []string{"set", r, "-maxage", "-1s", "alice"}, exitUsage, "", "MaxAge"},
		{"set with port 99999 exits 2", []string{"set", "-redis", "redis://127.0.0.1:99999", "alice"}, exitUsage, "", `port "99999"`},
		{"set with a '/' in the password exits 2 with the hint", []string{"set", "-redis", "redis://u:p/w@127.0.0.1:6379", "alice"}, exitUsage, "", "percent-encode"},
		{"set with a '?' in the password exits 2 with the hint", []string{"set", "-redis", "redis://u:p?w@127.0.0.1:6379", "alice"}, exitUsage, "", "percent-encode"},
		{"set with a '#' in the password exits 2 with the hint", []string{"set", "-redis", "redis://u:p#w@127.0.0.1:6379", "alice"}, exitUsage, "", "percent-encode"},
		{"set on a server down exits 3", []string{"set", "-redis", down, "alice"}, exitFailure, "", "sesh: set: "},
		{"set -track-users on a server down exits 3", []string{"set", "-redis", down, "-track-users", "alice"}, exitFailure, "", "sesh: set: new: TrackUsers"},
		{"set -track-users with a wrong password exits 3", []string{"set", "-redis", wrongPW, "-track-users", "alice"}, exitFailure, "", "sesh: set: "},

		{"get of a live token exits 0", []string{"get", r, tok()}, exitOK, "alice\n", ""},
		{"get of an unknown token exits 1", []string{"get", r, unknown}, exitNotFound, "", "token not found"},
		{"get of a malformed token exits 1", []string{"get", r, "x"}, exitNotFound, "", "token not found"},
		{"get without a token exits 2", []string{"get", r}, exitUsage, "", "get takes 1 argument"},
		{"get with a bad database exits 2, one prefix", []string{"get", "-redis", "redis://127.0.0.1/x", unknown}, exitUsage, "", `sesh: get: URL "redis://127.0.0.1/x" has database "x"`},
		{"get on a server down exits 3", []string{"get", "-redis", down, unknown}, exitFailure, "", "sesh: get: "},
		{"get of a sealed value without keys exits 3", []string{"get", r, sealed()}, exitFailure, "", "not printable"},

		{"liv of a live token exits 0", []string{"liv", r, tok()}, exitOK, "", ""},
		{"liv of an unknown token exits 1", []string{"liv", r, unknown}, exitNotFound, "", "token not found"},
		{"liv with a bad -ttl exits 2", []string{"liv", r, "-ttl", "0", unknown}, exitUsage, "", "want a positive duration"},
		{"liv on a server down exits 3", []string{"liv", "-redis", down, unknown}, exitFailure, "", "sesh: liv: "},

		{"die of a live token exits 0", []string{"die", r, tok()}, exitOK, "", ""},
		{"die of a token already gone exits 0", []string{"die", r, unknown}, exitOK, "", ""},
		{"die of a malformed token exits 1", []string{"die", r, "x"}, exitNotFound, "", "token not found"},
		{"die without a server exits 2", []string{"die", unknown}, exitUsage, "", "needs a Redis server"},
		{"die on a server down exits 3", []string{"die", "-redis", down, unknown}, exitFailure, "", "sesh: die: "},

		{"rotate of a live token exits 0", []string{"rotate", r, tok()}, exitOK, "", ""},
		{"rotate of an unknown token exits 1", []string{"rotate", r, unknown}, exitNotFound, "", "token not found"},
		{"rotate with two tokens exits 2", []string{"rotate", r, unknown, unknown}, exitUsage, "", "takes 1 argument, got 2"},
		{"rotate on a server down exits 3", []string{"rotate", "-redis", down, unknown}, exitFailure, "", "sesh: rotate: "},

		{"count of a user with tokens exits 0", []string{"count", r, "-track-users", "alice"}, exitOK, "", ""},
		{"count of an unknown user prints 0 and exits 1", []string{"count", r, "-track-users", "nobody"}, exitNotFound, "0\n", "set SESH_KEYS or -keys-file"},
		{"count of a Crypt's user without keys exits 1 with the hint", []string{"count", r, "-track-users", "carol"}, exitNotFound, "0\n", "if the application uses Crypt"},
		{"count under another prefix exits 1 with the hint", []string{"count", r, "-track-users", "-prefix", "other", "alice"}, exitNotFound, "0\n", `under prefix "other"`},
		{"count needs no -track-users", []string{"count", r, "alice"}, exitOK, "", ""},
		{"count of 1,025 bytes exits 2", []string{"count", r, "-track-users", strings.Repeat("u", 1025)}, exitUsage, "", "more than 1024"},
		{"count with -track-users on a server down exits 3", []string{"count", "-redis", down, "-track-users", "alice"}, exitFailure, "", "sesh: count: "},
		{"count with a wrong password exits 3", []string{"count", "-redis", wrongPW, "-track-users", "alice"}, exitFailure, "", "sesh: count: "},

		{"dieall of a user with tokens exits 0", []string{"dieall", r, "-track-users", "alice"}, exitOK, "", ""},
		{"dieall of a user with none left prints 0 and exits 1", []string{"dieall", r, "-track-users", "alice"}, exitNotFound, "0\n", "no live token"},
		{"dieall of a Crypt's user without keys exits 1 with the hint", []string{"dieall", r, "-track-users", "carol"}, exitNotFound, "0\n", "if the application uses Crypt"},
		{"dieall needs no -track-users", []string{"dieall", r, "alice"}, exitNotFound, "0\n", "no live token"},
		{"dieall on a server down exits 3", []string{"dieall", "-redis", down, "-track-users", "alice"}, exitFailure, "", "sesh: dieall: "},

		{"countall exits 0, even for none", []string{"countall", "-redis", url, "-prefix", "none"}, exitOK, "0\n", ""},
		{"countall with -count 0 exits 2", []string{"countall", "-redis", url, "-count", "0"}, exitUsage, "", "-count 0"},
		{"countall on a server down exits 3", []string{"countall", "-redis", down}, exitFailure, "", "sesh: countall: "},

		{"doctor on a server down exits 1", []string{"doctor", "-redis", down}, exitCheckFailed, "sesh doctor", ""},
		{"doctor with an argument exits 2", []string{"doctor", "-redis", down, "x"}, exitUsage, "", "doctor takes 0 arguments"},

		{"keygen exits 0", []string{"keygen"}, exitOK, "", ""},
		{"keygen with an argument exits 2", []string{"keygen", "x"}, exitUsage, "", "keygen takes 0 arguments"},

		{"demo with a bad URL exits 2", []string{"demo", "-redis", "redis://127.0.0.1:99999"}, exitUsage, "", `port "99999"`},
		{"demo on a server down exits 3", []string{"demo", "-redis", down}, exitFailure, "", "sesh: demo: "},

		{"bench exits 0", []string{"bench", "-n", "20", "-c", "2", "-ops", "set,get"}, exitOK, "", ""},
		{"bench with -c 0 exits 2", []string{"bench", "-c", "0"}, exitUsage, "", "-c 0"},
		{"bench on a server down exits 3", []string{"bench", "-redis", down, "-n", "1"}, exitFailure, "", "sesh: bench: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, out, errOut := runSesh(t, "", c.args...)
			if status != c.status {
				t.Fatalf("status %d, want %d; stderr:\n%s", status, c.status, errOut)
			}
			if !strings.HasPrefix(out, c.stdout) || c.stdout == "" && status != exitOK && out != "" {
				t.Errorf("stdout %q, want %q", out, c.stdout)
			}
			if !strings.Contains(errOut, c.stderr) || c.stderr == "" && errOut != "" && status != exitOK {
				t.Errorf("stderr %q, want one with %q", errOut, c.stderr)
			}
			if strings.Contains(errOut, "sesh: sesh:") || strings.Contains(errOut, ": sesh: ") {
				t.Errorf("stderr repeats the prefix: %q", errOut)
			}
			lines := strings.Count(errOut, "\n")
			switch {
			case status == exitUsage && c.args != nil && c.args[0] != "nope":
				if lines != 2 || !strings.Contains(errOut, "-h' for usage") {
					t.Errorf("a usage error printed %d lines, want the error and the pointer to -h:\n%s", lines, errOut)
				}
			case status == exitNotFound || status == exitFailure:
				if c.args[0] != "doctor" && c.args[0] != "bench" && lines != 1 {
					t.Errorf("an error printed %d lines, want 1:\n%s", lines, errOut)
				}
			}
		})
	}
}

// downURL returns the URL of a server that has stopped.
func downURL(t *testing.T) string {
	t.Helper()
	mr, url := server(t)
	mr.Close()
	return url
}

// TestInterruptExits130 interrupts a get that waits on a server that never
// answers.
func TestInterruptExits130(t *testing.T) {
	cleanEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// While this is registered, an interrupt that arrives before run's
	// own handler cannot end the test binary.
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, os.Interrupt)
	defer signal.Stop(ch)
	done := make(chan int, 1)
	go func() {
		status, _, _ := runSesh(t, "", "get", "-redis", "redis://"+ln.Addr().String(), strings.Repeat("A", 43))
		done <- status
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case status := <-done:
			if status != exitInterrupted {
				t.Fatalf("status %d, want %d", status, exitInterrupted)
			}
			return
		case <-tick.C:
			syscall.Kill(os.Getpid(), syscall.SIGINT)
		}
	}
}
