package seshhttp

import (
	"net/http"
	"strings"
)

// token reads the request's token, header first, then cookie. Its error
// is nil, ErrNoToken or ErrInvalidToken.
func (m *middleware) token(r *http.Request) (string, error) {
	var token string
	n := 0
	for _, v := range r.Header.Values("Authorization") {
		if t, ok := bearer(v); ok {
			token = t
			n++
		}
	}
	switch {
	case n > 1, n == 1 && token == "":
		return "", ErrInvalidToken
	case n == 1:
		return token, nil
	}
	cs := r.CookiesNamed(m.cookie)
	switch {
	case len(cs) > 1:
		return "", ErrInvalidToken
	case len(cs) == 0 || cs[0].Value == "":
		return "", ErrNoToken
	}
	return cs[0].Value, nil
}

// bearer reports whether v, an Authorization field value, is a Bearer
// credential, and returns its token, or "" when it is malformed.
//
// The scheme is v's first token (RFC 9110 §5.6.2), compared without
// regard to case, so that whatever ends it (a space, a tab, a comma, the
// end of v) cannot turn a Bearer credential into another scheme's. A
// well-formed credential is the scheme, spaces or tabs, and a token68:
// RFC 9110 asks for spaces only, but a tab can only mean the same.
func bearer(v string) (string, bool) {
	v = strings.TrimLeft(v, " \t")
	end := 0
	for end < len(v) && isTchar(v[end]) {
		end++
	}
	if !strings.EqualFold(v[:end], "Bearer") {
		return "", false
	}
	rest := v[end:]
	token := strings.TrimLeft(rest, " \t")
	if len(token) == len(rest) || !isToken68(token) {
		return "", true
	}
	return token, true
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68 reports whether s is an RFC 9110 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~+/", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
