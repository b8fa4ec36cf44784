package main

import (
	"fmt"
	"slices"
	"time"
)

// call is one recorded call: what was asked, when it began and returned,
// and what it answered.
type call struct {
	Op      string    // set, get, liv, rotate, die, dieall, count; forget: the workload dropped Token; draw, wire: see monitor
	User    string    // set, dieall, count: the user; get, liv, rotate, die: the token's owner
	Token   string    // get, liv, rotate, die, forget: the token asked about
	Out     string    // set, rotate: the token issued; get: the user ID returned
	Err     string    // "" for success, else the kind: notfound, notreplicated, context, other
	Start   time.Time // invocation
	End     time.Time // completion
	Timeout time.Duration
	Policy  *policy `json:",omitempty"` // set: the session's own policy; nil: the run's limits
	Slides  bool    `json:",omitempty"` // get: the Store restarts the idle TTL (Sliding)
	Wire    []wire  `json:",omitempty"` // wire: the commands the proxy read at once
}

// policy is what a session was created with, as the Store's Options or
// SetWith's Policy resolved it; a Rotate carries it to the new token.
type policy struct {
	TTL     time.Duration // idle lifetime; 0: none
	MaxAge  time.Duration // absolute lifetime; 0: none
	Indexed bool          // in its user's index, so DieAll ends it
}

func (c call) ok() bool { return c.Err == "" }

// limits are what the oracle holds the history to.
type limits struct {
	MaxAge      time.Duration // 0: none
	Slack       time.Duration // how far past its context's deadline a call may return
	Expiry      time.Duration // Redis's expiry resolution, and clock jitter on one machine
	CacheLag    time.Duration // with a cache in another process: how long an end may take to reach it
	Grace       time.Duration // Options.RotateGrace: see grace.go
	Reuse       bool          // Options.ReuseDetection: see grace.go
	MaxSessions int           // Options.MaxSessions, for over-cap (sessions.go); 0: none
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
	Broken     map[string]int // how many times each rule broke
	Violations []violation    // each, or with a cap the first few of each rule
	WithinLag  int            // Gets that resolved an ended token within CacheLag of its end
	cap        int            // the most Violations kept per rule; 0: all
}

// oracle holds a history to the promises of docs/reliability.md as it is
// written, one call at a time in the order the calls began:
//
//   - wrong-user: a Get never returns another user's ID;
//   - after-end: no token resolves in a Get that began after a Die, Rotate
//     or DieAll that ended it returned nil (with Replicas, nil means the
//     replicas acknowledged it, across failovers too);
//   - dieall-complete: no indexed token (every token, unless its Set
//     recorded a policy without the index) issued by a Set or Rotate that
//     returned before a successful DieAll of its user began resolves after
//     that DieAll returned; a Rotate carries the index, whichever Store
//     runs it;
//   - past-maxage: no token resolves in a Get that began after its chain's
//     deadline: its own MaxAge (or the run's) after the Set that began the
//     chain returned;
//   - past-idle: for a session whose Set recorded its policy, no token
//     resolves in a Get that began more than its own idle TTL after the
//     last call that could restart it returned (its Set or Rotate, a Liv,
//     a sliding Get), whichever Store ran them; a Liv or sliding Get that
//     failed (other than ErrNotFound) may still land later, so the token is
//     not checked again;
//   - resurrection: once a Get answered ErrNotFound, no Get that began
//     after it returned resolves the token (a restart that loses data ends
//     sessions, never brings one back);
//   - overrun: every call returns within its context's deadline plus Slack.
//
// Every rule about a Get needs only the calls that began before it: an
// end or an ErrNotFound that returned before the Get began, began before
// it too. So a call is checked once every call that began earlier has
// been seen, and a token's state is dropped once the workload says it
// will never ask about it again (forget). Memory is then the tokens the
// workload holds, not the length of the run.
type oracle struct {
	l      limits
	v      verdict
	first  time.Time // the Start of the first call: the origin of the +offsets in messages
	tokens map[string]*tokenState
	byUser map[string]map[string]*tokenState // issued tokens, for DieAll
	sess   sessionRules                      // the session rules' state (sessions.go)
}

// tokenState is what the rules keep of one token.
type tokenState struct {
	owner  string
	issued time.Time // when the call that issued it returned; zero: never issued
	chain  time.Time // when its chain's Set returned
	ended  endAt     // the first acknowledged end of it
	gone   time.Time // when a Get first answered ErrNotFound
	okGets int       // successful Gets, counted into Checked when it is dropped
	pol    *policy   // its chain's policy; nil: the run's limits
	alive  time.Time // when the last call that could restart its idle TTL returned
	unsure bool      // a restart failed and may land later: past-idle no longer holds it

	pred *tokenState // with Grace: the token it replaced, in its window (grace.go)
	next *tokenState // the token its first successful Rotate issued (grace.go)
	// rotated is when that Rotate returned.
	rotated time.Time
}

func newOracle(l limits) *oracle {
	return &oracle{l: l, v: verdict{Checked: map[string]int{}, Broken: map[string]int{}},
		tokens: map[string]*tokenState{}, byUser: map[string]map[string]*tokenState{}}
}

// check holds a whole history to the rules at once: the oracle fed in the
// order the calls began.
func check(history []call, l limits) verdict {
	o := newOracle(l)
	for _, c := range sortedByStart(history) {
		o.add(c)
	}
	return o.close()
}

// add checks c and records what later calls need of it. Calls must come
// in the order they began.
func (o *oracle) add(c call) {
	if o.first.IsZero() {
		o.first = c.Start
	}
	if c.Op == "forget" {
		o.drop(c.Token)
		return
	}
	if c.Timeout > 0 {
		o.v.Checked["overrun"]++
		if took := c.End.Sub(c.Start); took > c.Timeout+o.l.Slack {
			o.v.add("overrun", "%s at +%v took %v with a %v context", c.Op, o.since(c.Start), took.Round(time.Millisecond), c.Timeout)
		}
	}
	if o.sessions(c) {
		return
	}
	switch {
	case c.Op == "set" && c.ok():
		o.issue(c.Out, c.User, c.End, c.End, c.Policy)
	case c.Op == "rotate" && c.ok():
		o.rotated(c) // grace.go
	case c.Op == "liv":
		o.restarted(c)
		if c.Err == "notfound" {
			o.reused(c)
		}
	case c.Op == "die" && c.ok():
		o.died(c, o.token(c.Token))
	case c.Op == "dieall" && c.ok():
		// It ends every token of the user issued before it began: those
		// were issued by calls that began earlier, so they are all here.
		for _, t := range o.byUser[c.User] {
			if t.issued.Before(c.Start) && (t.pol == nil || t.pol.Indexed) {
				t.ended = t.ended.or(c.Start, c.End, "dieall-complete")
			}
		}
	case c.Op == "get" && c.Err == "notfound":
		t := o.token(c.Token)
		t.gone = earliest(t.gone, c.End)
		o.reused(c)
	case c.Op == "rotate" && c.Err == "notfound":
		o.reused(c)
	case c.Op == "get" && c.ok():
		o.get(c)
		if c.Slides {
			o.restarted(c)
		}
	case c.Op == "get" && c.Slides:
		o.restarted(c)
	}
}

// restarted records a call that restarts its token's idle TTL when it
// succeeds: a Liv or a sliding Get. One that failed otherwise than with
// ErrNotFound may have reached Redis, or still may.
func (o *oracle) restarted(c call) {
	t := o.token(c.Token)
	switch c.Err {
	case "":
		if c.End.After(t.alive) {
			t.alive = c.End
		}
	case "notfound":
	default:
		t.unsure = true
	}
}

// get checks a successful Get against what ended or lost its token.
func (o *oracle) get(c call) {
	t := o.token(c.Token)
	t.okGets++
	o.v.Checked["wrong-user"]++
	if c.Out != t.owner {
		o.v.add("wrong-user", "Get of a token of %q returned %q", t.owner, c.Out)
	}
	if e := t.ended; !e.t.IsZero() {
		switch late := c.Start.Sub(e.t); {
		case late <= 0:
		case late <= o.l.CacheLag:
			o.v.WithinLag++
		default:
			o.v.add(e.by, "a Get at +%v resolved a token issued at +%v and ended by a call from +%v to +%v",
				o.since(c.Start), o.since(t.issued), o.since(e.start), o.since(e.t))
		}
	}
	maxAge := o.l.MaxAge
	if t.pol != nil {
		maxAge = t.pol.MaxAge
	}
	if maxAge > 0 {
		o.v.Checked["past-maxage"]++
		if over := c.Start.Sub(t.chain.Add(maxAge)); over > o.l.Expiry {
			o.v.add("past-maxage", "a Get that began %v after the chain's deadline resolved it", over.Round(time.Microsecond))
		}
	}
	if t.pol != nil && t.pol.TTL > 0 && !t.unsure {
		o.v.Checked["past-idle"]++
		if over := c.Start.Sub(t.alive.Add(t.pol.TTL)); over > o.l.Expiry {
			o.v.add("past-idle", "a Get that began %v after its idle TTL of %v ran out resolved it", over.Round(time.Microsecond), t.pol.TTL)
		}
	}
	if !t.gone.IsZero() {
		switch late := c.Start.Sub(t.gone); {
		case late <= 0:
		case late <= o.l.CacheLag:
			// Another Store's cache has not heard yet: the same bound.
			o.v.WithinLag++
		default:
			o.v.add("resurrection", "a Get that began %v after another answered ErrNotFound resolved the token", late.Round(time.Microsecond))
		}
	}
}

// token returns the state of tok, made empty on first sight.
func (o *oracle) token(tok string) *tokenState {
	t := o.tokens[tok]
	if t == nil {
		t = &tokenState{}
		o.tokens[tok] = t
	}
	return t
}

// issue records tok as issued to user by a call that returned at, in a
// chain begun at chain, under pol.
func (o *oracle) issue(tok, user string, at, chain time.Time, pol *policy) {
	t := o.token(tok)
	if !t.issued.IsZero() {
		delete(o.byUser[t.owner], tok)
	}
	t.owner, t.issued, t.chain, t.pol, t.alive = user, at, chain, pol, at
	if o.byUser[user] == nil {
		o.byUser[user] = map[string]*tokenState{}
	}
	o.byUser[user][tok] = t
}

// drop forgets tok, and counts its Gets for the rules that held them.
func (o *oracle) drop(tok string) {
	t, ok := o.tokens[tok]
	if !ok {
		return
	}
	if !t.ended.t.IsZero() {
		o.v.Checked[t.ended.by] += t.okGets
	}
	if !t.gone.IsZero() {
		o.v.Checked["resurrection"] += t.okGets
	}
	delete(o.tokens, tok)
	if !t.issued.IsZero() {
		delete(o.byUser[t.owner], tok)
	}
}

// close drops every token still held and returns the verdict.
func (o *oracle) close() verdict {
	o.sessionsClose()
	for tok := range o.tokens {
		o.drop(tok)
	}
	return o.v
}

// held is how many tokens the oracle holds now.
func (o *oracle) held() int { return len(o.tokens) }

func (v *verdict) add(rule, format string, args ...any) {
	v.Broken[rule]++
	if v.cap == 0 || v.Broken[rule] <= v.cap {
		v.Violations = append(v.Violations, violation{rule, fmt.Sprintf(format, args...)})
	}
}

// broken is how many promises broke.
func (v *verdict) broken() int {
	n := 0
	for _, k := range v.Broken {
		n += k
	}
	return n
}

// endAt is when a token was first ended, and by what rule's kind of call.
type endAt struct {
	t, start time.Time // when the ending call returned, and began
	by       string
}

// or keeps the end that returned first. On a tie a Die or Rotate wins over
// a DieAll, and otherwise the call that began first.
func (e endAt) or(start, t time.Time, by string) endAt {
	if e.t.IsZero() || t.Before(e.t) || t.Equal(e.t) && e.by == "dieall-complete" && by != e.by {
		return endAt{t, start, by}
	}
	return e
}

// since is t's offset from the first call's Start.
func (o *oracle) since(t time.Time) time.Duration {
	return t.Sub(o.first).Round(time.Millisecond)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// sortedByStart returns a copy of h in the order its calls began.
func sortedByStart(h []call) []call {
	s := slices.Clone(h)
	slices.SortStableFunc(s, func(a, b call) int { return a.Start.Compare(b.Start) })
	return s
}
