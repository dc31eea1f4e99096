#!/usr/bin/env bash
# Keycloak (OIDC identity provider) for the lakehouse integration tests and for trying sign-in.
#
#   scripts/services/keycloak.sh [start]   download if missing, start in dev mode, wait until ready
#   scripts/services/keycloak.sh stop      stop the server (no-op when it is not running)
#   scripts/services/keycloak.sh status    exit 0 when running, 3 when not
#   scripts/services/keycloak.sh url       print the issuer URL of realm `lakehouse`
#
# The server is the zip org.keycloak:keycloak-quarkus-dist from Maven Central (version
# ${LAKEHOUSE_KEYCLOAK_VERSION:-26.5.6}), checked against the repository's SHA-1, cached and
# unpacked under ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/keycloak, where the log
# (keycloak.log) and the pid file live too. It runs `kc.sh start-dev` on the newest installed
# JDK of version 21 or later, on 127.0.0.1 only: HTTP on port ${LAKEHOUSE_KEYCLOAK_PORT:-18080},
# health (/health/ready) on ${LAKEHOUSE_KEYCLOAK_MGMT_PORT:-18081}, with an in-memory database
# (dev-mem): every start imports the realms committed in docker/keycloak/*-realm.json afresh
# (`lakehouse`: users, roles and clients; `elsewhere`: a second issuer for the tests).
# The master realm's admin is admin / ${LAKEHOUSE_KEYCLOAK_ADMIN_PASSWORD:-admin} (loopback,
# development only). `start` prints the issuer URL on its last line.
set -euo pipefail

SERVICE="keycloak"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

VERSION="${LAKEHOUSE_KEYCLOAK_VERSION:-26.5.6}"
PORT="${LAKEHOUSE_KEYCLOAK_PORT:-18080}"
MGMT_PORT="${LAKEHOUSE_KEYCLOAK_MGMT_PORT:-18081}"
HEAP="${LAKEHOUSE_KEYCLOAK_HEAP:-768m}"
ADMIN_PASSWORD="${LAKEHOUSE_KEYCLOAK_ADMIN_PASSWORD:-admin}"
MAVEN_REPO="${LAKEHOUSE_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
MIN_JAVA=21
REALM="lakehouse"
KDIR="$CACHE/keycloak"
ZIP="$KDIR/keycloak-quarkus-dist-$VERSION.zip"
KC_HOME="$KDIR/keycloak-$VERSION"
LOG="$KDIR/keycloak.log"
PIDFILE="$KDIR/keycloak.pid"
STATEFILE="$KDIR/keycloak.state"
REALMS_DIR="$(cd -- "$HERE/../.." && pwd)/docker/keycloak"
WAIT_SECONDS=180

url() {
    echo "http://${HOST}:${PORT}/realms/$REALM"
}

# -- download ------------------------------------------------------------------------

artifact_url() {
    echo "$MAVEN_REPO/org/keycloak/keycloak-quarkus-dist/$VERSION/keycloak-quarkus-dist-$VERSION.zip"
}

ensure_dist() {
    mkdir -p "$KDIR"
    [[ -x "$KC_HOME/bin/kc.sh" ]] && return 0
    if [[ ! -f "$ZIP" ]]; then
        command -v curl >/dev/null || die "curl is needed to download Keycloak (apt-get install -y curl)"
        command -v sha1sum >/dev/null || die "sha1sum is needed to verify the download (coreutils)"
        local src
        src="$(artifact_url)"
        say "downloading Keycloak $VERSION from $src (165 MB, once)"
        fetch_verified "$src" "$ZIP" "set LAKEHOUSE_KEYCLOAK_VERSION or LAKEHOUSE_MAVEN_REPO"
    fi
    local tmp="$KDIR/.unpack.$$"
    rm -rf "$tmp"
    if command -v unzip >/dev/null; then
        unzip -q "$ZIP" -d "$tmp" || { rm -rf "$tmp"; die "could not unpack $ZIP (remove it to download again)"; }
    else
        # python's zipfile drops the executable bits: restore them on the launch scripts
        python3 -m zipfile -e "$ZIP" "$tmp" || { rm -rf "$tmp"; die "could not unpack $ZIP (remove it to download again)"; }
        chmod +x "$tmp/keycloak-$VERSION"/bin/*.sh
    fi
    [[ -x "$tmp/keycloak-$VERSION/bin/kc.sh" ]] || { rm -rf "$tmp"; die "$ZIP has no keycloak-$VERSION/bin/kc.sh"; }
    rm -rf "$KC_HOME"
    mv "$tmp/keycloak-$VERSION" "$KC_HOME"
    rm -rf "$tmp"
}

# -- java ----------------------------------------------------------------------------

# The newest java of version >= MIN_JAVA: LAKEHOUSE_KEYCLOAK_JAVA, JAVA_HOME, JDKs under
# /usr/lib/jvm and /opt, then `java` on the PATH. Prints "BINARY VERSION".
find_java() {
    newest_java "$MIN_JAVA" LAKEHOUSE_KEYCLOAK_JAVA
}

# -- process -------------------------------------------------------------------------

pid() {
    pidfile_pid
}

# kc.sh stays the parent of the JVM (it forwards SIGTERM), unless it re-execs java after a
# re-augmentation: either one is our server.
running() {
    local p
    p="$(pid)"
    cmdline_has "$p" '*keycloak-*/bin/kc.sh*start-dev*' \
        || cmdline_has "$p" '*keycloak-*QuarkusEntryPoint*start-dev*'
}

ready() {
    curl -fsS -m 2 -o /dev/null "http://$HOST:$MGMT_PORT/health/ready" 2>/dev/null \
        && curl -fsS -m 2 -o /dev/null "$(url)/.well-known/openid-configuration" 2>/dev/null
}

wait_ready() {
    wait_until "$WAIT_SECONDS" "Keycloak on $HOST:$PORT" ready running
}

# A checksum of the committed realm files: the server imports them only when it starts, so
# `start` refuses to reuse a running server that imported other ones.
realms_checksum() {
    cat "$REALMS_DIR"/*-realm.json | sha1sum | cut -c1-12
}

# -- commands ------------------------------------------------------------------------

cmd_start() {
    [[ $# -eq 0 ]] || die "start takes no options (got '$*')"
    compgen -G "$REALMS_DIR/*-realm.json" >/dev/null || die "no realm files in $REALMS_DIR"
    local state
    state="$VERSION $PORT $MGMT_PORT realms:$(realms_checksum)"

    if running; then
        local have
        have="$(cat "$STATEFILE" 2>/dev/null || true)"
        if [[ "$have" != "$state" ]]; then
            die "Keycloak is already running as '$have' (version port mgmt-port realms), not '$state'; run '$SELF stop' first"
        fi
        wait_ready
        say "already running on $HOST:$PORT (pid $(pid)); stop with: $SELF stop"
        url
        return 0
    fi
    rm -f "$PIDFILE"

    ensure_dist
    local java_and_version java jv
    java_and_version="$(find_java)"
    java="${java_and_version% *}"
    jv="${java_and_version##* }"
    port_in_use "$PORT" && die "port $PORT on $HOST is used by another process; set LAKEHOUSE_KEYCLOAK_PORT"
    port_in_use "$MGMT_PORT" && die "port $MGMT_PORT on $HOST is used by another process; set LAKEHOUSE_KEYCLOAK_MGMT_PORT"

    # the committed realms, imported at every start (the database is in memory)
    rm -rf "$KC_HOME/data/import"
    mkdir -p "$KC_HOME/data/import"
    cp "$REALMS_DIR"/*-realm.json "$KC_HOME/data/import/"

    local args=(
        start-dev
        --db=dev-mem
        --import-realm
        "--http-host=$HOST"
        "--http-port=$PORT"
        "--hostname=http://$HOST:$PORT"
        --health-enabled=true
        "--http-management-port=$MGMT_PORT"
        --log=console
    )
    {
        echo
        echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting Keycloak $VERSION with $java (Java $jv)"
    } >>"$LOG"
    say "starting Keycloak $VERSION on $HOST:$PORT with Java $jv (log: $LOG)"
    # kc.sh runs $JAVA; the admin password goes through the environment, not the command line
    spawn_detached "$PIDFILE" env \
        JAVA="$java" \
        JAVA_OPTS_KC_HEAP="-Xms128m -Xmx$HEAP" \
        KC_BOOTSTRAP_ADMIN_USERNAME=admin \
        KC_BOOTSTRAP_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        "$KC_HOME/bin/kc.sh" "${args[@]}"
    finish_start "$state"
}

cmd_status() {
    status_pidfile_service "version port mgmt-port realms"
}

main() {
    local cmd="${1:-start}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) stop_pidfile_service ;;
        status) cmd_status ;;
        url) url ;;
        -h | --help | help) print_help 18 ;;
        *) die "unknown command '$cmd' (use start, stop, status or url)" ;;
    esac
}

main "$@"
