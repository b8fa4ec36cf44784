// Command modcheck proves that the modules of this repository can be used
// from outside it at the version about to be released.
//
//	go run ./internal/modcheck            # the files committed at HEAD
//	go run ./internal/modcheck -rev v0.1.0
//
// It checks that every module carries a LICENSE and states the same Go
// version as go.work, and that the nested modules require the root at one
// version, the version to be released. It then serves the root module and
// seshotel at that version from a module proxy on the local disk, made from
// the repository's committed files, and builds and runs, outside the
// repository, a module that requires both, with an empty module cache and
// with go.work and replace out of the picture. It fails when that module
// needs a newer Go than the repository states.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"

	"github.com/seshkit/sesh/internal/modproxy"
)

const root = "github.com/seshkit/sesh"

// nested lists the repository's other modules by directory; consumed says
// whether the check builds against it.
var nested = []struct {
	dir, path string
	consumed  bool
}{
	{"seshotel", root + "/seshotel", true},
	{"bench", root + "/bench", false},
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("modcheck: ")
	repo := flag.String("repo", ".", "the repository's work tree")
	rev := flag.String("rev", "HEAD", "the revision whose files are served")
	keep := flag.Bool("keep", false, "keep the temporary proxy and module")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "sesh-modcheck-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(tmp)
	}
	if err := run(*repo, *rev, tmp); err != nil {
		log.Print(err)
		if !*keep {
			os.RemoveAll(tmp)
		}
		os.Exit(1)
	}
}

func run(repo, rev, tmp string) error {
	tree, err := modproxy.Extract(repo, rev, tmp)
	if err != nil {
		return err
	}
	goVersion, version, err := consistent(tree.Dir())
	if err != nil {
		return err
	}
	log.Printf("%s: every module states go %s; the nested modules require %s %s", rev, goVersion, root, version)
	proxy := filepath.Join(tmp, "proxy")
	mods := []modproxy.Module{{Path: root, Version: version}}
	for _, n := range nested {
		if n.consumed {
			mods = append(mods, modproxy.Module{Path: n.path, Dir: n.dir, Version: version})
		}
	}
	for _, m := range mods {
		if err := tree.Write(proxy, m); err != nil {
			return err
		}
	}
	return consume(tmp, tree.Dir(), proxy, goVersion, version)
}

// consistent reads the go.mod files and go.work of the tree and returns the
// one Go version they state and the one version of the root the nested
// modules require.
func consistent(dir string) (goVersion, version string, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.work"))
	if err != nil {
		return "", "", err
	}
	work, err := modfile.ParseWork("go.work", b, nil)
	if err != nil {
		return "", "", err
	}
	goVersion = work.Go.Version
	dirs := []string{"."}
	for _, n := range nested {
		dirs = append(dirs, n.dir)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(dir, d, "LICENSE")); err != nil {
			return "", "", fmt.Errorf("module in %s/ has no LICENSE: %w", d, err)
		}
		f, err := parseMod(filepath.Join(dir, d, "go.mod"))
		if err != nil {
			return "", "", err
		}
		if f.Go == nil || f.Go.Version != goVersion {
			return "", "", fmt.Errorf("%s/go.mod states another Go version than go.work's go %s", d, goVersion)
		}
		if len(f.Replace) > 0 {
			return "", "", fmt.Errorf("%s/go.mod has a replace directive, which a module that requires it ignores", d)
		}
		if d == "." {
			continue
		}
		v := required(f, root)
		if v == "" || (version != "" && v != version) {
			return "", "", fmt.Errorf("%s/go.mod requires %s %q; every nested module must require the version to be released", d, root, v)
		}
		version = v
	}
	return goVersion, version, nil
}

func parseMod(name string) (*modfile.File, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(name, b, nil)
}

func required(f *modfile.File, path string) string {
	for _, r := range f.Require {
		if r.Mod.Path == path {
			return r.Mod.Version
		}
	}
	return ""
}
