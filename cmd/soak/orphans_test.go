package main

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// TestFindOrphans lays out keys as sesh does and checks what the end scan
// counts: a live token key no Set returned is an orphan, indexed or not;
// a returned one is not; a key without expiry is counted apart; other
// prefixes and the deadline keys are not token keys.
func TestFindOrphans(t *testing.T) {
	mr := miniredis.RunT(t)
	returned := strings.Repeat("A", tokenLen)
	rm := spelled(tokenMember(returned))
	hashed := func(s string) string { return member(sha256.Sum256([]byte(s))).String() }
	lost := hashed(strings.Repeat("l", 32))    // a Set that timed out, and ran
	stray := hashed(strings.Repeat("s", 32))   // not indexed
	forever := hashed(strings.Repeat("f", 32)) // no expiry
	for _, m := range []string{rm, lost, stray, forever} {
		mr.Set("p:{"+m+"}", "ann")
		if m != forever {
			mr.SetTTL("p:{"+m+"}", time.Minute)
		}
	}
	mr.Set("p:{"+rm+"}:m", "1")
	mr.Set("q:{"+lost+"}", "other run")
	mr.ZAdd("p:u:ann", 1e12, rm)
	mr.ZAdd("p:u:ann", 1e12, lost)
	book := newKeyBook(time.Minute)
	book.touch(call{Op: "set", User: "ann", Out: returned, Start: time.Now(), End: time.Now()})
	got, err := findOrphans([]string{mr.Addr()}, "p", book)
	if err != nil {
		t.Fatal(err)
	}
	if want := (orphans{Live: 4, Orphans: 3, Indexed: 1, NoExpiry: 1}); got != want {
		t.Errorf("findOrphans = %+v, want %+v", got, want)
	}
}
