package sesh

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// ErrDecrypt is returned by Crypt when a stored value fails to open: it was
// tampered with, moved from another token's key, written by a plain Store,
// or sealed with a key no longer configured.
var ErrDecrypt = errors.New("sesh: stored value failed to decrypt")

// Sealed value layout: version, key ID, nonce, then ciphertext with tag.
// Version 2 seals with a subkey derived from the configured key by HKDF, as
// it names the key and the indexes with subkeys of their own; version 1,
// which used the configured key itself for all three, still opens.
const (
	sealVersion = 2
	kidLen      = 4
	headerLen   = 1 + kidLen
	nonceLen    = 12
	tagLen      = 16
	sealedMin   = headerLen + nonceLen + tagLen
	minSecret   = 32
)

// Crypt is a Store that seals user IDs with AES-256-GCM before they reach
// Redis. Each sealed value is bound to its own Redis key, so a value copied
// under another token's key fails to open with ErrDecrypt.
//
// Crypt has the Store's semantics for every method; only the stored value
// differs. It adds no round trip: the crypto work happens on the client.
// With TrackUsers, index keys hold an HMAC of the user ID, never the user ID
// (but see PlainKey). DieAll and Count reach the indexes of every key the
// Crypt holds.
//
// Crypt is safe for concurrent use by multiple goroutines.
type Crypt struct {
	s     *Store
	keys  []cryptKey // keys[0] seals; every key but a retired one opens
	plain bool       // keys holds PlainKey, not retired: plain values open
}

// cryptKey is one configured key, as each seal version uses it: v[0] for
// version 1, v[1] for version 2; or, with plain set, PlainKey.
type cryptKey struct {
	v       [2]sealer
	plain   bool
	retired bool // opens nothing; DieAll and Count still reach its indexes
}

// PlainKey, listed among NewCrypt's keys, stands for a plain Store's
// values, to turn encryption on in a live deployment without a moment when
// DieAll misses a token (see docs/security.md). Listed first, the Crypt
// stores user IDs unsealed, as a plain Store does, and indexes them under
// the plain Store's index; listed after a key, it opens unsealed values.
// Either way DieAll and Count reach the plain Store's index too. While a
// Crypt holds PlainKey it gives up what sealing guards against: any value
// that no key opens is taken as a user ID, and the plain index's key names
// the user. NewCrypt refuses PlainKey alone.
var PlainKey = []byte("sesh: plain values, to turn encryption on")

// RetiredKey returns key, or PlainKey, marked retired, to list among
// NewCrypt's keys after the first: the Crypt then opens no value sealed
// with key, so that the sessions sealed with it end, while DieAll and Count
// still reach their indexes for servers that still open them. It is the
// step before dropping a key for good (see docs/security.md).
func RetiredKey(key []byte) []byte {
	return append([]byte(retiredMark), key...)
}

const retiredMark = "sesh: retired key: "

type sealer struct {
	kid   [kidLen]byte
	aead  cipher.AEAD
	index []byte // HMAC key naming user indexes of values sealed by this sealer
}

// newSealers derives what each seal version uses from the configured key k:
// version 1 used k itself for the cipher and for two HMACs, version 2 uses
// a separate HKDF-SHA256 subkey for each.
func newSealers(k []byte) (ck cryptKey, err error) {
	v1 := [3][]byte{k, mac(k, "sesh key id v1"), mac(k, "sesh user index v1")}
	var v2 [3][]byte
	for i, label := range []string{"sesh seal v2", "sesh key id v2", "sesh user index v2"} {
		if v2[i], err = hkdf.Key(sha256.New, k, nil, label, 32); err != nil {
			return ck, err
		}
	}
	for i, sub := range [][3][]byte{v1, v2} {
		block, err := aes.NewCipher(sub[0])
		if err != nil {
			return ck, err
		}
		if ck.v[i].aead, err = cipher.NewGCM(block); err != nil {
			return ck, err
		}
		copy(ck.v[i].kid[:], sub[1])
		ck.v[i].index = sub[2]
	}
	return ck, nil
}

// NewCrypt returns a Crypt over s. Each key is 32 bytes, PlainKey, or
// either marked by RetiredKey; keys[0] seals new values and every key but a
// retired one opens. A key rotation first adds the new key after the old
// one, then swaps them: see docs/security.md. NewCrypt returns an error for
// no keys, a key that is not 32 bytes, a key given twice, a RetiredKey
// first, and PlainKey alone.
func NewCrypt(s *Store, keys ...[]byte) (*Crypt, error) {
	if s == nil {
		return nil, errors.New("sesh: newcrypt: Store is nil")
	}
	if len(keys) == 0 {
		return nil, errors.New("sesh: newcrypt: no keys; make one with sesh keygen and ParseKey, or with KeyFromSecret")
	}
	c := &Crypt{s: s}
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		k, retired := bytes.CutPrefix(k, []byte(retiredMark))
		raw[i] = k
		for j := range i {
			if subtle.ConstantTimeCompare(k, raw[j]) == 1 {
				return nil, fmt.Errorf("sesh: newcrypt: key %d repeats key %d", i, j)
			}
		}
		if retired && i == 0 {
			return nil, errors.New("sesh: newcrypt: key 0 is a RetiredKey, which seals nothing")
		}
		ck, err := newCryptKey(k)
		if err != nil {
			return nil, fmt.Errorf("sesh: newcrypt: key %d: %w", i, err)
		}
		ck.retired = retired
		for j, o := range c.keys {
			if !o.plain && !ck.plain && (o.v[0].kid == ck.v[0].kid || o.v[1].kid == ck.v[1].kid) {
				return nil, fmt.Errorf("sesh: newcrypt: keys %d and %d share a key ID; draw a new key", j, i)
			}
		}
		c.keys = append(c.keys, ck)
		c.plain = c.plain || ck.plain && !retired
	}
	if len(c.keys) == 1 && c.keys[0].plain {
		return nil, errors.New("sesh: newcrypt: PlainKey alone seals nothing; list a key with it")
	}
	return c, nil
}

// newCryptKey checks a configured key and derives what it needs.
func newCryptKey(k []byte) (cryptKey, error) {
	if subtle.ConstantTimeCompare(k, PlainKey) == 1 {
		return cryptKey{plain: true}, nil
	}
	if len(k) != 32 {
		return cryptKey{}, fmt.Errorf("%d bytes, want 32", len(k))
	}
	return newSealers(k)
}

// KeyFromSecret derives a 32-byte key from a high-entropy secret with
// HKDF-SHA256. Equal secrets give equal keys, whatever the Store's Prefix.
// It refuses a secret shorter than 32 bytes: a password is not a secret.
//
// KeyFromSecret is for a secret that an application already has, such as
// one its secret manager holds. It does not decode a key printed by
// "sesh keygen": given that text it derives another key, which the sesh
// command, reading the same text from SESH_KEYS, does not have. Decode
// keygen's output with ParseKey.
func KeyFromSecret(secret string) ([]byte, error) {
	if len(secret) < minSecret {
		return nil, fmt.Errorf("sesh: keyfromsecret: secret is %d bytes, want at least %d random bytes; make one with `sesh keygen` or `openssl rand -base64 32`", len(secret), minSecret)
	}
	return hkdf.Key(sha256.New, []byte(secret), nil, "sesh v1 key", 32)
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Set issues a new token for userID, storing it sealed. See Store.Set.
func (c *Crypt) Set(ctx context.Context, userID string) (string, error) {
	return c.s.runSet(ctx, c, userID, Policy{})
}

// SetWith is Set with a policy of the session's own. See Store.SetWith.
func (c *Crypt) SetWith(ctx context.Context, userID string, p Policy) (string, error) {
	return c.s.runSet(ctx, c, userID, p)
}

// Get returns the user ID of a live token. See Store.Get. A stored value
// that fails to open gets an error wrapping ErrDecrypt.
func (c *Crypt) Get(ctx context.Context, token string) (string, error) {
	return c.s.runGet(ctx, c, token)
}

// Liv restarts a live token's idle TTL. See Store.Liv. It touches no
// ciphertext.
func (c *Crypt) Liv(ctx context.Context, token string) error {
	return c.s.runLiv(ctx, token)
}

// Die ends a token. See Store.Die.
func (c *Crypt) Die(ctx context.Context, token string) error {
	return c.s.runDie(ctx, c, token)
}

// DieAll ends every live token of userID. See Store.DieAll. It reaches
// the tokens sealed with every key c holds, and with PlainKey those stored
// plain, but no others: docs/security.md rotates keys so that every server
// holds every key any server seals with.
func (c *Crypt) DieAll(ctx context.Context, userID string) (int, error) {
	return c.s.runDieAll(ctx, c, userID)
}

// Count returns how many live tokens userID has. See Store.Count.
func (c *Crypt) Count(ctx context.Context, userID string) (int, error) {
	return c.s.runCount(ctx, c, userID)
}

// Rotate issues a new token for the user of token and ends token. See
// Store.Rotate. The new value is sealed with keys[0].
func (c *Crypt) Rotate(ctx context.Context, token string) (string, error) {
	return c.s.runRotate(ctx, c, token)
}

// Stats returns the counters of the Store beneath c, which it shares with
// every Crypt over that Store. See Store.Stats.
func (c *Crypt) Stats() Stats { return c.s.Stats() }

// Close closes the Store beneath c, for c and every other user of that
// Store. See Store.Close.
func (c *Crypt) Close() error { return c.s.Close() }

// seal encrypts userID under keys[0] with a fresh random nonce. The
// associated data binds it to the version, the key ID and the Redis key.
// Nonces come from crypto/rand, never from Options.Rand: a repeated nonce
// would break GCM. With PlainKey first, userID is stored as it is.
func (c *Crypt) seal(key, userID string) (string, error) {
	if c.keys[0].plain {
		return userID, nil
	}
	k := &c.keys[0].v[sealVersion-1]
	out := make([]byte, headerLen+nonceLen, sealedMin+len(userID))
	out[0] = sealVersion
	copy(out[1:], k.kid[:])
	if _, err := rand.Read(out[headerLen:]); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	out = k.aead.Seal(out, out[headerLen:], []byte(userID), ad(out[:headerLen], key))
	return string(out), nil
}

// open decrypts a value sealed by seal under the same Redis key. With
// PlainKey, a value that no key opens is a plain Store's user ID.
func (c *Crypt) open(key, value string) (string, error) {
	if k := c.sealedBy(value); k != nil {
		v := []byte(value)
		pt, err := k.aead.Open(nil, v[headerLen:headerLen+nonceLen], v[headerLen+nonceLen:], ad(v[:headerLen], key))
		if err == nil {
			return string(pt), nil
		}
	}
	if c.plain {
		return value, nil
	}
	return "", ErrDecrypt
}

// sealedBy returns the sealer that sealed value, or nil when value is not a
// sealed value of a configured key.
func (c *Crypt) sealedBy(value string) *sealer {
	if len(value) < sealedMin || value[0] < 1 || value[0] > sealVersion {
		return nil
	}
	for i := range c.keys {
		ck := &c.keys[i]
		if k := &ck.v[value[0]-1]; !ck.plain && !ck.retired && string(k.kid[:]) == value[1:headerLen] {
			return k
		}
	}
	return nil
}

func ad(header []byte, key string) []byte {
	b := make([]byte, 0, len(header)+len(key))
	return append(append(b, header...), key...)
}

// indexID names a user's index by an HMAC of the user ID under the key that
// sealed value (keys[0] for a new value), so no key name reveals a user ID.
// An unsealed value, with PlainKey, is in the plain Store's index.
func (c *Crypt) indexID(userID, value string) string {
	k := &c.keys[0]
	if value != "" {
		if o := c.sealedBy(value); o != nil {
			return indexHMAC(o.index, userID)
		}
		if c.plain {
			return userID
		}
	}
	if k.plain {
		return userID
	}
	return indexHMAC(k.v[sealVersion-1].index, userID)
}

// indexIDs lists the indexes a user may have, oldest first: DieAll must
// take keys[0]'s current one last, since Rotate moves tokens towards it.
// Each key has one index per seal version, for the tokens sealed before an
// upgrade.
func (c *Crypt) indexIDs(userID string) []string {
	ids := make([]string, 0, 2*len(c.keys))
	for i := len(c.keys) - 1; i >= 0; i-- {
		if c.keys[i].plain {
			ids = append(ids, userID)
			continue
		}
		for _, v := range c.keys[i].v {
			ids = append(ids, indexHMAC(v.index, userID))
		}
	}
	return ids
}

func indexHMAC(key []byte, userID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(userID))
	return b64.EncodeToString(m.Sum(nil))
}
