# shellcheck shell=bash
# Shared helpers for the scripts/redis-*.sh service scripts. Source it; do not run it.
#
# Everything here binds to 127.0.0.1 only and keeps its state under
# ${SESH_RUN_DIR:-/tmp/sesh-redis}.

SESH_RUN_DIR="${SESH_RUN_DIR:-/tmp/sesh-redis}"
# Seconds a `start` / `restart-node` waits for a healthy topology before failing.
SESH_START_TIMEOUT="${SESH_START_TIMEOUT:-60}"

SESH_LOG_TAG="${SESH_LOG_TAG:-sesh}"

log() { printf '[%s] %s\n' "$SESH_LOG_TAG" "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "$SESH_LOG_TAG" "$*" >&2
	exit 1
}

# now_ms: milliseconds since the epoch (GNU date).
now_ms() { date +%s%3N; }

# elapsed SINCE_MS: "1.234s" since SINCE_MS.
elapsed() {
	local d=$(($(now_ms) - $1))
	printf '%d.%03ds' $((d / 1000)) $((d % 1000))
}

# as_root CMD...: run CMD as root (directly when we are root, else via non-interactive sudo).
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# apt_install PKG...: install Debian packages, non-interactively, after an apt-get update.
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these packages by hand: $*"
	log "installing Debian packages: $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2 ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null >&2 ||
		die "apt-get install $* failed"
}

# ensure_redis: make sure redis-server and redis-cli exist (installs redis-server + redis-tools).
ensure_redis() {
	if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
		return 0
	fi
	apt_install redis-server redis-tools
	command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after install"
	command -v redis-cli >/dev/null 2>&1 || die "redis-cli still missing after install"
}

# rcli PORT ARGS...: redis-cli against 127.0.0.1:PORT, raw output without CRs, bounded in time.
rcli() {
	local port=$1
	shift
	timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" </dev/null 2>/dev/null | tr -d '\r'
}

# is_up PORT: true when something on 127.0.0.1:PORT answers PING with PONG.
is_up() { [ "$(rcli "$1" ping)" = "PONG" ]; }

# info_field PORT SECTION FIELD: one field of INFO SECTION.
info_field() {
	rcli "$1" info "$2" | awk -F: -v f="$3" '$1 == f { print $2; exit }'
}

# pid_matches PID PORT: true when PID is a live redis-server serving PORT.
# (Redis sets its process title to "redis-server 127.0.0.1:PORT [...]".)
pid_matches() {
	local pid=$1 port=$2
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "redis-(server|sentinel).*:${port}( |$)"
}

# pidfile_pid PIDFILE PORT: print the pid recorded in PIDFILE when it is still the redis on PORT.
pidfile_pid() {
	local pidfile=$1 port=$2 pid=""
	[ -s "$pidfile" ] || return 1
	read -r pid <"$pidfile" || true
	pid_matches "$pid" "$port" || return 1
	printf '%s\n' "$pid"
}

# wait_pids_gone SECONDS PID...: wait until none of the PIDs exists; false on timeout.
wait_pids_gone() {
	local deadline=$(($(now_ms) + $1 * 1000)) pid alive
	shift
	while :; do
		alive=0
		for pid in "$@"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		[ "$alive" -eq 0 ] && return 0
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# kill_pids PID...: SIGTERM, wait up to 5s, then SIGKILL what is left.
kill_pids() {
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null || true
	if ! wait_pids_gone 5 "$@"; then
		log "some processes ignored SIGTERM; sending SIGKILL: $*"
		kill -KILL "$@" 2>/dev/null || true
		wait_pids_gone 5 "$@" || true
	fi
}

# evict_stale PATTERN PORT...: a Redis still answering on one of our PORTs after we stopped our own
# processes is a leftover of an earlier run (e.g. one with another SESH_RUN_DIR). Stop it when its
# config file path matches PATTERN (a grep -E regex: one of ours). A Redis we did not start is left
# alone with a warning; ports_free then refuses to start over it.
evict_stale() {
	local pattern=$1 port conf pid pids=()
	shift
	for port in "$@"; do
		is_up "$port" || continue
		conf=$(info_field "$port" server config_file)
		pid=$(info_field "$port" server process_id)
		if ! printf '%s' "$conf" | grep -Eq "$pattern"; then
			log "WARNING: port $port is used by a Redis these scripts did not start (pid ${pid:-?}, config_file '${conf}'); leaving it alone"
			continue
		fi
		log "stopping stale redis on port $port (pid $pid, config $conf)"
		if pid_matches "$pid" "$port"; then
			pids+=("$pid")
		else
			rcli "$port" shutdown nosave >/dev/null || true
		fi
	done
	kill_pids "${pids[@]}"
}

# ports_free PORT...: fail loudly when anything answers on one of the PORTs.
ports_free() {
	local port
	for port in "$@"; do
		if is_up "$port"; then
			die "port $port is in use by a Redis these scripts did not start (pid $(info_field "$port" server process_id), config_file '$(info_field "$port" server config_file)'); stop it or free the port"
		fi
	done
}

# wait_for SECONDS DESCRIPTION FUNC ARGS...: poll FUNC ARGS every 0.2s until it succeeds.
# On timeout prints FUNC's last complaint (its stdout) and returns 1.
wait_for() {
	local secs=$1 what=$2 deadline out
	shift 2
	deadline=$(($(now_ms) + secs * 1000))
	while :; do
		if out=$("$@" 2>&1); then
			return 0
		fi
		if [ "$(now_ms)" -ge "$deadline" ]; then
			log "timed out after ${secs}s waiting for $what: $out"
			return 1
		fi
		sleep 0.2
	done
}

# tail_logs FILE...: print the last lines of each log file (for loud failures).
tail_logs() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		printf '%s\n' "----- last 25 lines of $f -----" >&2
		tail -n 25 "$f" >&2
	done
	printf '%s\n' "-----" >&2
}

# start_services: standalone Redis (6379), then Cluster and Sentinel in parallel (each ~2.5s),
# printing each script's output in one piece. Sets SESH_STARTED_SINGLE=1 when 6379 was not
# answering before (so the caller knows it may stop it). Fails when any of them fails.
start_services() {
	local dir out cpid spid crc=0 src=0
	dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
	SESH_STARTED_SINGLE=0
	if ! is_up 6379; then SESH_STARTED_SINGLE=1; fi
	bash "$dir/redis-single.sh" start
	out=$(mktemp -d)
	bash "$dir/redis-cluster.sh" start >"$out/cluster" 2>&1 &
	cpid=$!
	bash "$dir/redis-sentinel.sh" start >"$out/sentinel" 2>&1 &
	spid=$!
	wait "$cpid" || crc=$?
	wait "$spid" || src=$?
	cat "$out/cluster" "$out/sentinel" >&2
	rm -rf "$out"
	[ "$crc" -eq 0 ] || die "redis-cluster.sh start failed (exit $crc)"
	[ "$src" -eq 0 ] || die "redis-sentinel.sh start failed (exit $src)"
}

# stop_services: stop Cluster and Sentinel, and the 6379 Redis only when start_services started it.
stop_services() {
	local dir
	dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
	bash "$dir/redis-cluster.sh" stop || true
	bash "$dir/redis-sentinel.sh" stop || true
	if [ "${SESH_STARTED_SINGLE:-0}" = 1 ]; then bash "$dir/redis-single.sh" stop || true; fi
}
