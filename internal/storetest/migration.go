package storetest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
)

// sealV2 seals userID under the Redis key k as Crypt's seal version 2
// does: AES-GCM under an HKDF subkey of the configured key, a key ID from
// another, and the version, the key ID and k as associated data. It is
// written out here, from the format, not from sesh's code.
func sealV2(t *testing.T, ck []byte, k, userID string) string {
	t.Helper()
	sub := func(label string) []byte {
		b, err := hkdf.Key(sha256.New, ck, nil, label, 32)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	block, err := aes.NewCipher(sub("sesh seal v2"))
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	header := append([]byte{2}, sub("sesh key id v2")[:4]...)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	out := append(append([]byte{}, header...), nonce...)
	return string(aead.Seal(out, nonce, []byte(userID), append(append([]byte{}, header...), k...)))
}

// indexIDV2 is the part after "Prefix:u:" of the index key Crypt's seal
// version 2 gives userID: an HMAC of it under an HKDF subkey.
func indexIDV2(t *testing.T, ck []byte, userID string) string {
	t.Helper()
	ik, err := hkdf.Key(sha256.New, ck, nil, "sesh user index v2", 32)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, ik)
	m.Write([]byte(userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// testCryptMigration: sessions that Crypt wrote before the record (commit
// a4dc044: a string key holding the sealed value; with MaxAge, the deadline
// key beside it; with TrackUsers, an entry in the user's HMAC-named index)
// work with every operation of a Crypt under the Options that wrote them,
// and Rotate moves them to a record that holds a sealed value.
func testCryptMigration(t *testing.T, b Backend) {
	ctx := context.Background()
	u := b.Unit
	for _, o := range []sesh.Options{
		{TTL: 4 * u},
		{TTL: 4 * u, Sliding: true},
		{TTL: 2 * u, MaxAge: 4 * u, TrackUsers: true},
		{TTL: 2 * u, MaxAge: 4 * u, TrackUsers: true, Sliding: true},
	} {
		t.Run(optName(o)+map[bool]string{true: " Sliding"}[o.Sliding], func(t *testing.T) {
			parallel(t, b)
			o.Prefix = prefix(t)
			ck := newKey(t)
			c := newCrypt(t, newStore(t, b, o), ck)
			old := func() (string, string) {
				tok, k := oldToken(t, o.Prefix)
				writeOld(t, b, o, k, sealV2(t, ck, k, "alice"), indexIDV2(t, ck, "alice"))
				return tok, k
			}

			tok, k := old()
			if o.Sliding {
				b.Advance(t, u)
			}
			for range 2 {
				wantUser(t, c, tok, "alice")
			}
			if o.Sliding {
				// The sliding Get restarted the idle TTL, within the deadline.
				if d := pttl(t, b, k); d <= min(o.TTL, max(o.MaxAge, o.TTL))-u/2 || d > o.TTL {
					t.Fatalf("PTTL after a sliding Get = %v; want about %v", d, o.TTL)
				}
			}
			if err := c.Liv(ctx, tok); err != nil {
				t.Fatalf("Liv = %v", err)
			}
			if d := pttl(t, b, k); d <= 0 || d > o.TTL {
				t.Fatalf("PTTL after Liv = %v; want within (0, %v]", d, o.TTL)
			}
			if o.TrackUsers {
				count(t, c, "alice", 1)
			}

			nt, err := c.Rotate(ctx, tok)
			if err != nil {
				t.Fatalf("Rotate = %v", err)
			}
			wantGone(t, c, tok)
			wantUser(t, c, nt, "alice")
			nk := key(t, o.Prefix, nt)
			if typ, _ := redis.String(do(t, b, "TYPE", nk), nil); typ != "hash" {
				t.Fatalf("Rotate left the session as a %s, not a record", typ)
			}
			if v := raw(t, b, nk); v[0] != 2 || len(v) != 1+4+12+len("alice")+16 {
				t.Fatalf("the record holds %q, not a sealed user ID", v)
			}
			if d := pttl(t, b, nk); d <= 0 || d > min(o.TTL, max(o.MaxAge, o.TTL)) {
				t.Fatalf("rotated PTTL = %v", d)
			}
			if n, _ := redis.Int(do(t, b, "EXISTS", k, k+":m"), nil); n != 0 {
				t.Fatalf("Rotate left %d keys of the old session", n)
			}

			tok2, k2 := old()
			if err := c.Die(ctx, tok2); err != nil {
				t.Fatal(err)
			}
			wantGone(t, c, tok2)
			if n, _ := redis.Int(do(t, b, "EXISTS", k2, k2+":m"), nil); n != 0 {
				t.Fatalf("Die left %d keys of an old session", n)
			}
			if !o.TrackUsers {
				mustDie(t, c, nt)
				return
			}

			// A Crypt over a Store without TrackUsers rotates an indexed old
			// session: the new token stays in the index.
			tok3, _ := old()
			count(t, c, "alice", 2) // nt and tok3
			foreign := newCrypt(t, newStore(t, b, sesh.Options{Prefix: o.Prefix}), ck)
			nt3, err := foreign.Rotate(ctx, tok3)
			if err != nil {
				t.Fatalf("Rotate by a Crypt without TrackUsers = %v", err)
			}
			tok4, _ := old()
			count(t, c, "alice", 3) // nt, nt3 and tok4
			if n, err := c.DieAll(ctx, "alice"); n != 3 || err != nil {
				t.Fatalf("DieAll = %d, %v; want 3", n, err)
			}
			for _, tok := range []string{nt, nt3, tok4} {
				wantGone(t, c, tok)
			}

			// Neither Liv nor a sliding Get carries an old session past the
			// deadline its key beside it holds. Steps of 1.1u leave 0.9u
			// of the idle TTL and 0.7u of the deadline to the machine's
			// delays.
			tok5, _ := old()
			for range 3 {
				b.Advance(t, 11*u/10)
				if o.Sliding {
					wantUser(t, c, tok5, "alice")
				} else if err := c.Liv(ctx, tok5); err != nil {
					t.Fatalf("Liv = %v", err)
				}
			}
			b.Advance(t, 11*u/10) // past its deadline, before its idle TTL
			wantGone(t, c, tok5)
		})
	}
}
