package main

import (
	"strings"
	"testing"
)

// TestCountallCountsTokenKeysOnly fills a miniredis with tokens, their
// deadline keys and index, and keys that only look alike.
func TestCountallCountsTokenKeysOnly(t *testing.T) {
	cleanEnv(t)
	mr, url := server(t)
	for range 7 {
		if status, _, errOut := runSesh(t, "", "set", "-redis", url, "-track-users", "-maxage", "1h", "alice"); status != exitOK {
			t.Fatalf("set exited %d: %s", status, errOut)
		}
	}
	if status, _, errOut := runSesh(t, "", "set", "-redis", url, "-prefix", "other", "bob"); status != exitOK {
		t.Fatalf("set exited %d: %s", status, errOut)
	}
	mr.Set("sesh:{short}", "x")
	mr.Set("sesh:{"+strings.Repeat("A", 43)+"}:x", "x")
	mr.Set("seshx:{"+strings.Repeat("A", 43)+"}", "x")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "7"},
		{[]string{"-count", "2"}, "7"},
		{[]string{"-prefix", "other"}, "1"},
		{[]string{"-prefix", "none"}, "0"},
	} {
		status, out, errOut := runSesh(t, "", append([]string{"countall", "-redis", url}, c.args...)...)
		if status != exitOK || out != c.want+"\n" || errOut != "" {
			t.Errorf("countall %v: status %d, stdout %q, stderr %q; want 0, %s and no progress line off a terminal", c.args, status, out, errOut, c.want)
		}
	}
}

func TestCountallUsage(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	for _, args := range [][]string{
		{"countall"},
		{"countall", "-redis", url, "-count", "0"},
		{"countall", "-redis", url, "-prefix", ""},
		{"countall", "-redis", url, "-cluster", "127.0.0.1:1"},
	} {
		if status, _, errOut := runSesh(t, "", args...); status != exitUsage || !strings.HasPrefix(errOut, "sesh: ") {
			t.Errorf("sesh %s: status %d, stderr %q; want 2", strings.Join(args, " "), status, errOut)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	for in, want := range map[string]string{
		"sesh":   "sesh",
		"a*b?c":  `a\*b\?c`,
		`[x]\y`:  `\[x\]\\y`,
		"":       "",
		"été{}:": "été{}:",
	} {
		if got := globEscape(in); got != want {
			t.Errorf("globEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
