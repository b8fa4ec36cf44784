package seshhttp

// Bearer exposes the parser of Authorization field values.
var Bearer = bearer
