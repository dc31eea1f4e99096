#!/usr/bin/env bash
# Spark 3.5 with Nessie's Spark SQL extensions, for the client tests of the Nessie SQL
# (CREATE BRANCH, USE REFERENCE, MERGE BRANCH, SHOW LOG, LIST REFERENCES).
#
#   scripts/tools/spark35.sh          install if missing, print the venv's python on stdout
#   scripts/tools/spark35.sh env      install if missing, print PYTHON=, JARS_DIR= and JAVA_HOME=
#
# Nessie's extensions are published for Spark 3.x only, while the engine runs Spark 4.1
# (scripts/services/spark.sh), so this is a second, test-only Spark: PyPI's pyspark
# ${LAKEHOUSE_SPARK35_PYSPARK_VERSION:-3.5.9} in its own virtual environment,
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/spark35-venv, and in its jars/ folder, from
# Maven Central (LAKEHOUSE_MAVEN_REPO), each checked against the repository's SHA-1:
#   org.apache.iceberg:iceberg-spark-runtime-3.5_2.12     ${LAKEHOUSE_ICEBERG_VERSION:-1.12.0}
#   org.projectnessie.nessie-integrations:nessie-spark-extensions-3.5_2.12
#                                                         ${LAKEHOUSE_NESSIE_VERSION:-0.99.0}
#   org.apache.iceberg:iceberg-aws-bundle                 (S3FileIO, for an S3 warehouse)
# (the Iceberg version of spark.sh and the Nessie server version of nessie.sh). Spark 3.5
# runs on Java 8, 11 or 17: JAVA_HOME if it is one of those, else the newest found under
# /usr/lib/jvm or /opt. Re-running is a no-op once installed.
set -euo pipefail

# fetch_verified (and java_major) from the services' helpers; _venv.sh's die and say
# (stderr, "spark35.sh:") replace theirs, so that stdout carries only the result.
SERVICE="spark35"
HERE_TOOLS="$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")"
# shellcheck source=scripts/services/_lib.sh
source "$HERE_TOOLS/../services/_lib.sh"
TOOL="spark35"
# shellcheck source=scripts/tools/_venv.sh
source "$HERE_TOOLS/_venv.sh"

PYSPARK_VERSION="${LAKEHOUSE_SPARK35_PYSPARK_VERSION:-3.5.9}"
ICEBERG_VERSION="${LAKEHOUSE_ICEBERG_VERSION:-1.12.0}"
NESSIE_VERSION="${LAKEHOUSE_NESSIE_VERSION:-0.99.0}"
MAVEN_REPO="${LAKEHOUSE_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
VENV="${LAKEHOUSE_SPARK35_VENV:-$CACHE/spark35-venv}"
JARS_DIR="$VENV/jars"
# group:artifact:version of every jar on the session's class path
JARS=(
    "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:$ICEBERG_VERSION"
    "org.projectnessie.nessie-integrations:nessie-spark-extensions-3.5_2.12:$NESSIE_VERSION"
    "org.apache.iceberg:iceberg-aws-bundle:$ICEBERG_VERSION"
)

ensure_jars() {
    command -v curl >/dev/null || die "curl is needed to download the jars (apt-get install -y curl)"
    command -v sha1sum >/dev/null || die "sha1sum is needed to verify the downloads (coreutils)"
    mkdir -p "$JARS_DIR"
    local coordinate group artifact version name wanted=()
    for coordinate in "${JARS[@]}"; do
        IFS=: read -r group artifact version <<<"$coordinate"
        name="$artifact-$version.jar"
        wanted+=("$name")
        [[ -f "$JARS_DIR/$name" ]] && continue
        say "downloading $coordinate"
        fetch_verified "$MAVEN_REPO/${group//.//}/$artifact/$version/$name" "$JARS_DIR/$name" \
            "set LAKEHOUSE_ICEBERG_VERSION, LAKEHOUSE_NESSIE_VERSION or LAKEHOUSE_MAVEN_REPO"
    done
    # another version's jars must not share the class path
    local jar
    for jar in "$JARS_DIR"/*.jar; do
        [[ -e "$jar" ]] || continue
        [[ " ${wanted[*]} " == *" ${jar##*/} "* ]] || { say "removing ${jar##*/} (not pinned)"; rm -f "$jar"; }
    done
}

# A JAVA_HOME Spark 3.5 supports (8, 11 or 17).
find_java_home() {
    local c v best="" best_v=0
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        v="$(java_major "$JAVA_HOME/bin/java" || true)"
        if [[ "$v" == 8 || "$v" == 11 || "$v" == 17 ]]; then
            echo "$JAVA_HOME"
            return 0
        fi
    fi
    for c in /usr/lib/jvm/*/bin/java /opt/*/bin/java; do
        [[ -x "$c" ]] || continue
        v="$(java_major "$c" || true)"
        if [[ ("$v" == 8 || "$v" == 11 || "$v" == 17) && "$v" -gt "$best_v" ]]; then
            best="$(readlink -f -- "${c%/bin/java}")"
            best_v="$v"
        fi
    done
    [[ -n "$best" ]] || die "Spark 3.5 needs Java 8, 11 or 17 (none found in JAVA_HOME or /usr/lib/jvm); apt-get install -y openjdk-17-jre-headless"
    echo "$best"
}

install() {
    ensure_venv "$VENV" "pyspark==$PYSPARK_VERSION"
    ensure_jars
}

case "${1:-install}" in
    install)
        install
        echo "$VENV/bin/python"
        ;;
    env)
        install
        echo "PYTHON=$VENV/bin/python"
        echo "JARS_DIR=$JARS_DIR"
        echo "JAVA_HOME=$(find_java_home)"
        ;;
    -h | --help | help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (use install or env)" ;;
esac
