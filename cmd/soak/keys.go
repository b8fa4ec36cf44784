package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// b64 spells tokens and key hashes as sesh does.
var b64 = base64.RawURLEncoding.Strict()

// member names a token's key: the SHA-256 of the token's bytes, which
// sesh spells in base64url in the key ("Prefix:{member}") and in its
// user's index.
type member [32]byte

// tokenMember is the member of token's key.
func tokenMember(token string) (member, bool) {
	var raw [32]byte
	if len(token) != tokenLen {
		return member{}, false
	}
	if n, err := b64.Decode(raw[:], []byte(token)); err != nil || n != len(raw) {
		return member{}, false
	}
	return sha256.Sum256(raw[:]), true
}

// parseMember reads a member as sesh spells it.
func parseMember(b []byte) (member, bool) {
	var m member
	if len(b) != tokenLen {
		return m, false
	}
	n, err := b64.Decode(m[:], b)
	return m, err == nil && n == len(m)
}

func (m member) String() string { return b64.EncodeToString(m[:]) }

// keyBook knows, for a while, every token key the run's calls could have
// written: the tokens they asked about or were returned, and the tokens
// the Stores drew (a Set whose caller gave up still drew one). It keeps a
// key for keep after the last call that touched it began; keep is longer
// than any key lives untouched, so a live key the book does not know is
// one no call made, or one touched after its caller's deadline. Its map
// holds no pointers, so that the collector need not scan it.
type keyBook struct {
	keep   time.Duration
	keys   map[member]keyState
	users  map[string]uint16 // a user's number: the index into last, from 1
	names  []string          // by number
	latest []time.Time       // by number: the Start of the last call about the user
	swept  time.Time
}

type keyState struct {
	last     int64  // Unix ns: the Start of the last call about it, or when it was drawn
	owner    uint16 // the owner's number; 0 until known
	returned bool   // a Set or Rotate returned it
}

func newKeyBook(keep time.Duration) *keyBook {
	return &keyBook{keep: keep, keys: map[member]keyState{}, users: map[string]uint16{},
		names: []string{""}, latest: []time.Time{{}}}
}

// user returns the number of user, and records a call about it at t.
func (b *keyBook) user(name string, t time.Time) uint16 {
	n, ok := b.users[name]
	if !ok {
		n = uint16(len(b.names))
		b.users[name] = n
		b.names = append(b.names, name)
		b.latest = append(b.latest, t)
	}
	b.latest[n] = later(b.latest[n], t)
	return n
}

// touch records what a released call says about keys and users.
func (b *keyBook) touch(c call) {
	var owner uint16
	if c.User != "" {
		owner = b.user(c.User, c.Start)
	}
	if m, ok := tokenMember(c.Token); ok {
		b.key(m, c.Start, owner, false)
	}
	if m, ok := tokenMember(c.Out); ok && (c.Op == "set" || c.Op == "rotate") && c.ok() {
		b.key(m, c.Start, owner, true)
	}
}

// key records a call about m at t: by owner (0: unknown), that returned it
// or not.
func (b *keyBook) key(m member, t time.Time, owner uint16, returned bool) {
	k := b.keys[m]
	k.last = max(k.last, t.UnixNano())
	if k.owner == 0 {
		k.owner = owner
	}
	k.returned = k.returned || returned
	b.keys[m] = k
}

// sweep drops the keys untouched for keep before mark, at most once per
// keep/4.
func (b *keyBook) sweep(mark time.Time) {
	if mark.Sub(b.swept) < b.keep/4 {
		return
	}
	b.swept = mark
	old := mark.Add(-b.keep).UnixNano()
	for m, k := range b.keys {
		if k.last < old {
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
// of every token drawn, at the time it was drawn, as a draw whose Token is
// the member's bytes.
type drawReader struct{ seq *sequencer }

func (d drawReader) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	if n == 32 {
		m := member(sha256.Sum256(p[:n]))
		d.seq.stamp(func(t time.Time) call { return call{Op: "draw", Token: string(m[:]), Start: t} })
	}
	return n, err
}
