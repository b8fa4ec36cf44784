module github.com/seshkit/sesh

go 1.24.0

require (
	github.com/FZambia/sentinel v1.1.1
	github.com/alicebob/miniredis/v2 v2.40.0
	github.com/gomodule/redigo v1.9.3
	github.com/mna/redisc v1.4.0
	golang.org/x/mod v0.33.0
	golang.org/x/term v0.40.0
)

require (
	github.com/yuin/gopher-lua v1.1.1 // indirect
	golang.org/x/sys v0.41.0 // indirect
)
