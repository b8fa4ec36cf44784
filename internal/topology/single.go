package topology

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// single is the standalone Redis on 127.0.0.1:6379 ($SESH_SINGLE_PORT). A
// server already answering there, started by someone else, is left alone:
// start does nothing and stop does not touch it.
type single struct{}

func (single) name() string { return "single" }
func (single) dir() string  { return filepath.Join(RunDir(), "single") }

func (s single) nodes() []node {
	port := 6379
	if p, err := strconv.Atoi(os.Getenv("SESH_SINGLE_PORT")); err == nil && p > 0 {
		port = p
	}
	return []node{{port: port, dir: s.dir()}}
}

func (s single) start() error {
	n := s.nodes()[0]
	if n.up() {
		return nil
	}
	os.RemoveAll(s.dir())
	if err := n.writeConf(); err != nil {
		return err
	}
	// Bind ::1 too where the machine has IPv6, without failing where not.
	if err := n.launch("--bind", "127.0.0.1", "-::1"); err != nil {
		return err
	}
	return waitFor(context.Background(), 15*time.Second, n.addr()+" to answer", func() error { return allUp(s.nodes()) })
}

// stop stops the server only when this run directory started it.
func (s single) stop() error { return stopAll(s) }

func (s single) restart() error {
	if err := s.stop(); err != nil {
		return err
	}
	return s.start()
}

func (s single) healthy() error {
	if n := s.nodes()[0]; !n.up() {
		return fmt.Errorf("%s does not answer: %w", n.addr(), ErrNotRunning)
	}
	return nil
}

func (s single) restartNode(ports ...int) error { return s.start() }

func (s single) describe() string {
	n := s.nodes()[0]
	var b strings.Builder
	_, ours := n.pid()
	switch {
	case !n.up():
		fmt.Fprintf(&b, "  %s DOWN\n", n.addr())
	case ours:
		fmt.Fprintf(&b, "  %s up (started from %s)\n", n.addr(), s.dir())
	default:
		fmt.Fprintf(&b, "  %s up (not started by us; left alone)\n", n.addr())
	}
	return b.String()
}
