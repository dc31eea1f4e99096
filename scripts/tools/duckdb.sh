#!/usr/bin/env bash
# DuckDB 1.4 with its iceberg, httpfs and avro extensions, for the DuckDB client tests.
#
#   scripts/tools/duckdb.sh        install if missing, print the venv's python on stdout
#
# DuckDB ${LAKEHOUSE_DUCKDB_VERSION:-1.4.4} and the extension packages PyPI serves for it
# (duckdb-ext-iceberg, duckdb-ext-httpfs, duckdb-ext-avro ${LAKEHOUSE_DUCKDB_EXT_VERSION:-1.4.4.20260205})
# go into a test-only virtual environment, ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/duckdb-venv,
# apart from the project's venv (whose duckdb may be newer, and for which no extension can
# be downloaded here). The extensions sit in site-packages/duckdb_ext/extensions, which a
# connection uses as its extension_directory. Re-running is a no-op once installed.
set -euo pipefail

VERSION="${LAKEHOUSE_DUCKDB_VERSION:-1.4.4}"
EXT_VERSION="${LAKEHOUSE_DUCKDB_EXT_VERSION:-1.4.4.20260205}"
CACHE="$(realpath -m -- "${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}")"
VENV="${LAKEHOUSE_DUCKDB_VENV:-$CACHE/duckdb-venv}"
PY="$VENV/bin/python"
STAMP="$VENV/.lakehouse-installed"
WANT="duckdb==$VERSION duckdb-ext-iceberg==$EXT_VERSION duckdb-ext-httpfs==$EXT_VERSION duckdb-ext-avro==$EXT_VERSION"

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "duckdb.sh: installing $WANT into $VENV" >&2
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$PY" -m pip install -q --disable-pip-version-check $WANT >&2
    echo "$WANT" >"$STAMP"
fi
echo "$PY"
