package main

import (
	"context"
	"errors"

	"github.com/seshkit/sesh"
)

// reauther is what reauth needs beyond sesh.TokenStore: *sesh.Store and
// *sesh.Crypt both have it.
type reauther interface {
	Reauth(ctx context.Context, token string) (string, error)
}

// reauthOp is the reauth command: Rotate's, with a new authentication.
var reauthOp = op{
	name: "reauth", arg: "TOKEN",
	about: "Reauth ends TOKEN and prints a fresh token for its user, as after a new login:\n" +
		"its authentication time is now, its idle TTL starts afresh and its deadline is\n" +
		"now plus the session's own MaxAge. Run it only once the user has proven\n" +
		"themselves again; it checks nothing itself.",
	example: "\tTOKEN=$(sesh reauth -redis redis://localhost:6379 \"$TOKEN\")",
	do: func(ctx context.Context, s sesh.TokenStore, tok string) (string, error) {
		r, ok := s.(reauther)
		if !ok {
			return "", errors.New("sesh: reauth: the store cannot re-authenticate")
		}
		return r.Reauth(ctx, tok)
	},
}
