package sesh

import (
	"errors"
	"fmt"
)

// maxUserID is the longest user ID Set accepts, in bytes.
const maxUserID = 1024

// ErrInvalidUser is returned, wrapped with the operation's name, by Set,
// DieAll and Count for a user ID that no token can have: an empty one, or
// one longer than 1,024 bytes. It is returned before any round trip to
// Redis, so an application can tell bad input from a failing Redis:
//
//	if errors.Is(err, sesh.ErrInvalidUser) { // 400, not 503
//
// Any other byte string is a valid user ID: sesh stores it as it is.
var ErrInvalidUser = errors.New("sesh: invalid user ID")

// checkUserID returns an error wrapping ErrInvalidUser when no token can
// have userID.
func checkUserID(op, userID string) error {
	switch {
	case userID == "":
		return wrap(op, fmt.Errorf("%w: it is empty", ErrInvalidUser))
	case len(userID) > maxUserID:
		return wrap(op, fmt.Errorf("%w: it is %d bytes, more than %d", ErrInvalidUser, len(userID), maxUserID))
	}
	return nil
}
