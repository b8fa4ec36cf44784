package seshhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

const (
	challenge = `Bearer realm="sesh"`
	rejected  = `Bearer realm="sesh", error="invalid_token"`
)

// newStore returns a Store with a one-hour TTL on a fresh miniredis.
func newStore(t *testing.T) (*miniredis.Miniredis, *sesh.Store) {
	t.Helper()
	mr := miniredis.RunT(t)
	addr := mr.Addr() // Addr panics once mr is closed
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	t.Cleanup(func() { pool.Close() })
	s, err := sesh.New(pool, sesh.Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return mr, s
}

// setter is what issue needs: *sesh.Store and *sesh.Crypt both have it.
type setter interface {
	Set(ctx context.Context, userID string) (string, error)
}

func issue(t *testing.T, g setter, userID string) string {
	t.Helper()
	tok, err := g.Set(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// result is what one request through Require came to.
type result struct {
	code    int
	header  http.Header
	body    string
	ran     bool   // the next handler ran
	authed  bool   // the next handler saw a user
	userID  string // as the next handler saw it
	token   string // as the next handler saw it
	records []map[string]any
}

// serve sends r through Require(g, o) to a handler that records what it
// saw, and checks that no response carries any of the tokens in secrets.
func serve(t *testing.T, g seshhttp.Getter, o seshhttp.Options, r *http.Request, secrets ...string) result {
	t.Helper()
	return serveThrough(t, seshhttp.Require, g, o, r, secrets...)
}

// middleware is Require or Optional.
type middleware func(seshhttp.Getter, seshhttp.Options) func(http.Handler) http.Handler

// serveThrough is serve through mw.
func serveThrough(t *testing.T, mw middleware, g seshhttp.Getter, o seshhttp.Options, r *http.Request, secrets ...string) result {
	t.Helper()
	var logs bytes.Buffer
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}
	var res result
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res.ran = true
		res.userID, res.authed = seshhttp.UserID(r.Context())
		res.token, _ = seshhttp.Token(r.Context())
		fmt.Fprintln(w, "welcome")
	})
	rec := httptest.NewRecorder()
	mw(g, o)(next).ServeHTTP(rec, r)
	// What was sent: the header as it stood when the status was written.
	res.code, res.header, res.body = rec.Code, rec.Result().Header, rec.Body.String()
	for _, s := range secrets {
		if strings.Contains(res.body, s) {
			t.Errorf("response body %q holds a token", res.body)
		}
		for k, vs := range res.header {
			for _, v := range vs {
				if strings.Contains(v, s) {
					t.Errorf("response header %s: %q holds a token", k, v)
				}
			}
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("log %q holds a token", logs.String())
		}
	}
	res.records = records(t, &logs)
	return res
}

func records(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var rs []map[string]any
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		rs = append(rs, m)
	}
	return rs
}

func get(header map[string][]string, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

func bearer(tok string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + tok}}
}

func cookie(tok string) *http.Cookie { return &http.Cookie{Name: "sesh", Value: tok} }

// checkAdmitted checks that res reached the next handler as userID with tok.
func checkAdmitted(t *testing.T, res result, userID, tok string) {
	t.Helper()
	if res.code != http.StatusOK || !res.ran {
		t.Fatalf("got %d, next ran %v; want 200 from next", res.code, res.ran)
	}
	if !res.authed || res.userID != userID || res.token != tok {
		t.Errorf("next saw user %q token %q, want %q %q", res.userID, res.token, userID, tok)
	}
}

// checkRefused checks that res is a 401 with challenge that next never saw.
func checkRefused(t *testing.T, res result, challenge string) {
	t.Helper()
	if res.ran {
		t.Error("next ran")
	}
	if res.code != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", res.code)
	}
	if got := res.header.Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate %q, want %q", got, challenge)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if res.body != "unauthorized\n" {
		t.Errorf("body %q, want %q", res.body, "unauthorized\n")
	}
}

// checkUnavailable checks that res is a 503 that next never saw.
func checkUnavailable(t *testing.T, res result) {
	t.Helper()
	if res.ran {
		t.Error("next ran")
	}
	if res.code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", res.code)
	}
	if got := res.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if got := res.header.Get("WWW-Authenticate"); got != "" {
		t.Errorf("WWW-Authenticate %q on a 503", got)
	}
	if res.body != "service unavailable\n" {
		t.Errorf("body %q, want %q", res.body, "service unavailable\n")
	}
}

func TestRequireReadsTheToken(t *testing.T) {
	_, s := newStore(t)
	alice, bob := issue(t, s, "alice"), issue(t, s, "bob")
	unknown := strings.Repeat("A", 43) // well formed, never issued
	tests := []struct {
		name    string
		opts    seshhttp.Options
		req     *http.Request
		user    string // "" for a refusal
		token   string
		refusal string // the challenge of a refusal
	}{
		{name: "a Bearer header admits its user", req: get(bearer(alice)), user: "alice", token: alice},
		{name: "a cookie admits its user", req: get(nil, cookie(alice)), user: "alice", token: alice},
		{name: "a lowercase bearer scheme is accepted",
			req: get(map[string][]string{"Authorization": {"bearer " + alice}}), user: "alice", token: alice},
		{name: "an upper-case BEARER scheme with two spaces is accepted",
			req: get(map[string][]string{"Authorization": {"BEARER  " + alice}}), user: "alice", token: alice},
		{name: "the header wins over the cookie", req: get(bearer(bob), cookie(alice)), user: "bob", token: bob},
		{name: "a Basic header is ignored for the cookie",
			req:  get(map[string][]string{"Authorization": {"Basic YWxpY2U6cHc="}}, cookie(alice)),
			user: "alice", token: alice},
		{name: "a Basic header beside a Bearer one is ignored",
			req:  get(map[string][]string{"Authorization": {"Basic YWxpY2U6cHc=", "Bearer " + bob}}, cookie(alice)),
			user: "bob", token: bob},
		{name: "a custom cookie name is read", opts: seshhttp.Options{Cookie: "__Host-sid"},
			req: get(nil, &http.Cookie{Name: "__Host-sid", Value: alice}, cookie(bob)), user: "alice", token: alice},

		{name: "a request without a token is challenged without an error", req: get(nil), refusal: challenge},
		{name: "a Basic header alone is challenged without an error",
			req: get(map[string][]string{"Authorization": {"Basic YWxpY2U6cHc="}}), refusal: challenge},
		{name: "an empty cookie is no token", req: get(nil, cookie("")), refusal: challenge},
		{name: "a cookie of another name is no token",
			req: get(nil, &http.Cookie{Name: "other", Value: alice}), refusal: challenge},
		{name: "the default cookie is not read under a custom name", opts: seshhttp.Options{Cookie: "sid"},
			req: get(nil, cookie(alice)), refusal: challenge},

		{name: "a malformed header token is invalid", req: get(bearer("not-a-token")), refusal: rejected},
		{name: "a malformed cookie token is invalid", req: get(nil, cookie("not-a-token")), refusal: rejected},
		{name: "an unknown token is invalid", req: get(bearer(unknown)), refusal: rejected},
		{name: "a Bearer header without a token is invalid",
			req: get(map[string][]string{"Authorization": {"Bearer"}}, cookie(alice)), refusal: rejected},
		{name: "a bad header token is not rescued by a good cookie",
			req: get(bearer(unknown), cookie(alice)), refusal: rejected},
		{name: "two Bearer headers are refused as ambiguous",
			req: get(map[string][]string{"Authorization": {"Bearer " + alice, "Bearer " + bob}}), refusal: rejected},
		{name: "two cookies of the name are refused as ambiguous",
			req: get(nil, cookie(alice), cookie(bob)), refusal: rejected},
		{name: "a token with a space in it is invalid",
			req: get(bearer(alice + " " + bob)), refusal: rejected},

		{name: "a tab after the scheme carries the header's token, not the cookie's",
			req:  get(map[string][]string{"Authorization": {"Bearer\t" + bob}}, cookie(alice)),
			user: "bob", token: bob},
		{name: "a tab after an upper-case scheme carries the header's token",
			req:  get(map[string][]string{"Authorization": {"BEARER\t" + bob}}, cookie(alice)),
			user: "bob", token: bob},
		{name: "a comma after the scheme is malformed, not the cookie's turn",
			req: get(map[string][]string{"Authorization": {"Bearer," + bob}}, cookie(alice)), refusal: rejected},
		{name: "a lowercase bearer alone is malformed, not the cookie's turn",
			req: get(map[string][]string{"Authorization": {"bearer"}}, cookie(alice)), refusal: rejected},
		{name: "a token followed by a parameter is malformed",
			req: get(map[string][]string{"Authorization": {"Bearer " + bob + ", realm=x"}}, cookie(alice)), refusal: rejected},
		{name: "BearerX is another scheme, ignored for the cookie",
			req:  get(map[string][]string{"Authorization": {"BearerX " + bob}}, cookie(alice)),
			user: "alice", token: alice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, s, tt.opts, tt.req, alice, bob)
			if tt.refusal != "" {
				checkRefused(t, res, tt.refusal)
			} else {
				checkAdmitted(t, res, tt.user, tt.token)
			}
			if len(res.records) != 0 {
				t.Errorf("logged %v", res.records)
			}
		})
	}
}

func TestRequireRefusesDeadTokens(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name string
		kill func(t *testing.T, mr *miniredis.Miniredis, g seshhttp.Getter, tok string)
		warn bool // a decrypt failure is logged as a warning
	}{
		{name: "an expired token is invalid", kill: func(t *testing.T, mr *miniredis.Miniredis, _ seshhttp.Getter, _ string) {
			mr.FastForward(time.Hour + time.Millisecond)
		}},
		{name: "an ended token is invalid", kill: func(t *testing.T, _ *miniredis.Miniredis, g seshhttp.Getter, tok string) {
			if err := g.(*sesh.Store).Die(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a tampered sealed value is invalid and logged", warn: true,
			kill: func(t *testing.T, mr *miniredis.Miniredis, _ seshhttp.Getter, _ string) {
				keys := mr.Keys()
				if len(keys) != 1 {
					t.Fatalf("keys %v, want one", keys)
				}
				b := []byte(mr.HGet(keys[0], "u"))
				b[len(b)-1] ^= 1
				mr.HSet(keys[0], "u", string(b))
			}},
		{name: "a value sealed under another token's key is invalid and logged", warn: true,
			kill: func(t *testing.T, mr *miniredis.Miniredis, g seshhttp.Getter, _ string) {
				issue(t, g.(*sesh.Crypt), "mallory")
				// Swap the two sealed values: each now sits under the wrong key.
				ks := mr.Keys()
				if len(ks) != 2 {
					t.Fatalf("keys %v, want two", ks)
				}
				v0, v1 := mr.HGet(ks[0], "u"), mr.HGet(ks[1], "u")
				mr.HSet(ks[0], "u", v1)
				mr.HSet(ks[1], "u", v0)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mr, s := newStore(t)
			var g seshhttp.Getter = s
			if tt.warn {
				c, err := sesh.NewCrypt(s, key)
				if err != nil {
					t.Fatal(err)
				}
				g = c
			}
			tok := issue(t, g.(setter), "alice")
			checkAdmitted(t, serve(t, g, seshhttp.Options{}, get(bearer(tok)), tok), "alice", tok)

			tt.kill(t, mr, g, tok)
			res := serve(t, g, seshhttp.Options{}, get(bearer(tok)), tok)
			checkRefused(t, res, rejected)
			switch {
			case tt.warn && len(res.records) != 1:
				t.Errorf("logged %v, want one warning", res.records)
			case tt.warn:
				checkRecord(t, res.records[0], "WARN", "sesh: get: stored value failed to decrypt")
			case len(res.records) != 0:
				t.Errorf("logged %v", res.records)
			}
		})
	}
}

var tokenHash = regexp.MustCompile(`^[0-9a-f]{16}$`)

// checkRecord checks one log record of a failed lookup.
func checkRecord(t *testing.T, rec map[string]any, level, errText string) {
	t.Helper()
	if rec["level"] != level {
		t.Errorf("level %v, want %s", rec["level"], level)
	}
	if rec["op"] != "get" {
		t.Errorf("op %v, want get", rec["op"])
	}
	if e, _ := rec["err"].(string); !strings.Contains(e, errText) {
		t.Errorf("err %q, want it to hold %q", e, errText)
	}
	if h, _ := rec["token_hash"].(string); !tokenHash.MatchString(h) {
		t.Errorf("token_hash %q, want 16 hex digits", h)
	}
}

func TestRequireFailsClosed(t *testing.T) {
	tests := []struct {
		name    string
		fail    func(mr *miniredis.Miniredis)
		errText string
	}{
		{name: "a Redis error is a 503", fail: func(mr *miniredis.Miniredis) {
			mr.SetError("LOADING Redis is loading the dataset in memory")
		}, errText: "LOADING"},
		{name: "a Redis that is gone is a 503", fail: func(mr *miniredis.Miniredis) { mr.Close() },
			errText: "sesh: get:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mr, s := newStore(t)
			tok := issue(t, s, "alice")
			tt.fail(mr)
			for _, r := range []*http.Request{get(bearer(tok)), get(nil, cookie(tok))} {
				res := serve(t, s, seshhttp.Options{}, r, tok)
				checkUnavailable(t, res)
				if len(res.records) != 1 {
					t.Fatalf("logged %v, want one record", res.records)
				}
				checkRecord(t, res.records[0], "ERROR", tt.errText)
			}
		})
	}
}

// getterFunc makes a Getter of a function.
type getterFunc func(ctx context.Context, token string) (string, error)

func (f getterFunc) Get(ctx context.Context, token string) (string, error) { return f(ctx, token) }

func TestRequireFailsClosedOnAnyGetterError(t *testing.T) {
	tok := strings.Repeat("A", 43)
	tests := []struct {
		name    string
		g       getterFunc
		errText string
	}{
		{name: "a deadline is a 503", g: func(ctx context.Context, _ string) (string, error) {
			return "", fmt.Errorf("sesh: get: %w", context.DeadlineExceeded)
		}, errText: "deadline exceeded"},
		{name: "an empty user ID is a 503", g: func(context.Context, string) (string, error) {
			return "", nil
		}, errText: "empty user ID"},
		{name: "a user ID with an error is a 503", g: func(context.Context, string) (string, error) {
			return "alice", errors.New("broken")
		}, errText: "broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, tt.g, seshhttp.Options{}, get(bearer(tok)), tok)
			checkUnavailable(t, res)
			if len(res.records) != 1 {
				t.Fatalf("logged %v, want one record", res.records)
			}
			checkRecord(t, res.records[0], "ERROR", tt.errText)
		})
	}
}

func TestRequireAsksTheGetterOnlyForOneToken(t *testing.T) {
	tok := strings.Repeat("A", 43)
	tests := []struct {
		name    string
		req     *http.Request
		refusal string
	}{
		{"no credential is refused unasked", get(nil), challenge},
		{"an empty Bearer token is refused unasked",
			get(map[string][]string{"Authorization": {"Bearer "}}), rejected},
		{"two Bearer headers are refused unasked",
			get(map[string][]string{"Authorization": {"Bearer " + tok, "bearer " + tok}}), rejected},
		{"two cookies are refused unasked", get(nil, cookie(tok), cookie(tok)), rejected},
		{"a comma after Bearer is refused unasked",
			get(map[string][]string{"Authorization": {"Bearer," + tok}}), rejected},
		{"a token that is no token68 is refused unasked",
			get(map[string][]string{"Authorization": {"Bearer " + tok + ";x"}}), rejected},
		{"a Bearer header with a tab and nothing else is refused unasked",
			get(map[string][]string{"Authorization": {"Bearer\t"}}), rejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := getterFunc(func(context.Context, string) (string, error) {
				t.Error("Get was called")
				return "alice", nil
			})
			checkRefused(t, serve(t, g, seshhttp.Options{}, tt.req), tt.refusal)
		})
	}
}

func TestRequireDoesNotRunNextForAClientThatLeft(t *testing.T) {
	_, s := newStore(t)
	tok := issue(t, s, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := serve(t, s, seshhttp.Options{}, get(bearer(tok)).WithContext(ctx), tok)
	checkUnavailable(t, res)
	if len(res.records) != 0 {
		t.Errorf("logged %v for a client that hung up", res.records)
	}
}

func TestRequireWithoutLoggerLogsNothing(t *testing.T) {
	mr, s := newStore(t)
	tok := issue(t, s, "alice")
	mr.SetError("LOADING Redis is loading the dataset in memory")
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next ran") })
	rec := httptest.NewRecorder()
	seshhttp.Require(s, seshhttp.Options{})(next).ServeHTTP(rec, get(bearer(tok)))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rec.Code)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q to the default logger", logs.String())
	}
}

func TestTokenHash(t *testing.T) {
	mr, s := newStore(t)
	alice, bob := issue(t, s, "alice"), issue(t, s, "bob")
	mr.SetError("LOADING Redis is loading the dataset in memory")

	var logs bytes.Buffer
	o := seshhttp.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next ran") })
	h1, h2 := seshhttp.Require(s, o)(next), seshhttp.Require(s, o)(next)
	for _, tt := range []struct {
		h   http.Handler
		tok string
	}{{h1, alice}, {h1, alice}, {h1, bob}, {h2, alice}} {
		tt.h.ServeHTTP(httptest.NewRecorder(), get(bearer(tt.tok)))
	}
	if strings.Contains(logs.String(), alice) || strings.Contains(logs.String(), bob) {
		t.Fatalf("log holds a token: %s", logs.String())
	}
	rs := records(t, &logs)
	if len(rs) != 4 {
		t.Fatalf("got %d records, want 4", len(rs))
	}
	hash := func(i int) any { return rs[i]["token_hash"] }
	if hash(0) != hash(1) {
		t.Errorf("one token, one middleware: hashes %v and %v differ", hash(0), hash(1))
	}
	if hash(0) == hash(2) {
		t.Errorf("two tokens share hash %v", hash(0))
	}
	if hash(0) == hash(3) {
		t.Errorf("two middlewares share hash %v for one token: the salt is not per middleware", hash(0))
	}
}

func TestContextWithoutRequire(t *testing.T) {
	if id, ok := seshhttp.UserID(context.Background()); ok || id != "" {
		t.Errorf("UserID = %q, %v; want \"\", false", id, ok)
	}
	if tok, ok := seshhttp.Token(context.Background()); ok || tok != "" {
		t.Errorf("Token = %q, %v; want \"\", false", tok, ok)
	}
}

func TestInvalidCookieNamesPanic(t *testing.T) {
	_, s := newStore(t)
	tests := []struct {
		name string
		f    func()
	}{
		{"Require panics on a cookie name with a space", func() { seshhttp.Require(s, seshhttp.Options{Cookie: "my sesh"}) }},
		{"Require panics on a nil Getter", func() { seshhttp.Require(nil, seshhttp.Options{}) }},
		{"SetCookie panics on a cookie name with a semicolon", func() {
			seshhttp.SetCookie(httptest.NewRecorder(), seshhttp.Cookie{Name: "a;b"}, "x")
		}},
		{"ClearCookie panics on a cookie name with an equals sign", func() {
			seshhttp.ClearCookie(httptest.NewRecorder(), seshhttp.Cookie{Name: "a=b"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}

func TestSetCookie(t *testing.T) {
	const tok = "b2FCHuDdqcTe6cM7z7tGqVLCizeU3DXymJFRUFDiRwE"
	tests := []struct {
		name   string
		c      seshhttp.Cookie
		want   http.Cookie // Name, MaxAge, Domain, Secure as parsed
		absent []string    // attributes the raw header must not hold
	}{
		{name: "the zero Cookie is a secure host-only session cookie named sesh",
			want:   http.Cookie{Name: "sesh", Secure: true},
			absent: []string{"Max-Age", "Domain", "Expires"}},
		{name: "MaxAge becomes Max-Age in seconds",
			c:    seshhttp.Cookie{MaxAge: 24 * time.Hour},
			want: http.Cookie{Name: "sesh", MaxAge: 86400, Secure: true}},
		{name: "a fractional MaxAge rounds up",
			c:    seshhttp.Cookie{MaxAge: 1500 * time.Millisecond},
			want: http.Cookie{Name: "sesh", MaxAge: 2, Secure: true}},
		{name: "a negative MaxAge is a session cookie",
			c:      seshhttp.Cookie{MaxAge: sesh.Forever},
			want:   http.Cookie{Name: "sesh", Secure: true},
			absent: []string{"Max-Age"}},
		{name: "Domain shares the cookie with subdomains",
			c:    seshhttp.Cookie{Domain: "example.com"},
			want: http.Cookie{Name: "sesh", Domain: "example.com", Secure: true}},
		{name: "Insecure drops Secure",
			c:      seshhttp.Cookie{Insecure: true},
			want:   http.Cookie{Name: "sesh"},
			absent: []string{"Secure"}},
		{name: "Name renames the cookie",
			c:    seshhttp.Cookie{Name: "__Host-sesh"},
			want: http.Cookie{Name: "__Host-sesh", Secure: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			seshhttp.SetCookie(rec, tt.c, tok)
			got := oneCookie(t, rec, tt.absent)
			if got.Name != tt.want.Name || got.Value != tok || got.MaxAge != tt.want.MaxAge ||
				got.Domain != tt.want.Domain || got.Secure != tt.want.Secure {
				t.Errorf("got %s=%s MaxAge=%d Domain=%q Secure=%v, want %s=%s MaxAge=%d Domain=%q Secure=%v",
					got.Name, got.Value, got.MaxAge, got.Domain, got.Secure,
					tt.want.Name, tok, tt.want.MaxAge, tt.want.Domain, tt.want.Secure)
			}

			rec = httptest.NewRecorder()
			seshhttp.ClearCookie(rec, tt.c)
			got = oneCookie(t, rec, []string{"Expires"})
			if got.Name != tt.want.Name || got.Value != "" || got.MaxAge != -1 ||
				got.Domain != tt.want.Domain || got.Secure != tt.want.Secure {
				t.Errorf("cleared: got %s=%q MaxAge=%d Domain=%q Secure=%v, want %s=\"\" MaxAge=-1 Domain=%q Secure=%v",
					got.Name, got.Value, got.MaxAge, got.Domain, got.Secure,
					tt.want.Name, tt.want.Domain, tt.want.Secure)
			}
		})
	}
}

// oneCookie returns the one cookie rec set, after checking the attributes
// every sesh cookie has and that the raw header lacks each of absent.
func oneCookie(t *testing.T, rec *httptest.ResponseRecorder, absent []string) *http.Cookie {
	t.Helper()
	raw := rec.Header().Values("Set-Cookie")
	cs := rec.Result().Cookies()
	if len(raw) != 1 || len(cs) != 1 {
		t.Fatalf("Set-Cookie %q, want one cookie", raw)
	}
	c := cs[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Errorf("Set-Cookie %q: want HttpOnly, SameSite=Lax and Path=/", raw[0])
	}
	for _, a := range absent {
		if strings.Contains(raw[0], a) {
			t.Errorf("Set-Cookie %q holds %s", raw[0], a)
		}
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	return c
}

func TestSetCookieIsReadByRequire(t *testing.T) {
	for _, c := range []seshhttp.Cookie{{}, {Name: "__Host-sesh", MaxAge: time.Hour}} {
		t.Run(fmt.Sprintf("a cookie named %q round-trips", c.Name), func(t *testing.T) {
			_, s := newStore(t)
			tok := issue(t, s, "alice")
			rec := httptest.NewRecorder()
			seshhttp.SetCookie(rec, c, tok)
			r := get(nil)
			for _, hc := range rec.Result().Cookies() {
				r.AddCookie(hc)
			}
			res := serve(t, s, seshhttp.Options{TokenCookie: c}, r, tok)
			checkAdmitted(t, res, "alice", tok)
		})
	}
}
