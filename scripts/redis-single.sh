#!/usr/bin/env bash
# Makes sure a standalone Redis answers on 127.0.0.1:6379 (tests use database 15 there, with
# unique key prefixes; nothing here ever flushes it).
#
# Usage: scripts/redis-single.sh start | stop | status
#   start   if something answers PING on 6379 already (e.g. the system Redis), uses it and exits 0;
#           otherwise starts one (no persistence, bound to 127.0.0.1 and ::1 when available) with
#           its pid file under ${SESH_RUN_DIR:-/tmp/sesh-redis}/single and waits until it answers.
#   stop    stops only a server this script started (recorded in its own pid file); a Redis
#           that was already running is never touched.
#   status  exit 0 when 6379 answers, 3 otherwise.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
SESH_LOG_TAG=redis-single
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

# SESH_SINGLE_PORT exists only to exercise this script on a machine where 6379 is busy.
PORT="${SESH_SINGLE_PORT:-6379}"
DIR="$SESH_RUN_DIR/single"
PIDFILE="$DIR/redis.pid"

cmd_start() {
	local t0
	ensure_redis
	if is_up "$PORT"; then
		if pidfile_pid "$PIDFILE" "$PORT" >/dev/null; then
			log "redis on 127.0.0.1:$PORT already running (started by this script)"
		else
			log "redis on 127.0.0.1:$PORT already answering (not started by this script; left alone)"
		fi
		return 0
	fi
	t0=$(now_ms)
	rm -rf "$DIR"
	mkdir -p "$DIR"
	# "-::1": bind ::1 too when the machine has IPv6, without failing when it does not.
	# Startup errors (before daemonizing) go to the same log, which Redis opens in append mode.
	# shellcheck disable=SC2094
	if ! redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$PORT" --save "" --appendonly no \
		--dir "$DIR" --pidfile "$PIDFILE" --logfile "$DIR/redis.log" >>"$DIR/redis.log" 2>&1; then
		tail_logs "$DIR/redis.log"
		die "redis-server failed to start on port $PORT"
	fi
	if ! wait_for 15 "redis on 127.0.0.1:$PORT" is_up "$PORT"; then
		tail_logs "$DIR/redis.log"
		die "redis on 127.0.0.1:$PORT did not come up"
	fi
	log "started redis on 127.0.0.1:$PORT in $(elapsed "$t0") (pid $(cat "$PIDFILE"))"
}

cmd_stop() {
	local pid
	if pid=$(pidfile_pid "$PIDFILE" "$PORT"); then
		log "stopping redis on 127.0.0.1:$PORT (pid $pid, started by this script)"
		kill_pids "$pid"
		rm -rf "$DIR"
	else
		log "no redis started by this script on 127.0.0.1:$PORT; nothing to stop"
		rm -rf "$DIR"
	fi
}

cmd_status() {
	if is_up "$PORT"; then
		if pidfile_pid "$PIDFILE" "$PORT" >/dev/null; then
			log "redis on 127.0.0.1:$PORT is up (started by this script)"
		else
			log "redis on 127.0.0.1:$PORT is up (not started by this script)"
		fi
		return 0
	fi
	log "nothing answers on 127.0.0.1:$PORT"
	return 3
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
