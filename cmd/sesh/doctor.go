package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Check statuses, from best to worst. skip is a check that does not apply
// to the topology, such as cluster state on a single Redis.
const (
	statusOK   = "ok"
	statusSkip = "skip"
	statusWarn = "warning"
	statusFail = "failure"
)

var statusRank = map[string]int{statusOK: 0, statusSkip: 0, statusWarn: 1, statusFail: 2}

// A finding is one check's outcome, on one server or summed over a
// Cluster's masters.
type finding struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	Node   string `json:"node,omitempty"` // on a Cluster, the master it is about
}

// doctorReport is what -json prints.
type doctorReport struct {
	Target string    `json:"target"`
	OK     bool      `json:"ok"`
	Checks []finding `json:"checks"`
}

// doctorOptions are the Options of the application, as far as the checks
// depend on them.
type doctorOptions struct {
	prefix string
	maxAge time.Duration
	track  bool
}

// The checks, in the order they print.
const (
	checkConnect  = "connect"
	checkVersion  = "version"
	checkEviction = "eviction"
	checkTracking = "tracking"
	checkACL      = "acl"
	checkReplicas = "replicas"
	checkCluster  = "cluster"
	checkLatency  = "latency"
	checkClock    = "clock"
)

var checkOrder = []string{checkConnect, checkVersion, checkEviction, checkTracking, checkACL, checkReplicas, checkCluster, checkLatency, checkClock}

// Thresholds beyond which a check warns.
const (
	slowPing     = 5 * time.Millisecond
	maxSkew      = time.Second
	maxLag       = time.Second
	pings        = 5
	doctorBudget = 30 * time.Second
)

func (c *cli) doctor(ctx context.Context, args []string) int {
	var (
		tf     targetFlags
		o      doctorOptions
		asJSON bool
	)
	fs := c.flags("doctor", "[flags]",
		`Doctor checks a deployment against what sesh needs, and prints one line
per check: ok, skip (does not apply here), warning or failure, with the fix.
It checks the Redis version, the maxmemory-policy, whether CLIENT TRACKING
can be turned on (for CacheSize), the connecting user's ACL permissions for
every command sesh sends, the replicas and their lag (for Replicas), the
cluster state and slot coverage, the round-trip latency, and the skew
between this machine's clock and Redis's. On a Cluster every master is
checked, and a line gives the worst. It writes nothing, and turns tracking
on only on a connection of its own, which it closes.

The exit status is 0 when no check fails, 1 when one does, 2 for a usage
error. -prefix, -maxage and -track-users should match the application's
Options: the verdicts on eviction and ACLs depend on them.
`+targetAbout,
		"\tsesh doctor -redis redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster -track-users")
	tf.register(fs, "")
	fs.StringVar(&o.prefix, "prefix", "sesh", "key `prefix`, as in Options.Prefix (for the ACL key patterns)")
	fs.DurationVar(&o.maxAge, "maxage", 0, "absolute lifetime, as in Options.MaxAge; 0 means none")
	fs.BoolVar(&o.track, "track-users", false, "the application uses Options.TrackUsers")
	fs.BoolVar(&asJSON, "json", false, "print a JSON object instead of lines")
	if _, status, ok := c.parse(fs, args, 0); !ok {
		return status
	}
	if !tf.given() {
		return c.usage(fs, "doctor needs a Redis server: pass -redis URL or -cluster ADDRS, or set SESH_REDIS_URL")
	}
	t, err := tf.target()
	if err != nil {
		return c.usage(fs, "doctor: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, doctorBudget)
	defer cancel()
	r := doctorReport{Target: t.String(), Checks: diagnose(ctx, t, o)}
	r.OK = !slices.ContainsFunc(r.Checks, func(f finding) bool { return f.Status == statusFail })
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printFindings(c.stdout, r)
	}
	if !r.OK {
		return exitCheckFailed
	}
	return exitOK
}

func printFindings(w io.Writer, r doctorReport) {
	fmt.Fprintf(w, "sesh doctor: %s\n", r.Target)
	for _, f := range r.Checks {
		line := fmt.Sprintf("%-8s %-9s %s", f.Status, f.Check, f.Detail)
		if f.Node != "" {
			line += " [" + f.Node + "]"
		}
		if f.Fix != "" {
			line += "; fix: " + f.Fix
		}
		fmt.Fprintln(w, line)
	}
}

// diagnose runs every check on t.
func diagnose(ctx context.Context, t target, o doctorOptions) []finding {
	b, err := t.open()
	if err == nil {
		defer b.close()
		err = b.ping(ctx)
	}
	if err != nil {
		return []finding{{Check: checkConnect, Status: statusFail, Detail: err.Error(),
			Fix: "check the address, the credentials and that Redis is up"}}
	}
	masters := 0
	var perNode [][]finding
	err = b.eachMaster(ctx, func(addr string, conn redis.Conn) error {
		masters++
		fs := diagnoseNode(conn, t.kind, o)
		if t.kind == kindCluster {
			// The cache tracks every master, each on a connection of its own.
			fs = append(fs, trackingOn(conn, o))
			for i := range fs {
				fs[i].Node = addr
			}
		}
		perNode = append(perNode, fs)
		return nil
	})
	if err != nil {
		return []finding{{Check: checkConnect, Status: statusFail, Detail: err.Error(),
			Fix: "check that every master is up"}}
	}
	what := "connected to " + t.String()
	if t.kind == kindCluster {
		what = fmt.Sprintf("%s, %d masters", what, masters)
	}
	out := []finding{{Check: checkConnect, Status: statusOK, Detail: what}}
	out = append(out, worst(perNode)...)
	if t.kind != kindCluster {
		out = append(out, trackingCheck(ctx, t, o))
	}
	slices.SortStableFunc(out, func(a, b finding) int {
		return slices.Index(checkOrder, a.Check) - slices.Index(checkOrder, b.Check)
	})
	return out
}

// worst merges the findings of each master into one per check: the worst,
// or, when all are ok, the first with the count of masters.
func worst(perNode [][]finding) []finding {
	if len(perNode) == 1 {
		for i := range perNode[0] {
			perNode[0][i].Node = ""
		}
		return perNode[0]
	}
	var out []finding
	for i := range perNode[0] {
		w := perNode[0][i]
		for _, fs := range perNode[1:] {
			if statusRank[fs[i].Status] > statusRank[w.Status] {
				w = fs[i]
			}
		}
		if w.Status == statusOK || w.Status == statusSkip {
			w.Node = fmt.Sprintf("%s shown; all %d masters %s", w.Node, len(perNode), w.Status)
		}
		out = append(out, w)
	}
	return out
}

// diagnoseNode runs the checks that read one master, in a fixed order.
func diagnoseNode(conn redis.Conn, kind string, o doctorOptions) []finding {
	info := func(section string) map[string]string {
		s, err := redis.String(conn.Do("INFO", section))
		if err != nil {
			return nil
		}
		return parseInfo(s)
	}
	server, memory, repl := info("server"), info("memory"), info("replication")
	version := server["redis_version"]
	return []finding{
		versionCheck(version, kind),
		evictionCheck(memory, o),
		aclCheck(conn, version, o),
		replicasCheck(repl),
		clusterCheck(conn, kind),
		latencyCheck(conn),
		clockCheck(conn),
	}
}
