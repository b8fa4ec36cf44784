package seshhttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seshkit/sesh/seshhttp"
)

func TestFresh(t *testing.T) {
	mr, s := newStore(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("changed")) })
	h := seshhttp.Require(s, seshhttp.Options{})(seshhttp.Fresh(s, 5*time.Minute)(ok))
	serve := func(tok string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/password", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	// Redis's clock says the user logged in ten minutes ago.
	mr.SetTime(time.Now().Add(-10 * time.Minute))
	old := issue(t, s, "alice")
	mr.SetTime(time.Now())

	t.Run("a session authenticated too long ago gets 403 and a step-up challenge", func(t *testing.T) {
		w := serve(old)
		if w.Code != http.StatusForbidden {
			t.Fatalf("status %d; want 403", w.Code)
		}
		want := `Bearer error="insufficient_user_authentication", error_description="A more recent authentication is required", max_age="300"`
		if got := w.Header().Get("WWW-Authenticate"); got != want {
			t.Fatalf("WWW-Authenticate = %q; want %q", got, want)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control = %q; want no-store", cc)
		}
		var body seshhttp.StepUp
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
		if body.Error != "insufficient_user_authentication" || body.MaxAge != 300 {
			t.Fatalf("body = %+v; want insufficient_user_authentication, max_age 300", body)
		}
		if strings.Contains(w.Body.String(), old) {
			t.Fatal("the body holds the token")
		}
	})
	t.Run("Reauth makes it fresh", func(t *testing.T) {
		nt, err := s.Reauth(context.Background(), old)
		if err != nil {
			t.Fatal(err)
		}
		if w := serve(nt); w.Code != http.StatusOK || w.Body.String() != "changed" {
			t.Fatalf("after Reauth: %d %q; want 200 changed", w.Code, w.Body)
		}
		if w := serve(old); w.Code != http.StatusUnauthorized {
			t.Fatalf("the old token after Reauth: %d; want 401", w.Code)
		}
	})
	t.Run("a fresh session passes", func(t *testing.T) {
		if w := serve(issue(t, s, "bob")); w.Code != http.StatusOK || w.Header().Get("WWW-Authenticate") != "" {
			t.Fatalf("fresh: %d %v; want 200 without a challenge", w.Code, w.Header())
		}
	})
	t.Run("behind Require with Options.Session, one Lookup a request", func(t *testing.T) {
		hs := seshhttp.Require(s, seshhttp.Options{Session: true})(seshhttp.Fresh(s, 5*time.Minute)(ok))
		for _, tc := range []struct {
			tok  string
			want int
		}{{issue(t, s, "carol"), http.StatusOK}, {old2(t, mr, s), http.StatusForbidden}} {
			before := s.Stats().Ops.Lookup
			r := httptest.NewRequest("POST", "/password", nil)
			r.Header.Set("Authorization", "Bearer "+tc.tok)
			w := httptest.NewRecorder()
			hs.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d; want %d", w.Code, tc.want)
			}
			if n := s.Stats().Ops.Lookup - before; n != 1 {
				t.Fatalf("%d Lookups for one request; want 1", n)
			}
		}
	})
	t.Run("a request that did not come through Require gets 401", func(t *testing.T) {
		w := httptest.NewRecorder()
		seshhttp.Fresh(s, time.Minute)(ok).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d; want 401", w.Code)
		}
	})
}

// old2 issues a token whose user authenticated ten minutes ago, on Redis's
// clock.
func old2(t *testing.T, mr interface{ SetTime(time.Time) }, s interface {
	Set(context.Context, string) (string, error)
}) string {
	t.Helper()
	mr.SetTime(time.Now().Add(-10 * time.Minute))
	defer mr.SetTime(time.Now())
	tok, err := s.Set(context.Background(), "dave")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
