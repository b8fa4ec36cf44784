package main

import (
	"strings"
	"testing"
)

// TestSessionsAndEnd lists a user's sessions, ends one by its handle, and
// refuses a handle given with another user's ID.
func TestSessionsAndEnd(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	var toks []string
	for _, user := range []string{"alice", "alice", "bob"} {
		status, out, errOut := runSesh(t, "", "set", "-redis", url, "-track-users", user)
		if status != exitOK {
			t.Fatalf("set exited %d: %s", status, errOut)
		}
		toks = append(toks, strings.TrimSpace(out))
	}
	handlesOf := func(user string) []string {
		t.Helper()
		status, out, errOut := runSesh(t, "", "sessions", "-redis", url, user)
		if status != exitOK || !strings.HasPrefix(out, "HANDLE") {
			t.Fatalf("sessions %s: status %d, stdout %q, stderr %q", user, status, out, errOut)
		}
		for _, tok := range toks {
			if strings.Contains(out, tok) {
				t.Fatal("sessions printed a token")
			}
		}
		var hs []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			hs = append(hs, strings.Fields(line)[0])
		}
		return hs
	}
	alice, bob := handlesOf("alice"), handlesOf("bob")
	if len(alice) != 2 || len(bob) != 1 || len(alice[0]) != 12 {
		t.Fatalf("handles: alice %q, bob %q; want 2 and 1 of 12 characters", alice, bob)
	}
	if status, _, errOut := runSesh(t, "", "end", "-redis", url, "bob", alice[0]); status != exitNotFound || !strings.Contains(errOut, "handle") {
		t.Fatalf("end bob <alice's handle>: status %d, stderr %q; want 1", status, errOut)
	}
	if status, _, errOut := runSesh(t, "", "end", "-redis", url, "alice", alice[0]); status != exitOK {
		t.Fatalf("end alice: status %d, stderr %q", status, errOut)
	}
	if got := handlesOf("alice"); len(got) != 1 || got[0] != alice[1] {
		t.Fatalf("after end, alice's handles = %q; want [%s]", got, alice[1])
	}
	if status, _, _ := runSesh(t, "", "sessions", "-redis", url, "carol"); status != exitNotFound {
		t.Fatalf("sessions of a user with none: status %d; want 1", status)
	}
}

// TestDieEverything ends every session, and refuses to without -yes.
func TestDieEverything(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	var toks []string
	for _, user := range []string{"alice", "bob", "carol"} {
		_, out, _ := runSesh(t, "", "set", "-redis", url, user)
		toks = append(toks, strings.TrimSpace(out))
	}
	if status, _, errOut := runSesh(t, "", "dieeverything", "-redis", url); status != exitUsage || !strings.Contains(errOut, "-yes") {
		t.Fatalf("dieeverything without -yes: status %d, stderr %q; want 2, naming -yes", status, errOut)
	}
	if status, _, _ := runSesh(t, "", "get", "-redis", url, toks[0]); status != exitOK {
		t.Fatal("dieeverything without -yes ended a session")
	}
	if status, out, errOut := runSesh(t, "", "dieeverything", "-redis", url, "-yes"); status != exitOK || out != "3\n" {
		t.Fatalf("dieeverything -yes: status %d, stdout %q, stderr %q; want 0 and 3", status, out, errOut)
	}
	for _, tok := range toks {
		if status, _, _ := runSesh(t, "", "get", "-redis", url, tok); status != exitNotFound {
			t.Fatalf("get after dieeverything: status %d; want 1", status)
		}
	}
}

func TestSessionCommandsUsage(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	for _, args := range [][]string{
		{"sessions"},
		{"sessions", "-redis", url},
		{"sessions", "-redis", url, strings.Repeat("x", 1025)},
		{"end", "-redis", url, "alice"},
		{"end", "-redis", url, "alice", "h1", "h2"},
		{"dieeverything", "-yes"},
		{"dieeverything", "-redis", url, "-yes", "extra"},
	} {
		if status, _, errOut := runSesh(t, "", args...); status != exitUsage || !strings.HasPrefix(errOut, "sesh: ") {
			t.Errorf("sesh %s: status %d, stderr %q; want 2", strings.Join(args, " "), status, errOut)
		}
	}
}
