// Command api is a small JSON API that authenticates its requests with sesh
// tokens. It needs nothing else to run:
//
//	go run ./examples/api
//
// Its one user is "demo", with the password "demo":
//
//	POST /login       {"user":"demo","password":"demo"} -> 200 {"token":"..."}, and the cookie;
//	                  the body must be sent as Content-Type: application/json (415 otherwise)
//	GET  /me          -> 200 {"user":"demo"}
//	POST /rotate      -> 200 {"token":"..."}, and the cookie: a fresh token; the old one ends
//	POST /logout      -> 204: the token ends, the cookie is cleared
//	POST /logout-all  -> 200 {"ended":N}: every token of the user ends
//	POST /password    -> 200 {"changed":true} for a login younger than a minute; else 403
//	                  {"error":"insufficient_user_authentication","max_age":60,...} (step-up)
//	POST /reauth      {"password":"demo"} -> 200 {"token":"..."}, and the cookie: a fresh login
//	GET  /sessions    -> 200 {"sessions":[...]}: the user's sessions, this one marked
//	DELETE /sessions/{handle}  -> 204: that session ends
//	POST /sessions/others      -> 200 {"ended":N}: the user's other sessions end
//
// Every endpoint but /login needs a live token, sent as
// "Authorization: Bearer TOKEN" or as the cookie "sesh"; without one it
// answers 401, and 503 when Redis cannot answer within a second, each with
// a JSON body {"error":"..."}. On start it prints the address it listens
// on and curl commands for each endpoint.
//
// Tokens live 30 minutes without use, renewed by every request, and 12
// hours at most. They are kept in an embedded miniredis, which forgets them
// when the server stops, unless -redis names a server. User IDs are sealed
// with the keys in SESH_KEYS (see "sesh keygen"), or with a fresh key that
// lives as long as the process.
//
// The cookie is SameSite=Lax, which keeps other sites from sending it with
// their POST requests; it lacks the Secure attribute only when the request
// came over plain HTTP, as on localhost.
//
// /login needs no cookie, so SameSite does not guard it: a page on another
// site could post the attacker's user and password to it from the
// victim's browser, and log the victim in as the attacker (login CSRF).
// Such a page can send only what an HTML form sends:
// application/x-www-form-urlencoded, multipart/form-data or text/plain,
// and text/plain can carry a JSON text. To send application/json it needs
// a CORS preflight, which this server never grants. So /login refuses any
// other Content-Type with 415, before it reads the body.
//
// SIGINT or SIGTERM stops the server after the requests in flight.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

const (
	demoUser     = "demo"
	demoPassword = "demo"
	idleTTL      = 30 * time.Minute
	maxAge       = 12 * time.Hour
	cookieName   = "sesh"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts the server down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen on `host:port`; port 0 picks a free one")
	redisURL := fs.String("redis", "", "keep tokens in the Redis at `URL` (default: an embedded miniredis)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	s, closeStore, err := openStore(*redisURL, log)
	if err != nil {
		return err
	}
	defer closeStore()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           routes(s, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "listening on %s\n\n", base)
	printCurls(stdout, base)
	printStepUpCurls(stdout, base)
	return serve(ctx, srv, ln, log)
}

// openStore returns the API's Crypt over a Store at url, or over an
// embedded miniredis when url is empty, and the func that closes what it
// opened. On an error it has closed them already.
func openStore(url string, log *slog.Logger) (sesh.TokenStore, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if url == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, mr.Close)
		url = "redis://" + mr.Addr()
		log.Info("tokens are kept in an embedded miniredis, and end when the server stops")
	}
	pool, err := sesh.NewPool(url)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, func() { pool.Close() })
	crypt, err := newCrypt(pool, log)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return crypt, closeAll, nil
}

// newCrypt returns a Crypt with the keys of SESH_KEYS over a Store on pool.
func newCrypt(pool sesh.Pool, log *slog.Logger) (*sesh.Crypt, error) {
	s, err := sesh.New(pool, sesh.Options{TTL: idleTTL, MaxAge: maxAge, Sliding: true, TrackUsers: true, Details: true})
	if err != nil {
		return nil, err
	}
	keys, err := keys(log)
	if err != nil {
		return nil, err
	}
	return sesh.NewCrypt(s, keys...)
}

// serve serves ln until srv fails or ctx is done, then shuts srv down,
// giving the requests in flight 5 seconds.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// keys returns the keys in SESH_KEYS, as "sesh keygen" prints them and
// sesh.ParseKey decodes them, or a fresh one.
func keys(log *slog.Logger) ([][]byte, error) {
	env := os.Getenv("SESH_KEYS")
	if strings.Trim(env, ", ") == "" {
		log.Warn("SESH_KEYS is not set: sealing with a fresh, ephemeral key; tokens will not survive a restart")
		k := make([]byte, 32)
		rand.Read(k)
		return [][]byte{k}, nil
	}
	var keys [][]byte
	for i, e := range strings.Split(env, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		k, err := sesh.ParseKey(e) // its error never shows the key
		if err != nil {
			return nil, fmt.Errorf("SESH_KEYS: key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// routes returns the API; every endpoint but /login is behind Require.
func routes(s sesh.TokenStore, log *slog.Logger) http.Handler {
	a := &api{s: s, log: log}
	o := seshhttp.Options{TokenCookie: tokenCookie, Logger: log, Error: refuse}
	auth := seshhttp.Require(s, o)
	mux := http.NewServeMux()
	a.sessionRoutes(mux, o)
	mux.HandleFunc("POST /login", a.login)
	mux.Handle("GET /me", auth(http.HandlerFunc(a.me)))
	mux.Handle("POST /rotate", auth(http.HandlerFunc(a.rotate)))
	mux.Handle("POST /logout", auth(http.HandlerFunc(a.logout)))
	mux.Handle("POST /logout-all", auth(http.HandlerFunc(a.logoutAll)))
	a.stepUpRoutes(mux, auth)
	return mux
}

type api struct {
	s   sesh.TokenStore
	log *slog.Logger
}

func (a *api) login(w http.ResponseWriter, r *http.Request) {
	// Only JSON, which no cross-site form can send: see the package doc.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send the body as Content-Type: application/json"})
		return
	}
	var body struct{ User, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"user":"...","password":"..."}`})
		return
	}
	// Compare both in constant time, so timing tells nothing of either.
	userOK := subtle.ConstantTimeCompare([]byte(body.User), []byte(demoUser))
	passOK := subtle.ConstantTimeCompare([]byte(body.Password), []byte(demoPassword))
	if userOK&passOK != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong user or password"})
		return
	}
	token, err := a.issue(r, demoUser)
	if err != nil {
		a.unavailable(w, "login", err)
		return
	}
	seshhttp.SetCookie(w, cookie(r), token)
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (a *api) me(w http.ResponseWriter, r *http.Request) {
	user, _ := seshhttp.UserID(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"user": user})
}

func (a *api) rotate(w http.ResponseWriter, r *http.Request) {
	old, _ := seshhttp.Token(r.Context())
	token, err := a.s.Rotate(r.Context(), old)
	switch {
	case errors.Is(err, sesh.ErrNotFound):
		// Ended since Require saw it, by a concurrent rotate or logout.
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "token no longer live"})
		return
	case err != nil:
		a.unavailable(w, "rotate", err)
		return
	}
	seshhttp.SetCookie(w, cookie(r), token)
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	token, _ := seshhttp.Token(r.Context())
	if err := a.s.Die(r.Context(), token); err != nil {
		a.unavailable(w, "logout", err)
		return
	}
	seshhttp.ClearCookie(w, cookie(r))
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) logoutAll(w http.ResponseWriter, r *http.Request) {
	user, _ := seshhttp.UserID(r.Context())
	n, err := a.s.DieAll(r.Context(), user)
	if err != nil {
		a.unavailable(w, "logout-all", err)
		return
	}
	seshhttp.ClearCookie(w, cookie(r))
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}

// tokenCookie describes the token's cookie, for Require to read and
// SetCookie to set: kept as long as a token can live, since every request
// renews its idle TTL.
var tokenCookie = seshhttp.Cookie{Name: cookieName, MaxAge: maxAge}

// cookie is tokenCookie for r: Secure unless r came over plain HTTP.
func cookie(r *http.Request) seshhttp.Cookie {
	c := tokenCookie
	c.Insecure = r.TLS == nil
	return c
}

// refuse answers in JSON the requests Require refuses; Require sets their
// status and WWW-Authenticate.
func refuse(w http.ResponseWriter, _ *http.Request, err error) {
	status, msg := http.StatusUnauthorized, "log in first"
	switch {
	case errors.Is(err, seshhttp.ErrUnavailable):
		status, msg = http.StatusServiceUnavailable, "service unavailable"
	case errors.Is(err, seshhttp.ErrInvalidToken):
		msg = "invalid token: log in again"
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

// unavailable answers 503, as Require does when the store cannot answer.
func (a *api) unavailable(w http.ResponseWriter, op string, err error) {
	a.log.Error("store failed", "op", op, "err", err)
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "service unavailable"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// printCurls prints a session to paste into a shell, one endpoint a step.
func printCurls(w io.Writer, base string) {
	const login = `TOKEN=$(curl -s -H 'Content-Type: application/json' -d '{"user":"demo","password":"demo"}' %[1]s/login | sed -E 's/.*"token":"([^"]*)".*/\1/')`
	const bearer = `-H "Authorization: Bearer $TOKEN"`
	fmt.Fprintf(w, `Try it:

  # log in, keeping the token
  `+login+`
  # who am I
  curl -s %[2]s %[1]s/me
  # swap the token for a fresh one; the old one ends
  TOKEN=$(curl -s -X POST %[2]s %[1]s/rotate | sed -E 's/.*"token":"([^"]*)".*/\1/')
  # log out: 204, and the token ends
  curl -s -o /dev/null -w '%%{http_code}\n' -X POST %[2]s %[1]s/logout
  # log in again, then out everywhere: every token of the user ends
  `+login+`
  curl -s -X POST %[2]s %[1]s/logout-all
`, base, bearer)
	printSessionCurls(w, base, fmt.Sprintf(login, base), bearer)
}
