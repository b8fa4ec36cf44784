package seshhttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

// getOnly is a Getter without Lookup.
type getOnly struct{ seshhttp.Getter }

func TestSession(t *testing.T) {
	mr := miniredis.RunT(t)
	addr := mr.Addr()
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	t.Cleanup(func() { pool.Close() })
	s, err := sesh.New(pool, sesh.Options{TTL: time.Hour, TrackUsers: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, s, "alice")
	want, err := s.Lookup(context.Background(), tok)
	if err != nil || want.Handle == "" {
		t.Fatalf("Lookup = %+v, %v", want, err)
	}
	for _, tc := range []struct {
		name     string
		o        seshhttp.Options
		mw       middleware
		token    string
		ok       bool
		wantCode int
	}{
		{"Require with Session gives the handler the session and its handle", seshhttp.Options{Session: true}, seshhttp.Require, tok, true, 200},
		{"Optional with Session gives it too", seshhttp.Options{Session: true}, seshhttp.Optional, tok, true, 200},
		{"without Session the handler gets none", seshhttp.Options{}, seshhttp.Require, tok, false, 200},
		{"an ended token gets 401 and no session", seshhttp.Options{Session: true}, seshhttp.Require, strings.Repeat("A", 43), false, 401},
		{"an anonymous request through Optional gets none", seshhttp.Options{Session: true}, seshhttp.Optional, "", false, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got sesh.Session
			var ok bool
			h := tc.mw(s, tc.o)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, ok = seshhttp.Session(r.Context())
			}))
			r := httptest.NewRequest("GET", "/", nil)
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode || ok != tc.ok {
				t.Fatalf("code %d, Session ok %v; want %d, %v", w.Code, ok, tc.wantCode, tc.ok)
			}
			if tc.ok && (got.Handle != want.Handle || got.UserID != "alice") {
				t.Fatalf("Session = %+v; want alice's, handle %q", got, want.Handle)
			}
		})
	}
	t.Run("Session with a Getter without Lookup panics", func(t *testing.T) {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "Lookup") {
				t.Fatalf("recover() = %v; want a panic naming Lookup", r)
			}
		}()
		seshhttp.Require(getOnly{s}, seshhttp.Options{Session: true})
	})
}
