package wire_test

import (
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/seshkit/sesh/internal/wire"
)

func TestParseRedirect(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  wire.Redirect
		ok    bool
	}{
		{"a MOVED reply names the slot's owner", "MOVED 3999 127.0.0.1:7102", wire.Redirect{Slot: 3999, Addr: "127.0.0.1:7102"}, true},
		{"an ASK reply names the node to ask once", "ASK 3999 h:1", wire.Redirect{Ask: true, Slot: 3999, Addr: "h:1"}, true},
		{"the last slot", "MOVED 16383 h:1", wire.Redirect{Slot: 16383, Addr: "h:1"}, true},
		{"a slot past the last is not read", "MOVED 16384 h:1", wire.Redirect{}, false},
		{"a negative slot is not read", "MOVED -1 h:1", wire.Redirect{}, false},
		{"a slot that is no number is not read", "MOVED x h:1", wire.Redirect{}, false},
		{"a reply short of a field is not read", "MOVED 3999", wire.Redirect{}, false},
		{"a reply with a field too many is not read", "MOVED 3999 h:1 x", wire.Redirect{}, false},
		{"another error", "ERR unknown command", wire.Redirect{}, false},
		{"nothing", "", wire.Redirect{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := wire.ParseRedirect(redis.Error(tt.reply))
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseRedirect(%q) = %+v, %v; want %+v, %v", tt.reply, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzParseRedirect checks that a reply from a server never panics the
// parser, and that what it reads names a hash slot and a node.
func FuzzParseRedirect(f *testing.F) {
	for _, s := range []string{"MOVED 3999 127.0.0.1:7102", "MOVED 99999999999999999999 h", "ASK 1 h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		rd, ok := wire.ParseRedirect(redis.Error(reply))
		if ok && (rd.Slot < 0 || rd.Slot > 16383 || rd.Addr == "") {
			t.Fatalf("ParseRedirect(%q) = %+v, true", reply, rd)
		}
	})
}

// slotRouter is a Router whose key "a..." is in slot 1 and any other in
// slot 2.
type slotRouter struct{ wire.Router }

func (slotRouter) Slot(key string) int {
	if key != "" && key[0] == 'a' {
		return 1
	}
	return 2
}

// TestSlotOf checks that the lanes route every round trip sesh's
// operations make to one master, and no other.
func TestSlotOf(t *testing.T) {
	r := slotRouter{}
	for _, tc := range []struct {
		name string
		cmds [][]any
		slot int
		read bool
	}{
		{"a Get of a record is one HGET", [][]any{{"HGET", "a1", "u"}}, 1, true},
		{"a cache's fill reads the record, its PTTL and the server's clock", [][]any{{"HMGET", "a1", "u", "i", "d"}, {"PTTL", "a1"}, {"TIME"}}, 1, true},
		{"a Die reads the record and deletes its keys", [][]any{{"HMGET", "a1", "u", "x"}, {"DEL", "a1", "a1:m"}}, 1, false},
		{"an old layout's Get falls back to GET", [][]any{{"GET", "a1"}}, 1, true},
		{"a script is routed by its keys", [][]any{{"EVAL", "src", 2, "a1", "a1:m", "v"}}, 1, false},
		{"keys of two slots are not one call", [][]any{{"HGET", "a1", "u"}, {"PTTL", "b1"}}, -1, true},
		{"a command it does not know is not one call", [][]any{{"HGETALL", "a1"}}, -1, false},
		{"TIME alone names no master", [][]any{{"TIME"}}, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := wire.SlotOf(r, tc.cmds...); got != tc.slot {
				t.Errorf("SlotOf = %d; want %d", got, tc.slot)
			}
			if got := wire.Reads(tc.cmds...); got != tc.read {
				t.Errorf("Reads = %v; want %v", got, tc.read)
			}
		})
	}
}
