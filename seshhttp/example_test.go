package seshhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshhttp"
)

// newExampleStore starts a miniredis and returns a Store on it, with a
// function that stops both.
func newExampleStore() (*sesh.Store, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", mr.Addr()) }}
	store, err := sesh.New(pool, sesh.Options{TTL: time.Hour})
	if err != nil {
		panic(err)
	}
	return store, func() { pool.Close(); mr.Close() }
}

// show prints the status line and body of res.
func show(res *http.Response) {
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Printf("%s: %s", res.Status, body)
}

func ExampleRequire() {
	store, stop := newExampleStore()
	defer stop()

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, _ := seshhttp.UserID(r.Context())
		fmt.Fprintf(w, "hello, %s\n", userID)
	})
	srv := httptest.NewServer(seshhttp.Require(store, seshhttp.Options{})(hello))
	defer srv.Close()

	token, err := store.Set(context.Background(), "alice")
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	show(res)

	res, err = http.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Header.Get("WWW-Authenticate"))
	show(res)
	// Output:
	// 200 OK: hello, alice
	// Bearer realm="sesh"
	// 401 Unauthorized: unauthorized
}

func ExampleSetCookie() {
	store, stop := newExampleStore()
	defer stop()
	cookie := seshhttp.Cookie{Name: "__Host-sesh", MaxAge: time.Hour} // the store's TTL

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// A real login checks a password here.
		token, err := store.Set(r.Context(), "alice")
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		seshhttp.SetCookie(w, cookie, token)
	})
	// One Cookie, given to Require and to SetCookie and ClearCookie.
	private := seshhttp.Require(store, seshhttp.Options{TokenCookie: cookie})
	mux.Handle("GET /me", private(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID, _ := seshhttp.UserID(r.Context())
		fmt.Fprintln(w, userID)
	})))
	mux.Handle("POST /logout", private(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := seshhttp.Token(r.Context())
		if err := store.Die(r.Context(), token); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		seshhttp.ClearCookie(w, cookie)
	})))

	// Play the browser: keep what each response sets, send it back.
	do := func(method, path string, cookies []*http.Cookie) *http.Response {
		req := httptest.NewRequest(method, path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Result()
	}
	login := do("POST", "/login", nil)
	jar := login.Cookies()
	fmt.Println(jar[0].Name, jar[0].MaxAge, jar[0].HttpOnly, jar[0].Secure)
	show(do("GET", "/me", jar))
	logout := do("POST", "/logout", jar)
	fmt.Println(logout.Cookies()[0].MaxAge < 0)
	show(do("GET", "/me", jar)) // the old cookie's token has ended
	// Output:
	// __Host-sesh 3600 true true
	// 200 OK: alice
	// true
	// 401 Unauthorized: unauthorized
}

func ExampleOptional() {
	store, stop := newExampleStore()
	defer stop()

	home := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if userID, ok := seshhttp.UserID(r.Context()); ok {
			fmt.Fprintf(w, "hello, %s\n", userID)
			return
		}
		fmt.Fprintln(w, "hello, stranger: log in?")
	})
	srv := httptest.NewServer(seshhttp.Optional(store, seshhttp.Options{})(home))
	defer srv.Close()

	token, err := store.Set(context.Background(), "alice")
	if err != nil {
		panic(err)
	}
	get := func(authorization string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		req.AddCookie(&http.Cookie{Name: "sesh", Value: token})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		show(res)
	}
	get("")                   // the cookie alone
	get("Bearer " + token)    // the header
	get("Bearer not-a-token") // a bad header: anonymous, though the cookie is live
	get("Basic YWxpY2U6cHc=") // another scheme: the cookie is read
	// Output:
	// 200 OK: hello, alice
	// 200 OK: hello, alice
	// 200 OK: hello, stranger: log in?
	// 200 OK: hello, alice
}

func ExampleOptions() {
	store, stop := newExampleStore()
	defer stop()

	cookie := seshhttp.Cookie{Name: "__Host-sesh", MaxAge: time.Hour}
	auth := seshhttp.Require(store, seshhttp.Options{
		TokenCookie:   cookie,                 // the Cookie SetCookie is given
		LookupTimeout: 500 * time.Millisecond, // 503 rather than wait longer for Redis
		// JSON refusals; the status and WWW-Authenticate are Require's.
		Error: func(w http.ResponseWriter, r *http.Request, err error) {
			var code string
			switch {
			case errors.Is(err, seshhttp.ErrUnavailable):
				code = "unavailable"
			case errors.Is(err, seshhttp.ErrInvalidToken):
				code = "invalid_token"
			default:
				code = "login_required"
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"error": code})
		},
	})
	srv := httptest.NewServer(auth(http.NotFoundHandler()))
	defer srv.Close()

	for _, authorization := range []string{"", "Bearer,not-a-token"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Header.Get("Content-Type"), res.Header.Get("WWW-Authenticate"))
		show(res)
	}
	// Output:
	// application/json Bearer realm="sesh"
	// 401 Unauthorized: {"error":"login_required"}
	// application/json Bearer realm="sesh", error="invalid_token"
	// 401 Unauthorized: {"error":"invalid_token"}
}

// A route for sensitive changes asks for a login at most five minutes old.
// An older session gets a 403 that tells the client, in words and in
// RFC 9470's terms, to have its user authenticate again; sesh.Store.Reauth
// then issues a fresh token, which passes.
func ExampleFresh() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", mr.Addr()) }}
	defer pool.Close()
	store, _ := sesh.New(pool, sesh.Options{TTL: 24 * time.Hour})
	ctx := context.Background()

	change := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "password changed")
	})
	srv := httptest.NewServer(seshhttp.Require(store, seshhttp.Options{})(seshhttp.Fresh(store, 5*time.Minute)(change)))
	defer srv.Close()
	post := func(token string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		show(res)
	}

	mr.SetTime(time.Now().Add(-time.Hour)) // Redis's clock: alice logged in an hour ago
	token, _ := store.Set(ctx, "alice")
	mr.SetTime(time.Now())
	post(token)

	// ... alice types her password again ...
	token, err = store.Reauth(ctx, token)
	if err != nil {
		panic(err)
	}
	post(token)
	// Output:
	// 403 Forbidden: {"error":"insufficient_user_authentication","error_description":"A more recent authentication is required","max_age":300}
	// 200 OK: password changed
}
