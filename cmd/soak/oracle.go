package main

import (
	"fmt"
	"sort"
	"time"
)

// call is one recorded call: what was asked, when it began and returned,
// and what it answered.
type call struct {
	Op      string    // set, get, liv, rotate, die, dieall, count
	User    string    // set, dieall, count: the user; get, liv, rotate, die: the token's owner
	Token   string    // get, liv, rotate, die: the token asked about
	Out     string    // set, rotate: the token issued; get: the user ID returned
	Err     string    // "" for success, else the kind: notfound, notreplicated, context, other
	Start   time.Time // invocation
	End     time.Time // completion
	Timeout time.Duration
}

func (c call) ok() bool { return c.Err == "" }

// limits are what the oracle holds the history to.
type limits struct {
	MaxAge   time.Duration // 0: none
	Slack    time.Duration // how far past its context's deadline a call may return
	Expiry   time.Duration // Redis's expiry resolution, and clock jitter on one machine
	CacheLag time.Duration // with a cache in another process: how long an end may take to reach it
}

// violation is one broken promise, with the calls that show it.
type violation struct {
	Rule string
	What string
}

// verdict is what the oracle found: violations by rule, and the stale
// reads that the cache's documented bound allows, counted apart.
type verdict struct {
	Checked    map[string]int // how many calls each rule looked at
	Violations []violation
	WithinLag  int // Gets that resolved an ended token within CacheLag of its end
}

// check holds history to the promises of docs/reliability.md:
//
//   - wrong-user: a Get never returns another user's ID;
//   - after-end: no token resolves in a Get that began after a Die, Rotate
//     or DieAll that ended it returned nil (with Replicas, nil means the
//     replicas acknowledged it, across failovers too);
//   - dieall-complete: no token issued by a Set or Rotate that returned
//     before a successful DieAll of its user began resolves after that
//     DieAll returned;
//   - past-maxage: no token resolves in a Get that began after its chain's
//     deadline: MaxAge after the Set that began the chain returned;
//   - resurrection: once a Get answered ErrNotFound, no Get that began
//     after it returned resolves the token (a restart that loses data ends
//     sessions, never brings one back);
//   - overrun: every call returns within its context's deadline plus Slack.
func check(history []call, l limits) verdict {
	v := verdict{Checked: map[string]int{}}
	h := append([]call(nil), history...)
	sort.Slice(h, func(i, j int) bool { return h[i].Start.Before(h[j].Start) })

	owner := map[string]string{}
	issued := map[string]time.Time{} // when the call that issued it returned
	chain := map[string]time.Time{}  // when its chain's Set returned
	ended := map[string]endAt{}      // the first acknowledged end of it
	gone := map[string]time.Time{}   // when a Get first answered ErrNotFound
	dieAll := map[string][]call{}    // successful DieAll calls by user
	for _, c := range h {
		switch {
		case c.Op == "set" && c.ok():
			owner[c.Out], issued[c.Out], chain[c.Out] = c.User, c.End, c.End
		case c.Op == "rotate" && c.ok():
			owner[c.Out], issued[c.Out], chain[c.Out] = c.User, c.End, chain[c.Token]
			ended[c.Token] = ended[c.Token].or(c.Start, c.End, "after-end")
		case c.Op == "die" && c.ok():
			ended[c.Token] = ended[c.Token].or(c.Start, c.End, "after-end")
		case c.Op == "dieall" && c.ok():
			dieAll[c.User] = append(dieAll[c.User], c)
		case c.Op == "get" && c.Err == "notfound":
			gone[c.Token] = earliest(gone[c.Token], c.End)
		}
	}
	// A DieAll ends every token issued before it began.
	for tok, at := range issued {
		for _, d := range dieAll[owner[tok]] {
			if at.Before(d.Start) {
				ended[tok] = ended[tok].or(d.Start, d.End, "dieall-complete")
			}
		}
	}
	for _, c := range h {
		if c.Timeout > 0 {
			v.Checked["overrun"]++
			if took := c.End.Sub(c.Start); took > c.Timeout+l.Slack {
				v.add("overrun", "%s at +%v took %v with a %v context", c.Op, since(h, c.Start), took.Round(time.Millisecond), c.Timeout)
			}
		}
		if c.Op != "get" || !c.ok() {
			continue
		}
		v.Checked["wrong-user"]++
		if c.Out != owner[c.Token] {
			v.add("wrong-user", "Get of a token of %q returned %q", owner[c.Token], c.Out)
		}
		if e, ok := ended[c.Token]; ok {
			v.Checked[e.by]++
			switch late := c.Start.Sub(e.t); {
			case late <= 0:
			case late <= l.CacheLag:
				v.WithinLag++
			default:
				v.add(e.by, "a Get at +%v resolved a token issued at +%v and ended by a call from +%v to +%v",
					since(h, c.Start), since(h, issued[c.Token]), since(h, e.start), since(h, e.t))
			}
		}
		if l.MaxAge > 0 {
			v.Checked["past-maxage"]++
			if over := c.Start.Sub(chain[c.Token].Add(l.MaxAge)); over > l.Expiry {
				v.add("past-maxage", "a Get that began %v after the chain's deadline resolved it", over.Round(time.Microsecond))
			}
		}
		if g, ok := gone[c.Token]; ok {
			v.Checked["resurrection"]++
			switch late := c.Start.Sub(g); {
			case late <= 0:
			case late <= l.CacheLag:
				// Another Store's cache has not heard yet: the same bound.
				v.WithinLag++
			default:
				v.add("resurrection", "a Get that began %v after another answered ErrNotFound resolved the token", late.Round(time.Microsecond))
			}
		}
	}
	return v
}

func (v *verdict) add(rule, format string, args ...any) {
	v.Violations = append(v.Violations, violation{rule, fmt.Sprintf(format, args...)})
}

// endAt is when a token was first ended, and by what rule's kind of call.
type endAt struct {
	t, start time.Time // when the ending call returned, and began
	by       string
}

func (e endAt) or(start, t time.Time, by string) endAt {
	if e.t.IsZero() || t.Before(e.t) {
		return endAt{t, start, by}
	}
	return e
}

// since is t's offset from the start of h, sorted by Start.
func since(h []call, t time.Time) time.Duration {
	return t.Sub(h[0].Start).Round(time.Millisecond)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
