package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
)

// doctor runs sesh doctor -json with args and returns its exit status and
// its findings by check.
func doctor(t *testing.T, args ...string) (int, map[string]finding, string) {
	t.Helper()
	status, out, errOut := runSesh(t, "", append([]string{"doctor", "-json"}, args...)...)
	var r doctorReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor -json exited %d and printed no report (%v):\n%s%s", status, err, out, errOut)
	}
	byCheck := make(map[string]finding)
	for _, f := range r.Checks {
		byCheck[f.Check] = f
	}
	if r.OK != (status == exitOK) {
		t.Errorf("doctor says ok %v but exits %d", r.OK, status)
	}
	return status, byCheck, out + errOut
}

func TestDoctorPassesOnEveryTopology(t *testing.T) {
	for _, tp := range topologies(t) {
		t.Run(tp.name, func(t *testing.T) {
			status, checks, out := doctor(t, tp.flags...)
			if status != exitOK {
				t.Fatalf("doctor exited %d on a healthy %s:\n%s", status, tp.name, out)
			}
			for _, c := range checkOrder {
				if _, ok := checks[c]; !ok {
					t.Errorf("no %s check:\n%s", c, out)
				}
			}
			cluster, tracking := statusSkip, statusOK
			if strings.HasPrefix(tp.name, "cluster") {
				cluster = statusOK // and tracking is checked on every master
			}
			for check, want := range map[string]string{
				checkVersion:  statusOK,
				checkEviction: statusOK,
				checkACL:      statusOK,
				checkCluster:  cluster,
				checkTracking: tracking,
			} {
				if got := checks[check]; got.Status != want {
					t.Errorf("%s: %s (%s); want %s", check, got.Status, got.Detail, want)
				}
			}
			if tp.name != "single" && checks[checkReplicas].Status != statusOK {
				t.Errorf("replicas: %+v; want ok: every master of the %s has a replica", checks[checkReplicas], tp.name)
			}
		})
	}
}

func TestDoctorPrintsOneLinePerCheck(t *testing.T) {
	tps := topologies(t)
	status, out, errOut := runSesh(t, "", append([]string{"doctor"}, tps[0].flags...)...)
	if status != exitOK {
		t.Fatalf("doctor exited %d:\n%s%s", status, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+len(checkOrder) {
		t.Fatalf("doctor printed %d lines, want a heading and %d checks:\n%s", len(lines), len(checkOrder), out)
	}
	for i, c := range checkOrder {
		if f := strings.Fields(lines[i+1]); len(f) < 3 || f[1] != c {
			t.Errorf("line %d is %q, want the %s check", i+2, lines[i+1], c)
		}
	}
}

// TestDoctorEviction runs doctor on a private server whose policy may
// evict: fatal for TrackUsers, a warning for plain tokens.
func TestDoctorEviction(t *testing.T) {
	url := "redis://" + privateServer(t, "--maxmemory-policy", "allkeys-lru")
	cleanEnv(t)
	for _, c := range []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"TrackUsers fails", []string{"-track-users"}, exitCheckFailed, statusFail},
		{"plain tokens warn", nil, exitOK, statusWarn},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, checks, out := doctor(t, append([]string{"-redis", url}, c.args...)...)
			f := checks[checkEviction]
			if status != c.status || f.Status != c.want || !strings.Contains(f.Detail, "allkeys-lru") || !strings.Contains(f.Fix, "noeviction") {
				t.Errorf("status %d, eviction %+v; want %d, a %s naming allkeys-lru and noeviction:\n%s", status, f, c.status, c.want, out)
			}
		})
	}
}

// TestDoctorACL runs doctor as users that lack a command sesh needs, or the
// ACL commands doctor asks with.
func TestDoctorACL(t *testing.T) {
	const secret = "S3CRETPW"
	addr := privateServer(t)
	cleanEnv(t)
	c, err := redis.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, setuser := range [][]any{
		{"nopexpire", "on", ">" + secret, "~*", "&*", "+@all", "-pexpire"},
		{"nowait", "on", ">" + secret, "~*", "&*", "+@all", "-wait"},
		{"noacl", "on", ">" + secret, "~*", "&*", "+@all", "-acl"},
	} {
		if _, err := c.Do("ACL", append([]any{"SETUSER"}, setuser...)...); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		user   string
		status int
		want   string
		names  string
	}{
		{"nopexpire", exitCheckFailed, statusFail, "pexpire (every Store)"},
		{"nowait", exitOK, statusWarn, "wait (Replicas)"},
		{"noacl", exitOK, statusWarn, "ACL WHOAMI refused"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			status, checks, out := doctor(t, "-redis", "redis://"+tc.user+":"+secret+"@"+addr)
			f := checks[checkACL]
			if status != tc.status || f.Status != tc.want || !strings.Contains(f.Detail, tc.names) {
				t.Errorf("status %d, acl %+v; want %d and a %s naming %q:\n%s", status, f, tc.status, tc.want, tc.names, out)
			}
			if strings.Contains(out, secret[:4]) {
				t.Errorf("doctor shows the password:\n%s", out)
			}
		})
	}
}

func TestDoctorFailsOnAnUnreachableServer(t *testing.T) {
	cleanEnv(t)
	mr, url := server(t)
	mr.Close()
	status, checks, out := doctor(t, "-redis", url)
	if status != exitCheckFailed || checks[checkConnect].Status != statusFail || len(checks) != 1 {
		t.Errorf("status %d, checks %+v; want 1 and a single failed connect:\n%s", status, checks, out)
	}
}

func TestDoctorUsage(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{
		{"doctor"},
		{"doctor", "-redis", "10.0.0.1:6379,10.0.0.2:6379"},
		{"doctor", "-redis", "redis+cluster://10.0.0.1:6379/2"},
		{"doctor", "extra"},
	} {
		if status, out, errOut := runSesh(t, "", args...); status != exitUsage || out != "" || !strings.HasPrefix(errOut, "sesh: ") {
			t.Errorf("sesh %s: status %d, stdout %q, stderr %q; want 2 and a sesh: line", strings.Join(args, " "), status, out, errOut)
		}
	}
}

// TestWorstMasterSpeaksForTheCluster merges the findings of three masters.
func TestWorstMasterSpeaksForTheCluster(t *testing.T) {
	node := func(addr, status string) []finding {
		return []finding{
			{Check: checkVersion, Status: statusOK, Detail: "v " + addr, Node: addr},
			{Check: checkEviction, Status: status, Detail: "e " + addr, Node: addr},
		}
	}
	got := worst([][]finding{node("a", statusOK), node("b", statusFail), node("c", statusWarn)})
	if len(got) != 2 {
		t.Fatalf("worst gave %d findings, want 2: %+v", len(got), got)
	}
	if f := got[0]; f.Status != statusOK || f.Detail != "v a" || f.Node != "a shown; all 3 masters ok" {
		t.Errorf("all ok: %+v; want the first master's, saying all are ok", f)
	}
	if f := got[1]; f.Status != statusFail || f.Detail != "e b" || f.Node != "b" {
		t.Errorf("one failing: %+v; want the failing master's", f)
	}
	if one := worst([][]finding{node("a", statusWarn)}); one[1].Node != "" || one[1].Status != statusWarn {
		t.Errorf("one server: %+v; want its findings without a node", one)
	}
}
