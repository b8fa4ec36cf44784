package sesh_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// FuzzTokenKey checks that token parsing never panics, accepts exactly the
// canonical 43-character base64url spelling of 32 bytes, and maps it to the
// documented key.
func FuzzTokenKey(f *testing.F) {
	s, err := sesh.New(noPool{}, sesh.Options{Prefix: "p"})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"", "A", strings.Repeat("A", 43), strings.Repeat("A", 42) + "B",
		strings.Repeat("_", 43), strings.Repeat("-", 43), strings.Repeat("A", 42) + "=",
		"+" + strings.Repeat("A", 42), strings.Repeat("A", 44), "é" + strings.Repeat("A", 41),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		key, ok := sesh.TokenKey(s, tok)
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		canonical := err == nil && len(raw) == 32 && base64.RawURLEncoding.EncodeToString(raw) == tok
		if ok != canonical {
			t.Fatalf("TokenKey(%q) ok = %v, want %v", tok, ok, canonical)
		}
		if !ok {
			return
		}
		sum := sha256.Sum256(raw)
		if want := "p:{" + base64.RawURLEncoding.EncodeToString(sum[:]) + "}"; key != want {
			t.Fatalf("key = %q, want %q", key, want)
		}
	})
}

// FuzzOpen checks that opening arbitrary bytes never panics and returns
// ErrDecrypt, and that a sealed value opens only under its own key. (A
// fuzzing worker seals afresh, with another nonce, so the seed's value is
// authentic there too.)
func FuzzOpen(f *testing.F) {
	s, err := sesh.New(noPool{}, sesh.Options{})
	if err != nil {
		f.Fatal(err)
	}
	c, err := sesh.NewCrypt(s, make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := sesh.Seal(c, "sesh:{k}", "alice")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("sesh:{k}", sealed)
	f.Add("sesh:{other}", sealed)
	f.Add("sesh:{k}", "")
	f.Add("sesh:{k}", "alice")
	f.Add("sesh:{k}", sealed[:len(sealed)-1])
	f.Add("sesh:{k}", "\x02"+sealed[1:])
	f.Fuzz(func(t *testing.T, key, value string) {
		got, err := sesh.Open(c, key, value)
		if err == nil {
			// Only an authentic value opens, and only under its own key.
			if key != "sesh:{k}" || got != "alice" {
				t.Fatalf("Open(%q, %q) = %q", key, value, got)
			}
			return
		}
		if !errors.Is(err, sesh.ErrDecrypt) || got != "" {
			t.Fatalf("Open(%q, %q) = %q, %v; want ErrDecrypt", key, value, got, err)
		}
	})
}

// FuzzIndexMembers checks that whatever members a user's index holds, which
// only someone with write access to Redis can plant, Count and DieAll
// neither panic nor fail: a member that cannot name a token is removed, and
// the user's real token is still counted and ended.
func FuzzIndexMembers(f *testing.F) {
	mr := miniredis.RunT(f)
	p := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", mr.Addr()) }}
	defer p.Close()
	for _, seed := range []string{
		"", "x", "{}", "!lock", strings.Repeat("A", 43), strings.Repeat("A", 42) + "B",
		strings.Repeat("*", 43), strings.Repeat("A", 44), "é" + strings.Repeat("A", 41),
	} {
		f.Add(seed, 1.0)
	}
	n := 0
	f.Fuzz(func(t *testing.T, member string, score float64) {
		n++
		prefix := fmt.Sprintf("fz%d", n)
		s, err := sesh.New(p, sesh.Options{Prefix: prefix, TrackUsers: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		tok, err := s.Set(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		c := p.Get()
		defer c.Close()
		idx := prefix + ":u:alice"
		if _, err := c.Do("ZADD", idx, score, member); err != nil {
			return // a score Redis refuses (NaN)
		}
		// A well-formed member of no token counts as nothing; it goes once due.
		if got, err := s.Count(ctx, "alice"); got != 1 || err != nil {
			t.Fatalf("Count = %d, %v; want 1", got, err)
		}
		if got, err := s.DieAll(ctx, "alice"); got != 1 || err != nil {
			t.Fatalf("DieAll = %d, %v; want 1", got, err)
		}
		if _, err := s.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) {
			t.Fatalf("Get after DieAll = %v", err)
		}
		left, err := redis.Strings(c.Do("ZRANGEBYSCORE", idx, 0, "+inf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range left {
			raw, err := base64.RawURLEncoding.Strict().DecodeString(m)
			if err != nil || len(raw) != 32 {
				t.Fatalf("DieAll left the malformed member %q", m)
			}
		}
	})
}

// FuzzNewPoolHidesThePassword puts a password in the user-info of URLs of
// every shape, and checks that NewPool's error does not show it, nor, when
// NewPool succeeds, the address that dial errors would show.
func FuzzNewPoolHidesThePassword(f *testing.F) {
	const secret = "S3CRETPW"
	schemes := []string{"redis://", "rediss://", "unix://", "http://"}
	f.Add(uint8(0), "", "", "127.0.0.1:6379/0")
	f.Add(uint8(0), "u:", "%zz", "host/0")
	f.Add(uint8(0), "u:", "", "host:notaport/0")
	f.Add(uint8(0), "", "/x", "host/0")
	f.Add(uint8(1), "", "#x", "host")
	f.Add(uint8(2), "/", "", "/run/redis.sock")
	f.Add(uint8(2), ":", "?db=1", "/run/redis.sock?db=x")
	f.Add(uint8(3), "u:", "", "[::1")
	f.Fuzz(func(t *testing.T, scheme uint8, before, after, rest string) {
		if strings.Contains(rest, "@") {
			return // the user-info ends at the last '@'
		}
		raw := schemes[int(scheme)%len(schemes)] + before + secret + after + "@" + rest
		p, err := sesh.NewPool(raw)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "sesh: newpool: ") ||
				strings.Contains(strings.ToUpper(msg), secret) {
				t.Fatalf("NewPool(%q) = %q", raw, msg)
			}
			return
		}
		p.Close()
		if _, addr, err := sesh.ParseURL(raw); err != nil || strings.Contains(strings.ToUpper(addr), secret) {
			t.Fatalf("ParseURL(%q) = %q, %v", raw, addr, err)
		}
	})
}
