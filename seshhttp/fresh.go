package seshhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/seshkit/sesh"
)

// Looker is what Fresh needs from a token store: [*sesh.Store] and
// [*sesh.Crypt] both satisfy it.
type Looker interface {
	Lookup(ctx context.Context, token string) (sesh.Session, error)
}

var (
	_ Looker = (*sesh.Store)(nil)
	_ Looker = (*sesh.Crypt)(nil)
)

// StepUp is the body of Fresh's 403, as JSON: the error and max_age
// of RFC 9470 (OAuth 2.0 Step Up Authentication Challenge), so that a
// client knows to ask its user to authenticate again (with
// [sesh.Store.Reauth] behind it) and retry. It never holds a token.
type StepUp struct {
	// Error is always "insufficient_user_authentication".
	Error string `json:"error"`

	// Description says the same in words.
	Description string `json:"error_description"`

	// MaxAge is the route's limit in seconds: the client's user must have
	// authenticated within it.
	MaxAge int64 `json:"max_age"`
}

// Fresh returns middleware, to run inside Require, that passes a request
// on only when its session's user authenticated (Set, or Reauth) at most
// maxAge ago, as ASVS 7.5 asks before a sensitive change. It reads the
// session with l.Lookup, for the token that Require put into the context,
// within one second; behind Require with Options.Session, it uses the
// session Require read, with no second round trip.
//
// Other requests are answered as Require answers them, but one whose
// session is live and too old, which gets 403 with a StepUp body and
// "WWW-Authenticate: Bearer error="insufficient_user_authentication",
// max_age=N", the challenge of RFC 9470 section 3. RFC 9470 answers 401;
// Fresh answers 403, since the session is valid and stays so, and many
// clients read 401 as "signed out". A session recorded without an
// authentication time (before sesh recorded it) is too old for every
// route. The authentication time is on Redis's clock, the check on this
// server's: keep them in step.
//
// Fresh panics if l is nil or maxAge is below one second, RFC 9470's unit.
func Fresh(l Looker, maxAge time.Duration) func(http.Handler) http.Handler {
	if l == nil {
		panic("seshhttp: fresh: Looker is nil")
	}
	if maxAge < time.Second {
		panic(fmt.Sprintf("seshhttp: fresh: maxAge %v is below one second", maxAge))
	}
	f := &fresh{l: l, maxAge: maxAge}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.serve(next, w, r)
		})
	}
}

type fresh struct {
	l      Looker
	maxAge time.Duration
}

// refused answers r as Require answers err.
func refused(w http.ResponseWriter, r *http.Request, err error) {
	(&middleware{refuse: plainError}).respond(w, r, err)
}

func (f *fresh) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	token, ok := Token(r.Context())
	if !ok {
		refused(w, r, ErrNoToken)
		return
	}
	// Require with Options.Session has read the session already.
	se, ok := Session(r.Context())
	var err error
	if !ok {
		ctx, cancel := context.WithTimeout(r.Context(), defaultLookupTimeout)
		se, err = f.l.Lookup(ctx, token)
		cancel()
	}
	switch {
	case errors.Is(err, sesh.ErrNotFound), errors.Is(err, sesh.ErrDecrypt):
		// Ended since Require read it.
		refused(w, r, ErrInvalidToken)
	case err != nil:
		refused(w, r, ErrUnavailable)
	case se.AuthTime.IsZero() || time.Since(se.AuthTime) > f.maxAge:
		f.stale(w)
	default:
		next.ServeHTTP(w, r)
	}
}

// stale writes the step-up challenge.
func (f *fresh) stale(w http.ResponseWriter) {
	secs := int64(f.maxAge / time.Second)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", error_description="A more recent authentication is required", max_age="`+strconv.FormatInt(secs, 10)+`"`)
	w.WriteHeader(http.StatusForbidden)
	json.NewEncoder(w).Encode(StepUp{
		Error:       "insufficient_user_authentication",
		Description: "A more recent authentication is required",
		MaxAge:      secs,
	})
}
