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
}

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
