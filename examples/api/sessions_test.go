package main

import (
	"net/http"
	"testing"
)

// sessionsPrinted matches what the session endpoints' curl lines print: the
// list of two sessions, labelled by curl, 204 for the other's end, and one
// session ended by "log out the others".
const sessionsPrinted = `\{"sessions":\[\{"handle":"[A-Za-z0-9_-]{12}","current":(true|false),"label":"curl/[^"]*",[^\]]*\}\]\}` + "\n" +
	`204\n\{"ended":1\}\n`

// TestSessionEndpoints lists a user's sessions, ends one by its handle,
// refuses a handle that is no session of the user, and logs out the
// other devices.
func TestSessionEndpoints(t *testing.T) {
	srv := start(t, build(t))
	c := &client{t: t, base: srv.base}
	first, second, third := c.login(), c.login(), c.login()

	list := func(tok string) []map[string]any {
		t.Helper()
		status, body := c.do("GET", "/sessions", tok, "")
		raw, _ := body["sessions"].([]any)
		if status != http.StatusOK {
			t.Fatalf("GET /sessions: %d %v", status, body)
		}
		var out []map[string]any
		for _, r := range raw {
			out = append(out, r.(map[string]any))
		}
		return out
	}
	l := list(first)
	if len(l) != 3 {
		t.Fatalf("GET /sessions lists %d; want 3", len(l))
	}
	current := 0
	var secondHandle string
	for _, se := range l {
		if se["current"] == true {
			current++
		}
		if se["label"] != "Go-http-client/1.1" || se["created"] == nil || se["last_use"] == nil {
			t.Errorf("session %v; want a label and details", se)
		}
	}
	if current != 1 {
		t.Fatalf("%d sessions marked current; want 1", current)
	}
	for _, se := range list(second) {
		if se["current"] == true {
			secondHandle = se["handle"].(string)
		}
	}
	if status, _ := c.do("DELETE", "/sessions/AAAAAAAAAAAA", first, ""); status != http.StatusNotFound {
		t.Errorf("DELETE of a handle of no session: %d; want 404", status)
	}
	if status, _ := c.do("DELETE", "/sessions/"+secondHandle, first, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE /sessions/{handle}: %d; want 204", status)
	}
	if status, _ := c.do("GET", "/me", second, ""); status != http.StatusUnauthorized {
		t.Errorf("the ended session still works: %d", status)
	}
	if status, body := c.do("POST", "/sessions/others", third, ""); status != http.StatusOK || body["ended"] != float64(1) {
		t.Fatalf("POST /sessions/others: %d %v; want 200 and 1 ended", status, body)
	}
	if status, _ := c.do("GET", "/me", first, ""); status != http.StatusUnauthorized {
		t.Errorf("another device's session still works after /sessions/others: %d", status)
	}
	if l := list(third); len(l) != 1 || l[0]["current"] != true {
		t.Fatalf("after /sessions/others, the list is %v; want only the current session", l)
	}
}
