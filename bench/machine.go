package bench

import (
	"os"
	"strconv"
	"strings"
)

// CPUSample is a reading of Linux's CPU accounting: the machine's busy
// and total time, and the time of the processes under test, in clock ticks.
type CPUSample struct {
	busy, total, ours uint64
	ok                bool
}

// SampleCPU reads /proc for the machine and for pids (this process and, when
// they run here, the redis-servers). It returns a sample that OthersCores
// cannot use where there is no /proc.
func SampleCPU(pids ...int) CPUSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return CPUSample{}
	}
	var s CPUSample
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already in user and nice, and steal is other machines'.
	for i, v := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseUint(v, 10, 64)
		s.total += n
		if i != 3 && i != 4 {
			s.busy += n
		}
	}
	for _, pid := range pids {
		s.ours += procTicks(pid)
	}
	s.ok = true
	return s
}

// procTicks is a process's user and system time, or 0 when it is not here.
func procTicks(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return utime + stime
}

// LocalRedisPID returns pid when it names a redis-server on this machine,
// and 0 otherwise: a remote server's process ID means nothing here.
func LocalRedisPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(b)), "redis-server") {
		return 0
	}
	return pid
}

// OthersCores is how many of cpus, on average, processes other than ours
// kept busy between a and b; -1 when it cannot be told.
func OthersCores(a, b CPUSample, cpus int) float64 {
	if !a.ok || !b.ok || b.total <= a.total {
		return -1
	}
	busy := float64(b.busy-a.busy) - float64(b.ours-a.ours)
	return max(busy, 0) / float64(b.total-a.total) * float64(cpus)
}
