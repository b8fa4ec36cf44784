package wire

import "sync/atomic"

// ShareAlways, while true, makes the Lanes that New returns give a lane to
// every operation that may share one, even to an operation alone in
// flight, which otherwise takes a connection of its own. It lets a test
// that runs one operation at a time exercise the lanes. Only sesh's own
// tests set it.
var ShareAlways atomic.Bool
