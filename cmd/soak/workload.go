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
	{"get", 70}, {"set", 8}, {"liv", 8}, {"rotate", 4}, {"die", 4}, {"dieall", 2}, {"count", 4},
}

// handle is one of a run's Stores, with the Options it was opened with:
// the workload records from them each session's own policy.
type handle struct {
	api
	opts sesh.Options
}

// worker runs the workload on its stores until ctx is done, and hands
// each call to seq as it returns. Each call has timeout as its context.
// One Set in four gives one of policies to SetWith, when there are any.
// DieAll and Count need TrackUsers: they go to a Store that tracks, and
// are skipped when none does. When it drops tokens from its working set it
// tells seq, since it will never ask about them again.
func worker(ctx context.Context, id int, stores []handle, policies []sesh.Policy, users []string, timeout time.Duration, seed uint64, seq *sequencer) {
	rnd := rand.New(rand.NewPCG(seed, uint64(id)))
	var tracking []handle
	for _, s := range stores {
		if s.opts.TrackUsers {
			tracking = append(tracking, s)
		}
	}
	var mine []tok
	for ctx.Err() == nil {
		s := stores[rnd.IntN(len(stores))]
		user := users[rnd.IntN(len(users))]
		op := pick(rnd)
		if op == "dieall" || op == "count" {
			if len(tracking) == 0 {
				op = "get"
			} else {
				s = tracking[rnd.IntN(len(tracking))]
			}
		}
		var t tok
		if len(mine) > 0 {
			t = mine[rnd.IntN(len(mine))]
		} else if op != "dieall" && op != "count" {
			op = "set"
		}
		c := call{Op: op, User: user, Token: t.token, Timeout: timeout}
		cctx, cancel := context.WithTimeout(context.Background(), timeout)
		c.Start = seq.start(id)
		var err error
		switch op {
		case "set":
			var p sesh.Policy
			if len(policies) > 0 && rnd.IntN(4) == 0 {
				p = policies[rnd.IntN(len(policies))]
				c.Out, err = s.SetWith(cctx, user, p)
			} else {
				c.Out, err = s.Set(cctx, user)
			}
			c.Policy = resolve(s.opts, p)
			if err == nil {
				mine = append(mine, tok{c.Out, user})
			}
		case "get":
			c.User, c.Slides = t.user, s.opts.Sliding
			c.Out, err = s.Get(cctx, t.token)
		case "liv":
			c.User = t.user
			err = s.Liv(cctx, t.token)
		case "rotate":
			c.User = t.user
			c.Out, err = s.Rotate(cctx, t.token)
			if err == nil {
				mine = append(mine, tok{c.Out, t.user})
			}
		case "die":
			c.User = t.user
			err = s.Die(cctx, t.token)
		case "dieall":
			var n int
			n, err = s.DieAll(cctx, user)
			c.Out = strconv.Itoa(n)
		case "count":
			var n int
			n, err = s.Count(cctx, user)
			c.Out = strconv.Itoa(n)
		}
		c.End = time.Now()
		cancel()
		c.Err = kind(err)
		seq.push(c)
		// Keep the working set bounded: forget tokens now and then.
		if len(mine) > 200 {
			mine = forget(seq, mine, 100)
		}
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

// runWorkers runs n workers until ctx is done, each handing its calls to
// seq, and returns once they all have.
func runWorkers(ctx context.Context, n int, stores []handle, policies []sesh.Policy, users []string, timeout time.Duration, seed uint64, seq *sequencer) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(ctx, i, stores, policies, users, timeout, seed, seq)
		}()
	}
	wg.Wait()
}
