#!/usr/bin/env bash
# Toxiproxy (TCP fault injection) for the lakehouse fault-injection tests (tests/faults).
#
#   scripts/services/toxiproxy.sh install   build toxiproxy-server and toxiproxy-cli if missing
#   scripts/services/toxiproxy.sh [start]   build if missing, start, wait until its API answers
#   scripts/services/toxiproxy.sh stop      stop the server (no-op when it is not running)
#   scripts/services/toxiproxy.sh status    exit 0 when running, 3 when not
#   scripts/services/toxiproxy.sh url       print the HTTP API URL (http://127.0.0.1:PORT)
#   scripts/services/toxiproxy.sh cli ARGS  run toxiproxy-cli against this server
#
# Both programs are built from their Go module with the Go toolchain (no prebuilt binary
# is downloaded): `go install github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION` and
# `.../cmd/cli@$VERSION` (the module's packages for toxiproxy-server and toxiproxy-cli;
# `go install` names them `server` and `cli`, so they are renamed) into
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/toxiproxy/bin (modules under .../gomodcache).
# The first build takes about a minute on two cores; later starts take a second.
#
# The API listens on 127.0.0.1:${LAKEHOUSE_TOXIPROXY_PORT:-18474} only. Proxies are
# created by the tests through that API, each listening on a loopback port of its own and
# forwarding to one real service (MinIO, PostgreSQL, `lakehouse serve`, Nessie); the tests
# remove the proxies they made. This server holds no data: stopping it only drops proxies.
# `start` prints the API URL on its last line; pass it to the tests as
# LAKEHOUSE_TEST_TOXIPROXY_URL (the Makefile's test-integration does).
set -euo pipefail

MODULE="github.com/Shopify/toxiproxy/v2"
# v2.12.0 (go 1.23) is the newest the Go module proxy served on 2026-12-06.
VERSION="${LAKEHOUSE_TOXIPROXY_VERSION:-v2.12.0}"
PORT="${LAKEHOUSE_TOXIPROXY_PORT:-18474}"
HOST="127.0.0.1"
CACHE="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}"
CACHE="$(realpath -m -- "$CACHE")"
ROOT="$CACHE/toxiproxy"
BIN_DIR="$ROOT/bin"
SERVER="$BIN_DIR/toxiproxy-server"
CLI="$BIN_DIR/toxiproxy-cli"
STAMP="$BIN_DIR/toxiproxy.version"
LOGDIR="$ROOT/log"
LOG="$LOGDIR/toxiproxy.log"
PIDFILE="$ROOT/toxiproxy.pid"
WAIT_SECONDS=30
SELF="scripts/services/toxiproxy.sh"

die() {
    echo "toxiproxy.sh: error: $*" >&2
    exit 1
}

say() {
    echo "toxiproxy.sh: $*"
}

api_url() {
    echo "http://${HOST}:${PORT}"
}

built() {
    [[ -x "$SERVER" && -x "$CLI" && -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" ]]
}

ensure_built() {
    built && return 0
    # The official Go tarball installs under /usr/local/go, which is not always on PATH.
    command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "Toxiproxy is built from source and needs the Go toolchain: https://go.dev/dl"
    mkdir -p "$BIN_DIR" "$LOGDIR"
    say "building $MODULE/cmd/{server,cli}@$VERSION with $(go env GOVERSION) (first run only)"
    local started=$SECONDS pkg tmpbin
    tmpbin="$(mktemp -d "$ROOT/gobin.XXXXXX")"
    for pkg in server cli; do
        # GOTOOLCHAIN=local: never download another toolchain. -modcacherw: the module
        # cache stays deletable. -trimpath: no path of this machine inside the binaries.
        if ! env GOBIN="$tmpbin" GOMODCACHE="$ROOT/gomodcache" GOTOOLCHAIN=local \
            GOFLAGS="-modcacherw -buildvcs=false -trimpath" \
            go install "$MODULE/cmd/$pkg@$VERSION" >"$LOGDIR/build-$pkg.log" 2>&1; then
            tail -n 30 "$LOGDIR/build-$pkg.log" >&2
            rm -rf "$tmpbin"
            die "go install $MODULE/cmd/$pkg@$VERSION failed (log: $LOGDIR/build-$pkg.log)"
        fi
        mv -f "$tmpbin/$pkg" "$BIN_DIR/toxiproxy-$pkg"
    done
    rm -rf "$tmpbin"
    echo "$VERSION" >"$STAMP"
    say "built $SERVER and $CLI in $((SECONDS - started))s"
}

pid() {
    [[ -f "$PIDFILE" ]] && cat "$PIDFILE"
}

# Our server is running: the pid file names a live toxiproxy-server process.
running() {
    local p
    p="$(pid 2>/dev/null)" || return 1
    # /proc/PID/comm holds at most 15 characters: "toxiproxy-serve"
    [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == toxiproxy-serv* ]]
}

healthy() {
    curl -sf -o /dev/null --max-time 2 "$(api_url)/version"
}

show_log_tail() {
    echo "---- last lines of $LOG ----" >&2
    tail -n 30 "$LOG" >&2 || true
    echo "----" >&2
}

wait_healthy() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until healthy; do
        if ! running; then
            show_log_tail
            die "Toxiproxy exited while starting (is port $PORT already in use?); log: $LOG"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail
            die "Toxiproxy was not healthy on $(api_url) within ${WAIT_SECONDS}s (log: $LOG)"
        fi
        sleep 0.1
    done
}

cmd_start() {
    command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
    ensure_built
    if running; then
        healthy || wait_healthy
        say "already running on $(api_url) (pid $(pid))"
    else
        rm -f "$PIDFILE"
        mkdir -p "$LOGDIR"
        if curl -s -o /dev/null --max-time 2 "$(api_url)/"; then
            die "something else already answers on $(api_url); set LAKEHOUSE_TOXIPROXY_PORT to a free port"
        fi
        say "starting on $(api_url) (log: $LOG)"
        # setsid + nohup: the server outlives this script and the caller's terminal.
        setsid nohup "$SERVER" -host "$HOST" -port "$PORT" >>"$LOG" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
        wait_healthy
        say "ready (pid $(pid)); stop with: $SELF stop"
    fi
    api_url
}

cmd_stop() {
    if ! running; then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    local p deadline
    p="$(pid)"
    say "stopping pid $p"
    kill -TERM "$p"
    deadline=$((SECONDS + 10))
    while kill -0 "$p" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "pid $p did not stop within 10s; killing it"
            kill -KILL "$p" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$PIDFILE"
    say "stopped"
}

cmd_status() {
    if running && healthy; then
        say "running on $(api_url) (pid $(pid), $VERSION)"
        api_url
    else
        say "not running"
        return 3
    fi
}

main() {
    local cmd="${1:-start}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        install | build)
            ensure_built
            echo "$SERVER"
            ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        url) api_url ;;
        cli)
            ensure_built
            exec "$CLI" -host "$(api_url)" "$@"
            ;;
        -h | --help | help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' ;;
        *) die "unknown command '$cmd' (use install, start, stop, status, url or cli)" ;;
    esac
}

main "$@"
