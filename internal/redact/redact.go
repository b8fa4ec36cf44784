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
	// The authority ends at the first '/', '?' or '#'; its user-info at
	// the last '@' within it (an unescaped '@' in a password included).
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		// The password may itself hold a '/', '?' or '#': hide anything
		// before an '@' that such a character precedes.
		if at = strings.LastIndex(rest, "@"); at < 0 {
			return raw
		}
	}
	return scheme + "xxxxx" + rest[at:]
}
