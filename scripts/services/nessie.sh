#!/usr/bin/env bash
# Project Nessie server (REST API v2) for the lakehouse integration tests.
#
#   scripts/services/nessie.sh [start] [--jdbc]   download if missing, start, wait until ready
#   scripts/services/nessie.sh stop               stop the server (no-op when it is not running)
#   scripts/services/nessie.sh status             exit 0 when running, 3 when not
#   scripts/services/nessie.sh url                print the API v2 base URL
#   scripts/services/nessie.sh jar                download if missing, print the runner jar's path
#   scripts/services/nessie.sh java               print the Java 21+ binary the server runs on
#
# The server is the Quarkus runner jar of org.projectnessie.nessie:nessie-quarkus
# from Maven Central (version ${LAKEHOUSE_NESSIE_VERSION:-0.99.0}), checked against
# the repository's SHA-1 and cached under ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/nessie,
# where the log (nessie.log) and the pid file live too. It runs on the newest
# installed JDK of version 21 or later and listens on 127.0.0.1 only: the API on
# port ${LAKEHOUSE_NESSIE_PORT:-19120}, health and metrics (/q/health/ready,
# /q/metrics) on ${LAKEHOUSE_NESSIE_MGMT_PORT:-19121}.
#
# Version store: IN_MEMORY by default (lost on stop, fast, for tests). `--jdbc`
# (or NESSIE_STORE=jdbc) uses JDBC2 on the PostgreSQL of scripts/services/postgres.sh,
# database `nessie` (started and created when missing). Authentication is off.
# `start` prints the API URL on its last line.
set -euo pipefail

SERVICE="nessie"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

VERSION="${LAKEHOUSE_NESSIE_VERSION:-0.99.0}"
PORT="${LAKEHOUSE_NESSIE_PORT:-19120}"
MGMT_PORT="${LAKEHOUSE_NESSIE_MGMT_PORT:-19121}"
HEAP="${LAKEHOUSE_NESSIE_HEAP:-1g}"
MAVEN_REPO="${LAKEHOUSE_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
MIN_JAVA=21
NDIR="$CACHE/nessie"
JAR="$NDIR/nessie-quarkus-$VERSION-runner.jar"
LOG="$NDIR/nessie.log"
PIDFILE="$NDIR/nessie.pid"
STATEFILE="$NDIR/nessie.state"
WAIT_SECONDS=120
PG_PORT="${LAKEHOUSE_PG_PORT:-55432}"
PG_ROLE="lakehouse"
PG_PASSWORD="lakehouse"
PG_DB="nessie"

url() {
    echo "http://${HOST}:${PORT}/api/v2"
}

# -- download ------------------------------------------------------------------------

artifact_url() {
    echo "$MAVEN_REPO/org/projectnessie/nessie/nessie-quarkus/$VERSION/nessie-quarkus-$VERSION-runner.jar"
}

ensure_jar() {
    mkdir -p "$NDIR"
    [[ -f "$JAR" ]] && return 0
    command -v curl >/dev/null || die "curl is needed to download Nessie (apt-get install -y curl)"
    command -v sha1sum >/dev/null || die "sha1sum is needed to verify the download (coreutils)"
    local src
    src="$(artifact_url)"
    say "downloading Nessie $VERSION from $src"
    fetch_verified "$src" "$JAR" "set LAKEHOUSE_NESSIE_VERSION or LAKEHOUSE_MAVEN_REPO"
}

# -- java ----------------------------------------------------------------------------


# The newest java of version >= MIN_JAVA: LAKEHOUSE_NESSIE_JAVA, JAVA_HOME, JDKs under
# /usr/lib/jvm and /opt, then `java` on the PATH.
find_java() {
    newest_java "$MIN_JAVA" LAKEHOUSE_NESSIE_JAVA
}

# -- process -------------------------------------------------------------------------

pid() {
    pidfile_pid
}

running() {
    cmdline_has "$(pid)" '*nessie-quarkus-*-runner.jar*'
}

ready() {
    curl -fsS -m 2 -o /dev/null "http://$HOST:$MGMT_PORT/q/health/ready" 2>/dev/null \
        && curl -fsS -m 2 -o /dev/null "http://$HOST:$PORT/api/v2/config" 2>/dev/null
}

wait_ready() {
    wait_until "$WAIT_SECONDS" "Nessie on $HOST:$PORT" ready running
}

# -- JDBC mode: database `nessie` on the PostgreSQL of postgres.sh ----------------------

ensure_postgres_db() {
    bash "$HERE/postgres.sh" start >/dev/null
    local psql
    psql="$(command -v psql || find /usr/lib/postgresql -path '*/bin/psql' 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$psql" ]] || die "psql not found although PostgreSQL is installed"
    local q=(env PGPASSWORD="$PG_PASSWORD" "$psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U "$PG_ROLE" -d lakehouse -tA)
    if [[ -z "$("${q[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
        say "creating PostgreSQL database $PG_DB"
        "${q[@]}" -c "CREATE DATABASE $PG_DB"
    fi
}

# -- commands ------------------------------------------------------------------------

cmd_start() {
    local mode="${NESSIE_STORE:-in-memory}"
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --jdbc) mode="jdbc" ;;
            --in-memory) mode="in-memory" ;;
            *) die "unknown option '$1' for start (use --jdbc or --in-memory)" ;;
        esac
        shift
    done
    case "$mode" in
        in-memory | IN_MEMORY | memory) mode="in-memory" ;;
        jdbc | JDBC | JDBC2 | jdbc2) mode="jdbc" ;;
        *) die "NESSIE_STORE must be 'in-memory' or 'jdbc', not '$mode'" ;;
    esac
    local state="$VERSION $mode $PORT $MGMT_PORT"

    if running; then
        local have
        have="$(cat "$STATEFILE" 2>/dev/null || true)"
        if [[ "$have" != "$state" ]]; then
            die "Nessie is already running as '$have' (version mode port mgmt-port), not '$state'; run '$SELF stop' first"
        fi
        wait_ready
        say "already running on $HOST:$PORT ($mode, pid $(pid)); stop with: $SELF stop"
        url
        return 0
    fi
    rm -f "$PIDFILE"

    ensure_jar
    local java_and_version java jv
    java_and_version="$(find_java)"
    java="${java_and_version% *}"
    jv="${java_and_version##* }"
    port_in_use "$PORT" && die "port $PORT on $HOST is used by another process; set LAKEHOUSE_NESSIE_PORT"
    port_in_use "$MGMT_PORT" && die "port $MGMT_PORT on $HOST is used by another process; set LAKEHOUSE_NESSIE_MGMT_PORT"

    local props=(
        "-Dquarkus.http.host=$HOST"
        "-Dquarkus.http.port=$PORT"
        "-Dquarkus.management.host=$HOST"
        "-Dquarkus.management.port=$MGMT_PORT"
        "-Dquarkus.http.access-log.enabled=${LAKEHOUSE_NESSIE_ACCESS_LOG:-false}"
        "-Dquarkus.log.file.enable=false"
        "-Dnessie.server.authentication.enabled=false"
    )
    local env_extra=()
    if [[ "$mode" == "jdbc" ]]; then
        ensure_postgres_db
        props+=(
            "-Dnessie.version.store.type=JDBC2"
            "-Dnessie.version.store.persist.jdbc.datasource=postgresql"
            "-Dquarkus.datasource.postgresql.jdbc.url=jdbc:postgresql://$HOST:$PG_PORT/$PG_DB"
            "-Dquarkus.datasource.postgresql.username=$PG_ROLE"
        )
        # the password goes through the environment, not the command line (visible in ps)
        env_extra+=("QUARKUS_DATASOURCE_POSTGRESQL_PASSWORD=$PG_PASSWORD")
    else
        props+=("-Dnessie.version.store.type=IN_MEMORY")
    fi
    local jvm=("-Xms128m" "-Xmx$HEAP")
    if [[ "$jv" -ge 22 ]]; then
        jvm+=("--enable-native-access=ALL-UNNAMED")
    fi

    {
        echo
        echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting Nessie $VERSION ($mode) with $java (Java $jv)"
    } >>"$LOG"
    say "starting Nessie $VERSION ($mode store) on $HOST:$PORT with Java $jv (log: $LOG)"
    spawn_detached "$PIDFILE" env "${env_extra[@]}" "$java" "${jvm[@]}" "${props[@]}" -jar "$JAR"
    finish_start "$state"
}

cmd_status() {
    status_pidfile_service "version mode port mgmt-port"
}

main() {
    local cmd="${1:-start}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        --jdbc | --in-memory) cmd_start "$cmd" "$@" ;;
        stop) stop_pidfile_service ;;
        status) cmd_status ;;
        url) url ;;
        jar) ensure_jar >&2 && echo "$JAR" ;;
        java) local jj && jj="$(find_java)" && echo "${jj% *}" ;;
        -h | --help | help) print_help 22 ;;
        *) die "unknown command '$cmd' (use start, stop, status, url, jar or java)" ;;
    esac
}

main "$@"
