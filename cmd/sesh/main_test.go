package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
)

// runSesh runs the command in-process with stdin as its input and returns its
// exit status and output. It clears the environment sesh reads, so that
// only what a test sets counts.
func runSesh(t *testing.T, stdin string, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	status = run(args, strings.NewReader(stdin), &out, &errOut)
	return status, out.String(), errOut.String()
}

// cleanEnv unsets SESH_REDIS_URL and SESH_KEYS for the test, and returns
// the Redis URL that was set, if any.
func cleanEnv(t *testing.T) (realURL string) {
	t.Helper()
	realURL = os.Getenv("SESH_REDIS_URL")
	t.Setenv("SESH_REDIS_URL", "")
	t.Setenv("SESH_KEYS", "")
	return realURL
}

// server starts a miniredis and returns it with its URL.
func server(t *testing.T) (*miniredis.Miniredis, string) {
	t.Helper()
	mr := miniredis.RunT(t)
	return mr, "redis://" + mr.Addr()
}

// keyOf is token's Redis key under prefix.
func keyOf(t *testing.T, prefix, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		t.Fatalf("%q is not a token: %v", token, err)
	}
	sum := sha256.Sum256(raw)
	return prefix + ":{" + base64.RawURLEncoding.EncodeToString(sum[:]) + "}"
}

func TestDemoNarratesEveryStepOnTheEmbeddedServer(t *testing.T) {
	cleanEnv(t)
	status, out, errOut := runSesh(t, "", "demo")
	if status != exitOK {
		t.Fatalf("demo exited %d; stderr:\n%s", status, errOut)
	}
	for _, step := range []string{
		"1. Set(\"alice\")", "2. Get(token)", "3. Liv(token)", "4. Rotate(token)",
		"Get(old token)                 -> ErrNotFound", "5. Count(\"alice\")                   -> 3",
		"6. DieAll(\"alice\")                  -> ended 3", "7. Die(token)",
		"FastForward", "8. Get(token) 1.2s later            -> ErrNotFound",
		"9. swap attack", "all 9 steps behaved as documented",
	} {
		if !strings.Contains(out, step) {
			t.Errorf("narration lacks %q:\n%s", step, out)
		}
	}
	if !regexp.MustCompile(`Store\.Get\(mallory's token\) +-> "victim"`).MatchString(out) {
		t.Errorf("the plain Store's swap line does not report the victim:\n%s", out)
	}
	if !regexp.MustCompile(`Crypt\.Get\(mallory's token\) +-> ErrDecrypt`).MatchString(out) {
		t.Errorf("the Crypt swap line does not report ErrDecrypt:\n%s", out)
	}
	if !regexp.MustCompile(`\d+(\.\d+)?(ns|µs|ms|s)\n`).MatchString(out) {
		t.Errorf("narration shows no latencies:\n%s", out)
	}
}

// TestDemoLeavesNoKeyOnARealServer runs when SESH_REDIS_URL names a server.
func TestDemoLeavesNoKeyOnARealServer(t *testing.T) {
	url := cleanEnv(t)
	if url == "" {
		t.Skip("SESH_REDIS_URL is not set")
	}
	status, out, errOut := runSesh(t, "", "demo", "-redis", url)
	if status != exitOK {
		t.Fatalf("demo exited %d; stderr:\n%s", status, errOut)
	}
	m := regexp.MustCompile(`throwaway prefix (seshdemo-[0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("demo names no prefix:\n%s", out)
	}
	if !strings.Contains(out, "cleaned up") {
		t.Errorf("demo does not report its cleanup:\n%s", out)
	}
	if keys := scan(t, url, m[1]+"*"); len(keys) > 0 {
		t.Errorf("demo left %d keys under %s, such as %q", len(keys), m[1], keys[0])
	}
}

// scan lists the keys of the server at url that match pattern.
func scan(t *testing.T, url, pattern string) []string {
	t.Helper()
	conn, err := redis.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var keys []string
	cursor := "0"
	for {
		v, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			t.Fatal(err)
		}
		var batch []string
		if _, err := redis.Scan(v, &cursor, &batch); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, batch...)
		if cursor == "0" {
			return keys
		}
	}
}

func TestKeygenPrintsA32ByteKey(t *testing.T) {
	cleanEnv(t)
	var keys []string
	for range 2 {
		status, out, errOut := runSesh(t, "", "keygen")
		if status != exitOK {
			t.Fatalf("keygen exited %d: %s", status, errOut)
		}
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("keygen printed %q, want one line", out)
		}
		key, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(out))
		if err != nil || len(key) != 32 {
			t.Fatalf("keygen printed %q: %d bytes, %v; want 32 bytes of unpadded base64url", out, len(key), err)
		}
		keys = append(keys, out)
	}
	if keys[0] == keys[1] {
		t.Error("two keygen runs printed the same key")
	}
}

func TestOperatorCommands(t *testing.T) {
	cleanEnv(t)
	mr, url := server(t)
	r := "-redis=" + url

	// must runs a command that has to succeed, and returns its output line.
	must := func(stdin string, args ...string) string {
		t.Helper()
		status, out, errOut := runSesh(t, stdin, args...)
		if status != exitOK {
			t.Fatalf("sesh %s exited %d: %s", strings.Join(args, " "), status, errOut)
		}
		return strings.TrimSuffix(out, "\n")
	}
	// missing runs a command that has to exit 1 for a token not live.
	missing := func(args ...string) {
		t.Helper()
		status, out, errOut := runSesh(t, "", args...)
		if status != exitNotFound || out != "" || !strings.HasPrefix(errOut, "sesh: ") || strings.Count(errOut, "\n") != 1 {
			t.Fatalf("sesh %s: status %d, stdout %q, stderr %q; want 1, nothing, one sesh: line",
				strings.Join(args, " "), status, out, errOut)
		}
	}

	t.Run("set then get prints the user", func(t *testing.T) {
		tok := must("", "set", r, "alice")
		if !isToken(tok) {
			t.Fatalf("set printed %q, want a token", tok)
		}
		if got := must("", "get", r, tok); got != "alice" {
			t.Errorf("get printed %q, want alice", got)
		}
		if got := must(tok+"\n", "get", r, "-"); got != "alice" {
			t.Errorf("get - with the token on stdin printed %q, want alice", got)
		}
		if got := must("", "get", tok, r); got != "alice" {
			t.Errorf("get with the flag after the token printed %q, want alice", got)
		}
		if out := must("", "liv", r, tok); out != "" {
			t.Errorf("liv printed %q, want nothing", out)
		}
	})

	t.Run("an unknown or malformed token exits 1", func(t *testing.T) {
		missing("get", r, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		missing("get", r, "not-a-token")
		missing("liv", r, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		missing("rotate", r, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	})

	t.Run("die then get exits 1, and die again is no error", func(t *testing.T) {
		tok := must("", "set", r, "bob")
		must("", "die", r, tok)
		missing("get", r, tok)
		must("", "die", r, tok)
	})

	t.Run("rotate ends the old token and prints a working one", func(t *testing.T) {
		old := must("", "set", r, "carol")
		tok := must("", "rotate", r, old)
		if !isToken(tok) || tok == old {
			t.Fatalf("rotate printed %q, want a new token", tok)
		}
		missing("get", r, old)
		if got := must("", "get", r, tok); got != "carol" {
			t.Errorf("get of the rotated token printed %q, want carol", got)
		}
	})

	t.Run("count and dieall with -track-users", func(t *testing.T) {
		var toks []string
		for range 3 {
			toks = append(toks, must("", "set", r, "-track-users", "dave"))
		}
		toks[2] = must("", "rotate", r, "-track-users", toks[2])
		if got := must("", "count", r, "-track-users", "dave"); got != "3" {
			t.Errorf("count printed %q, want 3", got)
		}
		if got := must("", "dieall", r, "-track-users", "dave"); got != "3" {
			t.Errorf("dieall printed %q, want 3", got)
		}
		for _, tok := range toks {
			missing("get", r, tok)
		}
		status, out, errOut := runSesh(t, "", "count", r, "-track-users", "dave")
		if status != exitNotFound || out != "0\n" || !strings.Contains(errOut, "no live token") {
			t.Errorf("count after dieall: status %d, stdout %q, stderr %q; want 1, 0 and why", status, out, errOut)
		}
	})

	t.Run("liv, rotate, count and dieall honour each token's own policy", func(t *testing.T) {
		tok := must("", "set", r, "-ttl", "30m", "-track-users", "hank")
		must("", "liv", r, tok) // the default -ttl is 24h
		if ttl := mr.TTL(keyOf(t, "sesh", tok)); ttl <= 0 || ttl > 30*time.Minute {
			t.Errorf("after liv the token lives %v; it was set with -ttl 30m", ttl)
		}
		tok = must("", "rotate", r, tok) // without -track-users
		if ttl := mr.TTL(keyOf(t, "sesh", tok)); ttl <= 0 || ttl > 30*time.Minute {
			t.Errorf("after rotate the token lives %v; it was set with -ttl 30m", ttl)
		}
		if got := must("", "count", r, "hank"); got != "1" {
			t.Errorf("count of the rotated token printed %q, want 1", got)
		}
		if got := must("", "dieall", r, "hank"); got != "1" {
			t.Errorf("dieall printed %q, want 1", got)
		}
		missing("get", r, tok)
	})

	t.Run("a token that starts with a dash is not a flag", func(t *testing.T) {
		raw := make([]byte, 32)
		raw[0] = 0xf8 // base64url '-' is 62, the top six bits of 0xf8
		tok := base64.RawURLEncoding.EncodeToString(raw)
		if tok[0] != '-' {
			t.Fatalf("token %q does not start with a dash", tok)
		}
		mr.Set(keyOf(t, "sesh", tok), "erin")
		if got := must("", "get", r, tok); got != "erin" {
			t.Errorf("get printed %q, want erin", got)
		}
		if got := must("", "get", tok, r); got != "erin" {
			t.Errorf("get with the token first printed %q, want erin", got)
		}
	})

	t.Run("flags shape the store", func(t *testing.T) {
		tok := must("", "set", r, "-prefix", "app", "-ttl", "90s", "-maxage", "1h", "frank")
		key := keyOf(t, "app", tok)
		if !mr.Exists(key) {
			t.Fatalf("no key %s under -prefix app; keys: %v", key, mr.Keys())
		}
		if ttl := mr.TTL(key); ttl != 90e9 {
			t.Errorf("TTL of %s is %v, want 1m30s", key, ttl)
		}
		missing("get", r, tok) // under the default prefix
		must("", "set", r, "-ttl", "forever", "grace")
	})
}

func TestSESH_KEYSSealsWhatRedisHolds(t *testing.T) {
	cleanEnv(t)
	mr, url := server(t)
	key1, key2 := keygen(t), keygen(t)

	t.Setenv("SESH_KEYS", key1)
	_, tok, _ := runSesh(t, "", "set", "-redis", url, "alice")
	tok = strings.TrimSpace(tok)
	raw := mr.HGet(keyOf(t, "sesh", tok), "u")
	if raw == "alice" || strings.Contains(raw, "alice") {
		t.Errorf("Redis holds %q in clear", raw)
	}

	for _, c := range []struct {
		name, keys, file string
		status           int
		stdout, stderr   string
	}{
		{"the sealing key opens it", key1, "", exitOK, "alice\n", ""},
		{"a later key in the list opens it", key2 + "," + key1, "", exitOK, "alice\n", ""},
		{"an empty entry is skipped", "," + key1 + ",", "", exitOK, "alice\n", ""},
		{"standard base64 with padding is accepted", toStd(t, key1), "", exitOK, "alice\n", ""},
		{"a keys file opens it", "", "# app keys\n\n" + key2 + "\n" + key1 + "\n", exitOK, "alice\n", ""},
		{"another key fails to decrypt", key2, "", exitFailure, "", "failed to decrypt"},
		{"no key refuses to print ciphertext", "", "", exitFailure, "", "not printable"},
		{"a malformed key is a usage error", "c2hvcnQ", "", exitUsage, "", "SESH_KEYS: key 1 is not the base64 of 32 bytes"},
		{"an empty keys file is a usage error", "", "# nothing\n", exitUsage, "", "holds no key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SESH_KEYS", c.keys)
			args := []string{"get", "-redis", url, tok}
			if c.file != "" {
				path := t.TempDir() + "/keys"
				if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-keys-file", path)
			}
			status, out, errOut := runSesh(t, "", args...)
			if status != c.status || out != c.stdout || !strings.Contains(errOut, c.stderr) {
				t.Errorf("status %d, stdout %q, stderr %q; want %d, %q, stderr with %q",
					status, out, errOut, c.status, c.stdout, c.stderr)
			}
			if strings.Contains(errOut, key1) || strings.Contains(errOut, key2) {
				t.Errorf("stderr shows a key: %q", errOut)
			}
		})
	}
}

func keygen(t *testing.T) string {
	t.Helper()
	_, out, _ := runSesh(t, "", "keygen")
	return strings.TrimSpace(out)
}

func toStd(t *testing.T, key string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestUsage(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	tok := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, c := range []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"no arguments print the overview", nil, exitUsage, "Commands:"},
		{"help prints the overview", []string{"help"}, exitOK, "Commands:"},
		{"help names a command", []string{"help", "bench"}, exitOK, "usage: sesh bench"},
		{"-h documents a command", []string{"get", "-h"}, exitOK, "Example:"},
		{"-h documents the demo", []string{"demo", "-h"}, exitOK, "usage: sesh demo"},
		{"-h documents keygen", []string{"keygen", "-h"}, exitOK, "usage: sesh keygen"},
		{"an unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"an unknown flag", []string{"get", "-nope", tok}, exitUsage, "flag provided but not defined"},
		{"a missing argument", []string{"get", "-redis", url}, exitUsage, "get takes 1 argument, got 0"},
		{"an extra argument", []string{"set", "-redis", url, "a", "b"}, exitUsage, "set takes 1 argument, got 2"},
		{"an argument to keygen", []string{"keygen", "x"}, exitUsage, "keygen takes 0 arguments"},
		{"a bad -ttl", []string{"set", "-redis", url, "-ttl", "0", "a"}, exitUsage, "want a positive duration"},
		{"a bad URL", []string{"get", "-redis", "http://localhost", tok}, exitUsage, `the scheme is not redis`},
		{"an empty token on stdin", []string{"get", "-redis", url, "-"}, exitUsage, "standard input"},
		{"an unknown bench op", []string{"bench", "-ops", "set,fly"}, exitUsage, `unknown operation "fly"`},
		{"no bench workers", []string{"bench", "-c", "0"}, exitUsage, "-c 0"},
		{"a huge bench user ID", []string{"bench", "-size", "2000"}, exitUsage, "-size 2000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, out, errOut := runSesh(t, "", c.args...)
			if status != c.status || !strings.Contains(errOut, c.stderr) {
				t.Errorf("sesh %s: status %d, stderr:\n%s\nwant %d and %q", strings.Join(c.args, " "), status, errOut, c.status, c.stderr)
			}
			if out != "" {
				t.Errorf("stdout is %q, want nothing", out)
			}
		})
	}
}

func TestOperatorCommandsNeedAServer(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{
		{"set", "alice"},
		{"get", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"dieall", "-track-users", "alice"},
	} {
		status, _, errOut := runSesh(t, "", args...)
		if status != exitUsage || !strings.Contains(errOut, "-redis URL or -cluster ADDRS, or set SESH_REDIS_URL") ||
			!strings.Contains(errOut, "embedded Redis would forget") {
			t.Errorf("sesh %s: status %d, stderr %q; want 2 and the reason", strings.Join(args, " "), status, errOut)
		}
	}
}

func TestOperatorCommandsReadSESH_REDIS_URL(t *testing.T) {
	cleanEnv(t)
	_, url := server(t)
	t.Setenv("SESH_REDIS_URL", url)
	status, out, errOut := runSesh(t, "", "set", "alice")
	if status != exitOK || !isToken(strings.TrimSpace(out)) {
		t.Errorf("set: status %d, stdout %q, stderr %q", status, out, errOut)
	}
}

func TestAnUnreachableServerExits3(t *testing.T) {
	cleanEnv(t)
	mr, url := server(t)
	mr.Close()
	status, _, errOut := runSesh(t, "", "set", "-redis", url, "alice")
	if status != exitFailure || !strings.HasPrefix(errOut, "sesh: set: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("status %d, stderr %q; want 3 and one sesh: set: line", status, errOut)
	}
}

func TestBenchJSON(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		name string
		args []string
		ops  []string
	}{
		{"every operation", []string{"-ops", "set,get,liv,die,rotate"}, []string{"set", "get", "liv", "die", "rotate"}},
		{"sealed and tracked", []string{"-ops", "set,die", "-crypt", "-track-users", "-size", "1"}, []string{"set", "die"}},
		{"on a server", []string{"-redis", "", "-c", "3"}, []string{"set", "get"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"bench", "-n", "200", "-json"}, c.args...)
			if i := slices.Index(args, "-redis"); i >= 0 {
				_, args[i+1] = server(t)
			}
			status, out, errOut := runSesh(t, "", args...)
			if status != exitOK {
				t.Fatalf("bench exited %d: %s", status, errOut)
			}
			var results []map[string]any
			if err := json.Unmarshal([]byte(out), &results); err != nil {
				t.Fatalf("bench -json printed no JSON array (%v):\n%s", err, out)
			}
			var ops []string
			for i, r := range results {
				ops = append(ops, r["op"].(string))
				if r["ops"] != 200.0 || r["errors"] != 0.0 || !(r["ops_per_sec"].(float64) > 0) {
					t.Errorf("result %v: want 200 ops, no errors, ops_per_sec > 0", r)
				}
				p50, p90, p99, max := r["p50_ns"].(float64), r["p90_ns"].(float64), r["p99_ns"].(float64), r["max_ns"].(float64)
				if !(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max) {
					t.Errorf("result %d: latencies %v %v %v %v are not ordered", i, p50, p90, p99, max)
				}
			}
			if !slices.Equal(ops, c.ops) {
				t.Errorf("bench measured %v, want %v", ops, c.ops)
			}
		})
	}
}

func TestBenchTable(t *testing.T) {
	cleanEnv(t)
	status, out, errOut := runSesh(t, "", "bench", "-n", "100", "-c", "2", "-ops", "get")
	if status != exitOK {
		t.Fatalf("bench exited %d: %s", status, errOut)
	}
	if !regexp.MustCompile(`(?m)^\s*op\s+ops/s\s+p50\s+p90\s+p99\s+max\s+errors$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\s*get\s+\d+\s`).MatchString(out) {
		t.Errorf("bench printed no table:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("bench wrote to a stderr that is no terminal: %q", errOut)
	}
}

func TestBenchDuration(t *testing.T) {
	cleanEnv(t)
	status, out, errOut := runSesh(t, "", "bench", "-d", "200ms", "-c", "2", "-ops", "set,die", "-json")
	if status != exitOK {
		t.Fatalf("bench exited %d: %s", status, errOut)
	}
	var results []struct {
		Op        string
		Ops       int
		ElapsedNS int64 `json:"elapsed_ns"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 2 {
		t.Fatalf("bench -json printed %s (%v)", out, err)
	}
	for _, r := range results {
		if r.Ops == 0 || r.ElapsedNS > 2e9 {
			t.Errorf("%s: %d ops in %v; want some, in about 200ms", r.Op, r.Ops, r.ElapsedNS)
		}
	}
}

// TestNoPasswordInOutput runs commands on URLs whose password is a
// recognisable secret, and checks that neither stdout nor stderr shows it.
func TestNoPasswordInOutput(t *testing.T) {
	cleanEnv(t)
	const secret = "S3CRETPW"
	mr, url := server(t)
	addr := strings.TrimPrefix(url, "redis://")
	mr.Close()
	for _, u := range []string{
		"redis://" + secret + "@" + addr + "/x",
		"redis://default:" + secret + "%zz@" + addr + "/0",
		"redis://u:" + secret + "@127.0.0.1:notaport/0",
		"redis://" + secret + "@" + addr + "/0", // unreachable
		"redis+sentinel://u:" + secret + "@" + addr + "/m",
		"redis+sentinel://u:" + secret + "@" + addr + "/m/x",
		"redis+cluster://:" + secret + "@" + addr,
		"redis+cluster://:" + secret + "@" + addr + "/1",
		"redis://" + secret + "@" + addr + "," + addr,
	} {
		for _, args := range [][]string{
			{"set", "-redis", u, "alice"},
			{"dieall", "-redis", u, "-track-users", "alice"},
			{"demo", "-redis", u},
			{"bench", "-redis", u, "-n", "1"},
			{"doctor", "-redis", u},
			{"doctor", "-redis", u, "-json"},
			{"countall", "-redis", u},
		} {
			_, out, errOut := runSesh(t, "", args...)
			if strings.Contains(out+errOut, secret[:4]) || strings.Contains(out+errOut, "%zz") {
				t.Errorf("sesh %s shows the secret:\n%s%s", args[0], out, errOut)
			}
		}
	}
	t.Setenv("SESH_REDIS_URL", "redis://"+secret+"@"+addr+"/x")
	if _, out, errOut := runSesh(t, "", "set", "alice"); strings.Contains(out+errOut, secret[:4]) {
		t.Errorf("sesh set with SESH_REDIS_URL shows the secret:\n%s%s", out, errOut)
	}
}
