package sesh

import "context"

// Reauth issues a new token for the user of token, after the user has
// proven themselves again (a password, a second factor), and ends token
// as Rotate does: the same index protocol, the same window
// (Options.RotateGrace), the same errors. The new token is a new
// authentication in the same session: its authentication time
// (Session.AuthTime) is now, its idle TTL starts afresh, and its absolute
// deadline is now plus the session's own MaxAge, as NIST SP 800-63B-4 asks
// of a re-authentication. The session keeps its place in its user's index,
// and the fields Rotate carries (its handle among them).
//
// A session recorded without an authentication time (written before sesh
// recorded it) keeps its deadline: its MaxAge is not known. Reauth returns
// ErrNotFound when token is not live. Within a window, concurrent Rotate
// and Reauth calls on one token all return the winner's token, which
// Lookup tells apart by its AuthTime.
//
// Reauth does not authenticate anybody: call it only once the user has.
func (s *Store) Reauth(ctx context.Context, token string) (string, error) {
	return s.runReauth(ctx, plain{}, token)
}

// Reauth issues a new token for the user of token after a
// re-authentication. See Store.Reauth. The new value is sealed with
// keys[0].
func (c *Crypt) Reauth(ctx context.Context, token string) (string, error) {
	return c.s.runReauth(ctx, c, token)
}

// reauth makes r a re-authentication: a new authentication time, and a
// deadline counted from now by the session's own MaxAge, which is its
// deadline less its authentication time.
func (r *rotation) reauth() {
	for i := 0; i+1 < len(r.fields); i += 2 {
		if r.fields[i] == "a" {
			r.fields[i+1] = "" // now, on the server's clock
		}
	}
	if !has(r.fields, "a") {
		r.fields = append(r.fields, "a", "")
	}
	if r.deadline > 0 && r.auth > 0 && r.deadline > r.auth {
		r.maxAge = r.deadline - r.auth
		r.deadline = 0
	}
}

// has reports whether pairs, name and value pairs, name name.
func has(pairs []string, name string) bool {
	for i := 0; i < len(pairs); i += 2 {
		if pairs[i] == name {
			return true
		}
	}
	return false
}
