package sesh

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ParseKey decodes a key printed by "sesh keygen" into the 32 bytes that
// NewCrypt takes. It is the path the sesh command takes for each key of
// SESH_KEYS, so an application that reads the same text gets the same key:
//
//	key, err := sesh.ParseKey(os.Getenv("SESH_KEY")) // from sesh keygen
//	c, err := sesh.NewCrypt(store, key)
//
// It takes unpadded base64url, as keygen prints it, and also standard
// base64, padded or not; white space around the key is ignored. It returns
// an error, which never shows s, unless s encodes exactly 32 bytes.
//
// ParseKey decodes; it derives nothing. For a secret that is not a keygen
// key, use KeyFromSecret, which gives a different key for the same text.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	k, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		k, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(k) != 32 {
		// Never quote s: it may be a key with one character wrong.
		return nil, errors.New("sesh: parsekey: not the base64 of 32 bytes; make a key with sesh keygen")
	}
	return k, nil
}
