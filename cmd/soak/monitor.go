package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"time"
)

// monitor checks the run as it goes: it takes the calls the sequencer
// releases, in the order they began, into the oracle, the counts, the
// latency histogram and the outage measure, and prints a progress line
// every so often.
type monitor struct {
	seq    *sequencer
	oracle *oracle
	out    *outages
	book   *keyBook
	late   *lateCommands // nil where the run cannot see the wire
	lat    latencies
	calls  map[string]int // by op
	errors map[string]int // by op/kind
	heap   [][2]float64   // MiB of heap in use and live, at each progress line

	w         io.Writer     // progress lines; nil for none
	record    *json.Encoder // every call, a JSON line each, in the order they began; nil for none
	recordErr error
	start     time.Time
}

func newMonitor(seq *sequencer, o *oracle, book *keyBook, late *lateCommands, w io.Writer) *monitor {
	return &monitor{seq: seq, oracle: o, out: &outages{}, book: book, late: late, calls: map[string]int{}, errors: map[string]int{},
		w: w, start: time.Now()}
}

// run checks what comes in every tick and prints progress every period,
// until ctx is done.
func (m *monitor) run(ctx context.Context, tick, period time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	next := time.Now().Add(period)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.step(false)
		if now := time.Now(); period > 0 && now.After(next) {
			m.progress()
			next = now.Add(period)
		}
	}
}

// step checks every call released now; with all, every call handed in.
func (m *monitor) step(all bool) {
	for _, c := range m.seq.release(all) {
		m.take(c)
	}
	m.out.advance(m.seq.released, all)
	m.book.sweep(m.seq.released)
}

func (m *monitor) take(c call) {
	switch c.Op {
	case "draw":
		m.book.key(member([]byte(c.Token)), c.Start, 0, false)
		return
	case "wire":
		for i := range c.Wire {
			if m.late != nil {
				m.late.check(&c.Wire[i])
			}
		}
		return
	case "forget":
		m.write(c)
	default:
		m.write(c)
		m.calls[c.Op]++
		if c.Err != "" {
			m.errors[c.Op+"/"+c.Err]++
		}
		m.lat.add(c.End.Sub(c.Start))
		m.out.answered(c)
		m.book.touch(c)
	}
	m.oracle.add(c)
}

// recordTo makes the monitor write every call to the file at path, if
// any, and returns what flushes and closes it, with the first error.
func (m *monitor) recordTo(path string) (finish func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriter(f)
	m.record = json.NewEncoder(buf)
	return func() error { return errors.Join(m.recordErr, buf.Flush(), f.Close()) }, nil
}

// write records c, keeping the first error for the end.
func (m *monitor) write(c call) {
	if m.record != nil && m.recordErr == nil {
		m.recordErr = m.record.Encode(c)
	}
}

// progress prints one line: calls checked, promises broken, what is held,
// and the heap in use.
func (m *monitor) progress() {
	mib, live := heapInUse(), heapLive()
	m.heap = append(m.heap, [2]float64{mib, live})
	if m.w == nil {
		return
	}
	late := ""
	if m.late != nil {
		late = fmt.Sprintf("; after their caller's deadline, %d commands sent, %d reached Redis", m.late.Sent, m.late.Ran)
	}
	fmt.Fprintf(m.w, "+%v: %d calls checked, %d broken promises (%s)%s; holding %d tokens, %d calls; heap in use %.1f MiB, live %.1f MiB\n",
		time.Since(m.start).Round(time.Second), m.lat.n, m.oracle.v.broken(), kv(m.oracle.v.Broken), late,
		m.oracle.held(), m.seq.pending(), mib, live)
}

// heapLive is the heap the last collection found live, in MiB.
func heapLive() float64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64()) / (1 << 20)
}

// heapInUse is the heap in use now, in MiB, without forcing a collection.
func heapInUse() float64 {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return float64(s.HeapInuse) / (1 << 20)
}
