#!/usr/bin/env bash
# Private MinIO S3 server for the lakehouse integration tests (cluster-profile storage).
#
#   scripts/services/minio.sh [start]   build if missing, start, wait until healthy, create buckets
#   scripts/services/minio.sh stop      stop the server (no-op when it is not running)
#   scripts/services/minio.sh status    exit 0 when running, 3 when not
#   scripts/services/minio.sh url       print the S3 endpoint (http://127.0.0.1:PORT)
#   scripts/services/minio.sh env       print the LAKEHOUSE_S3__* settings for this server
#   scripts/services/minio.sh access-key | secret-key   print one credential
#
# MinIO is built from its Go module with the Go toolchain (no download of prebuilt
# binaries): `go install github.com/minio/minio@$MINIO_VERSION` into
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/minio/bin (modules under .../minio/gomodcache).
# The first build takes minutes (measure: the script prints it); later starts take seconds.
# MinIO publishes no semver tags to the Go module proxy, so the pin is a pseudo-version
# of a commit on its default branch (`go list -m github.com/minio/minio@latest`).
#
# The server listens on 127.0.0.1:${LAKEHOUSE_S3_PORT:-19000} only (web console on
# 127.0.0.1:${LAKEHOUSE_S3_CONSOLE_PORT:-19001}); data lives under .../minio/data.
# Credentials: LAKEHOUSE_S3_ACCESS_KEY / LAKEHOUSE_S3_SECRET_KEY, by default
# `lakehouse` / `lakehouse-dev-secret` — development-only values for a loopback test
# server; never use them anywhere reachable. `start` creates the buckets raw, bronze,
# silver, gold and iceberg-metadata (S3 API calls signed with curl --aws-sigv4) and
# prints the endpoint on its last line. Point the lakehouse at it with
#   LAKEHOUSE_S3__ENDPOINT=http://127.0.0.1:19000 LAKEHOUSE_S3__ACCESS_KEY_ID=lakehouse
#   LAKEHOUSE_S3__SECRET_ACCESS_KEY=lakehouse-dev-secret
set -euo pipefail

SERVICE="minio"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

MINIO_MODULE="github.com/minio/minio"
# Newest commit the Go module proxy serves (2026-02-12); builds with Go >= 1.24.
MINIO_VERSION="${LAKEHOUSE_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

PORT="${LAKEHOUSE_S3_PORT:-19000}"
CONSOLE_PORT="${LAKEHOUSE_S3_CONSOLE_PORT:-19001}"
ACCESS_KEY="${LAKEHOUSE_S3_ACCESS_KEY:-lakehouse}"
SECRET_KEY="${LAKEHOUSE_S3_SECRET_KEY:-lakehouse-dev-secret}"
REGION="us-east-1"
ROOT="$CACHE/minio"
BIN_DIR="$ROOT/bin"
BIN="$BIN_DIR/minio"
STAMP="$BIN_DIR/minio.version"
DATA="$ROOT/data"
LOGDIR="$ROOT/log"
LOG="$LOGDIR/minio.log"
PIDFILE="$ROOT/minio.pid"
BUCKETS=("raw" "bronze" "silver" "gold" "iceberg-metadata")
WAIT_SECONDS=60

endpoint() {
    echo "http://${HOST}:${PORT}"
}

check_credentials() {
    # MinIO refuses root users shorter than 3 and passwords shorter than 8 characters.
    ((${#ACCESS_KEY} >= 3)) || die "LAKEHOUSE_S3_ACCESS_KEY must have at least 3 characters"
    ((${#SECRET_KEY} >= 8)) || die "LAKEHOUSE_S3_SECRET_KEY must have at least 8 characters"
}

ensure_built() {
    if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$MINIO_VERSION" ]]; then
        return 0
    fi
    # The official Go tarball installs under /usr/local/go, which is not always on PATH.
    command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null \
        || die "MinIO is built from source and needs the Go toolchain (>= 1.24): https://go.dev/dl"
    mkdir -p "$BIN_DIR" "$LOGDIR"
    say "building $MINIO_MODULE@$MINIO_VERSION with $(go version | cut -d' ' -f3) (first run only; takes minutes)"
    local started=$SECONDS
    # GOTOOLCHAIN=local: build with the installed Go, never download another toolchain.
    # -modcacherw: the module cache under $ROOT/gomodcache stays deletable with rm -rf.
    if ! env GOBIN="$BIN_DIR" GOMODCACHE="$ROOT/gomodcache" GOTOOLCHAIN=local \
        GOFLAGS="-modcacherw -buildvcs=false" \
        go install "$MINIO_MODULE@$MINIO_VERSION" >"$LOGDIR/build.log" 2>&1; then
        tail -n 30 "$LOGDIR/build.log" >&2
        die "go install $MINIO_MODULE@$MINIO_VERSION failed (log: $LOGDIR/build.log)"
    fi
    echo "$MINIO_VERSION" >"$STAMP"
    say "built $BIN in $((SECONDS - started))s"
}

pid() {
    [[ -f "$PIDFILE" ]] && cat "$PIDFILE"
}

# Our server is running: the pid file names a live minio process.
running() {
    local p
    p="$(pid 2>/dev/null)" || return 1
    [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == "minio" ]]
}

healthy() {
    curl -sf -o /dev/null --max-time 2 "$(endpoint)/minio/health/ready"
}

wait_healthy() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until healthy; do
        if ! running; then
            show_log_tail
            die "MinIO exited while starting (is port $PORT or $CONSOLE_PORT already in use?); log: $LOG"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail
            die "MinIO was not healthy on $(endpoint) within ${WAIT_SECONDS}s (log: $LOG)"
        fi
        sleep 0.2
    done
}

start_server() {
    mkdir -p "$DATA" "$LOGDIR"
    if curl -s -o /dev/null --max-time 2 "$(endpoint)/"; then
        die "something else already answers on $(endpoint); set LAKEHOUSE_S3_PORT to a free port"
    fi
    say "starting on $(endpoint) (data: $DATA, log: $LOG)"
    # setsid + nohup: the server outlives this script and the caller's terminal.
    MINIO_ROOT_USER="$ACCESS_KEY" MINIO_ROOT_PASSWORD="$SECRET_KEY" MINIO_REGION="$REGION" \
        MINIO_BROWSER=on MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
        setsid nohup "$BIN" server --quiet --anonymous \
        --address "$HOST:$PORT" --console-address "$HOST:$CONSOLE_PORT" "$DATA" \
        >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
}

# One S3 API call signed with AWS Signature V4; prints the HTTP status.
s3_call() {
    local method="$1" bucket="$2" how=(-X "$1")
    [[ "$method" == "HEAD" ]] && how=(--head) # -X HEAD would wait for a body
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${how[@]}" \
        --aws-sigv4 "aws:amz:${REGION}:s3" --user "${ACCESS_KEY}:${SECRET_KEY}" \
        "$(endpoint)/${bucket}"
}

ensure_buckets() {
    local bucket code
    for bucket in "${BUCKETS[@]}"; do
        code="$(s3_call HEAD "$bucket")"
        case "$code" in
            200) ;;
            404)
                code="$(s3_call PUT "$bucket")"
                case "$code" in
                    200 | 409) say "created bucket $bucket" ;;
                    *) die "creating bucket $bucket failed (HTTP $code); log: $LOG" ;;
                esac
                ;;
            403) die "access to bucket $bucket denied (HTTP 403): the server runs with other credentials than LAKEHOUSE_S3_ACCESS_KEY/LAKEHOUSE_S3_SECRET_KEY; '$SELF stop' and start again" ;;
            *) die "checking bucket $bucket failed (HTTP $code); log: $LOG" ;;
        esac
    done
}

cmd_start() {
    check_credentials
    command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
    ensure_built
    if running; then
        healthy || wait_healthy
        say "already running on $(endpoint) (pid $(pid), data: $DATA)"
    else
        rm -f "$PIDFILE"
        start_server
        wait_healthy
    fi
    ensure_buckets
    say "ready (buckets: ${BUCKETS[*]}); stop with: $SELF stop"
    endpoint
}

cmd_stop() {
    if ! running; then
        rm -f "$PIDFILE"
        say "not running (data: $DATA)"
        return 0
    fi
    local p
    p="$(pid)"
    say "stopping pid $p"
    stop_pid "$p"
    rm -f "$PIDFILE"
    say "stopped"
}

cmd_status() {
    if running && healthy; then
        say "running on $(endpoint) (pid $(pid), data: $DATA)"
        endpoint
    else
        say "not running (data: $DATA)"
        return 3
    fi
}

main() {
    local cmd="${1:-start}"
    case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        url) endpoint ;;
        access-key) echo "$ACCESS_KEY" ;;
        secret-key) echo "$SECRET_KEY" ;;
        env)
            echo "LAKEHOUSE_S3__ENDPOINT=$(endpoint)"
            echo "LAKEHOUSE_S3__REGION=$REGION"
            echo "LAKEHOUSE_S3__ACCESS_KEY_ID=$ACCESS_KEY"
            echo "LAKEHOUSE_S3__SECRET_ACCESS_KEY=$SECRET_KEY"
            ;;
        -h | --help | help) print_help 27 ;;
        *) die "unknown command '$cmd' (use start, stop, status, url, env, access-key or secret-key)" ;;
    esac
}

main "$@"
