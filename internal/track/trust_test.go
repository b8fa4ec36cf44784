package track_test

import (
	"testing"

	"github.com/seshkit/sesh/internal/track"
)

const stale = 50 // MaxStale, in the tests' units of time

// TestTrust walks one node's trust through the changes of its tracking,
// with every time passed in, and checks at each step whether a fill may
// begin and whether an entry of each epoch is served.
func TestTrust(t *testing.T) {
	type check struct {
		at     int64
		fills  bool   // a fill may begin at `at`
		epoch  uint64 // the epoch it fills in, when it may
		serves map[uint64]bool
	}
	tests := []struct {
		name   string
		change func(tr *track.Trust)
		checks []check
	}{{
		name:   "a new trust serves nothing",
		change: func(tr *track.Trust) {},
		checks: []check{{at: 0, serves: map[uint64]bool{0: false}}},
	}, {
		name:   "tracking on serves for MaxStale from the subscription",
		change: func(tr *track.Trust) { tr.Up(100, 105, stale) },
		checks: []check{
			{at: 149, fills: true, epoch: 1, serves: map[uint64]bool{1: true, 0: false}},
			{at: 150, serves: map[uint64]bool{1: false}},
		},
	}, {
		name: "a heartbeat extends live to MaxStale after it was sent",
		change: func(tr *track.Trust) {
			tr.Up(100, 100, stale)
			tr.Heard(140, 145, stale)
		},
		checks: []check{{at: 189, fills: true, epoch: 1, serves: map[uint64]bool{1: true}}, {at: 190, serves: map[uint64]bool{1: false}}},
	}, {
		name: "a heartbeat sent before the epoch moved proves nothing",
		change: func(tr *track.Trust) {
			tr.Up(100, 100, stale)
			tr.Distrust(120)
			tr.Heard(110, 125, stale)
		},
		checks: []check{{at: 125, serves: map[uint64]bool{1: false, 3: false}}},
	}, {
		name: "a heartbeat sent after the epoch moved restores it",
		change: func(tr *track.Trust) {
			tr.Up(100, 100, stale)
			tr.Distrust(120)
			tr.Heard(121, 125, stale)
		},
		checks: []check{{at: 170, fills: true, epoch: 3, serves: map[uint64]bool{1: false, 3: true}}},
	}, {
		name: "a heartbeat sent after it was heard is ignored",
		change: func(tr *track.Trust) {
			tr.Up(100, 100, stale)
			tr.Heard(300, 140, stale)
		},
		checks: []check{{at: 150, serves: map[uint64]bool{1: false}}},
	}, {
		name: "a heartbeat while tracking is down is ignored",
		change: func(tr *track.Trust) {
			tr.Up(100, 100, stale)
			tr.Down(110)
			tr.Heard(120, 125, stale)
		},
		checks: []check{{at: 125, serves: map[uint64]bool{1: false, 2: false}}},
	}, {
		name: "a flush moves the epoch and keeps live",
		change: func(tr *track.Trust) {
			tr.Up(100, 100, stale)
			tr.Flush(120)
		},
		checks: []check{{at: 149, fills: true, epoch: 3, serves: map[uint64]bool{1: false, 3: true}}},
	}, {
		name: "tracking back on serves in a new epoch only",
		change: func(tr *track.Trust) {
			tr.Up(100, 100, stale)
			tr.Down(110)
			tr.Up(200, 200, stale)
		},
		checks: []check{{at: 210, fills: true, epoch: 3, serves: map[uint64]bool{1: false, 2: false, 3: true}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr track.Trust
			tt.change(&tr)
			for _, c := range tt.checks {
				epoch, ok := tr.Begin(c.at)
				if ok != c.fills || ok && epoch != c.epoch {
					t.Errorf("Begin(%d) = %d, %v; want %d, %v", c.at, epoch, ok, c.epoch, c.fills)
				}
				for e, want := range c.serves {
					if got := tr.Serves(e, c.at); got != want {
						t.Errorf("Serves(epoch %d, %d) = %v; want %v", e, c.at, got, want)
					}
				}
			}
		})
	}
}

// TestTrustEpochParity checks that tracking is up exactly while the epoch
// is odd, whatever moved it.
func TestTrustEpochParity(t *testing.T) {
	var tr track.Trust
	steps := []struct {
		name     string
		change   func()
		tracking bool
	}{
		{"new", func() {}, false},
		{"up", func() { tr.Up(0, 0, stale) }, true},
		{"flushed", func() { tr.Flush(1) }, true},
		{"distrusted", func() { tr.Distrust(2) }, true},
		{"down", func() { tr.Down(3) }, false},
		{"up again", func() { tr.Up(4, 4, stale) }, true},
	}
	for _, s := range steps {
		s.change()
		epoch, _ := tr.Begin(0)
		if tr.Tracking() != s.tracking || (epoch%2 == 1) != s.tracking {
			t.Errorf("%s: epoch %d, Tracking() = %v; want %v", s.name, epoch, tr.Tracking(), s.tracking)
		}
	}
}

// TestTrustUp checks that only the first up is reported first, and that a
// late heartbeat reports how late it came.
func TestTrustUp(t *testing.T) {
	var tr track.Trust
	if !tr.Up(0, 0, stale) {
		t.Error("first Up is not reported first")
	}
	if late, restored := tr.Heard(20, 30, stale); restored || late != -20 {
		t.Errorf("Heard in time = %d, %v; want -20, false", late, restored)
	}
	// live is 70 now; this one comes 20 late.
	if late, restored := tr.Heard(85, 90, stale); !restored || late != 20 {
		t.Errorf("late Heard = %d, %v; want 20, true", late, restored)
	}
	tr.Down(100)
	if tr.Up(110, 110, stale) {
		t.Error("second Up is reported first")
	}
}

// TestBypass checks the total time bypassed through a sequence of changes,
// a late heartbeat and a loss of tracking among them.
func TestBypass(t *testing.T) {
	var tr track.Trust
	steps := []struct {
		name     string
		change   func()
		at       int64
		bypassed bool
		total    int64
	}{
		{"before tracking is first up, nothing counts", func() {}, 40, true, 0},
		{"up: live until 50", func() { tr.Up(0, 0, stale) }, 40, false, 0},
		{"heartbeats late since 50", func() {}, 70, true, 20},
		{"heartbeat heard at 80: live until 125", func() { tr.Heard(75, 80, stale) }, 100, false, 30},
		{"tracking lost at 200, counted from 125", func() { tr.Down(200) }, 260, true, 30 + 75 + 60},
		{"up at 300", func() { tr.Up(300, 300, stale) }, 320, false, 30 + 75 + 100},
		{"flush keeps live", func() { tr.Flush(330) }, 340, false, 30 + 75 + 100},
		{"late since 350, distrust at 360", func() { tr.Distrust(360) }, 400, true, 30 + 75 + 100 + 10 + 40},
	}
	for _, s := range steps {
		s.change()
		bypassed, total := tr.Bypassed(s.at)
		if bypassed != s.bypassed || total != s.total {
			t.Errorf("%s: Bypassed(%d) = %v, %d; want %v, %d", s.name, s.at, bypassed, total, s.bypassed, s.total)
		}
	}
}
