#!/usr/bin/env bash
# Private PostgreSQL cluster for the lakehouse integration tests.
#
#   scripts/services/postgres.sh [start]   install if missing, start, wait, create role/databases
#   scripts/services/postgres.sh stop      stop the cluster (no-op when it is not running)
#   scripts/services/postgres.sh status    exit 0 when running, 3 when not
#   scripts/services/postgres.sh url [DB]  print the SQLAlchemy URL (database DB, default lakehouse)
#   scripts/services/postgres.sh --logical COMMAND …   the same for the logical-decoding cluster
#
# The cluster is ours, not the system one: its data lives under
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/postgres and it listens on
# 127.0.0.1:${LAKEHOUSE_PG_PORT:-55432} only (unix socket under the same folder).
# It is a disposable test cluster: fsync is off (safe against a killed process,
# not against a machine crash; delete the data folder to start from scratch).
#
# Role `lakehouse` (password `lakehouse`, CREATEDB and pg_signal_backend so tests can
# create and force-drop throw-away databases) owns the databases `lakehouse` and `lakehouse_test`.
# `start` prints the SQLAlchemy URL on its last line.
#
# --logical selects a second, separate cluster for change data capture (the source database
# of Debezium, scripts/services/kafka-connect.sh): `wal_level=logical`, replication slots and
# WAL senders enabled, role `lakehouse` with REPLICATION; data under
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/postgres-logical, port
# ${LAKEHOUSE_PG_LOGICAL_PORT:-55433}. It is its own cluster because changing `wal_level`
# needs a restart, which the shared catalog cluster must not get.
set -euo pipefail

SERVICE="postgres"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

LOGICAL=0
if [[ "${1:-}" == "--logical" ]]; then
    LOGICAL=1
    shift
fi
if [[ "$LOGICAL" -eq 1 ]]; then
    PORT="${LAKEHOUSE_PG_LOGICAL_PORT:-55433}"
    PGROOT="$CACHE/postgres-logical"
    # logical decoding for Debezium's pgoutput plugin: one slot and one sender per connector
    EXTRA_OPTS="-c wal_level=logical -c max_wal_senders=20 -c max_replication_slots=20"
    ROLE_ATTRS="LOGIN CREATEDB REPLICATION"
    SELF="$SELF --logical"
else
    PORT="${LAKEHOUSE_PG_PORT:-55432}"
    PGROOT="$CACHE/postgres"
    EXTRA_OPTS=""
    ROLE_ATTRS="LOGIN CREATEDB"
fi
DATA="$PGROOT/data"
SOCK="$PGROOT/run"
LOGDIR="$PGROOT/log"
LOG="$LOGDIR/postgres.log"
ROLE="lakehouse"
PASSWORD="lakehouse"
DATABASES=("lakehouse" "lakehouse_test")
WAIT_SECONDS=60

url() {
    echo "postgresql+psycopg://${ROLE}:${PASSWORD}@${HOST}:${PORT}/${1:-lakehouse}"
}

is_root() {
    [[ "$(id -u)" -eq 0 ]]
}

# Run a command as the cluster owner: `postgres` when we are root (PostgreSQL
# refuses to run as root), otherwise the current user. From `/` so that the
# owner never needs access to the caller's working directory.
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

APT_UPDATED=0
apt_install() {
    is_root || die "missing package(s) $*; install them (sudo apt-get install -y $*) or run as root"
    command -v apt-get >/dev/null || die "missing package(s) $* and no apt-get on this machine"
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    say "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Newest installed server binaries: /usr/lib/postgresql/<major>/bin.
find_bin() {
    local dir
    dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$dir" && -x "$dir/pg_ctl" && -x "$dir/initdb" && -x "$dir/postgres" ]]; then
        echo "$dir"
    fi
}

ensure_installed() {
    BIN="$(find_bin)"
    if [[ -z "$BIN" ]]; then
        apt_install postgresql
        BIN="$(find_bin)"
        [[ -n "$BIN" ]] || die "installed package postgresql but found no server binaries under /usr/lib/postgresql/*/bin"
    fi
}

# When root, the `postgres` user must be able to traverse every folder above
# the data folder (e.g. /root is 0700). Grant exactly that (search permission,
# for that user only, through an ACL); fall back to o+x where ACLs are unsupported.
ensure_traversable() {
    is_root || return 0
    local dir="$PGROOT" dirs=()
    while [[ "$dir" != "/" ]]; do
        dirs=("$dir" "${dirs[@]}")
        dir="$(dirname -- "$dir")"
    done
    for dir in "${dirs[@]}"; do
        if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
            command -v setfacl >/dev/null || apt_install acl
            if setfacl -m u:postgres:x "$dir" 2>/dev/null; then
                say "granted user postgres search permission on $dir (ACL)"
            else
                chmod o+x "$dir"
                say "granted search permission (o+x) on $dir"
            fi
        fi
    done
}

prepare_dirs() {
    mkdir -p "$PGROOT"
    chmod 0755 "$PGROOT"
    ensure_traversable
    mkdir -p "$DATA" "$SOCK" "$LOGDIR"
    chmod 0700 "$DATA"
    chmod 0755 "$SOCK" "$LOGDIR"
    if is_root; then
        local d
        for d in "$DATA" "$SOCK" "$LOGDIR"; do
            if [[ "$(stat -c %U "$d")" != "postgres" ]]; then
                chown -R postgres:postgres "$d"
            fi
        done
    fi
}

ensure_cluster() {
    local major
    major="$(basename "$(dirname "$BIN")")"
    if [[ -f "$DATA/PG_VERSION" ]]; then
        local have
        have="$(cat "$DATA/PG_VERSION")"
        [[ "$have" == "$major" ]] || die "data folder $DATA was made by PostgreSQL $have but the binaries are $major; delete that folder to recreate the cluster"
        return 0
    fi
    if [[ -n "$(ls -A "$DATA")" ]]; then
        die "data folder $DATA is not empty and has no PG_VERSION; delete it to recreate the cluster"
    fi
    say "initdb (PostgreSQL $major) in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" --encoding=UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >"$LOGDIR/initdb.log" 2>&1 \
        || { cat "$LOGDIR/initdb.log" >&2; die "initdb failed (log above, also in $LOGDIR/initdb.log)"; }
}

running() {
    [[ -n "${BIN:-}" && -f "$DATA/PG_VERSION" ]] || return 1
    as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# Port the running server listens on (line 4 of postmaster.pid).
running_port() {
    sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true
}

ready() {
    "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1
}

# Wait until the server accepts connections. Returns 1 if it is not (or no
# longer) running; exits on timeout.
wait_ready() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until ready; do
        running || return 1
        if ((SECONDS >= deadline)); then
            show_log_tail
            die "PostgreSQL did not accept connections on $HOST:$PORT within ${WAIT_SECONDS}s (log: $LOG)"
        fi
        sleep 0.2
    done
}

start_server() {
    say "starting on $HOST:$PORT (data: $DATA, log: $LOG)"
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t "$WAIT_SECONDS" -s start -o \
        "-p $PORT -k '$SOCK' -c listen_addresses=$HOST -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $EXTRA_OPTS" \
        || { show_log_tail; die "pg_ctl start failed (log: $LOG)"; }
}

psql_admin() {
    as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -d postgres -tA "$@"
}

ensure_role_and_databases() {
    local db
    if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]]; then
        say "creating role $ROLE"
        psql_admin -c "CREATE ROLE $ROLE $ROLE_ATTRS PASSWORD '$PASSWORD'"
    fi
    if [[ "$LOGICAL" -eq 1 ]]; then
        # Debezium streams through a replication connection and creates its publication
        psql_admin -c "ALTER ROLE $ROLE $ROLE_ATTRS"
    fi
    # Tests drop their throw-away databases WITH (FORCE), which must end every session
    # in them, autovacuum workers included: that needs pg_signal_backend (idempotent).
    psql_admin -c "GRANT pg_signal_backend TO $ROLE" 2>/dev/null
    for db in "${DATABASES[@]}"; do
        if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]]; then
            say "creating database $db"
            psql_admin -c "CREATE DATABASE $db OWNER $ROLE"
        fi
    done
}

cmd_start() {
    ensure_installed
    prepare_dirs
    ensure_cluster
    local started=0
    if running; then
        local port
        port="$(running_port)"
        if [[ -n "$port" && "$port" != "$PORT" ]]; then
            die "the cluster in $DATA is already running on port $port, not $PORT; run '$SELF stop' first or set LAKEHOUSE_PG_PORT=$port"
        fi
        say "already running on $HOST:$PORT (data: $DATA)"
        if [[ "$LOGICAL" -eq 1 && "$(psql_admin -c 'SHOW wal_level')" != "logical" ]]; then
            die "the cluster in $DATA runs without wal_level=logical; run '$SELF stop' and start it again"
        fi
    else
        start_server
        started=1
    fi
    if ! wait_ready; then
        if [[ "$started" -eq 1 ]]; then
            show_log_tail
            die "PostgreSQL exited while starting (is port $PORT already in use?); log: $LOG"
        fi
        say "the previous server is gone (stale pid file)"
        start_server
        wait_ready || { show_log_tail; die "PostgreSQL exited while starting (is port $PORT already in use?); log: $LOG"; }
    fi
    ensure_role_and_databases
    say "ready; stop with: $SELF stop"
    url
}

cmd_stop() {
    BIN="$(find_bin)"
    if running; then
        say "stopping (data: $DATA)"
        as_owner "$BIN/pg_ctl" -D "$DATA" -s -m fast -w -t "$WAIT_SECONDS" stop \
            || die "pg_ctl stop failed (log: $LOG)"
        say "stopped"
    else
        say "not running (data: $DATA)"
    fi
}

cmd_status() {
    BIN="$(find_bin)"
    if running; then
        say "running on $HOST:$(running_port) (data: $DATA)"
        url
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
        url) url "${2:-lakehouse}" ;;
        -h | --help | help) print_help 25 ;;
        *) die "unknown command '$cmd' (use start, stop, status or url)" ;;
    esac
}

main "$@"
