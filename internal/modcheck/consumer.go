package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// consumerMain is a program a team would write: a Store over an embedded
// Redis, instrumented by seshotel.
const consumerMain = `package main

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/seshkit/sesh"
	"github.com/seshkit/sesh/seshotel"
)

func main() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", mr.Addr()) }}
	store, err := seshotel.New(pool, sesh.Options{}, seshotel.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()
	token, err := store.Set(ctx, "alice")
	if err != nil {
		panic(err)
	}
	user, err := store.Get(ctx, token)
	fmt.Println("consumer:", user, err)
}
`

// consume builds and runs, in a new directory outside the repository, a
// module that requires the root and seshotel at version from the proxy.
// treeDir holds the repository's files.
func consume(tmp, treeDir, proxy, goVersion, version string) error {
	dir := filepath.Join(tmp, "consumer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	gomod := fmt.Sprintf("module example.com/consumer\n\ngo %s\n\nrequire (\n\t%s %s\n\t%s/seshotel %s\n)\n",
		goVersion, root, version, root, version)
	// The checksums the repository has verified: a module outside it needs
	// the same ones, and then no checksum database to build.
	sums, err := repoSums(treeDir)
	if err != nil {
		return err
	}
	for name, text := range map[string]string{"go.mod": gomod, "go.sum": sums, "main.go": consumerMain} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	env, err := consumerEnv(tmp, proxy)
	if err != nil {
		return err
	}
	out, err := goCmd(dir, env, "run", ".")
	if err != nil {
		return err
	}
	if want := "consumer: alice <nil>"; strings.TrimSpace(out) != want {
		return fmt.Errorf("the consumer printed %q, want %q", out, want)
	}
	f, err := parseMod(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if f.Go.Version != goVersion {
		return fmt.Errorf("the consumer's go.mod was raised from go %s to go %s: a dependency needs a newer Go than the repository states", goVersion, f.Go.Version)
	}
	for _, p := range []string{root, root + "/seshotel"} {
		if v := required(f, p); v != version {
			return fmt.Errorf("the consumer resolved %s %s, want %s", p, v, version)
		}
	}
	log.Printf("a module outside the repository built and ran %s and %s/seshotel %s on go %s", root, root, version, goVersion)
	return nil
}

// repoSums returns the lines of the root's and seshotel's go.sum, without
// duplicates.
func repoSums(treeDir string) (string, error) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, name := range []string{"go.sum", filepath.Join("seshotel", "go.sum")} {
		text, err := os.ReadFile(filepath.Join(treeDir, name))
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(string(text), "\n") {
			if line != "" && !seen[line] {
				seen[line] = true
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String(), nil
}

// consumerEnv serves the repository's modules from proxy, everything else
// from the machine's module cache or its usual proxy, into an empty module
// cache, with no workspace and no checksum database for sesh's paths.
func consumerEnv(tmp, proxy string) ([]string, error) {
	cache, err := goEnv("GOMODCACHE")
	if err != nil {
		return nil, err
	}
	upstream, err := goEnv("GOPROXY")
	if err != nil {
		return nil, err
	}
	proxies := "file://" + proxy + ",file://" + filepath.Join(cache, "cache", "download")
	if upstream != "" && upstream != "off" {
		proxies += "," + upstream
	}
	env := os.Environ()
	return append(env,
		"GOPROXY="+proxies,
		"GOMODCACHE="+filepath.Join(tmp, "modcache"),
		"GOFLAGS=-mod=mod -modcacherw",
		"GOWORK=off",
		"GOTOOLCHAIN=local",
		"GONOSUMDB="+root,
		"GONOSUMCHECK=1",
		"GOPRIVATE=",
		"GONOPROXY=",
	), nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func goCmd(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return stdout.String(), nil
}
