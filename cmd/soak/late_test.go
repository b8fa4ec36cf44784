package main

import (
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCommandSplitter(t *testing.T) {
	stream := "*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
	for _, size := range []int{1, 2, 7, len(stream)} {
		var s commandSplitter
		var got []string
		for i := 0; i < len(stream); i += size {
			for _, args := range s.feed([]byte(stream[i:min(i+size, len(stream))])) {
				var parts []string
				for _, a := range args {
					parts = append(parts, string(a))
				}
				got = append(got, strings.Join(parts, " "))
			}
		}
		if want := []string{"GET hello", "SET k "}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("in chunks of %d: %q, want %q", size, got, want)
		}
	}
	var s commandSplitter
	if cmds := s.feed([]byte("PING\r\n*1\r\n$4\r\nPING\r\n")); cmds != nil || !s.broken {
		t.Errorf("an inline command: %q, broken %v; want nothing, broken", cmds, s.broken)
	}
}

// TestLateCommands checks how a command on the wire is tied to the calls
// that could have sent it, and counted late only when it is past the
// deadline of every one of them.
func TestLateCommands(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tok := strings.Repeat("A", tokenLen-1) + "A" // 32 zero bytes
	m := spelled(tokenMember(tok))
	other := spelled(tokenMember(strings.Repeat("B", tokenLen-1) + "A"))
	drawnM := member(sha256.Sum256([]byte(strings.Repeat("d", 32)))) // a Set's, that never returned
	drawn := drawnM.String()
	key := func(m string) []byte { return []byte("p:{" + m + "}") }
	cmd := func(args ...[]byte) [][]byte { return append([][]byte{[]byte("evalsha")}, args...) }
	for _, tc := range []struct {
		name             string
		args             [][]byte
		read, wrote      int
		dropped          bool
		sent, ran, unatt int
	}{
		{"in time", cmd(key(m)), 50, 60, false, 0, 0, 0},
		{"sent in time, delivered late", cmd(key(m)), 50, 150, false, 0, 1, 0},
		{"sent late", cmd(key(m)), 150, 151, false, 1, 1, 0},
		{"sent late and dropped", cmd(key(m)), 150, 151, true, 1, 0, 0},
		{"a user's index, in time", cmd([]byte("p:u:ann")), 150, 151, false, 0, 0, 0},
		{"ann's token key, with a DieAll of ann in flight", [][]byte{[]byte("DEL"), key(m)}, 250, 251, false, 0, 0, 0},
		{"a key no call knows", cmd(key(other)), 50, 60, false, 0, 0, 1},
		{"a drawn token beside its user: a Set, late", cmd(key(drawn), []byte("p:u:ann")), 150, 151, false, 1, 1, 0},
		{"a drawn token alone: whose, unknown", cmd(key(drawn)), 150, 151, false, 0, 0, 1},
		{"a user no call knows", cmd([]byte("p:u:bob")), 50, 60, false, 0, 0, 1},
	} {
		book := newKeyBook(time.Minute)
		book.touch(call{Op: "set", User: "ann", Out: tok, Start: at(0), End: at(1)})
		book.key(drawnM, at(0), 0, false)
		if strings.Contains(tc.name, "index") {
			book.touch(call{Op: "count", User: "ann", Start: at(100), End: at(101)})
		}
		if strings.Contains(tc.name, "DieAll") {
			book.touch(call{Op: "dieall", User: "ann", Start: at(200), End: at(300)})
		}
		l := newLateCommands(book, 100*time.Millisecond)
		w := parseWire("p", tc.args)
		w.Read, w.Wrote, w.Dropped = at(tc.read), at(tc.wrote), tc.dropped
		l.check(w)
		if l.Sent != tc.sent || l.Ran != tc.ran || l.Unattributed != tc.unatt || l.SentByCmd["EVALSHA"]+l.SentByCmd["DEL"] != tc.sent {
			t.Errorf("%s: sent %d, ran %d, unattributed %d; want %d, %d, %d", tc.name, l.Sent, l.Ran, l.Unattributed, tc.sent, tc.ran, tc.unatt)
		}
	}
}

func TestParseWire(t *testing.T) {
	mm, _ := tokenMember(strings.Repeat("A", tokenLen))
	m := mm.String()
	w := parseWire("p", [][]byte{[]byte("evalsha"), []byte("sha"), []byte("2"), []byte("p:{" + m + "}"), []byte("p:{" + m + "}:m"),
		[]byte("p:u:ann"), []byte(m), []byte("q:u:bob"), []byte("60000")})
	if w.Cmd != "EVALSHA" || !slices.Equal(w.Members, []member{mm, mm, mm}) || strings.Join(w.Users, ",") != "ann" {
		t.Errorf("parseWire: %+v", w)
	}
}

// spelled is m as sesh spells it, or "" when ok is false.
func spelled(m member, ok bool) string {
	if !ok {
		return ""
	}
	return m.String()
}
