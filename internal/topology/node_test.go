package topology

import "testing"

func TestFieldsAndExpect(t *testing.T) {
	info := fields("# Replication\r\nrole:slave\r\nmaster_port:7201\r\nmaster_link_status:up\r\n", ":")
	if info["role"] != "slave" || info["master_port"] != "7201" || info["master_link_status"] != "up" {
		t.Fatalf("fields = %v", info)
	}
	if err := expect("n", info, "role", "slave", "master_link_status", "up"); err != nil {
		t.Fatal(err)
	}
	err := expect("n", info, "role", "slave", "master_link_status", "down")
	if err == nil || err.Error() != "n: master_link_status=up, want down" {
		t.Fatalf("expect = %v", err)
	}
	if err := expect("n", info, "cluster_state", "ok"); err == nil {
		t.Fatal("a missing field passed")
	}
	m := pairs([]any{[]byte("flags"), []byte("master"), []byte("num-slaves"), []byte("1")}, nil)
	if m["flags"] != "master" || m["num-slaves"] != "1" {
		t.Fatalf("pairs = %v", m)
	}
	if pairs(nil, ErrNotRunning) != nil {
		t.Fatal("pairs of an error is not nil")
	}
}

func TestByName(t *testing.T) {
	for _, n := range []string{"single", "cluster", "sentinel"} {
		if _, ok := ByName(n); !ok {
			t.Errorf("ByName(%q) not found", n)
		}
	}
	if _, ok := ByName("mesh"); ok {
		t.Error("ByName(mesh) found")
	}
	if got := len(Cluster.Addrs()); got != 6 {
		t.Errorf("the Cluster has %d nodes, want 6", got)
	}
	if got := len(Sentinel.Addrs()); got != 5 {
		t.Errorf("the Sentinel setup has %d processes, want 5", got)
	}
}
