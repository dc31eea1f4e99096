#!/usr/bin/env bash
# Apache Spark (PySpark, local mode) for the lakehouse Spark engine and its integration tests.
#
#   scripts/services/spark.sh [start]   install pyspark if missing and download the jars
#   scripts/services/spark.sh install   pip install the `spark` extra into the repo's .venv (if missing)
#   scripts/services/spark.sh jars      download the runtime jars (checksums verified); print the folder
#   scripts/services/spark.sh check     start one local[2] session with the jars and run a query
#   scripts/services/spark.sh stop      nothing to stop (see below)
#   scripts/services/spark.sh status    exit 0 when pyspark is installed and the jars are cached, 3 when not
#   scripts/services/spark.sh env       print the LAKEHOUSE_SPARK__* settings for these jars
#
# Spark is not a daemon here: the engine starts an in-process local[N] session (a JVM
# child of the Python process) when a pipeline runs on Spark and it ends with that
# process, so there is no start/stop of a server. `start` only makes sure everything
# is installed.
#
# PySpark comes from PyPI through the `spark` extra of pyproject.toml (pyspark 4.1.x:
# the newest Spark minor with an Iceberg runtime on Maven Central). The jars come from
# Maven Central (LAKEHOUSE_MAVEN_REPO), each checked against the repository's SHA-1,
# into ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/spark/jars:
#   org.apache.iceberg:iceberg-spark-runtime-4.1_2.13  (Iceberg, its SQL extensions, NessieCatalog)
#   org.apache.iceberg:iceberg-aws-bundle              (S3FileIO for s3:// warehouses)
# at version ${LAKEHOUSE_ICEBERG_VERSION:-1.12.0}. Nessie's Spark SQL extensions
# (nessie-spark-extensions) are published for Spark 3.x only, so `CALL nessie...` and the
# branch SQL are not available; branches are managed with `lakehouse branch …`. (The
# tests run those extensions on a second, test-only Spark 3.5: scripts/tools/spark35.sh.)
# Spark 4.1 runs on Java 17 or 21 (JAVA_HOME, else the newest such JDK found).
set -euo pipefail

SERVICE="spark"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

ICEBERG_VERSION="${LAKEHOUSE_ICEBERG_VERSION:-1.12.0}"
SPARK_MINOR="4.1"
SCALA="2.13"
MAVEN_REPO="${LAKEHOUSE_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
REPO="$(cd -- "$HERE/../.." && pwd)"
PY="$REPO/.venv/bin/python"
SDIR="$CACHE/spark"
JARS_DIR="$SDIR/jars"
# group:artifact of every jar the engine needs (version: ICEBERG_VERSION).
ARTIFACTS=(
    "org.apache.iceberg:iceberg-spark-runtime-${SPARK_MINOR}_${SCALA}"
    "org.apache.iceberg:iceberg-aws-bundle"
)

# -- jars ----------------------------------------------------------------------------

jar_name() {
    local artifact="${1#*:}"
    echo "$artifact-$ICEBERG_VERSION.jar"
}

jar_url() {
    local group="${1%%:*}" artifact="${1#*:}"
    echo "$MAVEN_REPO/${group//.//}/$artifact/$ICEBERG_VERSION/$artifact-$ICEBERG_VERSION.jar"
}

have_jars() {
    local a
    for a in "${ARTIFACTS[@]}"; do
        [[ -f "$JARS_DIR/$(jar_name "$a")" ]] || return 1
    done
}

download_jar() {
    local coordinate="$1" target src
    target="$JARS_DIR/$(jar_name "$coordinate")"
    [[ -f "$target" ]] && return 0
    src="$(jar_url "$coordinate")"
    say "downloading $coordinate:$ICEBERG_VERSION from $src"
    fetch_verified "$src" "$target" "set LAKEHOUSE_ICEBERG_VERSION or LAKEHOUSE_MAVEN_REPO"
}

cmd_jars() {
    command -v curl >/dev/null || die "curl is needed to download the jars (apt-get install -y curl)"
    command -v sha1sum >/dev/null || die "sha1sum is needed to verify the downloads (coreutils)"
    mkdir -p "$JARS_DIR"
    local a
    for a in "${ARTIFACTS[@]}"; do
        download_jar "$a"
    done
    echo "$JARS_DIR"
}

# -- pyspark -------------------------------------------------------------------------

have_pyspark() {
    [[ -x "$PY" ]] && "$PY" -c 'import pyspark' 2>/dev/null
}

cmd_install() {
    [[ -x "$PY" ]] || die "$PY not found: run 'make install' first"
    if have_pyspark; then
        say "pyspark $("$PY" -c 'import pyspark; print(pyspark.__version__)') already installed in $REPO/.venv"
        return 0
    fi
    say "installing the spark extra into $REPO/.venv (pyspark is a large download)"
    "$PY" -m pip install --quiet -e "$REPO[spark]" || die "pip install -e '.[spark]' failed"
    say "installed pyspark $("$PY" -c 'import pyspark; print(pyspark.__version__)')"
}

# -- java ----------------------------------------------------------------------------


# A JAVA_HOME Spark 4.1 supports (17 or 21): JAVA_HOME if it fits, else the newest under /usr/lib/jvm.
find_java_home() {
    local c v best="" best_v=0
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        v="$(java_major "$JAVA_HOME/bin/java" || true)"
        if [[ "$v" == 17 || "$v" == 21 ]]; then
            echo "$JAVA_HOME"
            return 0
        fi
    fi
    for c in /usr/lib/jvm/*/bin/java /opt/*/bin/java; do
        [[ -x "$c" ]] || continue
        v="$(java_major "$c" || true)"
        if [[ ("$v" == 17 || "$v" == 21) && "$v" -gt "$best_v" ]]; then
            best="${c%/bin/java}"
            best_v="$v"
        fi
    done
    [[ -n "$best" ]] || die "Spark $SPARK_MINOR needs Java 17 or 21 (none found in JAVA_HOME or /usr/lib/jvm); apt-get install -y openjdk-17-jre-headless"
    echo "$best"
}

cmd_check() {
    have_pyspark || die "pyspark is not installed: run '$SELF install'"
    have_jars || die "the jars are not cached: run '$SELF jars'"
    local java_home
    java_home="$(find_java_home)"
    say "starting a local[2] session (Java: $java_home)"
    JAVA_HOME="$java_home" "$PY" - "$JARS_DIR" <<'EOF'
import glob, sys, time
from pyspark.sql import SparkSession

started = time.perf_counter()
jars = ",".join(sorted(glob.glob(f"{sys.argv[1]}/*.jar")))
spark = (
    SparkSession.builder.master("local[2]")
    .appName("lakehouse-spark-check")
    .config("spark.jars", jars)
    .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
    .config("spark.ui.enabled", "false")
    .config("spark.ui.showConsoleProgress", "false")
    .config("spark.sql.shuffle.partitions", "2")
    .getOrCreate()
)
try:
    spark.sparkContext.setLogLevel("ERROR")
    value = spark.sql("SELECT sum(id) AS s FROM range(1000)").toArrow().column(0)[0].as_py()
    assert value == 499500, value
    # spark.jars live in Spark's own class loader, the thread's context loader
    loader = spark.sparkContext._jvm.java.lang.Thread.currentThread().getContextClassLoader()
    for name in ("org.apache.iceberg.nessie.NessieCatalog", "org.apache.iceberg.aws.s3.S3FileIO"):
        loader.loadClass(name)
    print(f"spark.sh: Spark {spark.version} ok (query and Iceberg classes) in {time.perf_counter() - started:.1f}s")
finally:
    spark.stop()
EOF
}

cmd_status() {
    if have_pyspark && have_jars; then
        say "pyspark installed, jars cached in $JARS_DIR"
        echo "$JARS_DIR"
    else
        have_pyspark || say "pyspark not installed ('$SELF install')"
        have_jars || say "jars not cached ('$SELF jars')"
        return 3
    fi
}

main() {
    local cmd="${1:-start}"
    case "$cmd" in
        start)
            cmd_install
            cmd_jars
            ;;
        install) cmd_install ;;
        jars) cmd_jars ;;
        check) cmd_check ;;
        stop) say "nothing to stop: Spark runs in-process (local mode)" ;;
        status) cmd_status ;;
        env)
            echo "LAKEHOUSE_SPARK__JARS_DIR=$JARS_DIR"
            echo "JAVA_HOME=$(find_java_home)"
            ;;
        -h | --help | help) print_help 27 ;;
        *) die "unknown command '$cmd' (use start, install, jars, check, stop, status or env)" ;;
    esac
}

main "$@"
