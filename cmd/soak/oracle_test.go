package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/seshkit/sesh"
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

// simulate makes a history as the workload makes one, but with answers
// drawn at random, so that every rule is broken now and then: workers
// call one after another, each about its own tokens, on a coarse clock so
// that calls begin and end at the same instant too. With forget, workers
// drop tokens from their working set and say so, as the workload does.
func simulate(seed uint64, workers, calls int, forget bool) []call {
	rnd := rand.New(rand.NewPCG(seed, 7))
	t0 := time.Unix(1e9, 0)
	users := []string{"ann", "bob", "cy"}
	ops := []string{"get", "get", "get", "get", "set", "liv", "rotate", "die", "dieall", "count"}
	errs := []string{"", "", "", "notfound", "notfound", "context", "other"}
	var h []call
	n := 0
	for w := range workers {
		type tok struct{ token, user string }
		var mine []tok
		now := time.Duration(rnd.IntN(20)) * time.Millisecond
		for range calls {
			c := call{Op: ops[rnd.IntN(len(ops))], User: users[rnd.IntN(len(users))], Err: errs[rnd.IntN(len(errs))]}
			if len(mine) == 0 && c.Op != "dieall" && c.Op != "count" {
				c.Op = "set"
			}
			if c.Op != "set" && c.Op != "dieall" && c.Op != "count" {
				t := mine[rnd.IntN(len(mine))]
				c.Token, c.User = t.token, t.user
			}
			switch c.Op {
			case "set", "rotate":
				n++
				c.Out = fmt.Sprintf("w%dT%d", w, n)
				if c.ok() {
					mine = append(mine, tok{c.Out, c.User})
				}
			case "get":
				c.Out = c.User
				if rnd.IntN(20) == 0 {
					c.Out = users[rnd.IntN(len(users))]
				}
			}
			if rnd.IntN(10) == 0 {
				c.Timeout = 5 * time.Millisecond
			}
			c.Start = t0.Add(now)
			now += time.Duration(rnd.IntN(15)) * time.Millisecond
			c.End = t0.Add(now)
			now += time.Duration(rnd.IntN(3)) * time.Millisecond
			h = append(h, c)
			if forget && len(mine) > 6 {
				for _, t := range mine[:3] {
					h = append(h, call{Op: "forget", Token: t.token, Start: t0.Add(now)})
				}
				mine = mine[3:]
			}
		}
	}
	return h
}

// TestOracleMatchesBatch runs the streaming oracle and the batch one it
// replaced over the same histories: they must find the same violations, in
// the same order and words, and the same stale reads within the cache's
// bound; without forgets, the same counts of what each rule checked.
func TestOracleMatchesBatch(t *testing.T) {
	limits := []limits{
		{MaxAge: 300 * time.Millisecond, Slack: 5 * time.Millisecond, Expiry: 5 * time.Millisecond},
		{Slack: 5 * time.Millisecond, Expiry: 5 * time.Millisecond, CacheLag: 20 * time.Millisecond},
	}
	broken := map[string]int{}
	for seed := range uint64(40) {
		for _, forget := range []bool{false, true} {
			h := simulate(seed, 4, 300, forget)
			for _, l := range limits {
				got, want := check(h, l), batchCheck(dropForgets(h), l)
				if !slices.Equal(got.Violations, want.Violations) || got.WithinLag != want.WithinLag {
					t.Fatalf("seed %d, forget %v, %+v: streaming found %d violations and %d within the bound, batch %d and %d\nfirst streaming: %v\nfirst batch: %v",
						seed, forget, l, len(got.Violations), got.WithinLag, len(want.Violations), want.WithinLag,
						first(got.Violations), first(want.Violations))
				}
				if !forget && !maps.Equal(got.Checked, want.Checked) {
					t.Fatalf("seed %d, %+v: checked %v, batch %v", seed, l, got.Checked, want.Checked)
				}
				for _, v := range got.Violations {
					broken[v.Rule]++
				}
			}
		}
	}
	// The comparison means something only if every rule was broken.
	for _, rule := range []string{"wrong-user", "after-end", "dieall-complete", "past-maxage", "resurrection", "overrun"} {
		if broken[rule] == 0 {
			t.Errorf("no simulated history broke %s", rule)
		}
	}
}

func dropForgets(h []call) []call {
	return slices.DeleteFunc(slices.Clone(h), func(c call) bool { return c.Op == "forget" })
}

func first(vs []violation) any {
	if len(vs) == 0 {
		return nil
	}
	return vs[0]
}

// TestOracleForgets checks that a token dropped by the workload takes its
// state with it, and counts its Gets for the rules that held them.
func TestOracleForgets(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	o := newOracle(limits{})
	o.add(call{Op: "set", User: "ann", Out: "T1", Start: at(0), End: at(1)})
	o.add(call{Op: "get", Token: "T1", Out: "ann", Start: at(2), End: at(3)})
	o.add(call{Op: "die", Token: "T1", Start: at(4), End: at(5)})
	if o.held() != 1 {
		t.Fatalf("held %d tokens, want 1", o.held())
	}
	o.add(call{Op: "forget", Token: "T1", Start: at(6)})
	if o.held() != 0 || len(o.byUser["ann"]) != 0 {
		t.Fatalf("after forget: held %d tokens, %d of ann's", o.held(), len(o.byUser["ann"]))
	}
	v := o.close()
	if v.Checked["after-end"] != 1 || v.Checked["wrong-user"] != 1 || len(v.Violations) != 0 {
		t.Errorf("verdict %+v", v)
	}
}

// TestCheckOwnPolicy feeds the oracle histories in which each session
// carries its own policy, as two Stores with different Options and
// SetWith make them, and checks that it holds each session to its own
// idle TTL, deadline and index, not to the run's limits.
func TestCheckOwnPolicy(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	set := func(tok string, p policy) call {
		return call{Op: "set", User: "ann", Out: tok, Policy: &p, Start: at(0), End: at(1)}
	}
	get := func(tok string, ms int, slides bool) call {
		return call{Op: "get", Token: tok, Out: "ann", User: "ann", Slides: slides, Start: at(ms), End: at(ms + 1)}
	}
	liv := func(tok string, ms int, err string) call {
		return call{Op: "liv", Token: tok, User: "ann", Err: err, Start: at(ms), End: at(ms + 1)}
	}
	rotate := func(from, to string, ms int) call {
		return call{Op: "rotate", Token: from, User: "ann", Out: to, Start: at(ms), End: at(ms + 1)}
	}
	dieAll := call{Op: "dieall", User: "ann", Start: at(500), End: at(501)}
	idle100 := policy{TTL: 100 * time.Millisecond, Indexed: true}
	// The run's own limits would call every one of these sessions past its
	// MaxAge: only the session's own policy may decide.
	l := limits{MaxAge: 50 * time.Millisecond, Slack: 100 * time.Millisecond, Expiry: 5 * time.Millisecond}
	for _, tc := range []struct {
		name string
		h    []call
		want string // the one rule broken, or ""
	}{
		{"a Get within the session's own TTL", []call{set("T1", idle100), get("T1", 90, false)}, ""},
		{"a Get past the session's own TTL", []call{set("T1", idle100), get("T1", 120, false)}, "past-idle"},
		{"a Liv restarts the TTL", []call{set("T1", idle100), liv("T1", 80, ""), get("T1", 170, false)}, ""},
		{"a Liv that stretched the session past its own TTL", []call{set("T1", idle100), liv("T1", 80, ""), get("T1", 190, false)}, "past-idle"},
		{"a Liv that found nothing restarts nothing", []call{set("T1", idle100), liv("T1", 80, "notfound"), get("T1", 170, false)}, "past-idle"},
		{"a Liv that failed may land later: the token is no longer held to its TTL", []call{set("T1", idle100), liv("T1", 80, "context"), get("T1", 400, false)}, ""},
		{"a sliding Get restarts the TTL", []call{set("T1", idle100), get("T1", 80, true), get("T1", 170, false)}, ""},
		{"a Get that does not slide restarts nothing", []call{set("T1", idle100), get("T1", 80, false), get("T1", 170, false)}, "past-idle"},
		{"a Liv that overlaps the Get counts", []call{set("T1", idle100), {Op: "liv", Token: "T1", Start: at(90), End: at(150)}, get("T1", 200, false)}, ""},
		{"a Rotate restarts the new token's TTL", []call{set("T1", idle100), rotate("T1", "T2", 80), get("T2", 170, false)}, ""},
		{"a Rotate carries the TTL", []call{set("T1", idle100), rotate("T1", "T2", 80), get("T2", 190, false)}, "past-idle"},
		{"no idle TTL, no deadline: alive at any age", []call{set("T1", policy{}), get("T1", 5000, false)}, ""},
		{"within the session's own MaxAge", []call{set("T1", policy{MaxAge: 300 * time.Millisecond}), get("T1", 290, false)}, ""},
		{"past the session's own MaxAge through a rotation", []call{set("T1", policy{MaxAge: 300 * time.Millisecond}), rotate("T1", "T2", 200),
			get("T2", 310, false)}, "past-maxage"},
		{"DieAll ends an indexed session rotated by a Store that does not track", []call{set("T1", policy{Indexed: true}), rotate("T1", "T2", 100),
			dieAll, get("T2", 600, false)}, "dieall-complete"},
		{"DieAll leaves a session made without the index", []call{set("T1", policy{}), rotate("T1", "T2", 100), dieAll, get("T2", 600, false)}, ""},
		{"a session without a recorded policy keeps the run's limits", []call{{Op: "set", User: "ann", Out: "T1", Start: at(0), End: at(1)},
			get("T1", 100, false)}, "past-maxage"},
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

// TestResolve checks the policy the workload records for a Set against
// what sesh documents for Options and SetWith's Policy.
func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    sesh.Options
		p    sesh.Policy
		want policy
	}{
		{"the zero Options: 24 hours, no deadline, no index", sesh.Options{}, sesh.Policy{}, policy{TTL: 24 * time.Hour}},
		{"the Store's Options", sesh.Options{TTL: 2 * time.Second, MaxAge: 6 * time.Second, TrackUsers: true}, sesh.Policy{},
			policy{TTL: 2 * time.Second, MaxAge: 6 * time.Second, Indexed: true}},
		{"SetWith's fields override", sesh.Options{TTL: time.Hour}, sesh.Policy{TTL: time.Second, MaxAge: 4 * time.Second},
			policy{TTL: time.Second, MaxAge: 4 * time.Second}},
		{"a zero field takes the Store's", sesh.Options{TTL: 2 * time.Second, MaxAge: 6 * time.Second}, sesh.Policy{MaxAge: 2 * time.Second},
			policy{TTL: 2 * time.Second, MaxAge: 2 * time.Second}},
		{"Forever: no idle expiry", sesh.Options{TTL: sesh.Forever}, sesh.Policy{}, policy{}},
	} {
		if got := *resolve(tc.o, tc.p); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

var history = flag.String("history", "", "a history recorded by soak -record, for TestReplay")

// TestReplay holds a recorded history to both oracles:
//
//	go run ./cmd/soak -d 30s -record /tmp/h.jsonl
//	go test -run TestReplay ./cmd/soak -history /tmp/h.jsonl
func TestReplay(t *testing.T) {
	if *history == "" {
		t.Skip("no -history")
	}
	f, err := os.Open(*history)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h []call
	d := json.NewDecoder(bufio.NewReader(f))
	for {
		var c call
		if err := d.Decode(&c); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		h = append(h, c)
	}
	// As recorded, then with limits tighter than the run's (a MaxAge of 1s,
	// and calls over 10ms overrun), then with one ErrNotFound in 50 turned
	// into a success, so that both oracles have violations to agree on.
	// The batch oracle knows no per-session policy: both see the run's
	// limits. TestCheckOwnPolicy covers the policies.
	for i := range h {
		h[i].Policy, h[i].Slides = nil, false
	}
	owner := map[string]string{}
	var lied []call
	for i, c := range h {
		if (c.Op == "set" || c.Op == "rotate") && c.ok() {
			owner[c.Out] = c.User
		}
		if c.Op == "get" && c.Err == "notfound" && i%50 == 0 {
			c.Err, c.Out = "", owner[c.Token]
		}
		lied = append(lied, c)
	}
	for _, tc := range []struct {
		name string
		h    []call
		l    limits
	}{
		{"as recorded", h, limits{Slack: 500 * time.Millisecond, Expiry: 5 * time.Millisecond}},
		{"as recorded, MaxAge 3s", h, limits{MaxAge: 3 * time.Second, Slack: 500 * time.Millisecond, Expiry: 5 * time.Millisecond}},
		{"as recorded, a cache's bound", h, limits{Slack: 500 * time.Millisecond, Expiry: 5 * time.Millisecond, CacheLag: 200 * time.Millisecond}},
		{"tighter limits", h, limits{MaxAge: time.Second, Slack: 10*time.Millisecond - time.Second, Expiry: 5 * time.Millisecond}},
		{"lies", lied, limits{Slack: 500 * time.Millisecond, Expiry: 5 * time.Millisecond, CacheLag: 20 * time.Millisecond}},
	} {
		got, want := check(tc.h, tc.l), batchCheck(dropForgets(tc.h), tc.l)
		if !slices.Equal(got.Violations, want.Violations) || got.WithinLag != want.WithinLag || !maps.Equal(got.Checked, want.Checked) {
			t.Errorf("%s: streaming %d violations, %d within the bound, checked %v; batch %d, %d, %v", tc.name,
				len(got.Violations), got.WithinLag, got.Checked, len(want.Violations), want.WithinLag, want.Checked)
		}
		byRule := map[string]int{}
		for _, v := range got.Violations {
			byRule[v.Rule]++
		}
		t.Logf("%s: %d calls: violations %v, %d within the bound, checked %v", tc.name, len(tc.h), byRule, got.WithinLag, got.Checked)
	}
}
