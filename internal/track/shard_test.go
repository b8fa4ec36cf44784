package track_test

import (
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/seshkit/sesh/internal/track"
)

func TestParseMoved(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		slot  int
		addr  string
		ok    bool
	}{
		{"a MOVED reply names the slot's owner", "MOVED 3999 127.0.0.1:7102", 3999, "127.0.0.1:7102", true},
		{"the last slot", "MOVED 16383 h:1", 16383, "h:1", true},
		{"a slot past the last is no slot", "MOVED 16384 h:1", -1, "h:1", true},
		{"a negative slot is no slot", "MOVED -1 h:1", -1, "h:1", true},
		{"a slot that is no number is no slot", "MOVED x h:1", -1, "h:1", true},
		{"ASK is not MOVED", "ASK 3999 h:1", 0, "", false},
		{"a MOVED reply short of a field is not read", "MOVED 3999", 0, "", false},
		{"a MOVED reply with a field too many is not read", "MOVED 3999 h:1 x", 0, "", false},
		{"another error", "ERR unknown command", 0, "", false},
		{"nothing", "", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slot, addr, ok := track.ParseMoved(redis.Error(tt.reply))
			if slot != tt.slot || addr != tt.addr || ok != tt.ok {
				t.Errorf("ParseMoved(%q) = %d, %q, %v; want %d, %q, %v", tt.reply, slot, addr, ok, tt.slot, tt.addr, tt.ok)
			}
		})
	}
}

// FuzzParseMoved checks that a reply from a server never panics the
// parser, and that a slot it returns is a hash slot or -1.
func FuzzParseMoved(f *testing.F) {
	for _, s := range []string{"MOVED 3999 127.0.0.1:7102", "MOVED 99999999999999999999 h", "ASK 1 h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		slot, addr, ok := track.ParseMoved(redis.Error(reply))
		if !ok {
			return
		}
		if slot < -1 || slot >= 16384 || addr == "" {
			t.Fatalf("ParseMoved(%q) = %d, %q, true", reply, slot, addr)
		}
	})
}
