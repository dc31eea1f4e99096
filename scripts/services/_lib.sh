# shellcheck shell=bash
# Shared helpers of scripts/services/*.sh, sourced (never run) after the script sets SERVICE:
#
#   SERVICE="minio"
#   source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"
#
# Sets HERE (this folder), SELF (scripts/services/$SERVICE.sh, for messages), CACHE
# (${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}, absolute) and HOST (127.0.0.1: every
# service listens on loopback only), and defines:
#
#   die MSG / say MSG                 one line on stderr (exit 1) / stdout, prefixed "$SERVICE.sh:"
#   print_help LAST                   lines 2..LAST of the script's header, without "# "
#   show_log_tail [N]                 the last N (30) lines of $LOG on stderr
#   print_log [N]                     the `logs` command: the last N (100) lines of $LOG
#   port_in_use PORT                  true when something accepts connections on HOST:PORT
#   pidfile_pid                       the pid in $PIDFILE (nothing when absent)
#   cmdline_has PID PATTERN           true when process PID is alive and its command line
#                                     matches the glob PATTERN
#   spawn_detached PIDFILE CMD…       start CMD in its own session, outliving this shell, with
#                                     its output appended to $LOG; its pid is written to PIDFILE
#   wait_until SECONDS WHAT READY ALIVE  poll READY until it succeeds; when ALIVE fails, or
#                                     after SECONDS, show the log tail and die
#   stop_pid PID                      SIGTERM, up to 30 s, then SIGKILL
#   java_major JAVA                   the major version of a java binary (17, 21 …)
#   fetch_verified URL TARGET HINT    download URL to TARGET, verified against URL.sha1
#                                     (HINT: which settings to change when it fails)
#   maven_closure DIR JAR HINT G:A:V…   the runtime jars of Maven artifacts, resolved once
#   finish_start STATE [WAIT_ARGS…]   record STATE, wait_ready, say how to stop, print the URL
#   stop_pidfile_service / status_pidfile_service FIELDS   cmd_stop / cmd_status of a
#                                     service started by spawn_detached
#   newest_java MIN VAR               the newest java of version >= MIN

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "_lib.sh: error: this file is sourced by scripts/services/*.sh, not run" >&2
    exit 2
fi

HERE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
SELF="scripts/services/${SERVICE:?set SERVICE before sourcing _lib.sh}.sh"
CACHE="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}"
CACHE="$(realpath -m -- "$CACHE")"
HOST="127.0.0.1"

die() {
    echo "$SERVICE.sh: error: $*" >&2
    exit 1
}

say() {
    echo "$SERVICE.sh: $*"
}

print_help() {
    sed -n "2,${1}p" "$0" | sed 's/^# \{0,1\}//'
}

# the `logs [N]` command: the last N (100) lines of $LOG on stdout
print_log() {
    local n="${1:-100}"
    [[ "$n" =~ ^[0-9]+$ ]] || die "logs takes a number of lines, not '$n'"
    [[ -f "$LOG" ]] || die "no log yet at $LOG"
    tail -n "$n" "$LOG"
}

show_log_tail() {
    echo "---- last lines of $LOG ----" >&2
    tail -n "${1:-30}" "$LOG" >&2 || true
    echo "----" >&2
}

port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

pidfile_pid() {
    cat "$PIDFILE" 2>/dev/null || true
}

cmdline_has() {
    local p="$1" pattern="$2" cmdline
    [[ -n "$p" && -d "/proc/$p" ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" || return 1
    # shellcheck disable=SC2053  # PATTERN is a glob on purpose
    [[ "$cmdline" == $pattern ]]
}

spawn_detached() {
    local pidfile="$1"
    shift
    # setsid: the server outlives this shell; the inner sh writes its own pid, then execs.
    # shellcheck disable=SC2016  # $$ and "$@" are for the inner sh, not this shell
    setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$pidfile" "$@" >>"$LOG" 2>&1 </dev/null &
    local waited=0
    until [[ -s "$pidfile" ]] || ((waited >= 50)); do
        sleep 0.1
        waited=$((waited + 1))
    done
}

wait_until() {
    local seconds="$1" what="$2" ready="$3" alive="$4" deadline
    deadline=$((SECONDS + seconds))
    until $ready; do
        if ! $alive; then
            show_log_tail 40
            die "$what exited while starting (log: $LOG)"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail 40
            die "$what was not ready within ${seconds}s (log: $LOG)"
        fi
        sleep 0.5
    done
}

stop_pid() {
    local p="$1" deadline
    kill -TERM "$p" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while [[ -d "/proc/$p" ]]; do
        if ((SECONDS >= deadline)); then
            say "still running after 30s; sending SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
}

java_major() {
    local v
    v="$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
    v="${v#1.}"
    [[ "$v" =~ ^[0-9]+$ ]] && echo "$v"
}

fetch_verified() {
    local src="$1" target="$2" hint="$3" part expected actual
    part="$target.part"
    curl -fsSL --retry 3 --connect-timeout 30 -o "$part" "$src" \
        || { rm -f "$part"; die "download failed: $src ($hint)"; }
    expected="$(curl -fsSL --retry 3 --connect-timeout 30 "$src.sha1")" \
        || { rm -f "$part"; die "could not fetch the checksum $src.sha1"; }
    expected="$(tr -d '[:space:]' <<<"$expected")"
    expected="${expected:0:40}"
    [[ "$expected" =~ ^[0-9a-f]{40}$ ]] || { rm -f "$part"; die "malformed checksum at $src.sha1: '$expected'"; }
    actual="$(sha1sum "$part")"
    actual="${actual%% *}"
    if [[ "$actual" != "$expected" ]]; then
        rm -f "$part"
        die "checksum mismatch for $src: expected $expected, got $actual (download removed)"
    fi
    mv -f "$part" "$target"
    say "verified (sha1 $actual) and cached as $target"
}

# The end of cmd_start of a service started by spawn_detached: records STATE (the values
# cmd_status names) in $STATEFILE, waits with wait_ready (given the remaining arguments),
# then says how to stop it and prints its URL (the caller defines wait_ready, pid and url).
finish_start() {
    local state="$1"
    shift
    echo "$state" >"$STATEFILE"
    wait_ready "$@"
    say "ready (pid $(pid)); stop with: $SELF stop"
    url
}

# cmd_stop of a service started by spawn_detached: stops the process named by $PIDFILE
# (the caller defines running and pid) and removes the pid file.
stop_pidfile_service() {
    if ! running; then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    local p
    p="$(pid)"
    say "stopping (pid $p)"
    stop_pid "$p"
    rm -f "$PIDFILE"
    say "stopped"
}

# cmd_status of a service started by spawn_detached: "running as '<state>' (FIELDS), pid N"
# and its URL, or "not running" and exit 3 (the caller defines running, pid and url; the
# state line in $STATEFILE lists the values FIELDS names).
status_pidfile_service() {
    if running; then
        say "running as '$(cat "$STATEFILE" 2>/dev/null || echo unknown)' ($1), pid $(pid)"
        url
    else
        say "not running"
        return 3
    fi
}

# maven_closure DIR JAR HINT GROUP:ARTIFACT:VERSION...: the runtime dependency closure of the
# artifacts, resolved by Maven from $MAVEN_REPO into DIR once (DIR/.complete marks it done);
# JAR must be among the jars. HINT (which settings to change) ends the error if Maven fails.
maven_closure() {
    local dir="$1" jar="$2" hint="$3"
    shift 3
    [[ -f "$dir/.complete" ]] && return 0
    command -v mvn >/dev/null || die "Maven is needed to resolve $1 (apt-get install -y maven)"
    local work="$dir.resolve" part="$dir.part" deps="" coord g a v out
    rm -rf "$work" "$part"
    mkdir -p "$work"
    for coord in "$@"; do
        IFS=: read -r g a v <<<"$coord"
        deps+="    <dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"$'\n'
    done
    # a throwaway project whose only purpose is the dependency closure
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lakehouse.services</groupId>
  <artifactId>$SERVICE-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <repositories>
    <repository><id>lakehouse-maven</id><url>$MAVEN_REPO</url></repository>
  </repositories>
  <dependencies>
$deps  </dependencies>
</project>
EOF
    say "resolving $1 and its dependencies with Maven"
    if ! out="$(cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$part" 2>&1)"; then
        echo "$out" >&2
        rm -rf "$part"
        die "Maven could not resolve $1 ($hint)"
    fi
    [[ -f "$part/$jar" ]] || die "Maven did not produce $jar"
    touch "$part/.complete"
    rm -rf "$dir"
    mv "$part" "$dir"
    rm -rf "$work"
    say "cached $(find "$dir" -name '*.jar' | wc -l) jars in $dir"
}

# newest_java MIN VAR: the newest java of version >= MIN — the binary named by the variable
# VAR if set (refused when older), else JAVA_HOME, the JDKs under /usr/lib/jvm and /opt,
# then `java` on the PATH. Prints "BINARY VERSION".
newest_java() {
    local min="$1" var="$2" candidates=() c best="" best_v=0 v
    local chosen="${!var:-}"
    if [[ -n "$chosen" ]]; then
        v="$(java_major "$chosen" || true)"
        [[ -n "$v" && "$v" -ge "$min" ]] \
            || die "$var=$chosen is not a Java $min+ binary (found version '${v:-none}')"
        echo "$chosen $v"
        return 0
    fi
    [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
    for c in /usr/lib/jvm/*/bin/java /opt/*/bin/java /opt/*/*/bin/java; do
        [[ -x "$c" ]] && candidates+=("$c")
    done
    c="$(command -v java 2>/dev/null || true)"
    [[ -n "$c" ]] && candidates+=("$c")
    for c in "${candidates[@]}"; do
        [[ -x "$c" ]] || continue
        v="$(java_major "$c" || true)"
        if [[ -n "$v" && "$v" -ge "$min" && "$v" -gt "$best_v" ]]; then
            best="$c"
            best_v="$v"
        fi
    done
    [[ -n "$best" ]] || die "no Java $min+ found (looked at JAVA_HOME, /usr/lib/jvm/*, /opt/*, PATH); install a JDK $min or newer (e.g. apt-get install -y openjdk-21-jre-headless) or set $var=/path/to/bin/java"
    echo "$best $best_v"
}
