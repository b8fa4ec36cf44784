package seshcluster

import "github.com/seshkit/sesh/internal/wire"

// KeyOf exposes the key a command is routed by.
var KeyOf = wire.KeyOf
