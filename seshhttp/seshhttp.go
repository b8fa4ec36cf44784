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
	"time"

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

// defaultLookupTimeout bounds a lookup when Options.LookupTimeout is zero.
const defaultLookupTimeout = time.Second

// Options configures Require and Optional. The zero value reads the cookie
// "sesh", bounds each lookup by one second, answers refusals with a short
// text/plain body and logs nothing.
type Options struct {
	// Cookie is the name of the cookie read when there is no Bearer
	// Authorization header.
	//
	// Deprecated: Set TokenCookie to the Cookie given to SetCookie, so
	// that the name is written once. Cookie is still read when
	// TokenCookie.Name is empty; when both are set they must be equal, or
	// Require panics.
	Cookie string

	// TokenCookie describes the cookie that carries the token: give it the
	// same Cookie as SetCookie and ClearCookie. The middleware reads the
	// cookie named TokenCookie.Name (when empty, Cookie, and when that is
	// empty too, "sesh"), and ignores the other fields, which only
	// matter when a cookie is set. The name must be a valid cookie name.
	TokenCookie Cookie

	// Logger receives one Error record per store failure (a request
	// answered 503, unless its client hung up) and one Warn record per
	// stored value that fails to decrypt, which points at a wrong or
	// dropped Crypt key. Each record has op, err and token_hash: an HMAC
	// of the token under a key drawn at random by Require, so that records
	// about one token can be matched while it runs, but the token can
	// neither be read back nor confirmed from the logs. The token itself
	// is never logged. When nil, nothing is logged.
	Logger *slog.Logger

	// LookupTimeout bounds each call to the Getter: the lookup runs under
	// the request's context with this timeout, and a lookup that outlives
	// it is a store failure, answered 503. The next handler still gets the
	// request's own context. When zero, 1 s. When negative, only the
	// request's context bounds the lookup.
	//
	// The bound holds as far as the Getter honours its context. A Store
	// does, on a pool from [sesh.NewPool]; a *redis.Pool with Dial rather
	// than DialContext cannot be interrupted while it makes a connection.
	LookupTimeout time.Duration

	// Error writes the response to a request that the middleware refuses
	// instead of passing it on. err is ErrNoToken or ErrInvalidToken for a
	// 401, and ErrUnavailable for a 503; it never holds the token.
	//
	// Before Error runs, w's header holds the refusal's headers:
	// WWW-Authenticate (401), Retry-After (503) and "Cache-Control:
	// no-store". Error adds its own, such as Content-Type, and writes the
	// body. The status and those headers are the middleware's: they are
	// sent as they are, whatever code Error gives WriteHeader, and even
	// when Error writes nothing. Error must not echo the request's
	// Authorization header or cookies, which hold the token.
	//
	// When nil, the body is "unauthorized" or "service unavailable" as
	// text/plain, as [http.Error] writes it.
	Error func(w http.ResponseWriter, r *http.Request, err error)

	// Session makes the middleware ask for the whole session, with the
	// Getter's Lookup ([Looker]), instead of Get, so that handlers read it
	// with [Session]: its handle, to mark "this device" in a list of
	// sessions, and its details. Lookup bypasses the Store's cache
	// (Options.CacheSize), so each request takes a round trip to Redis.
	// Require and Optional panic when it is set and the Getter has no
	// Lookup. When false, the middleware calls Get, and Session reports
	// false.
	Session bool
}

// Require returns middleware that admits only requests with a live token.
// It calls g.Get once per request, under the request's context and
// Options.LookupTimeout, and runs the next handler with the user ID and
// the token in the request's context, for UserID and Token to read. Every
// other request is answered as the package documentation describes, and
// never reaches the next handler.
//
// Require panics if g is nil, if the cookie's name is not a valid cookie
// name, or if o.Cookie and o.TokenCookie.Name are both set and differ.
func Require(g Getter, o Options) func(http.Handler) http.Handler {
	return newMiddleware("require", g, o, false)
}

// Optional returns middleware for pages that work with or without a
// session. A request with a live token reaches the next handler as
// through Require, with its user ID and token in the context. Every other
// request it could check reaches the next handler anonymously, with
// nothing in the context, so that UserID returns false:
//   - a request without a credential;
//   - a request whose credential is malformed, ambiguous, unknown,
//     expired or ended, or fails to decrypt. The credential is ignored,
//     not replaced: a request whose Bearer header is refused is served
//     anonymously even when it also carries a live cookie, since an
//     ambient credential never overrides an explicit one.
//
// A request whose token the store could not check (Redis down, a lookup
// past Options.LookupTimeout) gets 503, as with Require: serving it
// anonymously would tell a signed-in user that they are signed out.
//
// Optional panics where Require does.
func Optional(g Getter, o Options) func(http.Handler) http.Handler {
	return newMiddleware("optional", g, o, true)
}

func newMiddleware(op string, g Getter, o Options, optional bool) func(http.Handler) http.Handler {
	if g == nil {
		panic("seshhttp: " + op + ": Getter is nil")
	}
	m := &middleware{
		g:        g,
		looker:   looker(op, g, o.Session),
		cookie:   optionsCookie(o),
		log:      o.Logger,
		timeout:  o.LookupTimeout,
		refuse:   o.Error,
		optional: optional,
	}
	if m.timeout == 0 {
		m.timeout = defaultLookupTimeout
	}
	if m.refuse == nil {
		m.refuse = plainError
	}
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
	g        Getter
	looker   Looker // with Options.Session; nil without
	cookie   string
	log      *slog.Logger
	timeout  time.Duration // negative: none
	refuse   func(http.ResponseWriter, *http.Request, error)
	optional bool // pass refused credentials on anonymously
	salt     [32]byte
}

func (m *middleware) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	token, err := m.token(r)
	var a auth
	if err == nil {
		a, err = m.lookup(r.Context(), token)
	}
	switch {
	case err == nil:
		ctx := context.WithValue(r.Context(), authKey{}, a)
		next.ServeHTTP(w, r.WithContext(ctx))
	case m.optional && !errors.Is(err, ErrUnavailable):
		next.ServeHTTP(w, r)
	default:
		m.respond(w, r, err)
	}
}

// lookup asks the Getter for token's user ID (and with Options.Session
// the Looker for its session), within the lookup bound. Its error is
// ErrInvalidToken or ErrUnavailable.
func (m *middleware) lookup(ctx context.Context, token string) (auth, error) {
	gctx := ctx
	if m.timeout > 0 {
		var cancel context.CancelFunc
		gctx, cancel = context.WithTimeout(ctx, m.timeout)
		defer cancel()
	}
	a := auth{token: token, looked: m.looker != nil}
	var err error
	if a.looked {
		a.session, err = m.looker.Lookup(gctx, token)
		a.userID = a.session.UserID
	} else {
		a.userID, err = m.g.Get(gctx, token)
	}
	if err == nil && a.userID == "" {
		// No store of sesh's returns this; a Getter that does is broken,
		// and an empty identity must not pass for a user.
		err = errors.New("seshhttp: get: Getter returned an empty user ID")
	}
	switch {
	case err == nil:
		return a, nil
	case errors.Is(err, sesh.ErrNotFound):
		return auth{}, ErrInvalidToken
	case errors.Is(err, sesh.ErrDecrypt):
		m.report(ctx, slog.LevelWarn, "seshhttp: stored value failed to decrypt", token, err)
		return auth{}, ErrInvalidToken
	}
	// A client that hung up is no store failure; it gets the same answer,
	// which nobody reads. A lookup past its own bound is one.
	if !errors.Is(ctx.Err(), context.Canceled) {
		m.report(ctx, slog.LevelError, "seshhttp: token lookup failed", token, err)
	}
	return auth{}, ErrUnavailable
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

// authKey is the context key of what the middleware accepted.
type authKey struct{}

type auth struct {
	userID, token string
	session       sesh.Session // with Options.Session
	looked        bool         // session was read
}

// UserID returns the user ID that Require or Optional put into ctx, and
// false when ctx did not come through either with a live token.
func UserID(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(authKey{}).(auth)
	return a.userID, ok
}

// Token returns the token that Require or Optional accepted, and false
// when ctx did not come through either with a live token. Handlers need
// it to end the session ([sesh.Store.Die]) or replace it
// ([sesh.Store.Rotate]).
func Token(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(authKey{}).(auth)
	return a.token, ok
}

// optionsCookie returns the name of the cookie o reads: TokenCookie.Name,
// else the deprecated Cookie, else the default.
func optionsCookie(o Options) string {
	switch {
	case o.TokenCookie.Name == "":
		return cookieName(o.Cookie)
	case o.Cookie == "" || o.Cookie == o.TokenCookie.Name:
		return cookieName(o.TokenCookie.Name)
	}
	panic(fmt.Sprintf("seshhttp: Options.Cookie %q and Options.TokenCookie.Name %q differ", o.Cookie, o.TokenCookie.Name))
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
