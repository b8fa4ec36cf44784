package seshsentinel

import "github.com/gomodule/redigo/redis"

// WatchReadOnly wraps c as New's pool wraps the connections it dials.
func WatchReadOnly(c redis.Conn) redis.Conn { return &conn{Conn: c} }

// NotMaster reports whether err says that the server is not the master.
var NotMaster = notMaster
