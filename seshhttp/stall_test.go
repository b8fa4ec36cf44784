package seshhttp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

// stallProxy forwards TCP connections to a Redis server and can hold back
// its replies, as a paused Redis does (CLIENT PAUSE), without pausing a
// server that others share.
type stallProxy struct {
	ln     net.Listener
	target string
	gate   sync.RWMutex // held for writing while stalled
	mu     sync.Mutex
	conns  []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go io.Copy(s, c)
		go p.replies(c, s)
	}
}

// replies copies the server's replies to the client, waiting while the
// proxy is stalled.
func (p *stallProxy) replies(c, s net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := c.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

func (p *stallProxy) stall()  { p.gate.Lock() }
func (p *stallProxy) resume() { p.gate.Unlock() }

func (p *stallProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestALookupOnAStalledRedisIsBounded stalls the replies of a real Store's
// Redis and checks that Require answers 503 once LookupTimeout has passed,
// rather than waiting for Redis. It runs on miniredis, and on the Redis at
// SESH_REDIS_URL when that is set.
func TestALookupOnAStalledRedisIsBounded(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		testStalledLookup(t, "redis://"+miniredis.RunT(t).Addr())
	})
	t.Run("redis", func(t *testing.T) {
		url := os.Getenv("SESH_REDIS_URL")
		if url == "" {
			t.Skip("SESH_REDIS_URL is not set; .ci/run sets it")
		}
		testStalledLookup(t, url)
	})
}

// testStalledLookup runs a Store on the Redis at rawURL through a
// stallProxy, and checks what Require answers while it is stalled.
func testStalledLookup(t *testing.T, rawURL string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p := newStallProxy(t, u.Host)
	u.Host = p.addr()
	// NewPool dials under the caller's context, as a pool must for the
	// bound to hold while a connection is made.
	pool, err := sesh.NewPool(u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	c := pool.Get()
	_, err = c.Do("PING")
	c.Close()
	if err != nil {
		t.Fatalf("%s does not answer: %v", u.Redacted(), err)
	}
	prefix := make([]byte, 8)
	rand.Read(prefix)
	s, err := sesh.New(pool, sesh.Options{TTL: time.Minute, Prefix: "seshhttp-stall-" + hex.EncodeToString(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, s, "alice")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Die(ctx, tok); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	o := seshhttp.Options{LookupTimeout: 100 * time.Millisecond}
	checkAdmitted(t, serve(t, s, o, get(bearer(tok)), tok), "alice", tok)
	p.stall()
	res := serve(t, s, o, get(bearer(tok)), tok)
	p.resume()
	checkUnavailable(t, res)
	if len(res.records) != 1 {
		t.Fatalf("logged %v, want one record", res.records)
	}
	checkRecord(t, res.records[0], "ERROR", "deadline exceeded")
	// Once Redis answers again, so does the middleware.
	checkAdmitted(t, serve(t, s, o, get(bearer(tok)), tok), "alice", tok)
}
