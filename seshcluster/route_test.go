package seshcluster_test

import (
	"testing"

	"github.com/seshkit/sesh/seshcluster"
)

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  string
		args []any
		key  string // "" for none
	}{
		{"a command is routed by its first argument", "GET", []any{"k"}, "k"},
		{"a byte-slice key is routed as a string", "DEL", []any{[]byte("k")}, "k"},
		{"a lower-case command too", "pexpire", []any{"k", 1000}, "k"},
		{"EVAL is routed by its first key, not its script", "EVAL", []any{"return 1", 2, "k1", "k2"}, "k1"},
		{"EVALSHA too", "evalsha", []any{"abc", "1", "k", "arg"}, "k"},
		{"an EVAL without keys has none", "EVAL", []any{"return 1", 0}, ""},
		{"an EVAL with a bad key count has none", "EVAL", []any{"return 1", "x", "k"}, ""},
		{"an EVAL cut short has none", "EVAL", []any{"return 1", 1}, ""},
		{"a command without arguments has none", "PING", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, ok := seshcluster.KeyOf(tc.cmd, tc.args)
			if k != tc.key || ok != (tc.key != "") {
				t.Fatalf("KeyOf(%s %v) = %q, %v; want %q", tc.cmd, tc.args, k, ok, tc.key)
			}
		})
	}
}
