"""DuckDB 1.4's iceberg extension against our ``/iceberg`` API, on main and on a branch.

DuckDB's ``ATTACH … (TYPE iceberg, ENDPOINT …)`` sends only a ``warehouse`` to
``GET /v1/config`` and ignores the ``uri`` override, so a branch is reached by naming it
as the warehouse: ``ATTACH 'dev|warehouse'`` (or ``'dev'``), the form
docs/compatibility.md documents. DuckDB runs in its own test-only venv
(``scripts/tools/duckdb.sh``, path in ``LAKEHOUSE_TEST_DUCKDB_PYTHON``) as a subprocess,
one fresh connection per step so nothing is served from DuckDB's cache; our server is a
thread over an embedded lakehouse's SQLite store, the files in its local warehouse.

* DuckDB creates a namespace and a table on ``main``, inserts, deletes, reads back; the
  lakehouse reads the same rows;
* a DuckDB write on ``dev`` is invisible on ``main`` (to DuckDB and the lakehouse) until
  ``lakehouse merge dev``; then DuckDB reads it on ``main``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect

pytestmark = pytest.mark.integration

DUCKDB_PYTHON = os.environ.get("LAKEHOUSE_TEST_DUCKDB_PYTHON", "")

# Runs in DuckDB's venv: ATTACHes main and dev, runs the statements, prints the last rows.
_RUNNER = """
import glob, json, sys
import duckdb
endpoint, statements = sys.argv[1], json.loads(sys.argv[2])
ext = glob.glob(sys.prefix + "/lib/python3*/site-packages/duckdb_ext/extensions")[0]
con = duckdb.connect(
    config={"extension_directory": ext, "autoinstall_known_extensions": "false"}
)
for name in ("httpfs", "avro", "iceberg"):
    con.execute("LOAD " + name)
opts = f"TYPE iceberg, ENDPOINT '{endpoint}', AUTHORIZATION_TYPE 'none'"
con.execute(f"ATTACH 'warehouse' AS lh ({opts})")
con.execute(f"ATTACH 'dev|warehouse' AS lh_dev ({opts})")
con.execute(f"ATTACH 'dev' AS lh_dev_bare ({opts})")
rows = []
for statement in statements:
    rows = con.execute(statement).fetchall()
print(json.dumps([list(r) for r in rows], default=str))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lakehouse, str]]:
    """An embedded lakehouse with branch ``dev``, our server over its store: (lh, endpoint)."""
    if not DUCKDB_PYTHON:
        pytest.skip("LAKEHOUSE_TEST_DUCKDB_PYTHON unset (scripts/tools/duckdb.sh prints it)")
    from lakehouse.server.app import make_server, serving
    from lakehouse.server.iceberg_rest import IcebergRestSettings

    home: Path = tmp_path_factory.mktemp("duckdb-rest") / "home"
    lh = connect(home, create=True)
    lh.create_branch("dev")
    iceberg = IcebergRestSettings.from_settings(lh.settings)
    server = make_server(lh.store, "127.0.0.1", 0, log_level="warning", iceberg=iceberg)
    with serving(server) as port:
        try:
            yield lh, f"http://127.0.0.1:{port}/iceberg"
        finally:
            lh.close()


def duckdb(endpoint: str, *statements: str) -> list[list[Any]]:
    """Run ``statements`` in a fresh DuckDB connection; the rows of the last one."""
    done = subprocess.run(
        [DUCKDB_PYTHON, "-c", _RUNNER, endpoint, json.dumps(statements)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows: list[list[Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def our_rows(lh: Lakehouse, table: str, ref: str = "main") -> list[list[Any]]:
    return sorted(
        list(r.values()) for r in lh.sql(f"SELECT id, name FROM {table}", ref).to_pylist()
    )


def test_duckdb_creates_writes_deletes_and_reads_a_table_on_main(
    served: tuple[Lakehouse, str],
) -> None:
    lh, endpoint = served
    duckdb(
        endpoint,
        "CREATE SCHEMA lh.sales",
        "CREATE TABLE lh.sales.orders (id BIGINT, name VARCHAR)",
        "INSERT INTO lh.sales.orders VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    )
    duckdb(endpoint, "DELETE FROM lh.sales.orders WHERE id = 2")

    expected = [[1, "a"], [3, "c"]]
    assert duckdb(endpoint, "SELECT id, name FROM lh.sales.orders ORDER BY id") == expected
    assert our_rows(lh, "sales.orders") == expected
    assert lh.tables("dev") == []


def test_a_duckdb_branch_write_is_invisible_on_main_until_lakehouse_merge(
    served: tuple[Lakehouse, str],
) -> None:
    lh, endpoint = served
    duckdb(
        endpoint,
        "CREATE SCHEMA lh_dev.staging",
        "CREATE TABLE lh_dev.staging.events (id BIGINT, name VARCHAR)",
        "INSERT INTO lh_dev.staging.events VALUES (10, 'x'), (11, 'y')",
    )
    on_dev = [[10, "x"], [11, "y"]]
    query = "SELECT id, name FROM {}.staging.events ORDER BY id"
    assert duckdb(endpoint, query.format("lh_dev")) == on_dev
    assert duckdb(endpoint, query.format("lh_dev_bare")) == on_dev  # warehouse 'dev'
    assert our_rows(lh, "staging.events", "dev") == on_dev
    tables_on_main = "SELECT \"schema\", name FROM (SHOW ALL TABLES) WHERE database = 'lh'"
    assert ["staging", "events"] not in duckdb(endpoint, tables_on_main)
    assert lh.tables("main", namespace="staging") == []

    result = CliRunner().invoke(app, ["--home", str(lh.settings.home), "merge", "dev"])
    assert result.exit_code == 0, result.output

    assert duckdb(endpoint, query.format("lh")) == on_dev
    assert our_rows(lh, "staging.events") == on_dev
