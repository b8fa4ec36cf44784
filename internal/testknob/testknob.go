// Package testknob holds settings that only sesh's own tests change.
package testknob

import "sync/atomic"

// ShareAlways, while true, makes each Store that sesh.New returns give a
// shared connection (auto-pipelining) to every operation that may share
// one, even to an operation alone in flight, which otherwise takes a
// connection of its own. It lets a test that runs one operation at a time
// exercise the shared path.
var ShareAlways atomic.Bool
