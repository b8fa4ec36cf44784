package sesh

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
