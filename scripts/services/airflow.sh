#!/usr/bin/env bash
# Apache Airflow for the lakehouse DAGs (dags/) and their integration tests.
#
#   scripts/services/airflow.sh [start]      install if missing, migrate the metadata DB (idempotent)
#   scripts/services/airflow.sh install      the same
#   scripts/services/airflow.sh stop         nothing to stop (DAGs run in-process with dag.test())
#   scripts/services/airflow.sh status       exit 0 when installed and migrated, 3 when not
#   scripts/services/airflow.sh python       print the venv's python (tests run with it)
#   scripts/services/airflow.sh env          print `export ...` lines for AIRFLOW_HOME & co
#   scripts/services/airflow.sh run CMD...   run CMD with the venv on PATH and that environment
#                                            (e.g. `run airflow dags list --local`)
#
# Airflow ${LAKEHOUSE_AIRFLOW_VERSION:-3.3.2} comes from PyPI with our committed constraints
# (airflow/constraints-3.11.txt, header says how it was made) into its own virtual
# environment, ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/airflow-venv, together with this
# repository as an editable install (the DAGs import `lakehouse`) and pytest. Its metadata
# DB is SQLite, in AIRFLOW_HOME = <cache>/airflow-home; DAGS_FOLDER is this repository's
# dags/. Re-running is quick: the venv is rebuilt only when the Python version, the
# Airflow version or the constraints change, and the editable install is redone only when
# pyproject.toml or the repository path changes. Nothing keeps running: `start` prints the
# environment to use on its last line.
set -euo pipefail

SERVICE="airflow"
# shellcheck source=scripts/services/_lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/_lib.sh"

VERSION="${LAKEHOUSE_AIRFLOW_VERSION:-3.3.2}"
REPO="$(cd -- "$HERE/../.." && pwd)"
CONSTRAINTS="$REPO/airflow/constraints-3.11.txt"
VENV="${LAKEHOUSE_AIRFLOW_VENV:-$CACHE/airflow-venv}"
AF_HOME="${LAKEHOUSE_AIRFLOW_HOME:-$CACHE/airflow-home}"
PY="$VENV/bin/python"
# Python used to create the venv: python3.11 if present (the constraints are for 3.11).
BASE_PYTHON="${LAKEHOUSE_AIRFLOW_PYTHON:-$(command -v python3.11 2>/dev/null || command -v python3)}"

# The environment Airflow runs with (config from env vars: no airflow.cfg edits needed).
airflow_env() {
    cat <<EOF
export AIRFLOW_HOME='$AF_HOME'
export AIRFLOW__CORE__DAGS_FOLDER='$REPO/dags'
export AIRFLOW__CORE__LOAD_EXAMPLES='False'
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN='sqlite:///$AF_HOME/airflow.db'
export LAKEHOUSE_AIRFLOW_PYTHON_BIN='$PY'
EOF
}

apply_env() {
    eval "$(airflow_env)"
}

sha() {
    sha256sum | cut -c1-16
}

# Identity of the venv's contents: rebuild it when any of these change.
venv_key() {
    { "$BASE_PYTHON" -c 'import sys; print(sys.version)'; echo "$VERSION"; cat "$CONSTRAINTS"; } | sha
}

# Identity of the editable install: redo it when these change.
repo_key() {
    { echo "$REPO"; cat "$REPO/pyproject.toml"; } | sha
}

ensure_venv() {
    [[ -f "$CONSTRAINTS" ]] || die "missing $CONSTRAINTS"
    [[ -n "$BASE_PYTHON" ]] || die "no python3 found (install Python 3.11)"
    local key
    key="$(venv_key)"
    if [[ -x "$PY" && "$(cat "$VENV/.airflow-key" 2>/dev/null || true)" == "$key" ]]; then
        return 0
    fi
    say "installing Apache Airflow $VERSION into $VENV (takes a minute or two)"
    local started=$SECONDS
    rm -rf "$VENV"
    "$BASE_PYTHON" -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -c "$CONSTRAINTS" "apache-airflow==$VERSION" \
        || die "pip could not install apache-airflow==$VERSION with $CONSTRAINTS"
    echo "$key" >"$VENV/.airflow-key"
    rm -f "$VENV/.lakehouse-key"
    say "Airflow $VERSION installed in $((SECONDS - started))s"
}

ensure_lakehouse() {
    local key
    key="$(repo_key)"
    if [[ "$(cat "$VENV/.lakehouse-key" 2>/dev/null || true)" == "$key" ]] \
        && "$PY" -c 'import lakehouse' 2>/dev/null; then
        return 0
    fi
    say "installing $REPO (editable) and pytest into $VENV"
    "$PY" -m pip install --quiet -c "$CONSTRAINTS" -e "$REPO" pytest \
        || die "pip could not install $REPO into the Airflow venv with $CONSTRAINTS"
    "$PY" -m pip check >/dev/null || {
        "$PY" -m pip check >&2 || true
        die "the Airflow venv has conflicting requirements (see above)"
    }
    echo "$key" >"$VENV/.lakehouse-key"
}

installed_version() {
    "$PY" -c 'from importlib.metadata import version; print(version("apache-airflow"))'
}

migrated() {
    [[ -f "$AF_HOME/airflow.db" && -f "$AF_HOME/.migrated" ]] \
        && [[ "$(cat "$AF_HOME/.migrated")" == "$VERSION" ]]
}

ensure_db() {
    mkdir -p "$AF_HOME"
    migrated && return 0
    say "migrating the Airflow metadata DB ($AF_HOME/airflow.db)"
    (apply_env && "$VENV/bin/airflow" db migrate >"$AF_HOME/migrate.log" 2>&1) || {
        tail -n 30 "$AF_HOME/migrate.log" >&2 || true
        die "airflow db migrate failed (log: $AF_HOME/migrate.log)"
    }
    echo "$VERSION" >"$AF_HOME/.migrated"
}

cmd_start() {
    local started=$SECONDS
    ensure_venv
    ensure_lakehouse
    ensure_db
    say "ready in $((SECONDS - started))s: Airflow $(installed_version) in $VENV, DAGs from $REPO/dags"
    say "use it with: eval \"\$($SELF env)\"   (or: $SELF run airflow dags list --local)"
}

cmd_status() {
    if [[ -x "$PY" ]] && [[ "$(installed_version 2>/dev/null)" == "$VERSION" ]] \
        && "$PY" -c 'import lakehouse' 2>/dev/null && migrated; then
        say "installed: Airflow $(installed_version) in $VENV, metadata DB $AF_HOME/airflow.db"
    else
        say "not installed (run: $SELF start)"
        return 3
    fi
}

cmd_run() {
    [[ $# -gt 0 ]] || die "run needs a command (e.g. $SELF run airflow dags list --local)"
    [[ -x "$PY" ]] || die "not installed (run: $SELF start)"
    apply_env
    export PATH="$VENV/bin:$PATH"
    exec "$@"
}

main() {
    local cmd="${1:-start}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        start | install) cmd_start ;;
        stop) say "nothing to stop: DAGs run in-process (dag.test()); the venv stays in $VENV" ;;
        status) cmd_status ;;
        python) echo "$PY" ;;
        env) airflow_env ;;
        run) cmd_run "$@" ;;
        -h | --help | help) print_help 23 ;;
        *) die "unknown command '$cmd' (use start, stop, status, python, env or run)" ;;
    esac
}

main "$@"
