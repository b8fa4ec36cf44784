package main

import (
	"testing"
	"time"
)

// TestCheck feeds the oracle histories that break each promise, and one
// that keeps them all, and checks that it names exactly what broke.
func TestCheck(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	set := call{Op: "set", User: "ann", Out: "T1", Start: at(0), End: at(1)}
	bobs := call{Op: "set", User: "bob", Out: "T2", Start: at(0), End: at(1)}
	get := func(tok, out string, ms int) call {
		return call{Op: "get", Token: tok, Out: out, User: "ann", Start: at(ms), End: at(ms + 1)}
	}
	l := limits{MaxAge: time.Second, Slack: 100 * time.Millisecond, Expiry: 5 * time.Millisecond}
	for _, tc := range []struct {
		name string
		h    []call
		want string // the one rule broken, or ""
	}{
		{"a clean history", []call{set, get("T1", "ann", 10), {Op: "die", Token: "T1", Start: at(20), End: at(21)},
			{Op: "get", Token: "T1", Err: "notfound", Start: at(30), End: at(31)}}, ""},
		{"another user's ID", []call{set, bobs, get("T2", "ann", 10)}, "wrong-user"},
		{"alive after Die", []call{set, {Op: "die", Token: "T1", Start: at(20), End: at(21)}, get("T1", "ann", 30)}, "after-end"},
		{"a Get that overlaps the Die is fine", []call{set, {Op: "die", Token: "T1", Start: at(20), End: at(30)}, get("T1", "ann", 25)}, ""},
		{"a Die that failed ends nothing", []call{set, {Op: "die", Token: "T1", Err: "other", Start: at(20), End: at(21)}, get("T1", "ann", 30)}, ""},
		{"alive after Rotate", []call{set, {Op: "rotate", Token: "T1", User: "ann", Out: "T3", Start: at(20), End: at(21)}, get("T1", "ann", 30)}, "after-end"},
		{"alive after DieAll", []call{set, {Op: "dieall", User: "ann", Start: at(20), End: at(21)}, get("T1", "ann", 30)}, "dieall-complete"},
		{"issued after DieAll began", []call{{Op: "set", User: "ann", Out: "T1", Start: at(15), End: at(22)},
			{Op: "dieall", User: "ann", Start: at(20), End: at(21)}, get("T1", "ann", 30)}, ""},
		{"past MaxAge through a rotation", []call{set, {Op: "rotate", Token: "T1", User: "ann", Out: "T3", Start: at(500), End: at(501)},
			get("T3", "ann", 1010)}, "past-maxage"},
		{"resurrected", []call{set, {Op: "get", Token: "T1", Err: "notfound", Start: at(10), End: at(11)}, get("T1", "ann", 20)}, "resurrection"},
		{"overrun", []call{set, {Op: "count", User: "ann", Timeout: 50 * time.Millisecond, Start: at(0), End: at(200)}}, "overrun"},
	} {
		v := check(tc.h, l)
		var got string
		for _, x := range v.Violations {
			if got != "" && got != x.Rule {
				t.Errorf("%s: broke %s and %s", tc.name, got, x.Rule)
			}
			got = x.Rule
		}
		if got != tc.want {
			t.Errorf("%s: broke %q, want %q (%v)", tc.name, got, tc.want, v.Violations)
		}
	}
	// With a cache elsewhere, a stale read within its bound is counted apart.
	v := check([]call{set, {Op: "die", Token: "T1", Start: at(20), End: at(21)}, get("T1", "ann", 30)},
		limits{CacheLag: 50 * time.Millisecond})
	if len(v.Violations) != 0 || v.WithinLag != 1 {
		t.Errorf("stale read within the cache's bound: %v, %d within", v.Violations, v.WithinLag)
	}
	v = check([]call{set, {Op: "get", Token: "T1", Err: "notfound", Start: at(10), End: at(11)}, get("T1", "ann", 20), get("T1", "ann", 100)},
		limits{CacheLag: 50 * time.Millisecond})
	if len(v.Violations) != 1 || v.Violations[0].Rule != "resurrection" || v.WithinLag != 1 {
		t.Errorf("a read 9ms after ErrNotFound is within the bound, one 89ms after is not: %v, %d within", v.Violations, v.WithinLag)
	}
}
