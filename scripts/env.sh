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
emit SESH_CLUSTER_ADDRS "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103,127.0.0.1:7104,127.0.0.1:7105,127.0.0.1:7106"
emit SESH_SENTINEL_ADDRS "127.0.0.1:7211,127.0.0.1:7212,127.0.0.1:7213"
emit SESH_SENTINEL_MASTER "seshmaster"
emit SESH_RUN_DIR "${SESH_RUN_DIR:-/tmp/sesh-redis}"
