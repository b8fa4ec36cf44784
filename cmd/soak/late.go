package main

import (
	"bytes"
	"strings"
	"time"
)

// wire is one command the proxy passed from a Store to Redis, with the
// run's keys it names.
type wire struct {
	Cmd     string
	Members []member  // of token keys, and bare index members
	Users   []string  // user indexes' IDs
	Read    time.Time // when the proxy read its last byte: the Store had written it
	Wrote   time.Time // when the proxy wrote it on to Redis, which ran it no earlier
	Dropped bool      // swallowed by a blackhole: it never ran
}

// parseWire names the run's keys in args, a command the proxy saw: keys
// under prefix ("sesh:{m}", "sesh:{m}:m", "sesh:u:id") and bare members.
func parseWire(prefix string, args [][]byte) *wire {
	if len(args) == 0 {
		return nil
	}
	w := &wire{Cmd: strings.ToUpper(string(args[0]))}
	p := []byte(prefix + ":")
	for _, a := range args[1:] {
		rest, ok := bytes.CutPrefix(a, p)
		switch {
		case ok && len(rest) >= tokenLen+2 && rest[0] == '{' && rest[tokenLen+1] == '}':
			if m, ok := parseMember(rest[1 : tokenLen+1]); ok {
				w.Members = append(w.Members, m)
			}
		case ok && bytes.HasPrefix(rest, []byte("u:")):
			w.Users = append(w.Users, string(rest[2:]))
		case !ok:
			if m, ok := parseMember(a); ok {
				w.Members = append(w.Members, m)
			}
		}
	}
	return w
}

// tokenLen is the length of a token, and of a member as sesh spells it.
const tokenLen = 43

// lateCommands counts the commands that reached Redis after their caller's
// deadline, as the proxy saw them. A command's caller is one of the calls
// about the keys and users it names, so its deadline is at most timeout
// after the last of those calls began (or the token was drawn, which is
// later still): a command past that is past its caller's deadline, whoever
// the caller was. The count is a lower bound: a command the proxy handed
// on in time may still run late (a stopped or paused server runs it when
// it wakes).
type lateCommands struct {
	book    *keyBook
	timeout time.Duration

	Seen         int            // commands that named the run's keys
	Sent         int            // ... that the Store wrote after the deadline
	Ran          int            // ... that reached Redis after the deadline (not dropped)
	Unattributed int            // ... about a key the book did not know: not counted either way
	SentByCmd    map[string]int // Sent, by command
	ByCmd        map[string]int // Ran, by command
}

func newLateCommands(book *keyBook, timeout time.Duration) *lateCommands {
	return &lateCommands{book: book, timeout: timeout, SentByCmd: map[string]int{}, ByCmd: map[string]int{}}
}

func (l *lateCommands) check(w *wire) {
	if len(w.Members)+len(w.Users) == 0 {
		return // nothing of a call's: a handshake, a script load, a WAIT
	}
	l.Seen++
	var last time.Time
	var owner uint16 // the only user the command names, if one
	for _, u := range w.Users {
		n, ok := l.book.users[u]
		if !ok {
			l.Unattributed++
			return
		}
		last, owner = later(last, l.book.latest[n]), n
	}
	if len(w.Users) != 1 {
		owner = 0
	}
	for _, m := range w.Members {
		k, ok := l.book.keys[m]
		if ok && k.owner == 0 && owner != 0 {
			k.owner = owner // a Set names its token's key and its user's index together
			l.book.keys[m] = k
		}
		if !ok || k.owner == 0 && len(w.Users) == 0 {
			l.Unattributed++
			return
		}
		last = later(last, time.Unix(0, k.last))
		last = later(last, l.book.latest[k.owner])
	}
	deadline := last.Add(l.timeout)
	if w.Read.After(deadline) {
		l.Sent++
		l.SentByCmd[w.Cmd]++
	}
	if !w.Dropped && w.Wrote.After(deadline) {
		l.Ran++
		l.ByCmd[w.Cmd]++
	}
}
