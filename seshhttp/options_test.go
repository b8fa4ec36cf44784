package seshhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

func TestOptional(t *testing.T) {
	_, s := newStore(t)
	alice, bob := issue(t, s, "alice"), issue(t, s, "bob")
	unknown := strings.Repeat("A", 43) // well formed, never issued
	auth := func(v string) map[string][]string { return map[string][]string{"Authorization": {v}} }
	tests := []struct {
		name  string
		req   *http.Request
		user  string // "" when the handler runs anonymously
		token string
	}{
		{name: "a live Bearer header runs as its user", req: get(bearer(bob), cookie(alice)), user: "bob", token: bob},
		{name: "a live cookie runs as its user", req: get(nil, cookie(alice)), user: "alice", token: alice},
		{name: "a tab after the scheme runs as the header's user",
			req: get(auth("bearer\t"+bob), cookie(alice)), user: "bob", token: bob},
		{name: "a Basic header beside a live cookie runs as the cookie's user",
			req: get(auth("Basic YWxpY2U6cHc="), cookie(alice)), user: "alice", token: alice},

		{name: "a request without a credential runs anonymously", req: get(nil)},
		{name: "an unknown cookie runs anonymously", req: get(nil, cookie(unknown))},
		{name: "an unknown Bearer token runs anonymously, not as the cookie's user",
			req: get(bearer(unknown), cookie(alice))},
		{name: "a malformed Bearer header runs anonymously, not as the cookie's user",
			req: get(auth("Bearer,"+bob), cookie(alice))},
		{name: "a lone Bearer scheme runs anonymously, not as the cookie's user",
			req: get(auth("BEARER"), cookie(alice))},
		{name: "two Bearer headers run anonymously", req: get(map[string][]string{"Authorization": {"Bearer " + alice, "Bearer " + bob}})},
		{name: "two cookies of the name run anonymously", req: get(nil, cookie(alice), cookie(bob))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serveThrough(t, seshhttp.Optional, s, seshhttp.Options{}, tt.req, alice, bob)
			if tt.user != "" {
				checkAdmitted(t, res, tt.user, tt.token)
			} else if res.code != http.StatusOK || !res.ran || res.authed || res.userID != "" || res.token != "" {
				t.Errorf("got %d, ran %v, user %q (%v), token %q; want 200 from next with no user",
					res.code, res.ran, res.userID, res.authed, res.token)
			}
			if len(res.records) != 0 {
				t.Errorf("logged %v", res.records)
			}
		})
	}
}

func TestOptionalFailsClosed(t *testing.T) {
	mr, s := newStore(t)
	tok := issue(t, s, "alice")
	mr.SetError("LOADING Redis is loading the dataset in memory")
	res := serveThrough(t, seshhttp.Optional, s, seshhttp.Options{}, get(nil, cookie(tok)), tok)
	checkUnavailable(t, res)
	if len(res.records) != 1 {
		t.Fatalf("logged %v, want one record", res.records)
	}
	checkRecord(t, res.records[0], "ERROR", "LOADING")
}

func TestOptionalPassesAnUndecryptableTokenOnAnonymously(t *testing.T) {
	tok := strings.Repeat("A", 43)
	g := getterFunc(func(context.Context, string) (string, error) {
		return "", fmt.Errorf("sesh: get: %w", sesh.ErrDecrypt)
	})
	res := serveThrough(t, seshhttp.Optional, g, seshhttp.Options{}, get(bearer(tok)), tok)
	if !res.ran || res.authed {
		t.Errorf("ran %v, authed %v; want next to run with no user", res.ran, res.authed)
	}
	if len(res.records) != 1 {
		t.Fatalf("logged %v, want one warning", res.records)
	}
	checkRecord(t, res.records[0], "WARN", "decrypt")
}

// jsonError is an Options.Error that answers JSON and records err.
func jsonError(got *error) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		*got = err
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"error": strings.TrimPrefix(err.Error(), "seshhttp: ")})
	}
}

func TestOptionsError(t *testing.T) {
	_, s := newStore(t)
	alice := issue(t, s, "alice")
	down := getterFunc(func(context.Context, string) (string, error) { return "", errors.New("connection refused") })
	tests := []struct {
		name   string
		g      seshhttp.Getter
		req    *http.Request
		want   error
		code   int
		header map[string]string // headers the response must have
		body   string
	}{
		{name: "a request without a token gets the app's body and the bare challenge",
			g: s, req: get(nil), want: seshhttp.ErrNoToken, code: http.StatusUnauthorized,
			header: map[string]string{"WWW-Authenticate": challenge}, body: `{"error":"no token"}` + "\n"},
		{name: "a malformed token gets the app's body and invalid_token",
			g: s, req: get(bearer("not-a-token")), want: seshhttp.ErrInvalidToken, code: http.StatusUnauthorized,
			header: map[string]string{"WWW-Authenticate": rejected}, body: `{"error":"invalid token"}` + "\n"},
		{name: "a bad header beside a live cookie gets the app's body and invalid_token",
			g: s, req: get(map[string][]string{"Authorization": {"Bearer,x"}}, cookie(alice)),
			want: seshhttp.ErrInvalidToken, code: http.StatusUnauthorized,
			header: map[string]string{"WWW-Authenticate": rejected}, body: `{"error":"invalid token"}` + "\n"},
		{name: "a store failure gets the app's body and a 503",
			g: down, req: get(bearer(alice)), want: seshhttp.ErrUnavailable, code: http.StatusServiceUnavailable,
			header: map[string]string{"Retry-After": "1"}, body: `{"error":"token store unavailable"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got error
			o := seshhttp.Options{Error: jsonError(&got)}
			res := serve(t, tt.g, o, tt.req, alice)
			if res.ran {
				t.Error("next ran")
			}
			if got != tt.want {
				t.Errorf("Error was given %v, want %v", got, tt.want)
			}
			if res.code != tt.code || res.body != tt.body {
				t.Errorf("got %d %q, want %d %q", res.code, res.body, tt.code, tt.body)
			}
			tt.header["Cache-Control"] = "no-store"
			tt.header["Content-Type"] = "application/json"
			for k, v := range tt.header {
				if res.header.Get(k) != v {
					t.Errorf("%s %q, want %q", k, res.header.Get(k), v)
				}
			}
		})
	}
}

func TestOptionsErrorCannotChangeTheRefusal(t *testing.T) {
	tests := []struct {
		name  string
		error func(http.ResponseWriter, *http.Request, error)
		body  string
	}{
		{name: "an Error that writes 200 still sends 401", body: "fine",
			error: func(w http.ResponseWriter, _ *http.Request, _ error) {
				w.WriteHeader(http.StatusOK)
				fmt.Fprint(w, "fine")
			}},
		{name: "an Error that writes nothing sends 401 and no body",
			error: func(http.ResponseWriter, *http.Request, error) {}},
		{name: "an Error that drops the refusal's headers does not drop them", body: "cached",
			error: func(w http.ResponseWriter, _ *http.Request, _ error) {
				w.Header().Del("WWW-Authenticate")
				w.Header().Set("Cache-Control", "public, max-age=3600")
				fmt.Fprint(w, "cached")
			}},
		{name: "an Error that edits the header's values in place does not edit them", body: "edited",
			error: func(w http.ResponseWriter, _ *http.Request, _ error) {
				w.Header()["Cache-Control"][0] = "public"
				w.WriteHeader(http.StatusOK)
				fmt.Fprint(w, "edited")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, getterFunc(nil), seshhttp.Options{Error: tt.error}, get(nil))
			if res.ran || res.code != http.StatusUnauthorized || res.body != tt.body {
				t.Errorf("got %d %q, ran %v; want 401 %q", res.code, res.body, res.ran, tt.body)
			}
			if got := res.header.Get("WWW-Authenticate"); got != challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, challenge)
			}
			if got := res.header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
}

func TestLookupTimeout(t *testing.T) {
	tok := strings.Repeat("A", 43)
	tests := []struct {
		name    string
		timeout time.Duration
		bound   time.Duration // 0: no deadline
	}{
		{name: "a zero LookupTimeout bounds the lookup by one second", bound: time.Second},
		{name: "a LookupTimeout bounds the lookup", timeout: 50 * time.Millisecond, bound: 50 * time.Millisecond},
		{name: "a negative LookupTimeout leaves the request's context alone", timeout: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The deadline was set between start and the call.
			var start, called, deadline time.Time
			var bounded bool
			g := getterFunc(func(ctx context.Context, _ string) (string, error) {
				called = time.Now()
				deadline, bounded = ctx.Deadline()
				return "alice", nil
			})
			var nextBounded bool
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, nextBounded = r.Context().Deadline()
			})
			start = time.Now()
			seshhttp.Require(g, seshhttp.Options{LookupTimeout: tt.timeout})(next).ServeHTTP(nopWriter{}, get(bearer(tok)))
			switch {
			case tt.bound == 0 && bounded:
				t.Errorf("the lookup had a deadline %v after its start", deadline.Sub(start))
			case tt.bound != 0 && !bounded:
				t.Error("the lookup had no deadline")
			case tt.bound != 0 && (deadline.Before(start.Add(tt.bound)) || deadline.After(called.Add(tt.bound))):
				t.Errorf("the lookup's deadline is %v after the request's start and %v after the call, want %v",
					deadline.Sub(start), deadline.Sub(called), tt.bound)
			}
			if nextBounded {
				t.Error("the next handler got the lookup's deadline")
			}
		})
	}
}

// nopWriter is a ResponseWriter that discards everything.
type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) WriteHeader(int)             {}

func TestALookupPastItsBoundIsA503(t *testing.T) {
	tok := strings.Repeat("A", 43)
	g := getterFunc(func(ctx context.Context, _ string) (string, error) {
		<-ctx.Done() // a store that never answers
		return "", fmt.Errorf("sesh: get: %w", ctx.Err())
	})
	for _, mw := range []struct {
		name string
		mw   middleware
	}{{"Require", seshhttp.Require}, {"Optional", seshhttp.Optional}} {
		t.Run(mw.name+" answers 503 and logs the deadline", func(t *testing.T) {
			res := serveThrough(t, mw.mw, g, seshhttp.Options{LookupTimeout: 10 * time.Millisecond}, get(bearer(tok)), tok)
			checkUnavailable(t, res)
			if len(res.records) != 1 {
				t.Fatalf("logged %v, want one record", res.records)
			}
			checkRecord(t, res.records[0], "ERROR", "deadline exceeded")
		})
	}
}

func TestTokenCookie(t *testing.T) {
	_, s := newStore(t)
	alice, bob := issue(t, s, "alice"), issue(t, s, "bob")
	sid := func(tok string) *http.Cookie { return &http.Cookie{Name: "__Host-sid", Value: tok} }
	tests := []struct {
		name string
		opts seshhttp.Options
		req  *http.Request
		user string // "" for a refusal without a token
	}{
		{name: "TokenCookie's name is read", opts: seshhttp.Options{TokenCookie: seshhttp.Cookie{Name: "__Host-sid"}},
			req: get(nil, sid(alice), cookie(bob)), user: "alice"},
		{name: "the deprecated Cookie is read when TokenCookie has no name",
			opts: seshhttp.Options{Cookie: "__Host-sid", TokenCookie: seshhttp.Cookie{MaxAge: time.Hour}},
			req:  get(nil, sid(alice), cookie(bob)), user: "alice"},
		{name: "equal names agree",
			opts: seshhttp.Options{Cookie: "__Host-sid", TokenCookie: seshhttp.Cookie{Name: "__Host-sid"}},
			req:  get(nil, sid(alice), cookie(bob)), user: "alice"},
		{name: "the default name is not read under TokenCookie's",
			opts: seshhttp.Options{TokenCookie: seshhttp.Cookie{Name: "__Host-sid"}}, req: get(nil, cookie(bob))},
		{name: "a TokenCookie without a name reads sesh",
			opts: seshhttp.Options{TokenCookie: seshhttp.Cookie{Domain: "example.com"}}, req: get(nil, cookie(bob)), user: "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, s, tt.opts, tt.req, alice, bob)
			if tt.user == "" {
				checkRefused(t, res, challenge)
				return
			}
			if !res.ran || res.userID != tt.user {
				t.Errorf("got %d, user %q; want 200 as %s", res.code, res.userID, tt.user)
			}
		})
	}
}

func TestOptionsThatPanic(t *testing.T) {
	_, s := newStore(t)
	tests := []struct {
		name string
		mw   middleware
		o    seshhttp.Options
	}{
		{"Require panics when Cookie and TokenCookie.Name differ", seshhttp.Require,
			seshhttp.Options{Cookie: "sid", TokenCookie: seshhttp.Cookie{Name: "__Host-sid"}}},
		{"Optional panics when Cookie and TokenCookie.Name differ", seshhttp.Optional,
			seshhttp.Options{Cookie: "sesh", TokenCookie: seshhttp.Cookie{Name: "sid"}}},
		{"Require panics on a TokenCookie name with a space", seshhttp.Require,
			seshhttp.Options{TokenCookie: seshhttp.Cookie{Name: "my sesh"}}},
		{"Optional panics on a cookie name with a comma", seshhttp.Optional, seshhttp.Options{Cookie: "a,b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.mw(s, tt.o)
		})
	}
	t.Run("Optional panics on a nil Getter", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		seshhttp.Optional(nil, seshhttp.Options{})
	})
}
