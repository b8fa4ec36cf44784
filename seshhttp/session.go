package seshhttp

import (
	"context"

	"github.com/seshkit/sesh"
)

// Looker is the optional capability of a Getter that Options.Session
// needs: the whole session of a token, as [sesh.Store.Lookup] and
// [sesh.Crypt.Lookup] return it. Lookup returns errors as Get does.
type Looker interface {
	Lookup(ctx context.Context, token string) (sesh.Session, error)
}

var (
	_ Looker = (*sesh.Store)(nil)
	_ Looker = (*sesh.Crypt)(nil)
)

// looker returns g as a Looker when want, and panics when g has no Lookup.
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
