package sesh_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/seshkit/sesh"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, network, addr, err string
	}{
		{"redis://127.0.0.1:6379/15", "tcp", "127.0.0.1:6379", ""},
		{"redis://localhost", "tcp", "localhost:6379", ""},
		{"rediss://user:pw@cache.example.com:6380/2", "tcp", "cache.example.com:6380", ""},
		{"redis://[::1]:7000", "tcp", "[::1]:7000", ""},
		{"unix:///run/redis.sock", "unix", "/run/redis.sock", ""},
		{"unix://:pw@/run/redis.sock?db=3", "unix", "/run/redis.sock", ""},
		{"http://127.0.0.1:6379", "", "", "scheme"},
		{"redis:///15", "", "", "no host"},
		{"redis://127.0.0.1/x", "", "", "not a number"},
		{"redis://127.0.0.1/-1", "", "", "not a number"},
		{"redis://127.0.0.1/?tls=false", "", "", "query parameters"},
		{"rediss://127.0.0.1/?skip_verify=true", "", "", "query parameters"},
		{"unix://", "", "", "socket path"},
		{"unix:///run/redis.sock?tls=1", "", "", "only the db"},
		{"redis://:hunter2@127.0.0.1/x", "", "", "xxxxx"},
		{"redis://127.0.0.1:99999", "", "", `has port "99999", which is not 1 to 65535`},
		{"redis://127.0.0.1:0", "", "", `has port "0"`},
		{"redis://u:hun/ter2@127.0.0.1:6379", "", "", "percent-encode"},
		{"redis://u:hun?ter2@127.0.0.1:6379", "", "", "percent-encode"},
		{"redis://u:hun#ter2@127.0.0.1:6379", "", "", "percent-encode"},
		{"redis://hun/ter2@127.0.0.1:6379", "", "", "percent-encode"},
		{"unix://u:hun/ter2@/run/redis.sock", "", "", "percent-encode"},
		{"unix:///hun@ter2/run/redis.sock", "", "", "percent-encode"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			network, addr, err := sesh.ParseURL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				if strings.Contains(err.Error(), `" :`) {
					t.Fatalf("err %q has a space before a colon", err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err %q shows the password", err)
				}
				return
			}
			if err != nil || network != tc.network || addr != tc.addr {
				t.Fatalf("= %s %s %v, want %s %s", network, addr, err, tc.network, tc.addr)
			}
		})
	}
}

// TestNewPool dials miniredis the ways a URL can say: password, user and
// password, database, and a unix socket.
func TestNewPool(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, url string, mr *miniredis.Miniredis, db int) {
		t.Helper()
		p, err := sesh.NewPool(url)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		s, err := sesh.New(p, sesh.Options{Prefix: "pool"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Set(ctx, "alice")
		if err != nil {
			t.Fatalf("Set over %s: %v", url, err)
		}
		if got, err := s.Get(ctx, tok); got != "alice" || err != nil {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if n := len(mr.DB(db).Keys()); n != 1 {
			t.Fatalf("database %d holds %d keys, want 1", db, n)
		}
	}
	t.Run("a password and a database", func(t *testing.T) {
		mr := miniredis.RunT(t)
		mr.RequireAuth("pw")
		check(t, "redis://:pw@"+mr.Addr()+"/3", mr, 3)
	})
	t.Run("a user and a password", func(t *testing.T) {
		mr := miniredis.RunT(t)
		mr.RequireUserAuth("app", "pw")
		check(t, "redis://app:pw@"+mr.Addr(), mr, 0)
	})
	t.Run("a unix socket", func(t *testing.T) {
		mr := miniredis.RunT(t)
		sock := filepath.Join(t.TempDir(), "redis.sock")
		unixProxy(t, sock, mr.Addr())
		check(t, "unix://"+sock+"?db=2", mr, 2)
	})
	t.Run("a wrong password fails", func(t *testing.T) {
		mr := miniredis.RunT(t)
		mr.RequireAuth("pw")
		p, _ := sesh.NewPool("redis://:nope@" + mr.Addr())
		defer p.Close()
		s, _ := sesh.New(p, sesh.Options{})
		if _, err := s.Set(ctx, "alice"); err == nil || !strings.HasPrefix(err.Error(), "sesh: set: ") {
			t.Fatalf("Set = %v", err)
		}
	})
}

// TestNewPoolTLS checks that rediss:// speaks TLS and verifies the server's
// certificate: a self-signed one is refused, and no URL can turn that off.
func TestNewPoolTLS(t *testing.T) {
	mr, err := miniredis.RunTLS(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	for _, url := range []string{"rediss://" + mr.Addr(), "rediss://localhost:" + mr.Port()} {
		p, err := sesh.NewPool(url)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.GetContext(context.Background())
		if err == nil {
			_, err = c.Do("PING")
			c.Close()
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("%s: dial = %v; want the self-signed certificate refused", url, err)
		}
		p.Close()
	}
	// Plain redis:// to a TLS server does not speak TLS, so it fails too.
	p, _ := sesh.NewPool("redis://" + mr.Addr())
	defer p.Close()
	c := p.Get()
	defer c.Close()
	if _, err := c.Do("PING"); err == nil {
		t.Error("redis:// spoke to a TLS server")
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// unixProxy serves a unix socket at path that forwards to the TCP address.
func unixProxy(t *testing.T, path, addr string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
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
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
}

// TestNewPoolContext checks that NewPool's connections honour a deadline
// and a cancellation while blocked, and that the pool then drops them.
func TestNewPoolContext(t *testing.T) {
	p, err := sesh.NewPool("redis://" + blackhole(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := sesh.New(p, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.Repeat("A", 43)
	for _, tc := range []struct {
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel) // while Get waits
			return ctx, cancel
		}, context.Canceled},
	} {
		ctx, cancel := tc.ctx()
		_, err := s.Get(ctx, tok)
		cancel()
		if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "sesh: get: ") {
			t.Errorf("Get = %v; want sesh: get: wrapping %v", err, tc.want)
		}
	}
	if n := p.IdleCount(); n != 0 {
		t.Errorf("the pool kept %d broken connections", n)
	}

	// A call that completes is unaffected by its context ending later.
	mr := miniredis.RunT(t)
	p2, _ := sesh.NewPool("redis://" + mr.Addr())
	defer p2.Close()
	s2, _ := sesh.New(p2, sesh.Options{})
	ctx, cancel3 := context.WithCancel(context.Background())
	tok, err = s2.Set(ctx, "alice")
	cancel3()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get(context.Background(), tok); got != "alice" || err != nil {
		t.Fatalf("Get after a canceled context = %q, %v", got, err)
	}
}

// TestNoPasswordInErrors checks every error path of NewPool with a
// recognisable secret in the URL: none of the messages shows any of it.
func TestNoPasswordInErrors(t *testing.T) {
	const secret = "S3CRETPW"
	for _, url := range []string{
		"redis://" + secret + "@127.0.0.1:6379/x",                        // lone user-info: the password
		"redis://default:" + secret + "%zz@127.0.0.1/0",                  // does not parse
		"redis://" + secret + "%zz@127.0.0.1/0",                          // does not parse, lone
		"redis://u:" + secret + "@127.0.0.1:notaport/0",                  // bad port
		"redis://" + secret + "@127.0.0.1:notaport/0",                    // bad port, lone
		"redis://u:" + secret + "@127.0.0.1/?tls=false",                  // query
		"redis://u:" + secret + "@/0",                                    // no host
		"http://u:" + secret + "@127.0.0.1:6379",                         // scheme
		"unix://u:" + secret + "@/run/redis.sock?tls=1",                  // query
		"unix://u:" + secret + "@/run/redis.sock?db=x",                   // db
		"unix://" + secret + "@",                                         // no socket path
		"redis://u:" + secret + "@[::1:6379/0",                           // bad host
		"redis://u:" + secret[:4] + "%zz" + secret[4:] + "@h",            // the escape is in the secret
		"redis://u:" + secret[:4] + "/" + secret[4:] + "@127.0.0.1/0",    // a '/' cuts the host short
		"redis://u:" + secret[:4] + "?" + secret[4:] + "@127.0.0.1/0",    // a '?' too
		"redis://u:" + secret[:4] + "#" + secret[4:] + "@127.0.0.1/0",    // a '#' too
		"unix://u:" + secret[:4] + "/" + secret[4:] + "@/run/redis.sock", // would dial a path with the secret in it
		"u:" + secret + "@127.0.0.1:6379",                                // no scheme: the user reads as one
	} {
		_, err := sesh.NewPool(url)
		if err == nil {
			t.Errorf("NewPool(%q) = nil error", url)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:4]) || strings.Contains(err.Error(), "%zz") {
			t.Errorf("NewPool's error shows the secret: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "sesh: newpool: ") {
			t.Errorf("NewPool(%q) = %v; want sesh: newpool: ...", url, err)
		}
	}
	// A password the server refuses is not echoed either.
	mr := miniredis.RunT(t)
	mr.RequireAuth("right")
	p, err := sesh.NewPool("redis://" + secret + "@" + mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Get().Do("PING")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("PING with a wrong password = %v", err)
	}
}
