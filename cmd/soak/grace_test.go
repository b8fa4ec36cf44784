package main

import (
	"testing"
	"time"
)

// TestCheckGrace feeds the oracle histories of a Store with a window.
func TestCheckGrace(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	set := call{Op: "set", User: "ann", Out: "T1", Start: at(0), End: at(1)}
	rot := func(tok, out string, ms int) call {
		return call{Op: "rotate", Token: tok, User: "ann", Out: out, Start: at(ms), End: at(ms + 1)}
	}
	get := func(tok string, ms int) call {
		return call{Op: "get", Token: tok, Out: "ann", User: "ann", Start: at(ms), End: at(ms + 1)}
	}
	die := func(tok string, ms int) call { return call{Op: "die", Token: tok, Start: at(ms), End: at(ms + 1)} }
	grace := limits{Slack: 100 * time.Millisecond, Expiry: 5 * time.Millisecond, Grace: 100 * time.Millisecond}
	none := grace
	none.Grace = 0
	reuse := grace
	reuse.Reuse = true
	miss := func(op, tok string, ms int) call {
		return call{Op: op, Token: tok, User: "ann", Err: "notfound", Start: at(ms), End: at(ms + 1)}
	}
	for _, tc := range []struct {
		name string
		l    limits
		h    []call
		want string // the one rule broken, or ""
	}{
		{"the old token resolves in its window", grace, []call{set, rot("T1", "T2", 10), get("T1", 50)}, ""},
		{"but not without one", none, []call{set, rot("T1", "T2", 10), get("T1", 50)}, "after-end"},
		{"nor after it", grace, []call{set, rot("T1", "T2", 10), get("T1", 200)}, "after-end"},
		{"a second Rotate in the window returns the same token", grace,
			[]call{set, rot("T1", "T2", 10), rot("T1", "T2", 20), get("T2", 30), get("T1", 40)}, ""},
		{"Rotate of the new token ends the old one at once", grace,
			[]call{set, rot("T1", "T2", 10), rot("T2", "T3", 20), get("T1", 30)}, "after-end"},
		{"Die of the new token ends the old one at once", grace,
			[]call{set, rot("T1", "T2", 10), die("T2", 20), get("T1", 30)}, "after-end"},
		{"the window keeps a DieAll's promise", grace,
			[]call{set, rot("T1", "T2", 10), {Op: "dieall", User: "ann", Start: at(20), End: at(21)}, get("T1", 30)}, "dieall-complete"},
		{"a reuse after the window ends the chain", reuse,
			[]call{set, rot("T1", "T2", 10), rot("T2", "T3", 20), miss("get", "T1", 200), get("T3", 210)}, "reuse"},
		{"by a Liv or a Rotate too", reuse,
			[]call{set, rot("T1", "T2", 10), miss("liv", "T1", 200), get("T2", 210)}, "reuse"},
		{"or a Rotate", reuse,
			[]call{set, rot("T1", "T2", 10), miss("rotate", "T1", 200), get("T2", 210)}, "reuse"},
		{"without reuse detection it does not", grace,
			[]call{set, rot("T1", "T2", 10), miss("get", "T1", 200), get("T2", 210)}, ""},
		{"nor within the window", reuse,
			[]call{set, rot("T1", "T2", 10), miss("get", "T1", 100), get("T2", 210)}, ""},
		{"a token issued after the reuse began lives", reuse,
			[]call{set, rot("T1", "T2", 10), rot("T2", "T3", 199), miss("get", "T1", 200), get("T3", 210)}, ""},
	} {
		v := check(tc.h, tc.l)
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
}
