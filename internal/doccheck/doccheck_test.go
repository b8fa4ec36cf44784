package doccheck_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seshkit/sesh/internal/doccheck"
)

// TestRepositoryLinks checks every relative link of every Markdown file in
// the repository.
func TestRepositoryLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "node_modules" || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") {
			return nil
		}
		n++
		bad, err := doccheck.Check(path)
		if err != nil {
			return err
		}
		for _, b := range bad {
			t.Error(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no Markdown file found")
	}
}

func TestSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Testing your app", "testing-your-app"},
		{"Cluster and Sentinel", "cluster-and-sentinel"},
		{"`sesh doctor`: checks", "sesh-doctor-checks"},
		{"Options (the zero value)", "options-the-zero-value"},
		{"[Stats](stats.go) and the Hook", "stats-and-the-hook"},
		{"Exit codes & errors", "exit-codes--errors"},
	}
	for _, tt := range tests {
		if got := doccheck.Slug(tt.heading); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.md": "# A\n\n## Part two\n## Part two\n" +
			"[ok](b.md) [ok](b.md#b-heading) [ok](#part-two-1) [ok](dir/) [ok](https://example.com/x)\n" +
			"`[not a link](nowhere.md)`\n```\n[in code](nowhere.md)\n```\n" +
			"[bad](missing.md) [bad](b.md#nope) [bad](#nope)\n[ref]: missing2.md\n",
		"b.md":      "# B heading\n",
		"dir/x.txt": "",
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
	bad, err := doccheck.Check(filepath.Join(dir, "a.md"))
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, b := range bad {
		f := strings.Split(b, ": ")
		targets = append(targets, f[1])
	}
	want := []string{"missing.md", "b.md#nope", "#nope", "missing2.md"}
	if !slices.Equal(targets, want) {
		t.Errorf("broken links %q, want %q\n%s", targets, want, strings.Join(bad, "\n"))
	}
}
