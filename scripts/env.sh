#!/usr/bin/env bash
# Prints the environment the real-Redis tests read, for:  eval "$(scripts/env.sh)"
# The servers themselves come from scripts/redis-single.sh, redis-cluster.sh, redis-sentinel.sh.
#   SESH_REDIS_URL        standalone Redis, database 15 (tests use unique key prefixes; never flushed)
#   SESH_CLUSTER_ADDRS    the 6 Redis Cluster nodes (3 masters + 3 replicas)
#   SESH_SENTINEL_ADDRS   the 3 sentinels
#   SESH_SENTINEL_MASTER  the master name they monitor
#   SESH_RUN_DIR          where the topologies live (internal/topology reads it too):
#                         $SESH_RUN_DIR/cluster/PORT/, $SESH_RUN_DIR/sentinel/PORT/
set -euo pipefail


# emit NAME VALUE: one export line, single-quoted so any eval-ing shell reads VALUE back verbatim.
emit() {
	local q="'\\''"
	printf "export %s='%s'\n" "$1" "${2//\'/$q}"
}

emit SESH_REDIS_URL "redis://127.0.0.1:6379/15"
# SESH_PORT_OFFSET (internal/topology reads it too) moves the Cluster and Sentinel ports, for a
# second copy of them beside the first.
o=${SESH_PORT_OFFSET:-0}
addrs() { local a="" p; for p in "$@"; do a="$a${a:+,}127.0.0.1:$((p + o))"; done; printf '%s' "$a"; }
emit SESH_CLUSTER_ADDRS "$(addrs 7101 7102 7103 7104 7105 7106)"
emit SESH_SENTINEL_ADDRS "$(addrs 7211 7212 7213)"
emit SESH_SENTINEL_MASTER "seshmaster"
emit SESH_RUN_DIR "${SESH_RUN_DIR:-/tmp/sesh-redis}"
