#!/usr/bin/env bash
# One command for developers: run the whole test suite against real Redis servers.
#   - installs redis-server / redis-tools when missing (apt-get)
#   - ensures standalone Redis on 127.0.0.1:6379, starts the Cluster (7101-7106) and the
#     Sentinel setup (7201-7202 + sentinels 7211-7213), exports scripts/env.sh
#   - runs `go test -race -count=1 ./...` in the repo root, then in the nested modules ./seshotel and ./bench
#   - stops the Cluster and Sentinel setup at exit (and a 6379 Redis only if it started it),
#     unless SESH_KEEP=1
# Extra arguments go to every `go test` run, e.g.  scripts/test-real.sh -run Cluster -v
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd -P)
SESH_LOG_TAG=test-real
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

command -v go >/dev/null 2>&1 || die "go is not on PATH"
ensure_redis
# -race needs cgo, hence a C compiler.
if ! command -v gcc >/dev/null 2>&1; then apt_install gcc libc6-dev; fi

cleanup() {
	local rc=$?
	if [ "${SESH_KEEP:-0}" = 1 ]; then
		log "SESH_KEEP=1: leaving the servers running; stop them with:"
		log "  $SCRIPT_DIR/redis-cluster.sh stop; $SCRIPT_DIR/redis-sentinel.sh stop; $SCRIPT_DIR/redis-single.sh stop"
	else
		stop_services
	fi
	if [ "$rc" -eq 0 ]; then log "PASS"; else log "FAIL (exit $rc)"; fi
	exit "$rc"
}
trap cleanup EXIT

t0=$(now_ms)
start_services
log "servers ready in $(elapsed "$t0")"

eval "$(bash "$SCRIPT_DIR/env.sh")"

cd "$ROOT"
log "go test -race -count=1 ./... $* (in $ROOT)"
go test -race -count=1 ./... "$@"
# go.work builds the nested modules against this tree; `go test ./...` above covers the root only.
for mod in seshotel bench; do
	log "go test -race -count=1 ./... $* (in $ROOT/$mod)"
	(cd "$mod" && go test -race -count=1 ./... "$@")
done
