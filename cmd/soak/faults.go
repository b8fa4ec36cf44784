package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// A fault is something done to Redis or to the way to it, for a while.
// do starts it and returns what ends it (nil when it ends by itself).
type fault struct {
	name  string
	on    []string // the topologies it applies to
	hold  time.Duration
	about string
	do    func(t *target, rnd *rand.Rand) (undo func() error, err error)
}

var faults = []fault{
	{"kill-conns", all, 0, "CLIENT KILL TYPE normal on every master: every data connection breaks",
		func(t *target, _ *rand.Rand) (func() error, error) {
			return nil, onMasters(t, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
		}},
	{"kill-tracking", all, 0, "CLIENT KILL TYPE pubsub on every master: the cache's tracking connection breaks",
		func(t *target, _ *rand.Rand) (func() error, error) {
			return nil, onMasters(t, "CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes")
		}},
	{"pause-write", all, 300 * time.Millisecond, "CLIENT PAUSE 300 WRITE on every master",
		func(t *target, _ *rand.Rand) (func() error, error) {
			return nil, onMasters(t, "CLIENT", "PAUSE", 300, "WRITE")
		}},
	{"pause-all", all, 200 * time.Millisecond, "CLIENT PAUSE 200 ALL on every master",
		func(t *target, _ *rand.Rand) (func() error, error) {
			return nil, onMasters(t, "CLIENT", "PAUSE", 200, "ALL")
		}},
	{"sigstop", all, time.Second, "SIGSTOP a master for 1s, then SIGCONT: it stops answering",
		func(t *target, rnd *rand.Rand) (func() error, error) {
			m, err := aMaster(t, rnd)
			if err != nil {
				return nil, err
			}
			if err := t.signal(m, syscall.SIGSTOP); err != nil {
				return nil, err
			}
			return func() error { return t.signal(m, syscall.SIGCONT) }, nil
		}},
	{"oom", all, time.Second, "maxmemory just above use, noeviction, for 1s: writes fail with OOM",
		func(t *target, rnd *rand.Rand) (func() error, error) {
			m, err := aMaster(t, rnd)
			if err != nil {
				return nil, err
			}
			info, err := redis.String(admin(m, "INFO", "memory"))
			if err != nil {
				return nil, err
			}
			used := 0
			for line := range strings.Lines(info) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
					used, _ = strconv.Atoi(v)
				}
			}
			if _, err := admin(m, "CONFIG", "SET", "maxmemory-policy", "noeviction", "maxmemory", used+256<<10); err != nil {
				return nil, err
			}
			return func() error {
				_, err := admin(m, "CONFIG", "SET", "maxmemory", 0)
				return err
			}, nil
		}},
	{"restart", []string{"single"}, 0, "SIGKILL the server and start it again: every key is lost",
		func(t *target, _ *rand.Rand) (func() error, error) {
			t.server.kill()
			return nil, t.server.start()
		}},
	{"kill-master", []string{"sentinel", "cluster"}, 0, "SIGKILL a master; its replica is promoted; the old master comes back as a replica",
		func(t *target, rnd *rand.Rand) (func() error, error) {
			m, err := aMaster(t, rnd)
			if err != nil {
				return nil, err
			}
			if err := t.signal(m, syscall.SIGKILL); err != nil {
				return nil, err
			}
			return func() error {
				// The topology brings it back as a replica once another has
				// taken over.
				return t.restartKilled(m)
			}, nil
		}},
	{"latency", []string{"single"}, time.Second, "50ms added to every chunk through the proxy, for 1s",
		func(t *target, _ *rand.Rand) (func() error, error) {
			t.proxy.set(slow, 50*time.Millisecond)
			return func() error { t.proxy.set(pass, 0); return nil }, nil
		}},
	{"reset", []string{"single"}, 0, "every connection through the proxy reset",
		func(t *target, _ *rand.Rand) (func() error, error) {
			t.proxy.reset()
			return nil, nil
		}},
	{"blackhole", []string{"single"}, time.Second, "the proxy accepts and reads, and answers nothing, for 1s",
		func(t *target, _ *rand.Rand) (func() error, error) {
			t.proxy.set(blackhole, 0)
			return func() error {
				t.proxy.set(pass, 0)
				t.proxy.reset() // what was swallowed is lost: the connections must go
				return nil
			}, nil
		}},
}

var all = []string{"single", "sentinel", "cluster"}

func onMasters(t *target, cmd string, args ...any) error {
	ms := t.masters()
	if len(ms) == 0 {
		return fmt.Errorf("no master found")
	}
	for _, m := range ms {
		if _, err := admin(m, cmd, args...); err != nil {
			return fmt.Errorf("%s %v on %s: %w", cmd, args, m, err)
		}
	}
	return nil
}

func aMaster(t *target, rnd *rand.Rand) (string, error) {
	ms := t.masters()
	if len(ms) == 0 {
		return "", fmt.Errorf("no master found")
	}
	return ms[rnd.IntN(len(ms))], nil
}

// event is one fault as it happened.
type event struct {
	Fault  string
	Start  time.Time
	End    time.Time     // when it was undone (Start for a fault that ends by itself)
	Outage time.Duration // the longest time without a successful call, from Start to a second after End
	Err    string        `json:",omitempty"`
}

// inject runs faults from the list, one at a time, every period, until ctx
// is done: each is held for its time, then undone, and handed to out to be
// measured. A fault that cannot be done is recorded with its error.
func inject(ctx context.Context, t *target, list []fault, period time.Duration, seed uint64, out *outages) {
	if len(list) == 0 {
		return
	}
	rnd := rand.New(rand.NewPCG(seed, 99))
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f := list[rnd.IntN(len(list))]
		ev := event{Fault: f.name, Start: out.begin()}
		undo, err := f.do(t, rnd)
		if err == nil && undo != nil {
			select {
			case <-time.After(f.hold):
			case <-ctx.Done():
			}
			err = undo()
		}
		ev.End = time.Now()
		if err != nil {
			ev.Err = err.Error()
		}
		out.end(ev)
	}
}
