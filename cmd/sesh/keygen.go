package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

func (c *cli) keygen(ctx context.Context, args []string) int {
	fs := c.flags("keygen", "",
		`Keygen prints a fresh 32-byte key from crypto/rand, in the unpadded base64url
that SESH_KEYS takes. An application decodes it with sesh.ParseKey and
passes it to sesh.NewCrypt, as this command does with SESH_KEYS; not with
sesh.KeyFromSecret, which derives another key from the same text. To rotate
keys, put the new key first: it seals new values, and the old ones still
open what they sealed.`,
		"\texport SESH_KEYS=\"$(sesh keygen),$SESH_KEYS\"")
	if _, status, ok := c.parse(fs, args, 0); !ok {
		return status
	}
	key := make([]byte, 32)
	rand.Read(key) // never returns an error: it crashes the program instead
	fmt.Fprintln(c.stdout, base64.RawURLEncoding.EncodeToString(key))
	return exitOK
}
