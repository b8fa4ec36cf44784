package sesh

import "log/slog"

// The rare events an operator must see go to Options.Logger. None is logged
// per request, and none carries a token, a key or a user ID.

// logger returns o.Logger, or one that discards.
func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// logLockWait logs a Rotate that waits for a DieAll of its user.
func (s *Store) logLockWait() {
	s.log.Info("sesh: rotate: waiting for a DieAll of the same user to end")
}
