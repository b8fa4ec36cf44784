package main

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// proxy is a TCP proxy on loopback between the Store and one Redis, whose
// behaviour the fault schedule switches: pass bytes through, add latency
// to each chunk, reset every connection, or swallow everything (a blackhole
// that accepts and never answers). No fault-proxy library is among the Go
// modules this project may use (toxiproxy's is not served), so it is this
// small one, tested in proxy_test.go.
type proxy struct {
	ln     net.Listener
	target string

	// tap, when set (by setTap) before the first connection, is told of the
	// commands a client sends, a read at a time: their arguments (valid only
	// during the call), when the proxy read them, when it wrote them on, and
	// whether it dropped them.
	tap tapFunc

	mu      sync.Mutex
	mode    mode
	latency time.Duration
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

type tapFunc func(cmds [][][]byte, read, wrote time.Time, dropped bool)

type mode int

const (
	pass mode = iota
	slow
	blackhole
)

// newProxy listens on a free loopback port and forwards to target.
func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// setTap sets the tap, before the first connection.
func (p *proxy) setTap(f tapFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tap = f
}

// set switches the mode; latency applies to slow.
func (p *proxy) set(m mode, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.latency = m, latency
}

// reset closes every connection open through the proxy: both sides see a
// connection reset.
func (p *proxy) reset() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, not FIN
		}
		c.Close()
		n++
	}
	return n
}

func (p *proxy) close() {
	p.ln.Close()
	p.reset()
	p.wg.Wait()
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	defer p.wg.Done()
	p.track(c, true)
	defer p.track(c, false)
	defer c.Close()
	s, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return
	}
	p.track(s, true)
	defer p.track(s, false)
	defer s.Close()
	p.mu.Lock()
	tapped := p.tap != nil
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(s, c, tapped); done <- struct{}{} }()
	go func() { p.pipe(c, s, false); done <- struct{}{} }()
	<-done
}

// chunk is what one read returned, and when.
type chunk struct {
	b    []byte
	read time.Time
}

// pipe copies src to dst a chunk at a time, as the mode says. Reading and
// writing are apart, so that a slow mode delays what is written and not
// when it is read: the tap's read times are the Store's write times.
func (p *proxy) pipe(dst, src net.Conn, tapped bool) {
	defer dst.Close()
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{bytes.Clone(buf[:n]), time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	var split commandSplitter
	failed := false
	for ch := range chunks { // until src is closed, even after dst failed, so that the reader ends
		var cmds [][][]byte
		if tapped {
			cmds = split.feed(ch.b)
		}
		p.mu.Lock()
		m, d := p.mode, p.latency
		p.mu.Unlock()
		if m == slow {
			time.Sleep(d)
		}
		dropped := m == blackhole || failed // read and dropped: the peer waits forever
		if !dropped {
			if _, err := dst.Write(ch.b); err != nil {
				failed, dropped = true, true
				src.Close()
			}
		}
		if len(cmds) > 0 {
			p.tap(cmds, ch.read, time.Now(), dropped)
		}
	}
}
