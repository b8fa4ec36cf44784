package main

import (
	"testing"
	"time"
)

// TestSessionRules feeds the oracle histories that break each session rule,
// and ones that keep them, and checks that it names exactly what broke.
func TestSessionRules(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	set := func(tok string, ms int) call {
		return call{Op: "set", User: "ann", Out: tok, Start: at(ms), End: at(ms + 1)}
	}
	get := func(tok string, ms int) call {
		return call{Op: "get", Token: tok, Out: "ann", User: "ann", Start: at(ms), End: at(ms + 1)}
	}
	others := func(tok string, ms int) call {
		return call{Op: "dieothers", Token: tok, User: "ann", Start: at(ms), End: at(ms + 1)}
	}
	l := limits{Slack: 100 * time.Millisecond, Expiry: 5 * time.Millisecond, MaxSessions: 2}
	for _, tc := range []struct {
		name string
		h    []call
		want string
	}{
		{"the caller's session lives on after DieOthers", []call{set("T1", 0), set("T2", 0), others("T1", 10), get("T1", 20)}, ""},
		{"another session lives on after DieOthers", []call{set("T1", 0), set("T2", 0), others("T1", 10), get("T2", 20)}, "dieothers-complete"},
		{"a session no index lists lives on after DieOthers", []call{set("T1", 0),
			{Op: "set", User: "ann", Out: "T2", Policy: &policy{TTL: time.Hour}, Start: at(0), End: at(1)}, others("T1", 10), get("T2", 20)}, ""},
		{"an indexed one does not", []call{set("T1", 0),
			{Op: "set", User: "ann", Out: "T2", Policy: &policy{TTL: time.Hour, Indexed: true}, Start: at(0), End: at(1)}, others("T1", 10), get("T2", 20)}, "dieothers-complete"},
		{"a rotation of the caller's session lives on", []call{set("T1", 0), {Op: "rotate", Token: "T1", User: "ann", Out: "T3", Start: at(5), End: at(6)},
			others("T3", 10), get("T3", 20)}, ""},
		{"a session issued after DieOthers began lives", []call{set("T1", 0), set("T2", 9), others("T1", 10), get("T2", 20)}, ""},
		{"alive after DieSession", []call{set("T1", 0), {Op: "diesession", Token: "T1", User: "ann", Start: at(10), End: at(11)}, get("T1", 20)}, "diesession"},
		{"a DieSession that failed ends nothing", []call{set("T1", 0), {Op: "diesession", Token: "T1", User: "ann", Err: "notfound", Start: at(10), End: at(11)}, get("T1", 20)}, ""},
		{"three sessions live at once past a cap of two", []call{set("T1", 0), set("T2", 1), set("T3", 2), get("T1", 10), get("T2", 10), get("T3", 10)}, "over-cap"},
		{"three sessions, never three at once", []call{set("T1", 0), set("T2", 1), get("T1", 5), get("T2", 5), set("T3", 6), get("T3", 10), get("T2", 10)}, ""},
		{"a rotation is no new session", []call{set("T1", 0), set("T2", 1), {Op: "rotate", Token: "T1", User: "ann", Out: "T3", Start: at(5), End: at(6)},
			get("T1", 4), get("T2", 10), get("T3", 10)}, ""},
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
}
