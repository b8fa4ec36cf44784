package seshhttp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/seshkit/sesh/seshhttp"
)

func TestBearer(t *testing.T) {
	const tok = "b2FCHuDdqcTe6cM7z7tGqVLCizeU3DXymJFRUFDiRwE"
	tests := []struct {
		name   string
		v      string
		token  string // "" for a malformed Bearer credential
		bearer bool
	}{
		{"a space separates the scheme from the token", "Bearer " + tok, tok, true},
		{"two spaces do too", "Bearer  " + tok, tok, true},
		{"a tab does too", "Bearer\t" + tok, tok, true},
		{"a mix of tabs and spaces does too", "Bearer \t " + tok, tok, true},
		{"a lowercase scheme is Bearer", "bearer " + tok, tok, true},
		{"an upper-case scheme is Bearer", "BEARER\t" + tok, tok, true},
		{"a mixed-case scheme is Bearer", "bEaReR " + tok, tok, true},
		{"leading whitespace is skipped", " \tBearer " + tok, tok, true},
		{"a token68 may end in padding", "Bearer abc/+.~-_==", "abc/+.~-_==", true},

		{"the scheme alone is malformed", "Bearer", "", true},
		{"a lowercase scheme alone is malformed", "bearer", "", true},
		{"the scheme and spaces alone are malformed", "Bearer  ", "", true},
		{"the scheme and a tab alone are malformed", "BEARER\t", "", true},
		{"a comma after the scheme is malformed", "Bearer," + tok, "", true},
		{"a comma and a space after the scheme are malformed", "bearer, " + tok, "", true},
		{"an equals sign after the scheme is malformed", "Bearer=" + tok, "", true},
		{"a colon after the scheme is malformed", "Bearer:" + tok, "", true},
		{"a token followed by a parameter is malformed", "Bearer " + tok + ", realm=x", "", true},
		{"a token with a space in it is malformed", "Bearer " + tok + " " + tok, "", true},
		{"a token with a trailing space is malformed", "Bearer " + tok + " ", "", true},
		{"a token with a semicolon is malformed", "Bearer a;b", "", true},
		{"a token of padding only is malformed", "Bearer ==", "", true},
		{"a token with padding inside is malformed", "Bearer a=b", "", true},
		{"a non-ASCII token is malformed", "Bearer tök", "", true},

		{"BearerX is another scheme", "BearerX " + tok, "", false},
		{"Bearer-x is another scheme", "Bearer-x " + tok, "", false},
		{"Basic is another scheme", "Basic YWxpY2U6cHc=", "", false},
		{"a scheme ending in Bearer is another scheme", "XBearer " + tok, "", false},
		{"an empty value is no credential", "", "", false},
		{"a value of spaces is no credential", "   ", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, ok := seshhttp.Bearer(tt.v)
			if token != tt.token || ok != tt.bearer {
				t.Errorf("Bearer(%q) = %q, %v; want %q, %v", tt.v, token, ok, tt.token, tt.bearer)
			}
		})
	}
}

// TestRequireOverTheWire sends raw requests to a real net/http server, so
// that the Authorization header is exactly what a client wrote, tabs and
// all, and checks that no Bearer header loses to the cookie.
func TestRequireOverTheWire(t *testing.T) {
	_, s := newStore(t)
	alice, bob := issue(t, s, "alice"), issue(t, s, "bob")
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, _ := seshhttp.UserID(r.Context())
		fmt.Fprintf(w, "hello, %s\n", userID)
	})
	srv := httptest.NewServer(seshhttp.Require(s, seshhttp.Options{})(next))
	t.Cleanup(srv.Close)

	tests := []struct {
		name      string
		auth      string // the Authorization line's value, as sent
		code      int
		user      string // who the next handler saw
		challenge string
	}{
		{name: "a tab after Bearer carries the header's token", auth: "Bearer\t" + bob, code: 200, user: "bob"},
		{name: "a tab after a lowercase bearer carries the header's token", auth: "bearer\t" + bob, code: 200, user: "bob"},
		{name: "two spaces after BEARER carry the header's token", auth: "BEARER  " + bob, code: 200, user: "bob"},
		{name: "a tab after the token is trimmed by net/http", auth: "Bearer " + bob + "\t", code: 200, user: "bob"},
		{name: "a comma after Bearer is malformed, not the cookie's turn", auth: "Bearer," + bob,
			code: 401, challenge: rejected},
		{name: "a comma and a tab after bearer are malformed", auth: "bearer,\t" + bob,
			code: 401, challenge: rejected},
		{name: "Bearer and a tab alone are malformed", auth: "Bearer\t", code: 401, challenge: rejected},
		{name: "BEARER alone is malformed", auth: "BEARER", code: 401, challenge: rejected},
		{name: "BearerX is another scheme, and the cookie is read", auth: "BearerX " + bob, code: 200, user: "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: sesh.test\r\nAuthorization: %s\r\n"+
				"Cookie: sesh=%s\r\nConnection: close\r\n\r\n", tt.auth, alice)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.code {
				t.Fatalf("status %d (%q), want %d", res.StatusCode, body, tt.code)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if want := "hello, " + tt.user + "\n"; tt.code == 200 && string(body) != want {
				t.Errorf("body %q, want %q", body, want)
			}
			if strings.Contains(string(body), alice) || strings.Contains(string(body), bob) {
				t.Errorf("body %q holds a token", body)
			}
		})
	}
}
