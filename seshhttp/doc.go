// Package seshhttp is net/http middleware for sesh tokens, and the helpers
// that carry a token in a cookie.
//
// [Require] wraps a handler so that it runs only for requests with a live
// token, and puts the token's user ID in the request context for [UserID]
// to read. [Optional] does the same for pages that work with or without a
// session: it runs the handler for every request it could check, with a
// user only when the request had a live token. [SetCookie] issues a token
// to a browser at login and [ClearCookie] takes it back at logout; give
// the same [Cookie] to them and to [Options.TokenCookie].
//
// # Where the token comes from
//
// The middleware reads the token from an "Authorization: Bearer" header
// (RFC 6750 §2.1) or, when there is none, from a cookie. When a request
// carries both, the header wins, even when its token is not live: it is
// the credential the client chose for this request, while a cookie is
// ambient, and an ambient credential never overrides an explicit one.
//
// An Authorization header is a Bearer credential when its first token (its
// auth-scheme, RFC 9110 §11.4) is "Bearer" in any case: "Bearer", "bearer"
// and "BEARER" alike, whatever follows, be it a space, a tab, a comma or
// nothing. "BearerX" is another scheme. A Bearer credential is well formed
// when spaces or tabs and then one token68 (RFC 9110 §11.2) follow the
// scheme; any other Bearer credential ("Bearer", "Bearer,tok") is
// malformed, and is refused as invalid_token, never passed over for the
// cookie. A request with two Bearer headers, or two cookies of the name,
// is refused as ambiguous. An Authorization header of another scheme, such
// as Basic, is not a sesh credential: it is ignored, and the cookie is
// read instead, so that a proxy's basic auth in front of an application
// does not lock its users out.
//
// # Responses
//
// Require answers a request without a token with 401 and
//
//	WWW-Authenticate: Bearer realm="sesh"
//
// and no error attribute, as RFC 6750 §3.1 asks of a request that lacks
// authentication or uses an unsupported scheme. A token that is malformed,
// ambiguous, unknown, expired or ended, or whose stored value fails to
// decrypt, gets 401 with error="invalid_token", which tells a client to
// authenticate again. Require never answers 400 invalid_request: every
// failed credential is one the client should replace, not a bug it should
// fix.
//
// When the store cannot answer (Redis down, a lookup past
// [Options.LookupTimeout]), the request gets 503 with "Retry-After: 1":
// the middleware fails closed and never lets a request through that it
// could not check. Optional does the same.
//
// Every one of these responses has "Cache-Control: no-store". Its body is
// "unauthorized" or "service unavailable" as text/plain, unless
// [Options.Error] writes another, such as JSON. No body the middleware
// writes holds the token.
package seshhttp
