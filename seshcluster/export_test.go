package seshcluster

// KeyOf exposes the key a command is routed by.
var KeyOf = keyOf
