package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/seshkit/sesh"
)

// TestStepUp walks the step-up in process, on a miniredis whose clock the
// test sets: a login older than freshFor gets 403 on /password until
// /reauth.
func TestStepUp(t *testing.T) {
	mr := miniredis.RunT(t)
	pool, err := sesh.NewPool("redis://" + mr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := newCrypt(pool, log)
	if err != nil {
		t.Fatal(err)
	}
	h := routes(c, log)
	call := func(path, token, body string) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var m map[string]any
		json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}

	mr.SetTime(time.Now().Add(-2 * freshFor)) // Redis's clock: the login is old
	_, body := call("/login", "", `{"user":"demo","password":"demo"}`)
	mr.SetTime(time.Now())
	old, _ := body["token"].(string)
	if old == "" {
		t.Fatalf("login answered %v", body)
	}
	if status, body := call("/password", old, ""); status != http.StatusForbidden ||
		body["error"] != "insufficient_user_authentication" || body["max_age"] != 60.0 {
		t.Fatalf("/password with an old login: %d %v; want 403 insufficient_user_authentication, max_age 60", status, body)
	}
	if status, body := call("/reauth", old, `{"password":"nope"}`); status != http.StatusForbidden || body["error"] != "wrong password" {
		t.Fatalf("/reauth with a wrong password: %d %v; want 403", status, body)
	}
	status, body := call("/reauth", old, `{"password":"demo"}`)
	fresh, _ := body["token"].(string)
	if status != http.StatusOK || fresh == "" || fresh == old {
		t.Fatalf("/reauth: %d %v; want 200 and a new token", status, body)
	}
	if status, body := call("/password", fresh, ""); status != http.StatusOK || body["changed"] != true {
		t.Fatalf("/password after /reauth: %d %v; want 200", status, body)
	}
	if status, _ := call("/password", old, ""); status != http.StatusUnauthorized {
		t.Fatalf("/password with the old token: %d; want 401", status)
	}
}

// TestStepUpPrintout runs the step-up curl lines the server prints.
func TestStepUpPrintout(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	srv := start(t, build(t))
	var printout strings.Builder
	printStepUpCurls(&printout, srv.base)
	script, _ := strings.CutPrefix(printout.String(), "Step up:\n")
	cmd := exec.Command("sh", "-eu", "-c", script)
	cmd.Env = append(os.Environ(), "NO_PROXY=*", "no_proxy=*")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the printout failed: %v\n%s", err, out)
	}
	if want := `{"changed":true}` + "\n" + `{"changed":true}` + "\n"; string(out) != want {
		t.Errorf("the printout printed\n%s\nwant\n%s\nscript:\n%s", out, want, script)
	}
}
