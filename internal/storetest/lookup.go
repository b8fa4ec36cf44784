package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seshkit/sesh"
)

// testLookup checks Lookup's fuller answer: the user, the authentication
// time that Rotate keeps, the deadline and the idle expiry.
func testLookup(t *testing.T, b Backend) {
	u := b.Unit
	ctx := context.Background()
	for name, s := range flavours(t, b, sesh.Options{TTL: 2 * u, MaxAge: time.Hour}) {
		t.Run(name+" reads the session, and Rotate keeps its authentication time", func(t *testing.T) {
			parallel(t, b)
			tok := set(t, s, "alice")
			se, err := s.Lookup(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if se.UserID != "alice" || se.Handle != "" || se.Label != "" || !se.Created.IsZero() || !se.LastUse.IsZero() {
				t.Fatalf("Lookup = %+v; want alice, no handle and no details", se)
			}
			// The deadline and the authentication time both read the
			// server's clock once, in Set's script: exactly MaxAge apart.
			if d := se.Deadline.Sub(se.AuthTime); d != time.Hour {
				t.Fatalf("Deadline - AuthTime = %v; want MaxAge, 1h (auth %v, deadline %v)", d, se.AuthTime, se.Deadline)
			}
			if left := time.Until(se.IdleExpiry); left <= 0 || left > 2*u {
				t.Fatalf("IdleExpiry in %v; want within the idle TTL %v", left, 2*u)
			}
			b.Advance(t, u)
			nt, err := s.Rotate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			ne, err := s.Lookup(ctx, nt)
			if err != nil {
				t.Fatal(err)
			}
			if !ne.AuthTime.Equal(se.AuthTime) || !ne.Deadline.Equal(se.Deadline) || ne.UserID != "alice" {
				t.Fatalf("after Rotate, Lookup = %+v; want the authentication time %v and deadline %v kept", ne, se.AuthTime, se.Deadline)
			}
			for _, bad := range []string{tok, "short", nt + "x"} {
				if _, err := s.Lookup(ctx, bad); !errors.Is(err, sesh.ErrNotFound) {
					t.Fatalf("Lookup of an ended or malformed token = %v; want ErrNotFound", err)
				}
			}
		})
	}
}
