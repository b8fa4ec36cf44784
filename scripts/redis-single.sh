#!/usr/bin/env bash
# The single topology of sesh's real-Redis tests, on loopback ports, under ${SESH_RUN_DIR:-/tmp/sesh-redis}.
# What it is and how it is tended: internal/topology (single.go); this wraps its command.
# Usage: scripts/redis-single.sh start | stop | status | restart | restart-node PORT...
set -euo pipefail
SESH_LOG_TAG=redis-single
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"
[ "${1:-}" = stop ] || [ "${1:-}" = status ] || ensure_redis
topo single "$@"
