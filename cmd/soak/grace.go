package main

import (
	"time"

	"github.com/seshkit/sesh"
)

// The grace rules, for a Store with Options.RotateGrace (limits.Grace):
//
//   - after-end, for a rotated token: it may resolve in a Get that began
//     up to Grace (plus Expiry) after its Rotate returned, and in none
//     that began later;
//   - a Rotate within the window returns the token the first one issued:
//     a token issued again keeps its first issue, so dieall-complete and
//     past-maxage judge it by that;
//   - only the immediate predecessor has a window: a Rotate of the new
//     token, and a Die of it, end the old one by the time they return.
//
// Without Grace, rotated and died are the rules as they were: a Rotate
// ends the old token when it returns.
//
// With Options.ReuseDetection (limits.Reuse), one rule more:
//
//   - reuse: a Get, Liv or Rotate of a rotated token that began after its
//     window surely ended (its first Rotate's return, plus Grace and
//     Expiry) and answered ErrNotFound ends every later token of its
//     chain issued before it began: none of them resolves in a Get that
//     began after it returned.

// rotated records a successful Rotate c of c.Token to c.Out.
func (o *oracle) rotated(c call) {
	old := o.token(c.Token)
	end := c.End
	if o.l.Grace > 0 {
		end = end.Add(o.l.Grace + o.l.Expiry)
		if p := old.pred; p != nil {
			p.ended = p.ended.or(c.Start, c.End, "after-end")
		}
	}
	old.ended = old.ended.or(c.Start, end, "after-end")
	if n := o.tokens[c.Out]; o.l.Grace > 0 && n != nil && !n.issued.IsZero() {
		return // a second Rotate in the window: the first one's token
	}
	o.issue(c.Out, c.User, c.End, old.chain, old.pol)
	if o.l.Grace > 0 {
		o.token(c.Out).pred = old
	}
	old.next, old.rotated = o.token(c.Out), c.End
}

// reused records what a call c that answered ErrNotFound for a rotated
// token ends, with reuse detection: the rest of its chain, once its window
// is surely over.
func (o *oracle) reused(c call) {
	t := o.tokens[c.Token]
	if !o.l.Reuse || t == nil || t.next == nil || !c.Start.After(t.rotated.Add(o.l.Grace+o.l.Expiry)) {
		return
	}
	o.v.Checked["reuse"]++
	for n, i := t.next, 0; n != nil && i < maxChain; n, i = n.next, i+1 {
		if !n.issued.IsZero() && n.issued.Before(c.Start) {
			n.ended = n.ended.or(c.Start, c.End, "reuse")
		}
	}
}

// maxChain is how far sesh follows a chain's tombstones.
const maxChain = 64

// died records a successful Die of t: with a window, it ends t's
// predecessor too.
func (o *oracle) died(c call, t *tokenState) {
	t.ended = t.ended.or(c.Start, c.End, "after-end")
	if p := t.pred; o.l.Grace > 0 && p != nil {
		p.ended = p.ended.or(c.Start, c.End, "after-end")
	}
}

// graceConfig is the soak's configuration with a window: short, so that
// many rotated tokens outlive theirs within a run.
var graceConfig = config{opts: sesh.Options{TTL: time.Minute, TrackUsers: true, RotateGrace: 300 * time.Millisecond}}

// reuseConfig adds reuse detection to graceConfig. The workload presents
// rotated tokens again, so chains end often.
var reuseConfig = config{opts: sesh.Options{TTL: time.Minute, TrackUsers: true, RotateGrace: 300 * time.Millisecond, ReuseDetection: true}}
