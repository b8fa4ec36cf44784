package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

// freshFor is how recent a login POST /password asks for. A real app would
// ask for a few minutes; one shows the 403 soon after logging in.
const freshFor = time.Minute

// reauther is what POST /reauth needs: *sesh.Store and *sesh.Crypt have it.
type reauther interface {
	Reauth(ctx context.Context, token string) (string, error)
}

// stepUpRoutes adds the step-up endpoints to mux: a sensitive one behind
// seshhttp.Fresh, and the re-authentication that makes a session fresh.
func (a *api) stepUpRoutes(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	fresh := seshhttp.Fresh(a.s.(seshhttp.Looker), freshFor)
	mux.Handle("POST /password", auth(fresh(http.HandlerFunc(a.password))))
	mux.Handle("POST /reauth", auth(http.HandlerFunc(a.reauth)))
}

// password stands for a sensitive change: it only says it would be made.
func (a *api) password(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"changed": true})
}

// reauth takes the password again and swaps the token for one whose
// authentication time is now, with its idle TTL and deadline afresh.
func (a *api) reauth(w http.ResponseWriter, r *http.Request) {
	// JSON only, as for /login.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send the body as Content-Type: application/json"})
		return
	}
	var body struct{ Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"password":"..."}`})
		return
	}
	// The session names the user; the demo has one, whose password this is.
	if subtle.ConstantTimeCompare([]byte(body.Password), []byte(demoPassword)) != 1 {
		// 403, not 401: the session stays valid, only the proof failed.
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "wrong password"})
		return
	}
	old, _ := seshhttp.Token(r.Context())
	token, err := a.s.(reauther).Reauth(r.Context(), old)
	switch {
	case errors.Is(err, sesh.ErrNotFound):
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "token no longer live"})
		return
	case err != nil:
		a.unavailable(w, "reauth", err)
		return
	}
	seshhttp.SetCookie(w, cookie(r), token)
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// printStepUpCurls prints the step-up part of the session to paste.
func printStepUpCurls(w io.Writer, base string) {
	const login = `TOKEN=$(curl -s -H 'Content-Type: application/json' -d '{"user":"demo","password":"demo"}' %[1]s/login | sed -E 's/.*"token":"([^"]*)".*/\1/')`
	const bearer = `-H "Authorization: Bearer $TOKEN"`
	fmt.Fprintf(w, `Step up:

  `+login+`
  # a sensitive change needs a login younger than %[3]s: 200 now, and a
  # minute later 403 {"error":"insufficient_user_authentication",...}
  curl -s -X POST %[2]s %[1]s/password
  # give the password again for a fresh token
  TOKEN=$(curl -s -H 'Content-Type: application/json' -d '{"password":"demo"}' %[2]s %[1]s/reauth | sed -E 's/.*"token":"([^"]*)".*/\1/')
  curl -s -X POST %[2]s %[1]s/password

`, base, bearer, freshFor)
}
