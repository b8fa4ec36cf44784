package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

// The sessions a user can see and end:
//
//	GET    /sessions          -> 200 {"sessions":[{"handle":"...","current":true,...}]}: the
//	                             user's live sessions, oldest first, this one marked current
//	DELETE /sessions/{handle} -> 204: that session ends (404 when the user has none of that handle)
//	POST   /sessions/others   -> 200 {"ended":N}: every other session of the user ends
//	                             ("log out my other devices", as after a password change)

// manager is what the session endpoints need of the store: *sesh.Crypt has
// it.
type manager interface {
	SetWith(ctx context.Context, userID string, p sesh.Policy) (string, error)
	Sessions(ctx context.Context, userID string) ([]sesh.Session, error)
	DieSession(ctx context.Context, userID, handle string) error
	DieOthers(ctx context.Context, token string) (int, error)
}

var _ manager = (*sesh.Crypt)(nil)

// sessionRoutes adds the session endpoints to mux. Their middleware gives
// the handler the current session (seshhttp.Options.Session), to mark it
// in the list.
func (a *api) sessionRoutes(mux *http.ServeMux, o seshhttp.Options) {
	o.Session = true
	auth := seshhttp.Require(a.s, o)
	mux.Handle("GET /sessions", auth(http.HandlerFunc(a.sessions)))
	mux.Handle("DELETE /sessions/{handle}", auth(http.HandlerFunc(a.endSession)))
	mux.Handle("POST /sessions/others", auth(http.HandlerFunc(a.endOthers)))
}

// issue starts a session for user, labelled with the client's User-Agent.
func (a *api) issue(r *http.Request, user string) (string, error) {
	return a.s.(manager).SetWith(r.Context(), user, sesh.Policy{Label: label(r.UserAgent())})
}

// label cuts a User-Agent to sesh.MaxLabel bytes, on a character boundary.
func label(ua string) string {
	for len(ua) > sesh.MaxLabel {
		_, n := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-n]
	}
	return ua
}

// session is one session as GET /sessions shows it.
type session struct {
	Handle        string     `json:"handle"`
	Current       bool       `json:"current"`
	Label         string     `json:"label"`
	Authenticated time.Time  `json:"authenticated"`
	Created       time.Time  `json:"created"`
	LastUse       time.Time  `json:"last_use"`
	IdleExpiry    *time.Time `json:"idle_expiry,omitempty"`
	Deadline      *time.Time `json:"deadline,omitempty"`
}

func (a *api) sessions(w http.ResponseWriter, r *http.Request) {
	me, _ := seshhttp.Session(r.Context())
	l, err := a.s.(manager).Sessions(r.Context(), me.UserID)
	if err != nil {
		a.unavailable(w, "sessions", err)
		return
	}
	out := []session{}
	for _, se := range l {
		out = append(out, session{
			Handle: se.Handle, Current: se.Handle == me.Handle, Label: se.Label,
			Authenticated: se.AuthTime, Created: se.Created, LastUse: se.LastUse,
			IdleExpiry: timeOrNil(se.IdleExpiry), Deadline: timeOrNil(se.Deadline),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *api) endSession(w http.ResponseWriter, r *http.Request) {
	me, _ := seshhttp.Session(r.Context())
	handle := r.PathValue("handle")
	err := a.s.(manager).DieSession(r.Context(), me.UserID, handle)
	switch {
	case errors.Is(err, sesh.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no session of yours has that handle"})
		return
	case err != nil:
		a.unavailable(w, "end session", err)
		return
	}
	if handle == me.Handle {
		seshhttp.ClearCookie(w, cookie(r))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) endOthers(w http.ResponseWriter, r *http.Request) {
	token, _ := seshhttp.Token(r.Context())
	n, err := a.s.(manager).DieOthers(r.Context(), token)
	switch {
	case errors.Is(err, sesh.ErrNotFound):
		// Ended since Require saw it.
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "token no longer live"})
		return
	case err != nil:
		a.unavailable(w, "end others", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}

// printSessionCurls prints the session endpoints' part of the printout.
func printSessionCurls(w io.Writer, base, login, bearer string) {
	other := "OTHER" + login[len("TOKEN"):]
	fmt.Fprintf(w, `  # log in again, and on a second device; list the sessions, this one marked current
  `+login+`
  `+other+`
  curl -s %[2]s %[1]s/sessions
  # end the second device's session by its handle: 204
  HANDLE=$(curl -s %[2]s %[1]s/sessions | sed -E 's/.*"handle":"([^"]*)","current":false.*/\1/')
  curl -s -o /dev/null -w '%%{http_code}\n' -X DELETE %[2]s %[1]s/sessions/$HANDLE
  # or log out every other device at once
  `+other+`
  curl -s -X POST %[2]s %[1]s/sessions/others

`, base, bearer)
}
