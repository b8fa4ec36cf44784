package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// RunDir is where the topologies keep their state: $SESH_RUN_DIR, or
// /tmp/sesh-redis. Each server runs with its directory (--dir) under it,
// never in the checkout.
func RunDir() string {
	if d := os.Getenv("SESH_RUN_DIR"); d != "" {
		return d
	}
	return "/tmp/sesh-redis"
}

// PortOffset is $SESH_PORT_OFFSET, added to every port of the Cluster and
// the Sentinel setup, so that a second copy of them (a long soak, say) can
// run beside the one the tests use, with its own SESH_RUN_DIR.
func PortOffset() int {
	if o, err := strconv.Atoi(os.Getenv("SESH_PORT_OFFSET")); err == nil && o > 0 {
		return o
	}
	return 0
}

// StartTimeout is how long a start or a restart waits for a healthy
// topology: $SESH_START_TIMEOUT seconds, or 60.
func StartTimeout() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("SESH_START_TIMEOUT")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return time.Minute
}

// A node is one redis-server process on 127.0.0.1, with its directory,
// configuration file, pid file and log.
type node struct {
	port     int
	dir      string
	sentinel bool // runs with --sentinel, from sentinel.conf
}

func (n node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

func (n node) conf() string {
	if n.sentinel {
		return filepath.Join(n.dir, "sentinel.conf")
	}
	return filepath.Join(n.dir, "redis.conf")
}

func (n node) logFile() string { return filepath.Join(n.dir, "redis.log") }

// writeConf writes the node's configuration: daemonized, bound to
// loopback, without persistence, with extra lines appended.
func (n node) writeConf(extra ...string) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	lines := []string{
		"# Written by internal/topology. Redis may rewrite this file (CONFIG REWRITE, sentinels).",
		"port " + strconv.Itoa(n.port),
		"bind 127.0.0.1",
		"daemonize yes",
		"pidfile " + filepath.Join(n.dir, "redis.pid"),
		"logfile " + n.logFile(),
		"dir " + n.dir,
	}
	if !n.sentinel {
		lines = append(lines, "protected-mode yes", `save ""`, "appendonly no", "repl-diskless-sync-delay 0")
	} else {
		lines = append(lines, "protected-mode no")
	}
	lines = append(lines, extra...)
	return os.WriteFile(n.conf(), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// launch starts the node from its configuration, with extra arguments;
// redis-server daemonizes, so launch returns once it has forked.
func (n node) launch(extra ...string) error {
	args := []string{n.conf()}
	if n.sentinel {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command("redis-server", append(args, extra...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-server %s: %v\n%s%s", n.addr(), err, out, n.tail())
	}
	return nil
}

// tail returns the end of the node's log, for error messages.
func (n node) tail() string {
	b, err := os.ReadFile(n.logFile())
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Sprintf("--- %s ---\n%s\n", n.logFile(), bytes.Join(lines, []byte("\n")))
}

// pid returns the pid in the node's pid file, when it is a live
// redis-server serving the node's port.
func (n node) pid() (int, bool) {
	b, err := os.ReadFile(filepath.Join(n.dir, "redis.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, false
	}
	// Redis sets its title to "redis-server 127.0.0.1:PORT [...]".
	if !bytes.Contains(cmdline, []byte("redis-server")) && !bytes.Contains(cmdline, []byte("redis-sentinel")) ||
		!bytes.Contains(cmdline, []byte(":"+strconv.Itoa(n.port))) {
		return 0, false
	}
	return pid, true
}

// do runs one command on the node, within a second.
func (n node) do(cmd string, args ...any) (any, error) {
	c, err := redis.Dial("tcp", n.addr(),
		redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second), redis.DialWriteTimeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(cmd, args...)
}

// up reports whether the node answers PING.
func (n node) up() bool {
	s, err := redis.String(n.do("PING"))
	return err == nil && s == "PONG"
}

// info returns one section of the node's INFO as fields.
func (n node) info(section string) map[string]string {
	s, err := redis.String(n.do("INFO", section))
	if err != nil {
		return nil
	}
	return fields(s, ":")
}

// fields splits "k<sep>v" lines.
func fields(s, sep string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), sep); ok {
			m[k] = v
		}
	}
	return m
}

// expect checks fields against name and value pairs, and names the first
// that differs.
func expect(who string, got map[string]string, want ...string) error {
	for i := 0; i+1 < len(want); i += 2 {
		if v := got[want[i]]; v != want[i+1] {
			return fmt.Errorf("%s: %s=%s, want %s", who, want[i], v, want[i+1])
		}
	}
	return nil
}

// pairs turns a flat [k1 v1 k2 v2 ...] reply (SENTINEL MASTER) into fields.
func pairs(v any, err error) map[string]string {
	ss, err := redis.Strings(v, err)
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(ss); i += 2 {
		m[ss[i]] = ss[i+1]
	}
	return m
}

// signal sends sig to the node's process and, for SIGKILL and SIGTERM,
// waits until it is gone.
func (n node) signal(sig syscall.Signal) (int, error) {
	pid, ok := n.pid()
	if !ok {
		return 0, fmt.Errorf("%s: no redis-server of ours is running", n.addr())
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return pid, fmt.Errorf("%s: kill %d: %w", n.addr(), pid, err)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if syscall.Kill(pid, 0) != nil {
				return pid, nil
			}
		}
		return pid, fmt.Errorf("%s: pid %d outlived signal %v", n.addr(), pid, sig)
	}
	return pid, nil
}

// waitFor calls check every 100ms until it returns nil, and fails with its
// last error after d.
func waitFor(ctx context.Context, d time.Duration, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %v for %s: %w", d, what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// allUp checks that every node answers PING.
func allUp(nodes []node) error {
	for _, n := range nodes {
		if !n.up() {
			return fmt.Errorf("%s does not answer", n.addr())
		}
	}
	return nil
}

// portsFree checks that nothing answers on the nodes' ports.
func portsFree(nodes []node) error {
	for _, n := range nodes {
		if n.up() {
			return fmt.Errorf("port %d is taken by a Redis this run directory did not start; stop it first", n.port)
		}
	}
	return nil
}

// ErrNotRunning is the cause Check reports when a process is missing.
var ErrNotRunning = errors.New("not running")
