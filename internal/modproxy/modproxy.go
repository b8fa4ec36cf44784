// Package modproxy writes a Go module proxy on the local disk from the files a
// git repository holds at a revision, so that a release can be built by a
// module outside the repository before it is tagged.
//
// The proxy has the layout that GOPROXY=file:///dir reads: for each module,
// <path>/@v/list, and <version>.info, .mod and .zip beside it.
package modproxy

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// Module names a module of the repository and the version to serve it as.
type Module struct {
	Path    string // module path, such as github.com/seshkit/sesh/seshotel
	Dir     string // its directory in the repository, "" for the root
	Version string // canonical semantic version, such as v0.1.0
}

// Tree holds the files of a repository at one revision, extracted once.
type Tree struct {
	dir  string
	time time.Time
}

// Extract writes the files that `git archive` gives for rev in repo into a
// new directory under tmp. Extract returns an error when git fails.
func Extract(repo, rev, tmp string) (*Tree, error) {
	out, err := git(repo, "-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=zip", rev)
	if err != nil {
		return nil, err
	}
	stamp, err := git(repo, "log", "-1", "--format=%cI", rev)
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(stamp)))
	if err != nil {
		return nil, fmt.Errorf("modproxy: commit time: %w", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		return nil, fmt.Errorf("modproxy: git archive: %w", err)
	}
	dir, err := os.MkdirTemp(tmp, "tree-")
	if err != nil {
		return nil, err
	}
	for _, f := range zr.File {
		if err := extractFile(dir, f); err != nil {
			return nil, err
		}
	}
	return &Tree{dir: dir, time: t.UTC()}, nil
}

// Dir returns the directory that holds the extracted files.
func (t *Tree) Dir() string { return t.dir }

func extractFile(dir string, f *zip.File) error {
	if strings.HasSuffix(f.Name, "/") {
		return nil
	}
	if !filepath.IsLocal(f.Name) {
		return fmt.Errorf("modproxy: git archive: unsafe path %q", f.Name)
	}
	name := filepath.Join(dir, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Write adds m, made from the tree's files, to the proxy in dir: the zip as
// the go command would make it (nested modules and vendor left out), its
// go.mod, an .info with the commit's time, and the version in @v/list.
func (t *Tree) Write(dir string, m Module) error {
	esc, err := module.EscapePath(m.Path)
	if err != nil {
		return fmt.Errorf("modproxy: %w", err)
	}
	ver, err := module.EscapeVersion(m.Version)
	if err != nil {
		return fmt.Errorf("modproxy: %w", err)
	}
	vdir := filepath.Join(dir, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	src := filepath.Join(t.dir, filepath.FromSlash(m.Dir))
	var zbuf bytes.Buffer
	if err := modzip.CreateFromDir(&zbuf, module.Version{Path: m.Path, Version: m.Version}, src); err != nil {
		return fmt.Errorf("modproxy: %s: %w", m.Path, err)
	}
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return fmt.Errorf("modproxy: %s: %w", m.Path, err)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.Version, t.time})
	if err != nil {
		return err
	}
	base := filepath.Join(vdir, ver)
	for ext, b := range map[string][]byte{".zip": zbuf.Bytes(), ".mod": gomod, ".info": info} {
		if err := os.WriteFile(base+ext, b, 0o644); err != nil {
			return err
		}
	}
	return addToList(filepath.Join(vdir, "list"), m.Version)
}

func addToList(name, version string) error {
	b, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	versions := strings.Fields(string(b))
	if slices.Contains(versions, version) {
		return nil
	}
	versions = append(versions, version)
	return os.WriteFile(name, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

func git(repo string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = repo
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("modproxy: git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
