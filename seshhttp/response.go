package seshhttp

import (
	"errors"
	"net/http"
)

var (
	// ErrNoToken is what Options.Error is given for a request that carries
	// no sesh credential: it is answered 401 without an error attribute.
	ErrNoToken = errors.New("seshhttp: no token")

	// ErrInvalidToken is what Options.Error is given for a request whose
	// credential is malformed, ambiguous, unknown, expired or ended, or
	// fails to decrypt: it is answered 401 with error="invalid_token".
	ErrInvalidToken = errors.New("seshhttp: invalid token")

	// ErrUnavailable is what Options.Error is given for a request whose
	// token the store could not check: it is answered 503.
	ErrUnavailable = errors.New("seshhttp: token store unavailable")
)

// respond refuses r for err, one of ErrNoToken, ErrInvalidToken and
// ErrUnavailable, letting m.refuse write the body.
func (m *middleware) respond(w http.ResponseWriter, r *http.Request, err error) {
	rw := &refusal{ResponseWriter: w, header: http.Header{"Cache-Control": {"no-store"}}}
	switch {
	case errors.Is(err, ErrUnavailable):
		rw.status = http.StatusServiceUnavailable
		rw.header.Set("Retry-After", "1")
	case errors.Is(err, ErrNoToken):
		rw.status = http.StatusUnauthorized
		rw.header.Set("WWW-Authenticate", `Bearer realm="sesh"`)
	default:
		rw.status = http.StatusUnauthorized
		rw.header.Set("WWW-Authenticate", `Bearer realm="sesh", error="invalid_token"`)
	}
	rw.setHeader()
	m.refuse(rw, r, err)
	rw.WriteHeader(rw.status) // in case refuse wrote nothing
}

// plainError is the default Options.Error: today's short text/plain body.
func plainError(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrUnavailable) {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// refusal is the ResponseWriter that Options.Error writes to. It sends
// the refusal's status and headers whatever Error asks, so that no Error
// can turn a refusal into a 200 or let a shared cache keep it. It has no
// Unwrap on purpose: http.ResponseController would flush the writer
// underneath and send a 200.
type refusal struct {
	http.ResponseWriter
	status int
	header http.Header // the refusal's own headers
	wrote  bool
}

func (rw *refusal) setHeader() {
	h := rw.ResponseWriter.Header()
	for k, v := range rw.header {
		h[k] = append([]string(nil), v...)
	}
}

// WriteHeader sends the refusal's status and headers, whatever code is.
func (rw *refusal) WriteHeader(int) {
	if rw.wrote {
		return
	}
	rw.wrote = true
	rw.setHeader()
	rw.ResponseWriter.WriteHeader(rw.status)
}

func (rw *refusal) Write(p []byte) (int, error) {
	rw.WriteHeader(rw.status)
	return rw.ResponseWriter.Write(p)
}
