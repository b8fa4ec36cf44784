package sesh_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/seshkit/sesh"
)

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:32] // base64url and standard differ on it
	url := base64.RawURLEncoding.EncodeToString(raw)
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"keygen's unpadded base64url is a key", url, true},
		{"standard base64 with padding is the same key", base64.StdEncoding.EncodeToString(raw), true},
		{"standard base64 without padding is the same key", base64.RawStdEncoding.EncodeToString(raw), true},
		{"white space around the key is ignored", " " + url + "\n", true},
		{"an empty string is not a key", "", false},
		{"31 bytes are not a key", base64.RawURLEncoding.EncodeToString(raw[:31]), false},
		{"33 bytes are not a key", base64.RawURLEncoding.EncodeToString(append(raw, 0)), false},
		{"a passphrase is not a key", "correct horse battery staple and more words", false},
		{"a key with a space inside is not a key", url[:20] + " " + url[20:], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := sesh.ParseKey(tc.in)
			if !tc.ok {
				if err == nil {
					t.Fatalf("ParseKey = %x, want an error", k)
				}
				if tc.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
					t.Errorf("the error %q quotes its input", err)
				}
				return
			}
			if err != nil || !bytes.Equal(k, raw) {
				t.Fatalf("ParseKey = %x, %v; want %x", k, err, raw)
			}
		})
	}
}

// FuzzParseKey checks that ParseKey never panics, returns 32 bytes or its
// one error, and never quotes its input.
func FuzzParseKey(f *testing.F) {
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("A", 43) + "=")
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := sesh.ParseKey(s)
		if err != nil {
			if k != nil || !strings.HasPrefix(err.Error(), "sesh: parsekey: ") {
				t.Fatalf("ParseKey(%q) = %x, %v", s, k, err)
			}
			return
		}
		if len(k) != 32 {
			t.Fatalf("ParseKey(%q) = %d bytes", s, len(k))
		}
	})
}
