package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// b64 spells tokens and key hashes as sesh does.
var b64 = base64.RawURLEncoding.Strict()

// memberOf is the hash part of token's key, as sesh names it in keys and
// in user indexes: base64url(SHA-256(raw)).
func memberOf(token string) (string, bool) {
	raw, err := b64.DecodeString(token)
	if err != nil || len(raw) != 32 {
		return "", false
	}
	return hashMember(raw), true
}

func hashMember(raw []byte) string {
	sum := sha256.Sum256(raw)
	return b64.EncodeToString(sum[:])
}

// keyBook knows, for a while, every token key the run's calls could have
// written: the tokens they asked about or were returned, and the tokens
// the Stores drew (a Set whose caller gave up still drew one). It keeps a
// key for keep after the last call that touched it began; keep is longer
// than any key can live untouched, so a live key the book does not know
// is one no call made, or one touched after its caller's deadline.
type keyBook struct {
	keep  time.Duration
	keys  map[string]*keyState // by member
	users map[string]time.Time // the Start of the last call about the user
	swept time.Time
}

type keyState struct {
	last     time.Time // the Start of the last call about it, or when it was drawn
	owner    string    // "" until known
	returned bool      // a Set or Rotate returned it
}

func newKeyBook(keep time.Duration) *keyBook {
	return &keyBook{keep: keep, keys: map[string]*keyState{}, users: map[string]time.Time{}}
}

// touch records what a released call says about keys and users.
func (b *keyBook) touch(c call) {
	if c.User != "" {
		b.users[c.User] = later(b.users[c.User], c.Start)
	}
	if c.Token != "" {
		b.note(c.Token, c.User, c.Start, false)
	}
	if (c.Op == "set" || c.Op == "rotate") && c.ok() {
		b.note(c.Out, c.User, c.Start, true)
	}
}

func (b *keyBook) note(token, owner string, at time.Time, returned bool) {
	m, ok := memberOf(token)
	if !ok {
		return
	}
	k := b.key(m, at)
	if k.owner == "" {
		k.owner = owner
	}
	k.returned = k.returned || returned
}

// key returns the state of member m, touched at t.
func (b *keyBook) key(m string, t time.Time) *keyState {
	k := b.keys[m]
	if k == nil {
		k = &keyState{}
		b.keys[m] = k
	}
	k.last = later(k.last, t)
	return k
}

// sweep drops the keys untouched for keep before mark, at most once per
// keep/4.
func (b *keyBook) sweep(mark time.Time) {
	if mark.Sub(b.swept) < b.keep/4 {
		return
	}
	b.swept = mark
	for m, k := range b.keys {
		if mark.Sub(k.last) > b.keep {
			delete(b.keys, m)
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// drawReader is the Stores' Options.Rand: crypto/rand, that also tells seq
// of every token drawn, at the time it was drawn.
type drawReader struct{ seq *sequencer }

func (d drawReader) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	if n == 32 {
		m := hashMember(p[:n])
		d.seq.stamp(func(t time.Time) call { return call{Op: "draw", Token: m, Start: t} })
	}
	return n, err
}
