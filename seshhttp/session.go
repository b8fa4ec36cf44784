package seshhttp

import (
	"context"

	"github.com/seshkit/sesh"
)

// looker returns g as a Looker (fresh.go), the optional capability that
// Options.Session needs, when want, and panics when g has no Lookup.
func looker(op string, g Getter, want bool) Looker {
	if !want {
		return nil
	}
	l, ok := g.(Looker)
	if !ok {
		panic("seshhttp: " + op + ": Options.Session is set and the Getter has no Lookup")
	}
	return l
}

// Session returns the session that Require or Optional accepted, with its
// handle ([sesh.Session].Handle) and details, and false when ctx did not
// come through either with a live token, or came through one without
// Options.Session. It never holds the token.
func Session(ctx context.Context) (sesh.Session, bool) {
	a, ok := ctx.Value(authKey{}).(auth)
	if !ok || !a.looked {
		return sesh.Session{}, false
	}
	return a.session, true
}
