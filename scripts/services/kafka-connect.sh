#!/usr/bin/env bash
# Kafka Connect (one distributed-mode worker) with the Debezium PostgreSQL connector, for CDC tests.
#
#   scripts/services/kafka-connect.sh [start]   install if missing, start the worker, wait for its REST API
#   scripts/services/kafka-connect.sh install   resolve the worker's jars and the Debezium plugin only
#   scripts/services/kafka-connect.sh stop      stop the worker (no-op when it is not running)
#   scripts/services/kafka-connect.sh status    exit 0 when running, 3 when not
#   scripts/services/kafka-connect.sh url       print the worker's REST address (http://host:port)
#   scripts/services/kafka-connect.sh logs [N]  print the last N (default 100) lines of the log
#
# The worker is org.apache.kafka:connect-runtime (version ${LAKEHOUSE_CONNECT_VERSION:-4.4.0})
# from Maven Central; Maven (`mvn`) resolves its runtime dependency closure into
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/kafka-connect/libs-<version>. The plugin is
# io.debezium:debezium-connector-postgres (${LAKEHOUSE_DEBEZIUM_VERSION:-3.6.1.Final}), its
# `plugin` tar.gz from Maven Central (sha1-verified), unpacked under plugins-<version>/ in the
# same folder, where the generated worker properties, the log (connect.log) and the pid file
# live too. The worker talks to the Kafka at ${LAKEHOUSE_CONNECT_BOOTSTRAP:-127.0.0.1:19092}
# (scripts/services/kafka.sh, which `start` starts first when that is the address and it is
# down), keeps its configs, offsets and status in the topics <group>-configs|offsets|status
# of group ${LAKEHOUSE_CONNECT_GROUP:-lakehouse-connect}, and serves its REST API on
# 127.0.0.1:${LAKEHOUSE_CONNECT_PORT:-18083} only. Java 17+ (the newest installed, or
# LAKEHOUSE_CONNECT_JAVA).
# The source database needs `wal_level=logical`: `scripts/services/postgres.sh --logical start`.
# `start` prints the REST address on its last line.
set -euo pipefail

SERVICE="kafka-connect"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

VERSION="${LAKEHOUSE_CONNECT_VERSION:-4.4.0}"
DEBEZIUM_VERSION="${LAKEHOUSE_DEBEZIUM_VERSION:-3.6.1.Final}"
LOG4J_VERSION="${LAKEHOUSE_CONNECT_LOG4J_VERSION:-2.25.5}"
PORT="${LAKEHOUSE_CONNECT_PORT:-18083}"
BOOTSTRAP="${LAKEHOUSE_CONNECT_BOOTSTRAP:-127.0.0.1:19092}"
GROUP="${LAKEHOUSE_CONNECT_GROUP:-lakehouse-connect}"
HEAP="${LAKEHOUSE_CONNECT_HEAP:-512m}"
MAVEN_REPO="${LAKEHOUSE_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
MIN_JAVA=17
CDIR="$CACHE/kafka-connect"
LIBS="$CDIR/libs-$VERSION"
PLUGINS="$CDIR/plugins-$DEBEZIUM_VERSION"
STATE="$CDIR/state"
PROPS="$STATE/worker.properties"
LOG4J_CONF="$STATE/log4j2.properties"
LOG="$CDIR/connect.log"
PIDFILE="$CDIR/connect.pid"
STATEFILE="$CDIR/connect.state"
WAIT_SECONDS=180

url() {
    echo "http://${HOST}:${PORT}"
}

# -- jars: connect-runtime and its runtime dependencies, resolved by Maven -----------------

ensure_libs() {
    mkdir -p "$CDIR"
    [[ -f "$LIBS/.complete" ]] && return 0
    command -v mvn >/dev/null || die "Maven is needed to resolve Kafka Connect's jars (apt-get install -y maven)"
    local work="$CDIR/resolve-$VERSION" part="$LIBS.part"
    rm -rf "$work" "$part"
    mkdir -p "$work"
    # a throwaway project whose only purpose is the dependency closure of the worker
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lakehouse.services</groupId>
  <artifactId>kafka-connect-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <repositories>
    <repository><id>lakehouse-maven</id><url>$MAVEN_REPO</url></repository>
  </repositories>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId><version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>connect-json</artifactId><version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    say "resolving org.apache.kafka:connect-runtime:$VERSION and its dependencies with Maven"
    local out
    if ! out="$(cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$part" 2>&1)"; then
        echo "$out" >&2
        rm -rf "$part"
        die "Maven could not resolve connect-runtime $VERSION (set LAKEHOUSE_CONNECT_VERSION or LAKEHOUSE_MAVEN_REPO)"
    fi
    [[ -f "$part/connect-runtime-$VERSION.jar" ]] || die "Maven did not produce connect-runtime-$VERSION.jar"
    touch "$part/.complete"
    rm -rf "$LIBS"
    mv "$part" "$LIBS"
    rm -rf "$work"
    say "cached $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

# -- the Debezium plugin: the connector's own plugin archive from Maven Central -------------

ensure_plugin() {
    [[ -f "$PLUGINS/.complete" ]] && return 0
    local name="debezium-connector-postgres"
    local file="$name-$DEBEZIUM_VERSION-plugin.tar.gz"
    local src="$MAVEN_REPO/io/debezium/$name/$DEBEZIUM_VERSION/$file"
    local archive="$CDIR/$file" part="$PLUGINS.part"
    if [[ ! -f "$archive" ]]; then
        say "downloading $src"
        fetch_verified "$src" "$archive" "set LAKEHOUSE_DEBEZIUM_VERSION or LAKEHOUSE_MAVEN_REPO"
    fi
    rm -rf "$part"
    mkdir -p "$part"
    tar -xzf "$archive" -C "$part" || { rm -rf "$part"; die "could not unpack $archive (delete it to download again)"; }
    [[ -f "$part/$name/$name-$DEBEZIUM_VERSION.jar" ]] \
        || { rm -rf "$part"; die "$archive has no $name/$name-$DEBEZIUM_VERSION.jar"; }
    touch "$part/.complete"
    rm -rf "$PLUGINS"
    mv "$part" "$PLUGINS"
    say "unpacked the Debezium PostgreSQL connector $DEBEZIUM_VERSION into $PLUGINS"
}

# -- configuration -------------------------------------------------------------------------

write_config() {
    mkdir -p "$STATE"
    cat >"$PROPS" <<EOF
# generated by $SELF — edits are overwritten on start
bootstrap.servers=$BOOTSTRAP
group.id=$GROUP
config.storage.topic=$GROUP-configs
offset.storage.topic=$GROUP-offsets
status.storage.topic=$GROUP-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
listeners=http://$HOST:$PORT
rest.advertised.host.name=$HOST
rest.advertised.port=$PORT
plugin.path=$PLUGINS
plugin.discovery=only_scan
EOF
    cat >"$LOG4J_CONF" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.connect.name = org.apache.kafka.connect.runtime.Connect
logger.connect.level = INFO
logger.worker.name = org.apache.kafka.connect.runtime.WorkerSourceTask
logger.worker.level = INFO
logger.debezium.name = io.debezium
logger.debezium.level = INFO
EOF
}

# -- process -------------------------------------------------------------------------------

pid() {
    pidfile_pid
}

running() {
    cmdline_has "$(pid)" '*ConnectDistributed*'
}

# Healthy: the REST API answers and lists the Debezium PostgreSQL connector.
ready() {
    curl -fsS --max-time 3 "$(url)/connector-plugins" 2>/dev/null | grep -q 'PostgresConnector'
}

wait_ready() {
    wait_until "$WAIT_SECONDS" "Kafka Connect on $HOST:$PORT" ready running
}

# -- commands ------------------------------------------------------------------------------

cmd_install() {
    ensure_libs
    ensure_plugin
}

cmd_start() {
    local state="$VERSION $DEBEZIUM_VERSION $PORT $BOOTSTRAP $GROUP"
    if running; then
        local have
        have="$(cat "$STATEFILE" 2>/dev/null || true)"
        [[ "$have" == "$state" ]] \
            || die "Kafka Connect is already running as '$have' (version debezium port bootstrap group), not '$state'; run '$SELF stop' first"
        wait_ready
        say "already running on $HOST:$PORT (pid $(pid)); stop with: $SELF stop"
        url
        return 0
    fi
    rm -f "$PIDFILE"
    cmd_install
    local java_and_version java jv
    java_and_version="$(newest_java "$MIN_JAVA" LAKEHOUSE_CONNECT_JAVA)"
    java="${java_and_version% *}"
    jv="${java_and_version##* }"
    port_in_use "$PORT" && die "port $PORT on $HOST is used by another process; set LAKEHOUSE_CONNECT_PORT"
    local kafka_host="${BOOTSTRAP%%,*}"
    if ! (exec 3<>"/dev/tcp/${kafka_host%:*}/${kafka_host##*:}") 2>/dev/null; then
        # our own broker is a dependency: start it (e.g. `make services-up` runs this script first)
        [[ "$BOOTSTRAP" == "$(bash "$HERE/kafka.sh" url)" ]] \
            || die "no Kafka at $BOOTSTRAP; start it or set LAKEHOUSE_CONNECT_BOOTSTRAP"
        say "no Kafka at $BOOTSTRAP: starting scripts/services/kafka.sh"
        bash "$HERE/kafka.sh" start >/dev/null
    fi
    write_config
    touch "$LOG"
    {
        echo
        echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting Kafka Connect $VERSION (Debezium $DEBEZIUM_VERSION) with $java (Java $jv)"
    } >>"$LOG"
    say "starting Kafka Connect $VERSION with Debezium $DEBEZIUM_VERSION on $HOST:$PORT, Kafka $BOOTSTRAP, Java $jv (log: $LOG)"
    spawn_detached "$PIDFILE" "$java" "-Xms128m" "-Xmx$HEAP" "-XX:+UseG1GC" "-Djava.awt.headless=true" \
        "-Dlog4j2.configurationFile=$LOG4J_CONF" "-cp" "$LIBS/*" \
        org.apache.kafka.connect.cli.ConnectDistributed "$PROPS"
    echo "$state" >"$STATEFILE"
    wait_ready
    say "ready (pid $(pid)); stop with: $SELF stop"
    url
}

cmd_stop() {
    stop_pidfile_service
}

cmd_status() {
    status_pidfile_service "version debezium port bootstrap group"
}

cmd_logs() {
    local n="${1:-100}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "logs takes a number of lines, not '$n'"
    [[ -f "$LOG" ]] || die "no log yet at $LOG"
    tail -n "$n" "$LOG"
}

main() {
    local cmd="${1:-start}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) cmd_start ;;
        install) cmd_install ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        url) url ;;
        logs) cmd_logs "$@" ;;
        -h | --help | help) print_help 24 ;;
        *) die "unknown command '$cmd' (use start, install, stop, status, url or logs)" ;;
    esac
}

main "$@"
