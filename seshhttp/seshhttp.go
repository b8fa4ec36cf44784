// Package seshhttp is net/http middleware for sesh tokens, and the helpers
// that carry a token in a cookie.
//
// [Require] wraps a handler so that it runs only for requests with a live
// token, and puts the token's user ID in the request context for [UserID]
// to read. [SetCookie] issues a token to a browser at login and
// [ClearCookie] takes it back at logout.
//
// # Where the token comes from
//
// Require reads the token from an "Authorization: Bearer" header (RFC 6750
// §2.1; the scheme is matched without regard to case) or, when there is
// none, from a cookie. When a request carries both, the header wins, even
// when its token is not live. A request with two Bearer headers, or two
// cookies of the name, is refused as ambiguous. An Authorization header of
// another scheme, such as Basic, is ignored, and the cookie is read instead.
// The README says why.
//
// # Responses
//
// A request without a token gets 401 with
//
//	WWW-Authenticate: Bearer realm="sesh"
//
// and no error attribute, as RFC 6750 §3.1 asks of a request that lacks
// authentication or uses an unsupported scheme. A token that is malformed,
// unknown, expired or ended, or whose stored value fails to decrypt, gets
// 401 with error="invalid_token", which tells a client to authenticate
// again. Require never answers 400 invalid_request: every failed credential
// is one the client should replace, not a bug it should fix.
//
// When the store cannot answer (Redis down, a timeout), the request gets 503
// with "Retry-After: 1": the middleware fails closed and never lets a request
// through that it could not check. Every one of these responses has
// "Cache-Control: no-store" and a short fixed body that never holds the
// token.
package seshhttp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/seshkit/sesh"
)

// Getter is what Require needs from a token store: [*sesh.Store] and
// [*sesh.Crypt] both satisfy it. Get returns the user ID of a live token,
// an error wrapping [sesh.ErrNotFound] for a token that is not live (or
// [sesh.ErrDecrypt] for a stored value that fails to open), and any other
// error when the store cannot answer.
type Getter interface {
	Get(ctx context.Context, token string) (string, error)
}

var (
	_ Getter = (*sesh.Store)(nil)
	_ Getter = (*sesh.Crypt)(nil)
)

// defaultName is the cookie name when none is given.
const defaultName = "sesh"

// Options configures Require. The zero value reads the cookie "sesh" and
// logs nothing.
type Options struct {
	// Cookie is the name of the cookie read when there is no Bearer
	// Authorization header. When empty, "sesh". It must be a valid cookie
	// name, and should match Cookie.Name given to SetCookie.
	Cookie string

	// Logger receives one Error record per store failure (a request
	// answered 503, unless its client hung up) and one Warn record per stored value that fails to
	// decrypt, which points at a wrong or dropped Crypt key. Each record
	// has op, err and token_hash: an HMAC of the token under a key drawn
	// at random by Require, so that records about one token can be matched
	// while it runs, but the token can neither be read back nor confirmed
	// from the logs. The token itself is never logged. When nil, nothing is
	// logged.
	Logger *slog.Logger
}

// Require returns middleware that admits only requests with a live token.
// It calls g.Get once per request with the request's context, and runs the
// next handler with the user ID and the token in that context, for UserID
// and Token to read. Every other request is answered as the package
// documentation describes, and never reaches the next handler.
//
// Require panics if g is nil or o.Cookie is not a valid cookie name.
func Require(g Getter, o Options) func(http.Handler) http.Handler {
	if g == nil {
		panic("seshhttp: require: Getter is nil")
	}
	name := cookieName(o.Cookie)
	m := &middleware{g: g, cookie: name, log: o.Logger}
	// The salt only has to hide tokens from whoever reads the logs, so it
	// need not outlive the process. crypto/rand.Read never fails.
	rand.Read(m.salt[:])
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(next, w, r)
		})
	}
}

type middleware struct {
	g      Getter
	cookie string
	log    *slog.Logger
	salt   [32]byte
}

func (m *middleware) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	token, status := m.token(r)
	switch status {
	case missing:
		unauthorized(w, `Bearer realm="sesh"`)
		return
	case invalid:
		unauthorized(w, `Bearer realm="sesh", error="invalid_token"`)
		return
	}
	ctx := r.Context()
	userID, err := m.g.Get(ctx, token)
	if err == nil && userID == "" {
		// No store of sesh's returns this; a Getter that does is broken,
		// and an empty identity must not pass for a user.
		err = errors.New("seshhttp: get: Getter returned an empty user ID")
	}
	switch {
	case err == nil:
		ctx = context.WithValue(ctx, authKey{}, auth{userID: userID, token: token})
		next.ServeHTTP(w, r.WithContext(ctx))
	case errors.Is(err, sesh.ErrNotFound):
		unauthorized(w, `Bearer realm="sesh", error="invalid_token"`)
	case errors.Is(err, sesh.ErrDecrypt):
		m.report(ctx, slog.LevelWarn, "seshhttp: stored value failed to decrypt", token, err)
		unauthorized(w, `Bearer realm="sesh", error="invalid_token"`)
	default:
		// A client that hung up is no store failure; it gets the same
		// answer, which nobody reads.
		if !errors.Is(ctx.Err(), context.Canceled) {
			m.report(ctx, slog.LevelError, "seshhttp: token lookup failed", token, err)
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Retry-After", "1")
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
	}
}

// outcome is what reading a request's token found.
type outcome int

const (
	found   outcome = iota
	missing         // no credential of ours: 401 without an error attribute
	invalid         // a credential of ours that cannot be a token: 401 invalid_token
)

// token reads the request's token, header first, then cookie.
func (m *middleware) token(r *http.Request) (string, outcome) {
	var token string
	n := 0
	for _, v := range r.Header.Values("Authorization") {
		if t, ok := bearer(v); ok {
			token = t
			n++
		}
	}
	switch {
	case n > 1:
		return "", invalid
	case n == 1 && token == "":
		return "", invalid
	case n == 1:
		return token, found
	}
	cs := r.CookiesNamed(m.cookie)
	switch {
	case len(cs) > 1:
		return "", invalid
	case len(cs) == 0 || cs[0].Value == "":
		return "", missing
	}
	return cs[0].Value, found
}

// bearer returns the credentials of an Authorization field value, and
// whether its scheme is Bearer (RFC 7235 §2.1: the scheme is
// case-insensitive and one or more spaces follow it).
func bearer(v string) (string, bool) {
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(rest, " "), true
}

func unauthorized(w http.ResponseWriter, challenge string) {
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	h.Set("Cache-Control", "no-store")
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// report logs a failed lookup of token, naming the token by its hash.
func (m *middleware) report(ctx context.Context, level slog.Level, msg, token string, err error) {
	if m.log == nil {
		return
	}
	m.log.LogAttrs(ctx, level, msg,
		slog.String("op", "get"),
		slog.String("err", err.Error()),
		slog.String("token_hash", m.hash(token)))
}

// hash names token in logs: 64 bits of HMAC-SHA256 under the middleware's
// salt, enough to match records, useless without the salt.
func (m *middleware) hash(token string) string {
	mac := hmac.New(sha256.New, m.salt[:])
	mac.Write([]byte(token))
	return hex.EncodeToString(mac.Sum(nil)[:8])
}

// authKey is the context key of what Require accepted.
type authKey struct{}

type auth struct{ userID, token string }

// UserID returns the user ID that Require put into ctx, and false when ctx
// did not come through Require.
func UserID(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(authKey{}).(auth)
	return a.userID, ok
}

// Token returns the token that Require accepted, and false when ctx did
// not come through Require. Handlers need it to end the session
// ([sesh.Store.Die]) or replace it ([sesh.Store.Rotate]).
func Token(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(authKey{}).(auth)
	return a.token, ok
}

// cookieName returns name, or the default for "", and panics when it is
// not a valid cookie name: net/http would silently drop such a cookie.
func cookieName(name string) string {
	if name == "" {
		return defaultName
	}
	if err := (&http.Cookie{Name: name}).Valid(); err != nil {
		panic(fmt.Sprintf("seshhttp: cookie name %q is not valid", name))
	}
	return name
}
