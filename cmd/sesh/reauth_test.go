package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReauth(t *testing.T) {
	cleanEnv(t)
	mr, url := server(t)
	r := "-redis=" + url
	must := func(args ...string) string {
		t.Helper()
		status, out, errOut := runSesh(t, "", args...)
		if status != exitOK {
			t.Fatalf("sesh %s exited %d: %s", strings.Join(args, " "), status, errOut)
		}
		return strings.TrimSuffix(out, "\n")
	}
	authTime := func(tok string) string {
		t.Helper()
		return mr.HGet(keyOf(t, "sesh", tok), "a")
	}

	mr.SetTime(time.Now().Add(-time.Hour))
	old := must("set", r, "-maxage", "2h", "alice")
	mr.SetTime(time.Now())
	was := authTime(old)
	tok := must("reauth", r, old)
	if !isToken(tok) || tok == old {
		t.Fatalf("reauth printed %q, want a new token", tok)
	}
	if got := must("get", r, tok); got != "alice" {
		t.Fatalf("get of the new token printed %q, want alice", got)
	}
	if status, _, _ := runSesh(t, "", "get", r, old); status != exitNotFound {
		t.Fatalf("get of the old token exited %d, want 1", status)
	}
	before, _ := strconv.ParseInt(was, 10, 64)
	after, _ := strconv.ParseInt(authTime(tok), 10, 64)
	if d := time.Duration(after-before) * time.Millisecond; d < 59*time.Minute {
		t.Fatalf("reauth moved the authentication time by %v; want about an hour", d)
	}
	if status, out, errOut := runSesh(t, "", "reauth", r, old); status != exitNotFound || out != "" || !strings.HasPrefix(errOut, "sesh: ") {
		t.Fatalf("reauth of an ended token: status %d, stdout %q, stderr %q; want 1, nothing, a sesh: line", status, out, errOut)
	}
}
