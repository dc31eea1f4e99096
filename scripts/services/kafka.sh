#!/usr/bin/env bash
# Apache Kafka (KRaft, one node acting as broker and controller) for CDC ingestion tests.
#
#   scripts/services/kafka.sh [start]   resolve the jars if missing, format storage once, start, wait
#   scripts/services/kafka.sh stop      stop the broker (no-op when it is not running)
#   scripts/services/kafka.sh status    exit 0 when running, 3 when not
#   scripts/services/kafka.sh url       print the bootstrap address (host:port)
#   scripts/services/kafka.sh env       print the LAKEHOUSE_KAFKA__* setting for this broker
#   scripts/services/kafka.sh logs [N]  print the last N (default 100) lines of the log
#   scripts/services/kafka.sh reset     stop and delete the broker's data (topics, offsets)
#
# The broker is org.apache.kafka:kafka_2.13 (version ${LAKEHOUSE_KAFKA_VERSION:-4.4.0})
# from Maven Central; Maven (`mvn`) resolves its runtime dependency closure into
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/kafka/libs-<version>, where the generated
# server.properties, the data folder, the log (kafka.log) and the pid file live too.
# It runs on the newest installed JDK of version 17 or later and listens on 127.0.0.1
# only: clients on port ${LAKEHOUSE_KAFKA_PORT:-19092} (PLAINTEXT), the KRaft controller
# on ${LAKEHOUSE_KAFKA_CONTROLLER_PORT:-19093}. Storage is formatted once (the
# `kafka-storage format` step) and kept across restarts. `start` prints the bootstrap
# address on its last line.
set -euo pipefail

SERVICE="kafka"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

VERSION="${LAKEHOUSE_KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${LAKEHOUSE_KAFKA_LOG4J_VERSION:-2.25.5}"
PORT="${LAKEHOUSE_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${LAKEHOUSE_KAFKA_CONTROLLER_PORT:-19093}"
HEAP="${LAKEHOUSE_KAFKA_HEAP:-512m}"
MAVEN_REPO="${LAKEHOUSE_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
MIN_JAVA=17
KDIR="$CACHE/kafka"
LIBS="$KDIR/libs-$VERSION"
STATE="$KDIR/state"
DATA="$STATE/data"
PROPS="$STATE/server.properties"
LOG4J_CONF="$STATE/log4j2.properties"
LOG="$KDIR/kafka.log"
PIDFILE="$KDIR/kafka.pid"
STATEFILE="$KDIR/kafka.state"
WAIT_SECONDS=90

url() {
    echo "${HOST}:${PORT}"
}

# -- jars: kafka_2.13 and its runtime dependencies, resolved by Maven ---------------------

ensure_libs() {
    mkdir -p "$KDIR"
    [[ -f "$LIBS/.complete" ]] && return 0
    command -v mvn >/dev/null || die "Maven is needed to resolve Kafka's jars (apt-get install -y maven)"
    local work="$KDIR/resolve-$VERSION" part="$LIBS.part"
    rm -rf "$work" "$part"
    mkdir -p "$work"
    # a throwaway project whose only purpose is the dependency closure of the broker
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lakehouse.services</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <repositories>
    <repository><id>lakehouse-maven</id><url>$MAVEN_REPO</url></repository>
  </repositories>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    say "resolving org.apache.kafka:kafka_2.13:$VERSION and its dependencies with Maven"
    local out
    if ! out="$(cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$part" 2>&1)"; then
        echo "$out" >&2
        rm -rf "$part"
        die "Maven could not resolve Kafka $VERSION (set LAKEHOUSE_KAFKA_VERSION or LAKEHOUSE_MAVEN_REPO)"
    fi
    [[ -f "$part/kafka_2.13-$VERSION.jar" ]] || die "Maven did not produce kafka_2.13-$VERSION.jar"
    touch "$part/.complete"
    rm -rf "$LIBS"
    mv "$part" "$LIBS"
    rm -rf "$work"
    say "cached $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

# -- java ----------------------------------------------------------------------------------


# LAKEHOUSE_KAFKA_JAVA, else JAVA_HOME, else `java` on the PATH, else the newest JDK
# under /usr/lib/jvm — the first one of version MIN_JAVA or later.
find_java() {
    local candidates=() c v
    [[ -n "${LAKEHOUSE_KAFKA_JAVA:-}" ]] && candidates+=("$LAKEHOUSE_KAFKA_JAVA")
    [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
    c="$(command -v java 2>/dev/null || true)"
    [[ -n "$c" ]] && candidates+=("$c")
    for c in /usr/lib/jvm/*/bin/java; do
        [[ -x "$c" ]] && candidates+=("$c")
    done
    for c in "${candidates[@]}"; do
        [[ -x "$c" ]] || continue
        v="$(java_major "$c" || true)"
        if [[ -n "$v" && "$v" -ge "$MIN_JAVA" ]]; then
            echo "$c $v"
            return 0
        fi
    done
    die "no Java $MIN_JAVA+ found (LAKEHOUSE_KAFKA_JAVA, JAVA_HOME, PATH, /usr/lib/jvm/*); install one (apt-get install -y openjdk-17-jre-headless)"
}

# -- configuration and storage -------------------------------------------------------------

write_config() {
    mkdir -p "$STATE" "$DATA"
    cat >"$PROPS" <<EOF
# generated by $SELF — edits are overwritten on start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
log.segment.bytes=67108864
EOF
    cat >"$LOG4J_CONF" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.org.name = org.apache.kafka
logger.org.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
EOF
}

java_cmd() {
    # shellcheck disable=SC2206  # the heap value is one word
    JAVA_CMD=("$1" "-Xms128m" "-Xmx$HEAP" "-XX:+UseG1GC" "-Djava.awt.headless=true"
        "-Dlog4j2.configurationFile=$LOG4J_CONF" "-cp" "$LIBS/*")
}

ensure_formatted() {
    [[ -f "$DATA/meta.properties" ]] && return 0
    local cluster_file="$STATE/cluster-id" cluster out
    if [[ ! -s "$cluster_file" ]]; then
        cluster="$("${JAVA_CMD[@]}" kafka.tools.StorageTool random-uuid 2>>"$LOG")" \
            || die "could not generate a cluster id (log: $LOG)"
        cluster="${cluster//[[:space:]]/}"
        echo "$cluster" >"$cluster_file"
    fi
    cluster="$(cat "$cluster_file")"
    say "formatting storage in $DATA (cluster id $cluster)"
    out="$("${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$cluster" -c "$PROPS" --ignore-formatted 2>&1)" \
        || { echo "$out" >&2; die "kafka-storage format failed"; }
}

# -- process -------------------------------------------------------------------------------

pid() {
    pidfile_pid
}

running() {
    cmdline_has "$(pid)" '*kafka.Kafka*'
}

# Healthy: both ports accept connections and the log of this run says the server started.
ready() {
    port_in_use "$PORT" && port_in_use "$CONTROLLER_PORT" || return 1
    local since="${1:-0}" tail_text
    tail_text="$(tail -c +"$((since + 1))" "$LOG" 2>/dev/null || true)"
    [[ "$tail_text" == *"Kafka Server started"* ]]
}

wait_ready() {
    wait_until "$WAIT_SECONDS" "Kafka on $HOST:$PORT" "ready $1" running
}

# -- commands ------------------------------------------------------------------------------

cmd_start() {
    local state="$VERSION $PORT $CONTROLLER_PORT"
    if running; then
        local have
        have="$(cat "$STATEFILE" 2>/dev/null || true)"
        [[ "$have" == "$state" ]] \
            || die "Kafka is already running as '$have' (version port controller-port), not '$state'; run '$SELF stop' first"
        port_in_use "$PORT" || wait_ready "$(cat "$STATE/log-offset" 2>/dev/null || echo 0)"
        say "already running on $HOST:$PORT (pid $(pid)); stop with: $SELF stop"
        url
        return 0
    fi
    rm -f "$PIDFILE"
    ensure_libs
    local java_and_version java jv
    java_and_version="$(find_java)"
    java="${java_and_version% *}"
    jv="${java_and_version##* }"
    port_in_use "$PORT" && die "port $PORT on $HOST is used by another process; set LAKEHOUSE_KAFKA_PORT"
    port_in_use "$CONTROLLER_PORT" \
        && die "port $CONTROLLER_PORT on $HOST is used by another process; set LAKEHOUSE_KAFKA_CONTROLLER_PORT"
    write_config
    touch "$LOG"
    java_cmd "$java"
    ensure_formatted

    local since
    since="$(stat -c %s "$LOG")"
    echo "$since" >"$STATE/log-offset"
    {
        echo
        echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting Kafka $VERSION with $java (Java $jv)"
    } >>"$LOG"
    say "starting Kafka $VERSION (KRaft broker+controller) on $HOST:$PORT with Java $jv (log: $LOG)"
    spawn_detached "$PIDFILE" "${JAVA_CMD[@]}" kafka.Kafka "$PROPS"
    echo "$state" >"$STATEFILE"
    wait_ready "$since"
    say "ready (pid $(pid)); stop with: $SELF stop"
    url
}

cmd_stop() {
    stop_pidfile_service
}

cmd_status() {
    status_pidfile_service "version port controller-port"
}

cmd_env() {
    echo "LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS=$(url)"
}

cmd_logs() {
    local n="${1:-100}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "logs takes a number of lines, not '$n'"
    [[ -f "$LOG" ]] || die "no log yet at $LOG"
    tail -n "$n" "$LOG"
}

cmd_reset() {
    cmd_stop
    rm -rf "$STATE"
    say "deleted the broker's data ($STATE)"
}

main() {
    local cmd="${1:-start}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        url) url ;;
        env) cmd_env ;;
        logs) cmd_logs "$@" ;;
        reset) cmd_reset ;;
        -h | --help | help) print_help 20 ;;
        *) die "unknown command '$cmd' (use start, stop, status, url, env, logs or reset)" ;;
    esac
}

main "$@"
