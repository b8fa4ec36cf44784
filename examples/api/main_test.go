package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestAPI builds the real binary, starts it on a free port, walks every
// endpoint over HTTP, and stops it with SIGTERM.
func TestAPI(t *testing.T) {
	srv := start(t, build(t))
	c := &client{t: t, base: srv.base}

	if status, _ := c.do("POST", "/login", "", `{"user":"demo","password":"nope"}`); status != http.StatusUnauthorized {
		t.Errorf("login with a wrong password: %d, want 401", status)
	}
	if status, _ := c.do("POST", "/login", "", `{"user":`); status != http.StatusBadRequest {
		t.Errorf("login with broken JSON: %d, want 400", status)
	}
	if status, body := c.do("GET", "/me", "", ""); status != http.StatusUnauthorized || body["error"] != "log in first" {
		t.Errorf("me without a token: %d %v, want 401 and a JSON error", status, body)
	}
	if status, body := c.do("GET", "/me", "not-a-token", ""); status != http.StatusUnauthorized ||
		body["error"] != "invalid token: log in again" {
		t.Errorf("me with a malformed token: %d %v, want 401 and a JSON error", status, body)
	}

	t.Run("login sets a cookie that works over plain HTTP", func(t *testing.T) {
		resp := c.raw("POST", "/login", "", `{"user":"demo","password":"demo"}`)
		resp.Body.Close()
		var cookie *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "sesh" {
				cookie = ck
			}
		}
		if cookie == nil || !cookie.HttpOnly || cookie.Secure || cookie.MaxAge != 12*3600 {
			t.Fatalf("login's cookie is %v; want sesh, HttpOnly, not Secure over HTTP, Max-Age 12h", cookie)
		}
		for _, c := range []struct {
			method, path string
			status       int
		}{
			{"GET", "/me", http.StatusOK},
			{"POST", "/logout", http.StatusNoContent},
			{"GET", "/me", http.StatusUnauthorized},
		} {
			req, _ := http.NewRequest(c.method, srv.base+c.path, nil)
			req.AddCookie(cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("%s %s with the cookie: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
			}
			if c.path == "/logout" && !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
				t.Errorf("logout does not clear the cookie: Set-Cookie %q", resp.Header.Get("Set-Cookie"))
			}
		}
	})

	t.Run("me, rotate and logout", func(t *testing.T) {
		tok := c.login()
		if status, body := c.do("GET", "/me", tok, ""); status != http.StatusOK || body["user"] != "demo" {
			t.Errorf("me: %d %v, want 200 and user demo", status, body)
		}
		status, body := c.do("POST", "/rotate", tok, "")
		rotated, _ := body["token"].(string)
		if status != http.StatusOK || rotated == "" || rotated == tok {
			t.Fatalf("rotate: %d %v, want 200 and a new token", status, body)
		}
		if status, _ := c.do("GET", "/me", tok, ""); status != http.StatusUnauthorized {
			t.Errorf("me with the rotated-away token: %d, want 401", status)
		}
		if status, _ := c.do("GET", "/me", rotated, ""); status != http.StatusOK {
			t.Errorf("me with the new token: %d, want 200", status)
		}
		if status, _ := c.do("POST", "/logout", rotated, ""); status != http.StatusNoContent {
			t.Errorf("logout: %d, want 204", status)
		}
		if status, _ := c.do("GET", "/me", rotated, ""); status != http.StatusUnauthorized {
			t.Errorf("me after logout: %d, want 401", status)
		}
	})

	t.Run("logout-all ends every token of the user", func(t *testing.T) {
		a, b := c.login(), c.login()
		status, body := c.do("POST", "/logout-all", a, "")
		if status != http.StatusOK || body["ended"] != 2.0 {
			t.Errorf("logout-all: %d %v, want 200 and ended 2", status, body)
		}
		for _, tok := range []string{a, b} {
			if status, _ := c.do("GET", "/me", tok, ""); status != http.StatusUnauthorized {
				t.Errorf("me after logout-all: %d, want 401", status)
			}
		}
	})

	srv.stop(t, syscall.SIGTERM)
}

func TestAPIStopsOnInterrupt(t *testing.T) {
	srv := start(t, build(t))
	srv.stop(t, os.Interrupt)
}

// build compiles the command into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	bin := filepath.Join(t.TempDir(), "api")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type server struct {
	cmd    *exec.Cmd
	base   string
	exited chan error
	stderr *lockedWriter
}

// start runs bin on a free port and returns once it has printed the
// address it listens on. The server is killed when the test ends.
func start(t *testing.T, bin string) *server {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "SESH_KEYS=") // a fresh key, whatever the environment holds
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, exited: make(chan error, 1), stderr: &lockedWriter{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("server's stderr:\n%s", s.stderr.String())
		}
	})

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- u
			}
		}
		io.Copy(io.Discard, stdout)
		s.exited <- cmd.Wait()
	}()
	select {
	case s.base = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("the server printed no \"listening on\" line within 30s")
	}
	if !strings.HasPrefix(s.base, "http://127.0.0.1:") || strings.HasSuffix(s.base, ":0") {
		t.Fatalf("the server listens on %q, want http://127.0.0.1:PORT", s.base)
	}
	return s
}

// stop sends sig and checks that the server exits cleanly and soon.
func (s *server) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.exited <- err // for Cleanup
		if err != nil {
			t.Errorf("after %v the server exited with %v, want status 0", sig, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the server still runs 5s after %v", sig)
	}
}

// lockedWriter collects the server's stderr, for the test's log.
type lockedWriter struct {
	mu sync.Mutex
	w  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// client talks JSON to the server.
type client struct {
	t    *testing.T
	base string
}

func (c *client) raw(method, path, token, body string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// do sends a request and returns the status and the JSON object answered,
// if any.
func (c *client) do(method, path, token, body string) (int, map[string]any) {
	c.t.Helper()
	resp := c.raw(method, path, token, body)
	defer resp.Body.Close()
	var v map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			c.t.Errorf("%s %s: bad JSON: %v", method, path, err)
		}
	}
	return resp.StatusCode, v
}

func (c *client) login() string {
	c.t.Helper()
	status, body := c.do("POST", "/login", "", `{"user":"demo","password":"demo"}`)
	tok, _ := body["token"].(string)
	if status != http.StatusOK || tok == "" {
		c.t.Fatalf("login: %d %v, want 200 and a token", status, body)
	}
	return tok
}

// TestLoginTakesOnlyJSON checks the guard against login CSRF: /login
// refuses every body a cross-site HTML form can send, even one that holds
// the right JSON, and sets no cookie.
func TestLoginTakesOnlyJSON(t *testing.T) {
	srv := start(t, build(t))
	const creds = `{"user":"demo","password":"demo"}`
	tests := []struct {
		name        string
		contentType string // "" for none
		body        string
		status      int
	}{
		{"a text/plain form's JSON text is refused", "text/plain", creds, http.StatusUnsupportedMediaType},
		{"a text/plain form's JSON text with a padding field is refused", "text/plain",
			`{"user":"demo","password":"demo","x":"="}`, http.StatusUnsupportedMediaType},
		{"a urlencoded form is refused", "application/x-www-form-urlencoded", creds, http.StatusUnsupportedMediaType},
		{"a multipart form is refused", "multipart/form-data; boundary=x", creds, http.StatusUnsupportedMediaType},
		{"a body without a Content-Type is refused", "", creds, http.StatusUnsupportedMediaType},
		{"a malformed Content-Type is refused", "application/json;;", creds, http.StatusUnsupportedMediaType},
		{"JSON logs in", "application/json", creds, http.StatusOK},
		{"JSON with a charset logs in", "application/json; charset=utf-8", creds, http.StatusOK},
		{"an upper-case JSON media type logs in", "Application/JSON", creds, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", srv.base+"/login", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == http.StatusOK {
				return
			}
			if len(resp.Cookies()) != 0 || body["token"] != "" {
				t.Errorf("a refused login set %v and answered %v", resp.Cookies(), body)
			}
			if body["error"] == "" {
				t.Errorf("answered %v, want a JSON error", body)
			}
		})
	}
}

// TestCurlPrintout runs the curl session the server prints, as a user
// pasting it into a shell would, and checks what it prints.
func TestCurlPrintout(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	srv := start(t, build(t))
	var printout strings.Builder
	printCurls(&printout, srv.base)
	script, ok := strings.CutPrefix(printout.String(), "Try it:\n")
	if !ok {
		t.Fatalf("the printout does not start with \"Try it:\":\n%s", printout.String())
	}
	cmd := exec.Command("sh", "-eu", "-c", script)
	cmd.Env = append(os.Environ(), "NO_PROXY=*", "no_proxy=*")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the printout failed: %v\n%s\nscript:\n%s", err, out, script)
	}
	want := regexp.QuoteMeta(`{"user":"demo"}`+"\n204\n"+`{"ended":1}`+"\n") + sessionsPrinted
	if !regexp.MustCompile(`^` + want + `$`).Match(out) {
		t.Errorf("the printout printed\n%s\nwant\n%s\nscript:\n%s", out, want, script)
	}
}
