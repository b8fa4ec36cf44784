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
