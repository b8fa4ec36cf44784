package seshsentinel

import "github.com/gomodule/redigo/redis"

// WatchReadOnly wraps c as New's pool wraps the connections it dials.
func WatchReadOnly(c redis.Conn) redis.Conn { return &conn{Conn: c} }

// ReadOnly exposes the check that a reply is a replica refusing a write.
func ReadOnly(err error) bool { return readOnly(err) }
