package redact_test

import (
	"strings"
	"testing"

	"github.com/seshkit/sesh/internal/redact"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://S3CRETPW@host:6379/x", "redis://xxxxx@host:6379/x"},
		{"redis://default:S3CRETPW@host/0", "redis://xxxxx@host/0"},
		{"redis://default:S3CRETPW%zz@host/0", "redis://xxxxx@host/0"},
		{"redis://u:S3CRETPW@host:notaport/0", "redis://xxxxx@host:notaport/0"},
		{"redis://u:S3C@RETPW@host/0", "redis://xxxxx@host/0"},
		{"redis://u:S3C/RETPW@host/0", "redis://xxxxx@host/0"},
		{"redis://u:S3C?RETPW@host/0", "redis://xxxxx@host/0"},
		{"unix://u:S3CRETPW@/run/redis.sock?db=1", "unix://xxxxx@/run/redis.sock?db=1"},
		{"u:S3CRETPW@host", "xxxxx@host"},
		{"", ""},
	} {
		got := redact.URL(tc.in)
		if got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "S3C") {
			t.Errorf("URL(%q) = %q shows the secret", tc.in, got)
		}
	}
}
