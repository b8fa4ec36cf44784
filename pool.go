package sesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh/internal/redact"
)

// NewPool's settings. Reads and writes are bounded so that a stalled server
// fails a call instead of hanging it; a context deadline can only shorten
// them.
const (
	dialTimeout  = 5 * time.Second
	readTimeout  = 5 * time.Second
	writeTimeout = 5 * time.Second
	maxIdle      = 64
	maxActive    = 1024
	idleTimeout  = 5 * time.Minute
)

// NewPool returns a ready *redis.Pool for a Redis URL:
//
//	redis://[[user]:password@]host[:port][/db]
//	rediss://[[user]:password@]host[:port][/db]   TLS, certificate verified
//	unix://[[user]:password@]/path/to/socket[?db=N]
//
// The scheme alone decides TLS: there is no option to turn it off for
// rediss:// or on for redis://, and rediss:// always verifies the server's
// certificate against the host name. Connections dial within 5s, each read
// and write is bounded by 5s, at most 64 idle connections are kept for 5
// minutes, and at most 1024 are open at once; a caller beyond that waits for
// a free one, bounded by its context.
func NewPool(rawurl string) (*redis.Pool, error) {
	network, addr, opts, err := parseURL(rawurl)
	if err != nil {
		return nil, fmt.Errorf("sesh: newpool: %w", err)
	}
	opts = append(opts,
		redis.DialConnectTimeout(dialTimeout),
		redis.DialReadTimeout(readTimeout),
		redis.DialWriteTimeout(writeTimeout),
	)
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, network, addr, opts...)
		},
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, idle time.Time) error {
			if time.Since(idle) < time.Minute {
				return nil
			}
			_, err := redis.DoContext(c, ctx, "PING")
			return err
		},
		MaxIdle:     maxIdle,
		MaxActive:   maxActive,
		IdleTimeout: idleTimeout,
		Wait:        true,
	}, nil
}

// parseURL turns a Redis URL into dial arguments. TLS options are set here
// and nowhere else, so nothing can contradict the scheme.
func parseURL(rawurl string) (network, addr string, opts []redis.DialOption, err error) {
	// An unencoded '/', '?' or '#' in a password ends the host early: the
	// password's start becomes the host, which url.Parse may refuse as a bad
	// port and a dial error would show, and the '@' lands in the path,
	// query or fragment. So this is checked before url.Parse.
	if strings.Contains(rawurl, "#") {
		return "", "", nil, fmt.Errorf("URL %q has a fragment; percent-encode any '/', '?' or '#' in the password", redact.URL(rawurl))
	}
	if atAfterHost(rawurl) {
		return "", "", nil, fmt.Errorf("URL %q has an '@' after its host; percent-encode any '/', '?' or '#' in the password", redact.URL(rawurl))
	}
	u, err := url.Parse(rawurl)
	if err != nil {
		// url.Error quotes the URL, and its cause may quote part of the
		// password: name only the kind of fault.
		return "", "", nil, fmt.Errorf("URL %q does not parse: %s", redact.URL(rawurl), parseFault(err))
	}
	opts = credentials(u)
	var db int
	switch u.Scheme {
	case "redis", "rediss":
		network, addr, db, err = tcpTarget(u)
		if err == nil && u.Scheme == "rediss" {
			host, _, _ := net.SplitHostPort(addr)
			opts = append(opts, redis.DialUseTLS(true), redis.DialTLSConfig(&tls.Config{
				MinVersion: tls.VersionTLS12,
				ServerName: host,
			}))
		}
	case "unix":
		network, addr, db, err = unixTarget(u)
	default:
		// The URL, not u.Scheme: in user:password@host, the user is the scheme.
		return "", "", nil, fmt.Errorf("URL %q: the scheme is not redis, rediss or unix", redact.URL(rawurl))
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("URL %q %w", redact.URL(rawurl), err)
	}
	if db != 0 {
		opts = append(opts, redis.DialDatabase(db))
	}
	return network, addr, opts, nil
}

// atAfterHost reports whether rawurl has an '@' after an authority that
// has none, in its path or query: the mark of a password whose '/' or '?'
// cut the host short. So a socket path may not hold an '@'.
func atAfterHost(rawurl string) bool {
	_, rest, ok := strings.Cut(rawurl, "://")
	if !ok {
		return false
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		return false
	}
	return !strings.Contains(rest[:end], "@") && strings.Contains(rest[end:], "@")
}

// credentials are the dial options for u's user-info.
func credentials(u *url.URL) []redis.DialOption {
	if u.User == nil {
		return nil
	}
	pass, ok := u.User.Password()
	switch user := u.User.Username(); {
	case ok && user != "":
		return []redis.DialOption{redis.DialUsername(user), redis.DialPassword(pass)}
	case ok:
		return []redis.DialOption{redis.DialPassword(pass)}
	case user != "":
		// redis-cli reads a lone user-info as the password.
		return []redis.DialOption{redis.DialPassword(user)}
	}
	return nil
}

// tcpTarget reads a redis:// or rediss:// URL's address and database.
// Its errors complete "URL <url> ", as a phrase.
func tcpTarget(u *url.URL) (network, addr string, db int, err error) {
	if u.Opaque != "" || u.Host == "" {
		return "", "", 0, errors.New("has no host")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "6379"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", 0, fmt.Errorf("has port %q, which is not 1 to 65535", port)
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		if db, err = strconv.Atoi(p); err != nil || db < 0 {
			return "", "", 0, fmt.Errorf("has database %q, which is not a number", p)
		}
	}
	if len(u.Query()) > 0 {
		return "", "", 0, errors.New("has query parameters, which are not supported")
	}
	return "tcp", net.JoinHostPort(strings.Trim(host, "[]"), port), db, nil
}

// unixTarget reads a unix:// URL's socket path and database. Its errors
// complete "URL <url> ", as a phrase.
func unixTarget(u *url.URL) (network, addr string, db int, err error) {
	if u.Path == "" {
		return "", "", 0, errors.New("has no socket path")
	}
	q := u.Query()
	if v := q.Get("db"); v != "" {
		if db, err = strconv.Atoi(v); err != nil || db < 0 {
			return "", "", 0, fmt.Errorf("has database %q, which is not a number", v)
		}
	}
	q.Del("db")
	if len(q) > 0 {
		return "", "", 0, errors.New("has query parameters other than db; only the db query parameter is supported")
	}
	return "unix", u.Path, db, nil
}

// parseFault names what url.Parse found wrong, without quoting the URL.
func parseFault(err error) string {
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return "it holds an invalid %-escape (percent-encode special characters in the password)"
	case errors.As(err, &host):
		return "its host is invalid"
	case strings.Contains(err.Error(), "port"):
		return "its port is invalid"
	}
	return "it is not a URL"
}
