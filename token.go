package sesh

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
)

// tokenLen is the length of a token: 32 bytes in unpadded base64url.
const tokenLen = 43

// b64 is strict so that each token has exactly one spelling: the unused low
// bits of the last character must be zero.
var b64 = base64.RawURLEncoding.Strict()

// newToken draws a fresh token from s.rand and returns it with its key.
func (s *Store) newToken() (token, key string, err error) {
	var raw [32]byte
	if _, err := io.ReadFull(s.rand, raw[:]); err != nil {
		return "", "", fmt.Errorf("token entropy: %w", err)
	}
	return b64.EncodeToString(raw[:]), s.rawKey(&raw), nil
}

// tokenKey returns the Redis key of token, or false when token is malformed
// and so cannot name a live token.
func (s *Store) tokenKey(token string) (string, bool) {
	if len(token) != tokenLen {
		return "", false
	}
	var buf [tokenLen]byte
	var raw [32]byte
	copy(buf[:], token)
	if n, err := b64.Decode(raw[:], buf[:]); err != nil || n != len(raw) {
		return "", false
	}
	return s.rawKey(&raw), true
}

// rawKey is the key layout: Prefix:{base64url(SHA-256(raw))}. The braces
// are a Redis Cluster hash tag, so the deadline key beside it shares its
// slot.
func (s *Store) rawKey(raw *[32]byte) string {
	sum := sha256.Sum256(raw[:])
	var h [tokenLen]byte
	b64.Encode(h[:], sum[:])
	return s.prefix + "{" + string(h[:]) + "}"
}

// deadlineKey holds a token's absolute deadline as its own expiry, when the
// idle TTL is shorter than MaxAge.
func deadlineKey(key string) string { return key + ":m" }

// member is the name of a token's entry in its user's index: the hash part
// of its key.
func (s *Store) member(key string) string {
	return key[len(s.prefix)+1 : len(key)-1]
}

// memberKey turns an index member back into a token key.
func (s *Store) memberKey(member string) string {
	return s.prefix + "{" + member + "}"
}

// validMember reports whether m, read back from an index, can name a token
// key: a SHA-256 in strict unpadded base64url.
func validMember(m string) bool {
	if len(m) != tokenLen {
		return false
	}
	var buf [tokenLen]byte
	var raw [32]byte
	copy(buf[:], m)
	n, err := b64.Decode(raw[:], buf[:])
	return err == nil && n == len(raw)
}

// indexKey is the key of a user's index: Prefix:u:<id>.
func (s *Store) indexKey(id string) string {
	return s.prefix + "u:" + id
}
