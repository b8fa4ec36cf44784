// Command topo starts, checks and stops the real Redis topologies of sesh's
// tests on loopback ports, under $SESH_RUN_DIR (default /tmp/sesh-redis):
//
//	topo single|cluster|sentinel start|stop|status|restart|restart-node PORT...
//
// start is idempotent: it does nothing for a healthy topology, and
// otherwise recreates it and waits until it is healthy. status exits 0 when
// healthy, 1 when running but degraded, and 3 when not running.
// restart-node brings back killed nodes: a Cluster node whose slots failed
// over rejoins as a replica, and a Sentinel data node follows the master the
// sentinels settled on. scripts/redis-*.sh wrap it.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/seshkit/sesh/internal/topology"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) < 2 {
		return usage()
	}
	tp, ok := topology.ByName(args[0])
	if !ok {
		return usage()
	}
	start := time.Now()
	var err error
	switch args[1] {
	case "start":
		err = tp.Start()
	case "stop":
		err = tp.Stop()
	case "restart":
		err = tp.Restart()
	case "restart-node":
		var ports []int
		for _, a := range args[2:] {
			p, perr := strconv.Atoi(a)
			if perr != nil {
				return usage()
			}
			ports = append(ports, p)
		}
		if len(ports) == 0 {
			return usage()
		}
		err = tp.RestartNode(ports...)
	case "status":
		fmt.Print(tp.Describe())
		switch err := tp.Check(); {
		case err == nil:
			fmt.Fprintf(os.Stderr, "[topo] %s healthy\n", args[0])
			return 0
		case errors.Is(err, topology.ErrNotRunning):
			fmt.Fprintf(os.Stderr, "[topo] %s not running: %v\n", args[0], err)
			return 3
		default:
			fmt.Fprintf(os.Stderr, "[topo] %s DEGRADED: %v\n", args[0], err)
			return 1
		}
	default:
		return usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "[topo] ERROR: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "[topo] %s %s done in %v\n", args[0], args[1], time.Since(start).Round(time.Millisecond))
	if args[1] != "stop" {
		fmt.Print(tp.Describe())
	}
	return 0
}

func usage() int {
	fmt.Fprintln(os.Stderr, "usage: topo single|cluster|sentinel start|stop|status|restart|restart-node PORT...")
	return 2
}
