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

TOOL="duckdb"
# shellcheck source=scripts/tools/_venv.sh
source "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/_venv.sh"

VERSION="${LAKEHOUSE_DUCKDB_VERSION:-1.4.4}"
EXT_VERSION="${LAKEHOUSE_DUCKDB_EXT_VERSION:-1.4.4.20260205}"
VENV="${LAKEHOUSE_DUCKDB_VENV:-$CACHE/duckdb-venv}"

ensure_venv "$VENV" "duckdb==$VERSION" "duckdb-ext-iceberg==$EXT_VERSION" \
    "duckdb-ext-httpfs==$EXT_VERSION" "duckdb-ext-avro==$EXT_VERSION"
echo "$VENV/bin/python"
