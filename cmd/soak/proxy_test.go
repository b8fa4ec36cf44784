package main

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo is a server that sends back each line it reads.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestProxy(t *testing.T) {
	p, err := newProxy(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, time.Second); got != "ping\n" || err != nil {
		t.Fatalf("pass: %q, %v", got, err)
	}

	// slow: each chunk waits, both ways.
	p.set(slow, 50*time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(c, 2*time.Second); got != "ping\n" || err != nil {
		t.Fatalf("slow: %q, %v", got, err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("slow: round trip took %v, want at least 2 x 50ms", d)
	}

	// blackhole: the bytes go in, nothing comes out.
	p.set(blackhole, 0)
	if _, err := roundTrip(c, 200*time.Millisecond); err == nil {
		t.Fatal("blackhole: got an answer")
	}

	// reset: every connection breaks; a new one works.
	p.set(pass, 0)
	if n := p.reset(); n < 2 {
		t.Fatalf("reset closed %d connections, want both sides of one", n)
	}
	if _, err := roundTrip(c, time.Second); err == nil {
		t.Fatal("a reset connection still answers")
	}
	c2, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(c2, time.Second); got != "ping\n" || err != nil {
		t.Fatalf("after reset: %q, %v", got, err)
	}
}
