package sesh

import "context"

// TokenStore is what an application calls on a [Store] or a [Crypt]: both
// satisfy it, so code written against TokenStore works with encryption on
// or off. Each method has the contract documented on Store.
//
// seshhttp's Getter is the smaller interface that request handling needs.
type TokenStore interface {
	// Set issues a new token for userID; see [Store.Set].
	Set(ctx context.Context, userID string) (string, error)
	// Get returns the user ID of a live token; see [Store.Get].
	Get(ctx context.Context, token string) (string, error)
	// Liv restarts a live token's idle TTL; see [Store.Liv].
	Liv(ctx context.Context, token string) error
	// Die ends a token; see [Store.Die].
	Die(ctx context.Context, token string) error
	// Rotate replaces a token with a fresh one; see [Store.Rotate].
	Rotate(ctx context.Context, token string) (string, error)
	// DieAll ends every live token of userID; see [Store.DieAll].
	DieAll(ctx context.Context, userID string) (int, error)
	// Count returns how many live tokens userID has; see [Store.Count].
	Count(ctx context.Context, userID string) (int, error)
	// Stats returns a snapshot of the counters; see [Store.Stats].
	Stats() Stats
	// Close releases what the Store holds; see [Store.Close].
	Close() error
}

var (
	_ TokenStore = (*Store)(nil)
	_ TokenStore = (*Crypt)(nil)
)
