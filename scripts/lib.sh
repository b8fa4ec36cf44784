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

# topo ARGS...: run internal/topology's command (built once per source change into
# $SESH_RUN_DIR/bin): topo single|cluster|sentinel start|stop|status|restart|restart-node PORT...
topo() {
	local root bin
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
	bin="$SESH_RUN_DIR/bin/topo"
	mkdir -p "$SESH_RUN_DIR/bin"
	(cd "$root" && go build -o "$bin" ./internal/topology/topo) || die "building internal/topology/topo failed"
	"$bin" "$@"
}

# start_services: standalone Redis (6379, left alone when someone else runs it), then Cluster
# and Sentinel in parallel (each ~2.5s), printing each one's output in one piece. Fails when
# any of them fails.
start_services() {
	local out cpid spid crc=0 src=0
	ensure_redis
	topo single start
	out=$(mktemp -d)
	topo cluster start >"$out/cluster" 2>&1 &
	cpid=$!
	topo sentinel start >"$out/sentinel" 2>&1 &
	spid=$!
	wait "$cpid" || crc=$?
	wait "$spid" || src=$?
	cat "$out/cluster" "$out/sentinel" >&2
	rm -rf "$out"
	[ "$crc" -eq 0 ] || die "cluster start failed (exit $crc)"
	[ "$src" -eq 0 ] || die "sentinel start failed (exit $src)"
}

# stop_services: stop Cluster and Sentinel, and the 6379 Redis only when we started it.
stop_services() {
	topo cluster stop || true
	topo sentinel stop || true
	topo single stop || true
}
