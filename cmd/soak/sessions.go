package main

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/seshkit/sesh"
)

// The session-management calls (#24) in the workload, and their rules in
// the oracle:
//
//   - dieothers-complete: no indexed token of the user issued by a call
//     that returned before a successful DieOthers began resolves after it
//     returned, but the caller's and its chain's (a Store without
//     TrackUsers makes sessions no index lists, as for dieall-complete);
//   - diesession: no token resolves in a Get that began after a successful
//     DieSession of its session returned;
//   - over-cap: with Options.MaxSessions, never more chains (a Set and its
//     rotations) of one user live at once than the cap. A token is surely
//     live from the return of the call that issued it to the start of its
//     last successful Get, less the cache's lag (a token never comes
//     back), so more overlapping spans than the cap of distinct chains is
//     a broken promise.

func init() {
	configs["sessions"] = config{opts: sesh.Options{TTL: time.Minute, TrackUsers: true, Details: true, MaxSessions: 4, EndOldest: true}}
}

// sessionOps are the workload's session calls, drawn one in fifty each.
var sessionOps = []string{"dieothers", "diesession"}

// manager is what the session calls need: Store and Crypt have it.
type manager interface {
	Lookup(ctx context.Context, token string) (sesh.Session, error)
	DieSession(ctx context.Context, userID, handle string) error
	DieOthers(ctx context.Context, token string) (int, error)
}

// sessionCall runs a session call of the workload with t: DieOthers of t,
// or DieSession of t's session, by the handle Lookup reads. It returns
// what the call records as Out: DieOthers' count, DieSession's handle.
func sessionCall(ctx context.Context, s api, op string, t tok) (string, error) {
	m := s.(manager)
	if op == "dieothers" {
		n, err := m.DieOthers(ctx, t.token)
		return strconv.Itoa(n), err
	}
	se, err := m.Lookup(ctx, t.token)
	if err != nil {
		return "", err
	}
	return se.Handle, m.DieSession(ctx, t.user, se.Handle)
}

// sessionRules is what the oracle keeps for the session rules.
type sessionRules struct {
	root  map[string]string // token: the token that began its chain
	spans map[string][]span // user: when each token was surely live; with a cap
	span  map[string]int    // token: its span's place in its user's spans
}

// span is when a token of the chain root was surely live.
type span struct {
	root     string
	from, to time.Time
}

// sessions records what the session rules need of c, and reports whether
// c is a session call, which it has checked in full.
func (o *oracle) sessions(c call) bool {
	r := &o.sess
	if r.root == nil {
		r.root, r.spans, r.span = map[string]string{}, map[string][]span{}, map[string]int{}
	}
	switch {
	case c.Op == "set" && c.ok():
		r.root[c.Out] = c.Out
	case c.Op == "rotate" && c.ok():
		r.root[c.Out] = r.rootOf(c.Token)
	case c.Op == "get" && c.ok() && o.l.MaxSessions > 0:
		o.surelyLive(c)
	case c.Op == "forget":
		delete(r.root, c.Token)
		delete(r.span, c.Token)
	case c.Op == "dieothers" && c.ok():
		mine := r.rootOf(c.Token)
		for tok, t := range o.byUser[c.User] {
			if t.issued.Before(c.Start) && r.rootOf(tok) != mine && (t.pol == nil || t.pol.Indexed) {
				t.ended = t.ended.or(c.Start, c.End, "dieothers-complete")
			}
		}
	case c.Op == "diesession" && c.ok():
		t := o.token(c.Token)
		t.ended = t.ended.or(c.Start, c.End, "diesession")
	default:
		return false
	}
	return c.Op == "dieothers" || c.Op == "diesession"
}

// rootOf is the chain of tok: tok itself when its Set was not seen.
func (r *sessionRules) rootOf(tok string) string {
	if root, ok := r.root[tok]; ok {
		return root
	}
	return tok
}

// surelyLive stretches the span of a token that a Get c resolved.
func (o *oracle) surelyLive(c call) {
	r := &o.sess
	t := o.token(c.Token)
	to := c.Start.Add(-o.l.CacheLag)
	if t.issued.IsZero() || !to.After(t.issued) {
		return
	}
	if i, ok := r.span[c.Token]; ok {
		r.spans[t.owner][i].to = to
		return
	}
	r.span[c.Token] = len(r.spans[t.owner])
	r.spans[t.owner] = append(r.spans[t.owner], span{r.rootOf(c.Token), t.issued, to})
}

// sessionsClose checks the cap on every user's spans.
func (o *oracle) sessionsClose() {
	for user, spans := range o.sess.spans {
		o.v.Checked["over-cap"] += len(spans)
		type event struct {
			at    time.Time
			delta int
			root  string
		}
		var es []event
		for _, s := range spans {
			es = append(es, event{s.from, 1, s.root}, event{s.to, -1, s.root})
		}
		// At one instant, starts before ends: both ends of a span are live.
		slices.SortFunc(es, func(a, b event) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return b.delta - a.delta
		})
		active := map[string]int{}
		over := false
		for _, e := range es {
			active[e.root] += e.delta
			if active[e.root] == 0 {
				delete(active, e.root)
			}
			if n := len(active); n > o.l.MaxSessions && !over {
				over = true
				o.v.add("over-cap", "%d sessions of %s were live at once at +%v; the cap is %d", n, user, o.since(e.at), o.l.MaxSessions)
			} else if n <= o.l.MaxSessions {
				over = false
			}
		}
	}
}

// sessionStore is the Store a session call op goes to: one that tracks
// users, which the call needs, or "get" on s when none does.
func (w *worker) sessionStore(s handle, op string) (handle, string) {
	if len(w.tracking) == 0 {
		return s, "get"
	}
	return w.tracking[w.rnd.IntN(len(w.tracking))], op
}
