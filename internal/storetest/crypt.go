package storetest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func newCrypt(t *testing.T, s *sesh.Store, keys ...[]byte) *sesh.Crypt {
	t.Helper()
	c, err := sesh.NewCrypt(s, keys...)
	if err != nil {
		t.Fatalf("NewCrypt: %v", err)
	}
	return c
}

func wantDecrypt(t *testing.T, s api, tok string) {
	t.Helper()
	if got, err := s.Get(context.Background(), tok); !errors.Is(err, sesh.ErrDecrypt) || got != "" {
		t.Fatalf("Get = %q, %v; want ErrDecrypt", got, err)
	}
}

func raw(t *testing.T, b Backend, k string) string {
	t.Helper()
	v, err := redis.String(do(t, b, "HGET", k, "u"), nil)
	if err != nil {
		t.Fatalf("HGET %s u: %v", k, err)
	}
	return v
}

func testCrypt(t *testing.T, b Backend) {
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TTL: time.Minute})
	c := newCrypt(t, s, newKey(t))
	victim := set(t, c, "admin@example.com")
	attacker := set(t, c, "mallory@example.com")
	wantUser(t, c, victim, "admin@example.com")
	if v := raw(t, b, key(t, p, victim)); strings.Contains(v, "admin") || len(v) != 1+4+12+len("admin@example.com")+16 {
		t.Fatalf("stored value %q is not a sealed user ID", v)
	}

	// The swap attack: the victim's sealed value under the attacker's key.
	do(t, b, "SET", key(t, p, attacker), raw(t, b, key(t, p, victim)), "PX", 60000)
	wantDecrypt(t, c, attacker)
	wantUser(t, c, victim, "admin@example.com")

	// A plain Store would have handed the attacker the victim's ID.
	mallory := set(t, s, "mallory")
	do(t, b, "SET", key(t, p, mallory), "admin@example.com", "PX", 60000)
	wantUser(t, s, mallory, "admin@example.com")
	// and that plain value is no sealed value to Crypt.
	wantDecrypt(t, c, mallory)

	// Liv and Die work without touching the ciphertext.
	if err := c.Liv(context.Background(), victim); err != nil {
		t.Fatal(err)
	}
	mustDie(t, c, victim, attacker, mallory)
	wantGone(t, c, victim)
}

func testCryptTamper(t *testing.T, b Backend) {
	p := prefix(t)
	s := newStore(t, b, sesh.Options{Prefix: p, TTL: time.Minute})
	c := newCrypt(t, s, newKey(t))
	tok := set(t, c, "alice")
	k := key(t, p, tok)
	sealed := []byte(raw(t, b, k))
	put := func(v []byte) { do(t, b, "SET", k, v, "PX", 60000) }
	for i := range sealed {
		v := bytes.Clone(sealed)
		v[i] ^= 1 << (i % 8)
		put(v)
		wantDecrypt(t, c, tok)
	}
	for _, n := range []int{0, 1, 5, 17, len(sealed) - 1} {
		put(sealed[:n])
		wantDecrypt(t, c, tok)
	}
	put(append(bytes.Clone(sealed), 0))
	wantDecrypt(t, c, tok)
	put(sealed)
	wantUser(t, c, tok, "alice")
	mustDie(t, c, tok)
}

func testCryptRotation(t *testing.T, b Backend) {
	s := newStore(t, b, sesh.Options{TTL: time.Minute})
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	c1 := newCrypt(t, s, k1)
	t1 := set(t, c1, "one")

	c21 := newCrypt(t, s, k2, k1) // step 1: new key first
	wantUser(t, c21, t1, "one")
	t2 := set(t, c21, "two")
	wantUser(t, c21, t2, "two")
	wantDecrypt(t, c1, t2) // a server not yet rolled forward cannot read it

	c32 := newCrypt(t, s, k3, k2) // k1 dropped
	wantDecrypt(t, c32, t1)
	wantUser(t, c32, t2, "two")
	t3 := set(t, c32, "three")

	c3 := newCrypt(t, s, k3)
	wantDecrypt(t, c3, t1)
	wantDecrypt(t, c3, t2)
	wantUser(t, c3, t3, "three")
	mustDie(t, c3, t1, t2, t3)

	for _, tc := range []struct {
		name string
		keys [][]byte
	}{
		{"no keys", nil},
		{"a short key", [][]byte{k1[:16]}},
		{"a long key", [][]byte{append(bytes.Clone(k1), 0)}},
		{"a repeated key", [][]byte{k1, k2, bytes.Clone(k1)}},
	} {
		if _, err := sesh.NewCrypt(s, tc.keys...); err == nil || !strings.HasPrefix(err.Error(), "sesh: newcrypt: ") {
			t.Errorf("NewCrypt with %s = %v", tc.name, err)
		}
	}
}

// sealV1 seals userID under the Redis key k as Crypt's first seal version
// did: the configured key itself for AES-GCM, and an HMAC of it for the key
// ID. It is written out here, from the format, not from sesh's code.
func sealV1(t *testing.T, ck []byte, k, userID string) string {
	t.Helper()
	block, err := aes.NewCipher(ck)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	kid := hmac.New(sha256.New, ck)
	kid.Write([]byte("sesh key id v1"))
	header := append([]byte{1}, kid.Sum(nil)[:4]...)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	out := append(append([]byte{}, header...), nonce...)
	return string(aead.Seal(out, nonce, []byte(userID), append(append([]byte{}, header...), k...)))
}

// indexV1 is the index key Crypt's first seal version gave userID.
func indexV1(prefix string, ck []byte, userID string) string {
	ik := hmac.New(sha256.New, ck)
	ik.Write([]byte("sesh user index v1"))
	m := hmac.New(sha256.New, ik.Sum(nil))
	m.Write([]byte(userID))
	return prefix + ":u:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// testCryptV1 checks that tokens sealed and indexed by the first seal
// version, which used the configured key for everything, still resolve,
// rotate into the current version, and are ended by DieAll after the
// upgrade to HKDF subkeys.
func testCryptV1(t *testing.T, b Backend) {
	ctx := context.Background()
	p := prefix(t)
	ck := newKey(t)
	c := newCrypt(t, newStore(t, b, sesh.Options{Prefix: p, TTL: time.Minute, TrackUsers: true}), ck)
	var toks []string
	for range 2 {
		var tokRaw [32]byte
		rand.Read(tokRaw[:])
		tok := base64.RawURLEncoding.EncodeToString(tokRaw[:])
		k := key(t, p, tok)
		do(t, b, "SET", k, sealV1(t, ck, k, "alice"), "PX", 60000)
		member := k[len(p)+2 : len(k)-1]
		do(t, b, "ZADD", indexV1(p, ck, "alice"), time.Now().Add(time.Hour).UnixMilli(), member)
		toks = append(toks, tok)
	}
	wantUser(t, c, toks[0], "alice")
	count(t, c, "alice", 2)
	rotated, err := c.Rotate(ctx, toks[1])
	if err != nil {
		t.Fatalf("Rotate of a version 1 token: %v", err)
	}
	if v := raw(t, b, key(t, p, rotated)); v[0] != 2 {
		t.Fatalf("a rotated token is sealed with version %d, want 2", v[0])
	}
	fresh := set(t, c, "alice")
	// Version 2 does not use the configured key itself for the cipher.
	v := []byte(raw(t, b, key(t, p, fresh)))
	block, _ := aes.NewCipher(ck)
	aead, _ := cipher.NewGCM(block)
	if _, err := aead.Open(nil, v[5:17], v[17:], append(v[:5:5], key(t, p, fresh)...)); err == nil {
		t.Fatal("a version 2 value opens with the configured key itself")
	}
	count(t, c, "alice", 3)
	if n, err := c.DieAll(ctx, "alice"); n != 3 || err != nil {
		t.Fatalf("DieAll = %d, %v; want 3", n, err)
	}
	for _, tok := range []string{toks[0], rotated, fresh} {
		wantGone(t, c, tok)
	}
}

// testRollout checks DieAll's completeness at every step of the documented
// key rotation and of turning encryption on (docs/security.md): servers at
// one step run beside servers at the step before, and once DieAll from
// either returns, no server resolves a token of the user that any step
// issued, by Set or by Rotate. The step that retires the old key can be
// skipped by waiting until no token of the first steps is live (MaxAge):
// then the tokens come from the steps on either side of the wait.
func testRollout(t *testing.T, b Backend) {
	ctx := context.Background()
	k1, k2 := newKey(t), newKey(t)
	type server func(*sesh.Store) api
	crypt := func(keys ...[]byte) server {
		return func(s *sesh.Store) api { return newCrypt(t, s, keys...) }
	}
	plain := func(s *sesh.Store) api { return s }
	type pair struct{ before, after, first int } // tokens from steps first to after
	pairs := []pair{{0, 1, 0}, {1, 2, 0}, {2, 3, 0}, {3, 4, 0}, {2, 4, 2}}
	for _, r := range []struct {
		name  string
		steps []server
	}{
		{"key rotation", []server{crypt(k1), crypt(k1, k2), crypt(k2, k1), crypt(k2, sesh.RetiredKey(k1)), crypt(k2)}},
		{"turning encryption on", []server{plain, crypt(sesh.PlainKey, k1), crypt(k1, sesh.PlainKey), crypt(k1, sesh.RetiredKey(sesh.PlainKey)), crypt(k1)}},
	} {
		for _, pr := range pairs {
			for _, by := range []int{0, 1} {
				name := fmt.Sprintf("%s: step %d beside step %d, DieAll from step %d", r.name, pr.after, pr.before, []int{pr.before, pr.after}[by])
				t.Run(name, func(t *testing.T) {
					parallel(t, b)
					s := newStore(t, b, sesh.Options{TrackUsers: true, TTL: time.Minute, MaxAge: time.Hour})
					var toks []string
					for _, step := range r.steps[pr.first : pr.after+1] {
						toks = append(toks, set(t, step(s), "alice"))
					}
					servers := []api{r.steps[pr.before](s), r.steps[pr.after](s)}
					bob := set(t, servers[0], "bob")
					for j, srv := range servers {
						nt, err := srv.Rotate(ctx, set(t, servers[1-j], "alice"))
						if err != nil {
							t.Fatalf("Rotate: %v", err)
						}
						toks = append(toks, nt)
					}
					if _, err := servers[by].DieAll(ctx, "alice"); err != nil {
						t.Fatal(err)
					}
					for _, srv := range servers {
						for _, tok := range toks {
							if got, err := srv.Get(ctx, tok); !errors.Is(err, sesh.ErrNotFound) && !errors.Is(err, sesh.ErrDecrypt) {
								t.Fatalf("after DieAll a token resolves: Get = %q, %v", got, err)
							}
						}
						wantUser(t, srv, bob, "bob")
					}
					mustDie(t, servers[0], bob)
				})
			}
		}
	}
	for _, keys := range [][][]byte{{sesh.PlainKey}, {k1, sesh.PlainKey, sesh.PlainKey}, {sesh.RetiredKey(k1), k2}, {k1, sesh.RetiredKey(k1)}} {
		if _, err := sesh.NewCrypt(newStore(t, b, sesh.Options{}), keys...); err == nil || !strings.HasPrefix(err.Error(), "sesh: newcrypt: ") {
			t.Errorf("NewCrypt with %d keys = %v; want a sesh: newcrypt: error", len(keys), err)
		}
	}
}
