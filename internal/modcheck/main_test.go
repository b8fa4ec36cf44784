package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes a repository's module files, with edit applied to the
// defaults, and returns its directory.
func tree(t *testing.T, edit map[string]string) string {
	t.Helper()
	files := map[string]string{
		"go.work":          "go 1.24.0\n\nuse (\n\t.\n\t./bench\n\t./seshotel\n)\n",
		"go.mod":           "module github.com/seshkit/sesh\n\ngo 1.24.0\n",
		"LICENSE":          "MIT\n",
		"seshotel/go.mod":  "module github.com/seshkit/sesh/seshotel\n\ngo 1.24.0\n\nrequire github.com/seshkit/sesh v0.1.0\n",
		"seshotel/LICENSE": "MIT\n",
		"bench/go.mod":     "module github.com/seshkit/sesh/bench\n\ngo 1.24.0\n\nrequire github.com/seshkit/sesh v0.1.0\n",
		"bench/LICENSE":    "MIT\n",
	}
	for name, text := range edit {
		files[name] = text
	}
	dir := t.TempDir()
	for name, text := range files {
		if text == "" {
			continue // a file left out
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestConsistent(t *testing.T) {
	tests := []struct {
		name string
		edit map[string]string
		err  string // a part of the error; "" for none
	}{
		{"a consistent tree passes", nil, ""},
		{"a nested module without a LICENSE fails", map[string]string{"seshotel/LICENSE": ""}, "seshotel/ has no LICENSE"},
		{"another Go version fails", map[string]string{"bench/go.mod": "module github.com/seshkit/sesh/bench\n\ngo 1.26.0\n\nrequire github.com/seshkit/sesh v0.1.0\n"}, "bench/go.mod states another Go version"},
		{"a replace fails", map[string]string{"seshotel/go.mod": "module github.com/seshkit/sesh/seshotel\n\ngo 1.24.0\n\nrequire github.com/seshkit/sesh v0.0.0\n\nreplace github.com/seshkit/sesh => ../\n"}, "replace directive"},
		{"nested modules requiring different versions fail", map[string]string{"bench/go.mod": "module github.com/seshkit/sesh/bench\n\ngo 1.24.0\n\nrequire github.com/seshkit/sesh v0.2.0\n"}, "must require the version to be released"},
		{"a nested module not requiring the root fails", map[string]string{"bench/go.mod": "module github.com/seshkit/sesh/bench\n\ngo 1.24.0\n"}, "must require the version to be released"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goVersion, version, err := consistent(tree(t, tt.edit))
			if tt.err == "" {
				if err != nil || goVersion != "1.24.0" || version != "v0.1.0" {
					t.Fatalf("consistent = %q, %q, %v; want 1.24.0, v0.1.0, nil", goVersion, version, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("consistent: %v, want an error containing %q", err, tt.err)
			}
		})
	}
}
