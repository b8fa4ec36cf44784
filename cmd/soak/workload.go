package main

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/seshkit/sesh"
)

// api is what Store and Crypt share.
type api interface {
	Set(context.Context, string) (string, error)
	SetWith(context.Context, string, sesh.Policy) (string, error)
	Get(context.Context, string) (string, error)
	Liv(context.Context, string) error
	Die(context.Context, string) error
	DieAll(context.Context, string) (int, error)
	Count(context.Context, string) (int, error)
	Rotate(context.Context, string) (string, error)
}

// workload is the mix each worker draws from, in parts per 100: mostly
// Gets, as an API does, then logins, keep-alives, rotations, logouts,
// logouts everywhere and counts.
var workload = []struct {
	op   string
	part int
}{
	{"get", 68}, {"set", 8}, {"liv", 8}, {"rotate", 4}, {"die", 4}, {"dieall", 2}, {"count", 4}, {"dieothers", 1}, {"diesession", 1},
}

// handle is one of a run's Stores, with the Options it was opened with:
// the workload records from them each session's own policy.
type handle struct {
	api
	opts sesh.Options
}

// mix is what the workers run: on which Stores, for which users, and how.
type mix struct {
	stores   []handle
	policies []sesh.Policy // SetWith gives one of these to one Set in four, when there are any
	idle     time.Duration // when not zero, one token in eight that a call issued or kept alive is left alone for up to idle, then read once
	users    []string
	timeout  time.Duration // each call's context
	seed     uint64
}

// worker is one worker's state: its random draws and the tokens it holds.
type worker struct {
	m        mix
	id       int
	rnd      *rand.Rand
	tracking []handle // the Stores that track users, for DieAll and Count
	mine     []tok
	parked   []parkedTok // left alone until due
}

// parkedTok is a token a worker leaves alone until due, then reads once:
// a user who walked away and came back, so that idle TTLs run out.
type parkedTok struct {
	tok
	due time.Time
}

// work runs the workload on m's stores until ctx is done, and hands each
// call to seq as it returns. DieAll and Count need TrackUsers: they go to
// a Store that tracks, and are skipped when none does. When it drops
// tokens from its working set it tells seq, since it will never ask about
// them again.
func work(ctx context.Context, m mix, id int, seq *sequencer) {
	w := &worker{m: m, id: id, rnd: rand.New(rand.NewPCG(m.seed, uint64(id)))}
	for _, s := range m.stores {
		if s.opts.TrackUsers {
			w.tracking = append(w.tracking, s)
		}
	}
	for ctx.Err() == nil {
		s, op, t := w.next()
		c := w.do(s, op, t, seq)
		seq.push(c)
		w.keep(c, t)
		// Keep the working set bounded: forget tokens now and then.
		if len(w.mine) > 200 {
			w.mine = forget(seq, w.mine, 100)
		}
	}
}

// next draws the next call: a Store, an operation, and the token it is
// about. A parked token that is due comes first, for a Get.
func (w *worker) next() (handle, string, tok) {
	s := w.m.stores[w.rnd.IntN(len(w.m.stores))]
	now := time.Now()
	for i, p := range w.parked {
		if now.After(p.due) {
			w.parked = slices.Delete(w.parked, i, i+1)
			w.mine = append(w.mine, p.tok)
			return s, "get", p.tok
		}
	}
	op := pick(w.rnd)
	if op == "dieall" || op == "count" {
		if len(w.tracking) > 0 {
			return w.tracking[w.rnd.IntN(len(w.tracking))], op, tok{}
		}
		op = "get"
	}
	if len(w.mine) == 0 {
		return s, "set", tok{}
	}
	if slices.Contains(sessionOps, op) {
		s, op = w.sessionStore(s, op) // sessions.go
	}
	return s, op, w.mine[w.rnd.IntN(len(w.mine))]
}

// do runs op on s about t, for a user drawn at random when op needs one.
func (w *worker) do(s handle, op string, t tok, seq *sequencer) call {
	user := w.m.users[w.rnd.IntN(len(w.m.users))]
	c := call{Op: op, User: user, Token: t.token, Timeout: w.m.timeout}
	ctx, cancel := context.WithTimeout(context.Background(), w.m.timeout)
	defer cancel()
	c.Start = seq.start(w.id)
	var err error
	switch op {
	case "set":
		var p sesh.Policy
		if len(w.m.policies) > 0 && w.rnd.IntN(4) == 0 {
			p = w.m.policies[w.rnd.IntN(len(w.m.policies))]
			c.Out, err = s.SetWith(ctx, user, p)
		} else {
			c.Out, err = s.Set(ctx, user)
		}
		c.Policy = resolve(s.opts, p)
	case "get":
		c.User, c.Slides = t.user, s.opts.Sliding
		c.Out, err = s.Get(ctx, t.token)
	case "liv":
		c.User = t.user
		err = s.Liv(ctx, t.token)
	case "rotate":
		c.User = t.user
		c.Out, err = s.Rotate(ctx, t.token)
	case "die":
		c.User = t.user
		err = s.Die(ctx, t.token)
	case "dieall":
		var n int
		n, err = s.DieAll(ctx, user)
		c.Out = strconv.Itoa(n)
	case "count":
		var n int
		n, err = s.Count(ctx, user)
		c.Out = strconv.Itoa(n)
	case "dieothers", "diesession":
		c.User = t.user
		c.Out, err = sessionCall(ctx, s.api, op, t)
	}
	c.End = time.Now()
	c.Err = kind(err)
	return c
}

// keep adds the token c issued to the working set, and parks, now and
// then, the token c issued or kept alive.
func (w *worker) keep(c call, t tok) {
	if !c.ok() {
		return
	}
	switch c.Op {
	case "set", "rotate":
		t = tok{c.Out, c.User}
		w.mine = append(w.mine, t)
	case "liv":
	default:
		return
	}
	if w.m.idle == 0 || w.rnd.IntN(8) != 0 {
		return
	}
	if i := slices.Index(w.mine, t); i >= 0 {
		w.mine = slices.Delete(w.mine, i, i+1)
		w.parked = append(w.parked, parkedTok{t, c.End.Add(time.Duration(w.rnd.Int64N(int64(w.m.idle))))})
	}
}

// resolve is the policy a Set by a Store with Options o records with
// SetWith's p, as sesh documents it: a zero field of p takes o's, and a
// zero TTL in o means 24 hours.
func resolve(o sesh.Options, p sesh.Policy) *policy {
	r := &policy{TTL: cmp.Or(p.TTL, o.TTL, 24*time.Hour), MaxAge: cmp.Or(p.MaxAge, o.MaxAge), Indexed: o.TrackUsers}
	if r.TTL == sesh.Forever {
		r.TTL = 0
	}
	return r
}

// tok is a token a worker holds, and its owner.
type tok struct{ token, user string }

// forget keeps the last n of mine, and tells seq of the others.
func forget(seq *sequencer, mine []tok, n int) []tok {
	for _, t := range mine[:len(mine)-n] {
		seq.push(call{Op: "forget", Token: t.token, Start: time.Now()})
	}
	return slices.Clone(mine[len(mine)-n:])
}

func pick(rnd *rand.Rand) string {
	n := rnd.IntN(100)
	for _, w := range workload {
		if n < w.part {
			return w.op
		}
		n -= w.part
	}
	return "get"
}

// kind sorts an error for the report and the oracle.
func kind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, sesh.ErrNotFound):
		return "notfound"
	case errors.Is(err, sesh.ErrNotReplicated):
		return "notreplicated"
	case errors.Is(err, sesh.ErrDecrypt):
		return "decrypt"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "context"
	}
	return "other"
}

// runWorkers runs n workers of m until ctx is done, each handing its calls
// to seq, and returns once they all have.
func runWorkers(ctx context.Context, n int, m mix, seq *sequencer) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(ctx, m, i, seq)
		}()
	}
	wg.Wait()
}
