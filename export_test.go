package sesh

import "time"

// Internals for the black-box tests in package sesh_test.

// TokenKey exposes token parsing: the Redis key of token, or false.
func TokenKey(s *Store, token string) (string, bool) { return s.tokenKey(token) }

// Open exposes Crypt's decryption of a stored value under a Redis key.
func Open(c *Crypt, key, value string) (string, error) { return c.open(key, value) }

// Seal exposes Crypt's encryption of a user ID under a Redis key.
func Seal(c *Crypt, key, userID string) (string, error) { return c.seal(key, userID) }

// ParseURL exposes NewPool's URL parsing.
func ParseURL(rawurl string) (network, addr string, err error) {
	network, addr, _, err = parseURL(rawurl)
	return network, addr, err
}

// SetLaneLife sets how long the lanes of s take and write calls; call it
// before the first operation.
func SetLaneLife(s *Store, d time.Duration) {
	if s.batch != nil {
		s.batch.SetLife(d)
	}
}

// OldestLane returns the age of the oldest lane that wrote a batch.
func OldestLane(s *Store) time.Duration {
	if s.batch == nil {
		return 0
	}
	return s.batch.Oldest()
}

// Queued returns how many calls wait, unwritten, on the lanes of s.
func Queued(s *Store) int {
	if s.batch == nil {
		return 0
	}
	return s.batch.Queued()
}

// WaitCleanups waits for the cleanups of s that wait for the round trip
// they undo.
func WaitCleanups(s *Store) { s.later.Wait() }
