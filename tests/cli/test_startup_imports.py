"""The import budget of the ``lakehouse`` command: what a command loads is what it uses.

Start-up time is measured in ``bench/startup.py``; here the structure that keeps it low is
pinned, without a clock: each command runs as its console script runs it, in a fresh
interpreter, and reports the modules it loaded. ``--help`` loads typer and the standard
library; ``sql "SELECT 1"`` reads no table, so it loads neither the catalog store
(SQLAlchemy), PyIceberg, sqlglot, nor pyarrow and numpy (its rows come from DuckDB as
Python values) — while a query that reads a table loads them all, which shows the check
sees imports at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import typer

import lakehouse
from lakehouse.cli.main import LATER
from lakehouse.client import connect

#: Runs the console script's main() with the given arguments, then prints the modules loaded.
PROBE = """
import json, sys
from lakehouse.cli.main import main
sys.argv = ["lakehouse", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

#: The modules of commands other than ``sql``.
OTHER_COMMAND_MODULES = (
    "history",
    "run",
    "pipeline",
    "serve",
    "trino",
    "login",
    "refs",
    "tables",
    "ingest",
    "backup",
    "ops",
    "maintenance",
)

#: Loaded by no command that reads no table.
HEAVY = ("sqlalchemy", "pyiceberg", "sqlglot", "httpx", "yaml", "fastapi")


def run(home: Path, *args: str) -> tuple[str, set[str]]:
    """Stdout of ``lakehouse ARGS`` in a fresh interpreter, and the modules it loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "NESSIE_"))}
    env["LAKEHOUSE_HOME"] = str(home)
    src = str(Path(lakehouse.__file__).parents[1])  # this checkout's lakehouse
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    return done.stdout, set(report["modules"])


def loaded(modules: set[str], *roots: str) -> list[str]:
    """The top-level packages of ``roots`` that are in ``modules``."""
    return sorted(r for r in roots if r in modules or any(m.startswith(r + ".") for m in modules))


@pytest.fixture
def home(_isolate_lakehouse_config: Path) -> Path:
    """An embedded lakehouse with one table, s.t (3 rows)."""
    with connect(create=True) as lh:
        catalog = lh.catalog("main")
        catalog.create_namespace("s")
        rows = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
        catalog.create_table("s.t", schema=rows.schema).append(rows)
    return _isolate_lakehouse_config


def test_help_loads_typer_and_the_standard_library_only(home: Path) -> None:
    out, modules = run(home, "--help")
    assert "Usage: lakehouse" in out
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == ["init", "status", "log", *LATER]  # every command, built for its help
    assert loaded(modules, *HEAVY, "duckdb", "pyarrow", "numpy", "pydantic", "rich") == []
    assert loaded(modules, "lakehouse.client", "lakehouse.catalog", "lakehouse.config") == []


@pytest.mark.parametrize(
    ("output", "printed"),
    [
        ((), "one\n1\n"),
        (("-o", "table"), "one\n  1\n(1 row)\n"),
        (("-o", "json"), '[\n  {\n    "one": 1\n  }\n]\n'),
        (("-o", "csv"), "one\n1\n"),
    ],
    ids=["tsv", "table", "json", "csv"],
)
def test_a_query_that_reads_no_table_loads_no_catalog_no_sql_parser_and_no_arrow(
    home: Path, output: tuple[str, ...], printed: str
) -> None:
    out, modules = run(home, "sql", "SELECT 1 AS one", *output)
    assert out == printed
    assert loaded(modules, *HEAVY, "pyarrow", "numpy") == []
    assert loaded(modules, "lakehouse.catalog.sql_store", "lakehouse.query.analysis") == []
    assert loaded(modules, "lakehouse.query.execution", "lakehouse.query.deletes") == []
    # the other commands are neither imported nor built
    assert loaded(modules, *(f"lakehouse.cli.{m}" for m in OTHER_COMMAND_MODULES)) == []


def test_a_query_that_reads_a_table_loads_what_it_uses(home: Path) -> None:
    out, modules = run(home, "sql", "SELECT count(*) AS n FROM s.t")
    assert out == "n\n3\n"
    assert loaded(modules, "sqlalchemy", "pyiceberg", "sqlglot", "pyarrow", "numpy") == [
        "numpy",
        "pyarrow",
        "pyiceberg",
        "sqlalchemy",
        "sqlglot",
    ]


def test_each_later_command_is_listed_under_the_name_it_registers() -> None:
    # a registration that adds a name LATER does not list could never be run
    for register in set(LATER.values()):
        holder = typer.Typer()
        register(holder)
        registered = {c.name for c in holder.registered_commands} | {
            g.name for g in holder.registered_groups
        }
        assert registered == {name for name, r in LATER.items() if r is register}
