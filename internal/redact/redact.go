// Package redact hides the secrets in Redis URLs, for error messages, logs
// and command output.
package redact

import "strings"

// URL returns raw with its user-info, user name and password alike, replaced
// by "xxxxx". It works on text, so it hides the secret of a URL that does
// not parse too. redis-cli and sesh read a lone user-info as the password,
// which url.URL.Redacted would show.
func URL(raw string) string {
	rest, scheme := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	// Everything up to the last '@' may be user-info: a password can hold
	// an unencoded '@', '/', '?' or '#', so the authority cannot be told
	// apart first. Hiding too much of a URL that has an '@' after its host
	// (NewPool refuses those) is the safe mistake.
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	return scheme + "xxxxx" + rest[at:]
}
