package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seshkit/sesh"
)

// TestKeysFileMode checks the warning, as ssh gives for a private key,
// about a keys file that its group or others may read, and that it is a
// warning: the command still runs.
func TestKeysFileMode(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	key := keygen(t)
	for _, c := range []struct {
		name string
		mode os.FileMode
		warn bool
	}{
		{"a file only its owner reads gets no warning", 0o600, false},
		{"a read-only file of its owner gets no warning", 0o400, false},
		{"a world-readable file gets a warning", 0o644, true},
		{"a group-readable file gets a warning", 0o640, true},
		{"a file others may write gets a warning", 0o602, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			status, out, errOut := runSesh(t, "", "set", "-redis", url, "-keys-file", path, "alice")
			if status != exitOK || !isToken(strings.TrimSpace(out)) {
				t.Fatalf("status %d, stdout %q, stderr %q; want a token", status, out, errOut)
			}
			warned := strings.Contains(errOut, "sesh: warning: keys file "+path+" has mode ") &&
				strings.Contains(errOut, "chmod 600")
			if warned != c.warn || c.warn && strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr %q; want a warning: %v", errOut, c.warn)
			}
			if strings.Contains(errOut, key) {
				t.Errorf("stderr shows the key")
			}
		})
	}
}

// TestKeygenToNewCrypt checks the one path from keygen to NewCrypt: an
// application that decodes keygen's output with sesh.ParseKey opens what
// the command sealed with the same text in SESH_KEYS, and the command opens
// what the application sealed.
func TestKeygenToNewCrypt(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	key := keygen(t)
	k, err := sesh.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sesh.NewPool(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := sesh.New(pool, sesh.Options{})
	if err != nil {
		t.Fatal(err)
	}
	app, err := sesh.NewCrypt(s, k)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Setenv("SESH_KEYS", key)
	_, out, errOut := runSesh(t, "", "set", "-redis", url, "alice")
	tok := strings.TrimSpace(out)
	if user, err := app.Get(ctx, tok); user != "alice" || err != nil {
		t.Errorf("the app's Get of the command's token = %q, %v (stderr %q)", user, err, errOut)
	}
	tok, err = app.Set(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if status, out, errOut := runSesh(t, "", "get", "-redis", url, tok); status != exitOK || out != "bob\n" {
		t.Errorf("the command's get of the app's token: %d %q %q", status, out, errOut)
	}
}

// TestRolloutKeys checks that SESH_KEYS names every step of the rollouts in
// docs/security.md: "plain" and "retired:KEY" let the command's dieall reach
// the tokens an application at that step reaches, which without them it
// would miss and count 0.
func TestRolloutKeys(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	oldText, newText := keygen(t), keygen(t)
	oldKey, err := sesh.ParseKey(oldText)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sesh.NewPool(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := sesh.New(pool, sesh.Options{TrackUsers: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		app    [][]byte // the keys of the app that issues the tokens
		keys   string   // SESH_KEYS for the command
		status int
		out    string
	}{
		{"retired:KEY reaches a retired key's tokens", [][]byte{oldKey}, newText + ",retired:" + oldText, exitOK, "1\n"},
		{"without it the old key's tokens are missed", [][]byte{oldKey}, newText, exitNotFound, "0\n"},
		{"plain reaches a plain Store's tokens", nil, newText + ",plain", exitOK, "1\n"},
		{"retired:plain reaches them too", nil, newText + ",retired:plain", exitOK, "1\n"},
		{"a key with two retired: is a usage error", nil, "retired:retired:" + oldText, exitUsage, ""},
		{"retired: alone is a usage error", nil, newText + ",retired:", exitUsage, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var app sesh.TokenStore = s
			if c.app != nil {
				if app, err = sesh.NewCrypt(s, c.app...); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := app.Set(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv("SESH_KEYS", c.keys)
			status, out, errOut := runSesh(t, "", "dieall", "-redis", url, "-track-users", "alice")
			if status != c.status || out != c.out {
				t.Fatalf("dieall = %d %q (stderr %q); want %d %q", status, out, errOut, c.status, c.out)
			}
			if strings.Contains(errOut, oldText) || strings.Contains(errOut, newText) {
				t.Errorf("stderr shows a key: %q", errOut)
			}
			if _, err := app.Get(ctx, tok); (c.status == exitOK) != errors.Is(err, sesh.ErrNotFound) {
				t.Errorf("the app's Get after dieall: %v", err)
			}
			app.DieAll(ctx, "alice")
		})
	}
}
