package wire

import (
	"time"

	"github.com/gomodule/redigo/redis"
)

// Internals for the black-box tests in package wire_test.

// NewAlways returns New(p, n) whose lanes take every operation, even one
// alone in flight.
func NewAlways(p Pool, n int) *Lanes {
	b := New(p, n)
	b.always = true
	return b
}

// OpenAll opens every lane of a Pool without a Router that is not open,
// and waits until each is.
func (b *Lanes) OpenAll() {
	for i := range b.one.slots {
		sl := &b.one.slots[i]
		for l := sl.lane.Load(); l == nil || l.done.Load(); l = sl.lane.Load() {
			b.open(b.one, sl)
			time.Sleep(time.Millisecond)
		}
	}
}

// PutLane makes a lane over c, born at born, the lane of the first slot
// of a Pool without a Router.
func (b *Lanes) PutLane(c redis.Conn, born time.Time) {
	b.start(&b.one.slots[0], newLane(b, "", c, born))
}

// RetireAll retires every lane open now.
func (b *Lanes) RetireAll() { b.eachLane((*lane).retire) }

// Aged reports whether a lane born at born is too old at now.
func (b *Lanes) Aged(born, now time.Time) bool {
	return newLane(b, "", nil, born).aged(now)
}

// SlotOf is slotOf for a round trip of commands, each a name and its
// arguments; Reads is reads.
func SlotOf(route Router, cmds ...[]any) int { return slotOf(route, toCommands(cmds)) }
func Reads(cmds ...[]any) bool               { return reads(toCommands(cmds)) }

func toCommands(cmds [][]any) []command {
	cs := make([]command, len(cmds))
	for i, c := range cmds {
		cs[i] = command{name: c[0].(string), args: c[1:]}
	}
	return cs
}
