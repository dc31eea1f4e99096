#!/usr/bin/env bash
# Trino (SQL serving engine of the cluster profile) for the lakehouse integration tests.
#
#   scripts/services/trino.sh [start]   download if missing, start one node, wait until ready
#   scripts/services/trino.sh stop      stop the server (no-op when it is not running)
#   scripts/services/trino.sh status    exit 0 when running, 3 when not
#   scripts/services/trino.sh url       print the coordinator URL (http://127.0.0.1:PORT)
#   scripts/services/trino.sh install   download and unpack if missing, print the install folder
#   scripts/services/trino.sh java      print the Java 24+ binary the server runs on
#
# The server is the tar.gz io.trino:trino-server from Maven Central (version
# ${LAKEHOUSE_TRINO_VERSION:-476}, about 820 MB), checked against the repository's SHA-1 and
# unpacked under ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/trino with only the plugins in
# ${LAKEHOUSE_TRINO_PLUGINS:-iceberg tpch} (the other 60-odd are deleted after unpacking, and
# the tarball is removed once unpacked: the folder is what later starts reuse). The log (trino.log), the
# pid file, the generated etc/ folder and the node's data folder live there too.
#
# One node, coordinator and worker at once, on the newest installed JDK of version 24 or
# later (Trino 476 refuses older ones; LAKEHOUSE_TRINO_JAVA names one), heap
# ${LAKEHOUSE_TRINO_HEAP:-2G}, listening on 127.0.0.1:${LAKEHOUSE_TRINO_PORT:-18086} only (no
# authentication: loopback, development only). Catalogs: every *.properties file of the
# folder LAKEHOUSE_TRINO_CATALOGS (when set) is copied into etc/catalog, and
# `catalog.management=dynamic` lets clients add more with CREATE CATALOG … USING iceberg
# (the integration tests do, for a catalog server on a port they chose). Catalog files may
# use ${ENV:NAME} for secrets: the server reads them from its environment (this script's).
# `start` prints the URL on its last line.
set -euo pipefail

SERVICE="trino"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

VERSION="${LAKEHOUSE_TRINO_VERSION:-476}"
PORT="${LAKEHOUSE_TRINO_PORT:-18086}"
HEAP="${LAKEHOUSE_TRINO_HEAP:-2G}"
PLUGINS="${LAKEHOUSE_TRINO_PLUGINS:-iceberg tpch}"
CATALOGS="${LAKEHOUSE_TRINO_CATALOGS:-}"
MAVEN_REPO="${LAKEHOUSE_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
MIN_JAVA=24
TDIR="$CACHE/trino"
TARBALL="$TDIR/trino-server-$VERSION.tar.gz"
TRINO_HOME="$TDIR/trino-server-$VERSION"
ETC="$TDIR/etc"
DATA="$TDIR/data"
LOG="$TDIR/trino.log"
PIDFILE="$TDIR/trino.pid"
STATEFILE="$TDIR/trino.state"
WAIT_SECONDS="${LAKEHOUSE_TRINO_WAIT_SECONDS:-240}"

url() {
    echo "http://${HOST}:${PORT}"
}

# -- download and unpack ---------------------------------------------------------------

artifact_url() {
    echo "$MAVEN_REPO/io/trino/trino-server/$VERSION/trino-server-$VERSION.tar.gz"
}

# The plugins the install keeps, one per line, sorted (validated names).
plugin_list() {
    local p
    for p in $PLUGINS; do
        [[ "$p" =~ ^[a-z0-9-]+$ ]] || die "LAKEHOUSE_TRINO_PLUGINS: '$p' is not a plugin folder name"
        echo "$p"
    done | sort -u
}

# The unpacked folder is complete when its marker names the plugins asked for now.
installed() {
    [[ -x "$TRINO_HOME/bin/launcher" && -f "$TRINO_HOME/.lakehouse-plugins" ]] \
        && [[ "$(cat "$TRINO_HOME/.lakehouse-plugins")" == "$(plugin_list)" ]]
}

ensure_install() {
    mkdir -p "$TDIR"
    installed && return 0
    local plugins
    plugins="$(plugin_list)"
    [[ -n "$plugins" ]] || die "LAKEHOUSE_TRINO_PLUGINS is empty (the lakehouse needs at least 'iceberg')"
    if [[ ! -f "$TARBALL" ]]; then
        command -v curl >/dev/null || die "curl is needed to download Trino (apt-get install -y curl)"
        command -v sha1sum >/dev/null || die "sha1sum is needed to verify the download (coreutils)"
        local src
        src="$(artifact_url)"
        say "downloading Trino $VERSION from $src (about 820 MB, once)"
        fetch_verified "$src" "$TARBALL" "set LAKEHOUSE_TRINO_VERSION or LAKEHOUSE_MAVEN_REPO"
    fi
    local top="trino-server-$VERSION" tmp="$TDIR/.unpack.$$" p
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # The plugins share jars through hard links inside the tarball, so it is unpacked whole
    # and the unused plugins (60-odd connectors) are removed afterwards.
    say "unpacking $TARBALL"
    tar -xzf "$TARBALL" -C "$tmp" \
        || { rm -rf "$tmp"; die "could not unpack $TARBALL (remove it to download again)"; }
    [[ -x "$tmp/$top/bin/launcher" ]] || { rm -rf "$tmp"; die "$TARBALL has no $top/bin/launcher"; }
    while read -r p; do
        [[ -d "$tmp/$top/plugin/$p" ]] || { rm -rf "$tmp"; die "LAKEHOUSE_TRINO_PLUGINS: Trino $VERSION has no plugin '$p'"; }
    done <<<"$plugins"
    for p in "$tmp/$top/plugin"/*/; do
        p="$(basename -- "$p")"
        grep -qxF -- "$p" <<<"$plugins" || rm -rf "${tmp:?}/$top/plugin/$p"
    done
    say "kept the plugins $(tr '\n' ' ' <<<"$plugins")($(du -sh "$tmp/$top" | cut -f1) on disk)"
    echo "$plugins" >"$tmp/$top/.lakehouse-plugins"
    rm -rf "$TRINO_HOME"
    mv "$tmp/$top" "$TRINO_HOME"
    rm -rf "$tmp"
    if [[ -z "${LAKEHOUSE_TRINO_KEEP_TARBALL:-}" ]]; then
        rm -f "$TARBALL"
        say "removed the tarball (set LAKEHOUSE_TRINO_KEEP_TARBALL=1 to keep it for other plugin sets)"
    fi
}

# -- java ----------------------------------------------------------------------------

# The newest java of version >= MIN_JAVA: LAKEHOUSE_TRINO_JAVA, JAVA_HOME, JDKs under
# /usr/lib/jvm and /opt, then `java` on the PATH. Prints "BINARY VERSION".
find_java() {
    newest_java "$MIN_JAVA" LAKEHOUSE_TRINO_JAVA
}

# -- configuration ---------------------------------------------------------------------

# A checksum of the catalog files given: `start` refuses to reuse a server that read others.
catalogs_checksum() {
    if [[ -z "$CATALOGS" ]]; then
        echo "none"
    else
        cat "$CATALOGS"/*.properties | sha1sum | cut -c1-12
    fi
}

write_etc() {
    rm -rf "$ETC"
    # the launcher makes $DATA/etc a link to $ETC; anything else there stops it
    [[ -L "$DATA/etc" || ! -e "$DATA/etc" ]] || rm -rf "${DATA:?}/etc"
    mkdir -p "$ETC/catalog" "$DATA"
    cat >"$ETC/node.properties" <<EOF
node.environment=lakehouse
node.id=lakehouse-trino-1
node.data-dir=$DATA
EOF
    cat >"$ETC/jvm.config" <<EOF
-server
-Xms256m
-Xmx$HEAP
-XX:+UseG1GC
-XX:+ExplicitGCInvokesConcurrent
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:ReservedCodeCacheSize=256M
-XX:PerMethodRecompilationCutoff=10000
-XX:PerBytecodeRecompilationCutoff=10000
-Djdk.attach.allowAttachSelf=true
-Djdk.nio.maxCachedBufferSize=2000000
-Dfile.encoding=UTF-8
-XX:+EnableDynamicAgentLoading
EOF
    # one node on loopback; memory limits sized for the heap above on a small machine
    cat >"$ETC/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
node.bind-ip=$HOST
node.internal-address=$HOST
http-server.http.port=$PORT
discovery.uri=http://$HOST:$PORT
plugin.dir=$TRINO_HOME/plugin
catalog.management=dynamic
catalog.store=file
query.max-memory=1GB
query.max-memory-per-node=512MB
task.concurrency=2
EOF
    # the file catalog store reads its settings from etc/catalog-store.properties relative
    # to the working directory: the launcher runs in the data folder, where etc links to $ETC
    echo "catalog.config-dir=$ETC/catalog" >"$ETC/catalog-store.properties"
    if [[ -n "$CATALOGS" ]]; then
        cp "$CATALOGS"/*.properties "$ETC/catalog/"
    fi
}

# -- process -------------------------------------------------------------------------

pid() {
    pidfile_pid
}

# The launcher execs java in its own process: the pid stays, its command line changes.
running() {
    local p
    p="$(pid)"
    cmdline_has "$p" '*io.trino.server.TrinoServer*' || cmdline_has "$p" '*trino-server-*/bin/*launcher run*'
}

# While starting, the pid execs three times (env, the launcher script, the launcher binary,
# java): its command line can be read between two of them, so only its life is checked.
alive() {
    local p
    p="$(pid)"
    [[ -n "$p" && -d "/proc/$p" ]] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$p/status"
}

# Ready when the coordinator says it has finished starting (GET /v1/info "starting": false).
ready() {
    local info
    info="$(curl -fsS -m 2 "$(url)/v1/info" 2>/dev/null)" || return 1
    [[ "$info" == *'"starting":false'* ]]
}

wait_ready() {
    wait_until "$WAIT_SECONDS" "Trino on $HOST:$PORT" ready alive
}

# -- commands ------------------------------------------------------------------------

cmd_start() {
    [[ $# -eq 0 ]] || die "start takes no options (got '$*'); settings are LAKEHOUSE_TRINO_* variables"
    if [[ -n "$CATALOGS" ]]; then
        [[ -d "$CATALOGS" ]] || die "LAKEHOUSE_TRINO_CATALOGS=$CATALOGS is not a folder"
        compgen -G "$CATALOGS/*.properties" >/dev/null || die "no *.properties files in LAKEHOUSE_TRINO_CATALOGS=$CATALOGS"
        CATALOGS="$(realpath -- "$CATALOGS")"
    fi
    [[ "$PORT" =~ ^[0-9]+$ ]] || die "LAKEHOUSE_TRINO_PORT must be a port number, not '$PORT'"
    [[ "$HEAP" =~ ^[0-9]+[mMgG]$ ]] || die "LAKEHOUSE_TRINO_HEAP must look like 2G or 1536M, not '$HEAP'"
    local state
    state="$VERSION $PORT $HEAP plugins:$(plugin_list | tr '\n' ',') catalogs:$(catalogs_checksum)"

    if running; then
        local have
        have="$(cat "$STATEFILE" 2>/dev/null || true)"
        if [[ "$have" != "$state" ]]; then
            die "Trino is already running as '$have' (version port heap plugins catalogs), not '$state'; run '$SELF stop' first"
        fi
        wait_ready
        say "already running on $HOST:$PORT (pid $(pid)); stop with: $SELF stop"
        url
        return 0
    fi
    rm -f "$PIDFILE" "$DATA/var/run/launcher.pid"

    ensure_install
    local java_and_version java jv
    java_and_version="$(find_java)"
    java="${java_and_version% *}"
    jv="${java_and_version##* }"
    port_in_use "$PORT" && die "port $PORT on $HOST is used by another process; set LAKEHOUSE_TRINO_PORT"
    write_etc

    {
        echo
        echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting Trino $VERSION with $java (Java $jv)"
    } >>"$LOG"
    say "starting Trino $VERSION on $HOST:$PORT with Java $jv, heap $HEAP (log: $LOG)"
    # `launcher run` stays in the foreground and execs java (JAVA_HOME picks the JDK)
    spawn_detached "$PIDFILE" env JAVA_HOME="$(dirname -- "$(dirname -- "$(realpath -- "$java")")")" \
        "$TRINO_HOME/bin/launcher" run \
        "--etc-dir=$ETC" \
        "--node-config=$ETC/node.properties" \
        "--jvm-config=$ETC/jvm.config" \
        "--config=$ETC/config.properties" \
        "--data-dir=$DATA"
    finish_start "$state"
}

cmd_status() {
    status_pidfile_service "version port heap plugins catalogs"
}

main() {
    local cmd="${1:-start}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) stop_pidfile_service ;;
        status) cmd_status ;;
        url) url ;;
        install) ensure_install >&2 && echo "$TRINO_HOME" ;;
        java) local jj && jj="$(find_java)" && echo "${jj% *}" ;;
        -h | --help | help) print_help 27 ;;
        *) die "unknown command '$cmd' (use start, stop, status, url, install or java)" ;;
    esac
}

main "$@"
