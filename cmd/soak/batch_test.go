package main

import (
	"sort"
	"time"
)

// batchCheck is the oracle as it was before it checked as the run goes:
// it holds the whole history and checks it at the end. It is kept here,
// unchanged but for a stable sort (so that calls that began at the same
// instant keep their order, as the sequencer keeps them), only as the
// reference the streaming oracle must agree with.
func batchCheck(history []call, l limits) verdict {
	v := verdict{Checked: map[string]int{}, Broken: map[string]int{}}
	h := append([]call(nil), history...)
	sort.SliceStable(h, func(i, j int) bool { return h[i].Start.Before(h[j].Start) })

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
			ended[c.Token] = batchOr(ended[c.Token], c.Start, c.End, "after-end")
		case c.Op == "die" && c.ok():
			ended[c.Token] = batchOr(ended[c.Token], c.Start, c.End, "after-end")
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
				ended[tok] = batchOr(ended[tok], d.Start, d.End, "dieall-complete")
			}
		}
	}
	for _, c := range h {
		if c.Timeout > 0 {
			v.Checked["overrun"]++
			if took := c.End.Sub(c.Start); took > c.Timeout+l.Slack {
				v.add("overrun", "%s at +%v took %v with a %v context", c.Op, batchSince(h, c.Start), took.Round(time.Millisecond), c.Timeout)
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
					batchSince(h, c.Start), batchSince(h, issued[c.Token]), batchSince(h, e.start), batchSince(h, e.t))
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

func batchSince(h []call, t time.Time) time.Duration {
	return t.Sub(h[0].Start).Round(time.Millisecond)
}

// batchOr is endAt.or as it was: the end that returned first, the first
// seen on a tie.
func batchOr(e endAt, start, t time.Time, by string) endAt {
	if e.t.IsZero() || t.Before(e.t) {
		return endAt{t, start, by}
	}
	return e
}
