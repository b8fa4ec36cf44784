package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPrintTable(t *testing.T) {
	r := report{
		Topology: "cluster", Config: "cache", Duration: 10 * time.Second,
		Calls:          map[string]int{"get": 9000, "set": 1000},
		Events:         []event{{Fault: "kill-master", Outage: 1400 * time.Millisecond}, {Fault: "oom", Outage: 8 * time.Millisecond}, {Fault: "kill-master", Outage: 900 * time.Millisecond}, {Fault: "sigstop", Err: "no pid"}},
		Checked:        map[string]int{"overrun": 10000},
		Violations:     []violation{{Rule: "after-end"}},
		WithinCacheLag: 3,
	}
	b, _ := json.Marshal(r)
	f := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := printTable(&out, &errOut, []string{f}); code != 0 {
		t.Fatalf("printTable = %d: %s", code, errOut.String())
	}
	want := "| cluster | cache | 1,000 | 4 | kill-master 1.4s, oom 8ms | 10,000 | 3 | 1 |"
	if !strings.Contains(out.String(), want) {
		t.Errorf("table:\n%s\nwant a row %s", out.String(), want)
	}
	if code := printTable(&out, &errOut, []string{filepath.Join(t.TempDir(), "none.json")}); code != 1 {
		t.Errorf("printTable of a missing file = %d, want 1", code)
	}
}
