package modproxy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/seshkit/sesh/internal/modproxy"
)

// repo makes a git repository with a root module and a nested one, and
// commits it.
func repo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on PATH")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":       "module example.com/m\n\ngo 1.24.0\n",
		"m.go":         "package m\n",
		"LICENSE":      "MIT\n",
		"sub/go.mod":   "module example.com/m/sub\n\ngo 1.24.0\n",
		"sub/sub.go":   "package sub\n",
		"sub/LICENSE":  "MIT\n",
		"inner/in.go":  "package inner\n",
		"untracked.go": "",
	}
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "go.mod", "m.go", "LICENSE", "sub", "inner"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestWrite(t *testing.T) {
	tree, err := modproxy.Extract(repo(t), "HEAD", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	proxy := t.TempDir()
	mods := []modproxy.Module{
		{Path: "example.com/m", Version: "v0.1.0"},
		{Path: "example.com/m/sub", Dir: "sub", Version: "v0.1.0"},
	}
	for _, m := range mods {
		if err := tree.Write(proxy, m); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		mod  modproxy.Module
		want []string // the files of its zip
	}{
		{mods[0], []string{"LICENSE", "go.mod", "inner/in.go", "m.go"}},
		{mods[1], []string{"LICENSE", "go.mod", "sub.go"}},
	}
	for _, tt := range tests {
		t.Run(tt.mod.Path, func(t *testing.T) {
			v := filepath.Join(proxy, filepath.FromSlash(tt.mod.Path), "@v")
			for _, name := range []string{"list", "v0.1.0.info", "v0.1.0.mod", "v0.1.0.zip"} {
				if _, err := os.Stat(filepath.Join(v, name)); err != nil {
					t.Errorf("the proxy lacks %s: %v", name, err)
				}
			}
			cf, err := modzip.CheckZip(module.Version{Path: tt.mod.Path, Version: tt.mod.Version}, filepath.Join(v, "v0.1.0.zip"))
			if err != nil {
				t.Fatal(err)
			}
			prefix := tt.mod.Path + "@" + tt.mod.Version + "/"
			var got []string
			for _, f := range cf.Valid {
				got = append(got, strings.TrimPrefix(f, prefix))
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("the zip holds %q, want %q (nested modules and untracked files left out)", got, tt.want)
			}
		})
	}
}
