package seshhttp

import (
	"net/http"
	"time"
)

// Cookie describes the cookie that carries a token to a browser. The zero
// value is a host-only session cookie named "sesh". Give one Cookie to
// SetCookie, ClearCookie and [Options.TokenCookie], so that the middleware
// reads the cookie SetCookie sets.
//
// With Domain empty and Insecure false, naming the cookie "__Host-sesh"
// makes browsers refuse any cookie of that name planted by a sibling
// subdomain or over plain HTTP.
type Cookie struct {
	// Name is the cookie's name. When empty, "sesh". It must be a valid
	// cookie name.
	Name string

	// MaxAge is how long the browser keeps the cookie, rounded up to whole
	// seconds. It should match the store's lifetime: its TTL, or its
	// MaxAge when Sliding renews the TTL on every Get.
	// When zero or negative, the cookie is a session cookie, with no
	// Max-Age, and the browser drops it when it closes.
	MaxAge time.Duration

	// Domain is the cookie's Domain attribute, which shares it with every
	// subdomain. When empty, the cookie is host-only, which is safer.
	Domain string

	// Insecure drops the Secure attribute, so that the cookie travels over
	// plain HTTP. It is for development on localhost only.
	Insecure bool
}

// SetCookie issues token as a cookie: HttpOnly, Secure (unless Insecure),
// SameSite=Lax, Path=/. It also sets "Cache-Control: no-store", so that no
// shared cache keeps the response and hands the token to another client.
// It must be called before the response's header is written, and panics if
// c.Name is not a valid cookie name.
func SetCookie(w http.ResponseWriter, c Cookie, token string) {
	hc := c.cookie()
	hc.Value = token
	if c.MaxAge > 0 {
		hc.MaxAge = int((c.MaxAge + time.Second - 1) / time.Second)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, hc)
}

// ClearCookie expires the cookie in the browser, with the same attributes
// SetCookie gave it, which a browser needs to match it. It also sets
// "Cache-Control: no-store". It does not end the token: the store's Die
// does that. It panics if c.Name is not a valid cookie name.
func ClearCookie(w http.ResponseWriter, c Cookie) {
	hc := c.cookie()
	hc.MaxAge = -1 // sent as Max-Age=0
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, hc)
}

// cookie returns the attributes SetCookie and ClearCookie share.
func (c Cookie) cookie() *http.Cookie {
	return &http.Cookie{
		Name:     cookieName(c.Name),
		Path:     "/",
		Domain:   c.Domain,
		Secure:   !c.Insecure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}
