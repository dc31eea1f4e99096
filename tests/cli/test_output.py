"""Output for pipes and people: whole values when piped, whole errors, hints, JSON errors.

CliRunner's stdout is not a terminal, exactly as `lakehouse … | cat`; one test per
behaviour also runs the command as a process with a pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect

runner = CliRunner()

LONG = "a comment much longer than any terminal is wide, " * 4


def run(*args: str) -> Result:
    """Invoke the CLI in-process."""
    return runner.invoke(app, list(args))


def ok(*args: str) -> Result:
    """Invoke and assert success."""
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def error_line(result: Result) -> str:
    """The one `Error: …` line of a failed command (exit 1, nothing on stdout)."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """silver.orders on main: two rows, one with a long comment, one with a NULL comment."""
    ok("init")
    with connect(_isolate_lakehouse_config) as lakehouse:
        catalog = lakehouse.catalog("main")
        catalog.create_namespace("silver")
        rows = pa.table(
            {
                "o_orderkey": pa.array([1, 2], pa.int64()),
                "o_comment": pa.array([LONG, None], pa.string()),
            }
        )
        catalog.create_table("silver.orders", schema=rows.schema).append(rows)
        yield lakehouse


# -- never truncate when stdout is not a terminal -----------------------------------------


def test_sql_piped_prints_tsv_with_whole_values_and_every_row(lh: Lakehouse) -> None:
    out = ok("sql", "SELECT o_orderkey, o_comment FROM silver.orders ORDER BY 1").stdout
    assert out.splitlines() == ["o_orderkey\to_comment", f"1\t{LONG}", "2\t"]
    many = ok("sql", "SELECT * FROM range(1500)", "--max-rows", "10").stdout
    assert len(many.splitlines()) == 1 + 1500  # --max-rows is for the terminal's table


def test_sql_tsv_escapes_tabs_and_newlines_and_keeps_duplicate_columns(lh: Lakehouse) -> None:
    out = ok("sql", "SELECT 'a\tb' AS x, 'c' || chr(10) || 'd' AS x").stdout
    assert out.splitlines() == ["x\tx", "a\\tb\tc\\nd"]


def test_sql_chosen_table_output_is_not_cut_when_piped(lh: Lakehouse) -> None:
    out = ok("sql", "SELECT o_comment FROM silver.orders", "-o", "table").stdout
    assert LONG.strip() in out
    assert "…" not in out
    assert "(2 rows)" in out


def test_table_history_snapshot_ids_are_whole_when_piped(lh: Lakehouse) -> None:
    snapshot = lh.catalog("main").load_table("silver.orders").current_snapshot()
    assert snapshot is not None
    out = ok("table", "history", "silver.orders").stdout
    assert str(snapshot.snapshot_id) in out
    assert "…" not in out


def test_sql_piped_through_a_process_is_tsv(lh: Lakehouse) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "sql", "SELECT o_comment FROM silver.orders"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == ["o_comment", LONG, ""]


# -- errors: whole, with hints, as JSON ---------------------------------------------------


def test_duckdb_error_keeps_candidate_bindings(lh: Lakehouse) -> None:
    line = error_line(run("sql", "SELECT o_orderky FROM silver.orders"))
    assert 'Referenced column "o_orderky" not found' in line
    assert 'Candidate bindings: "o_orderkey"' in line
    assert "LINE 1" not in line


def test_unqualified_table_name_hints_namespace_table(lh: Lakehouse) -> None:
    line = error_line(run("sql", "SELECT * FROM orders"))
    assert "Table with name orders does not exist" in line
    assert line.endswith("(tables are namespace.table: did you mean silver.orders?)")


def test_misspelled_unqualified_table_name_gets_the_qualified_suggestion(lh: Lakehouse) -> None:
    line = error_line(run("sql", "SELECT * FROM ordrs"))
    assert line.endswith("(tables are namespace.table: did you mean silver.orders?)")
    assert "pg_" not in line  # DuckDB's own guess names a system table


def test_misspelled_table_name_hints_the_closest_table(lh: Lakehouse) -> None:
    line = error_line(run("sql", "SELECT * FROM silver.order"))
    assert line.endswith("(did you mean silver.orders?)")
    assert error_line(run("table", "show", "silver.ordrs")).endswith(
        "(did you mean silver.orders?)"
    )


def test_table_hint_looks_on_the_ref_the_query_reads(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    lh.catalog("dev").create_table("silver.customers", schema=pa.schema([("id", pa.int64())]))
    line = error_line(run("sql", "--ref", "dev", "SELECT * FROM customer"))
    assert "did you mean silver.customers?" in line
    assert "silver.customers" not in error_line(run("sql", "SELECT * FROM customer"))


def test_misspelled_ref_hints_the_closest_reference(lh: Lakehouse) -> None:
    assert error_line(run("log", "--ref", "mian")).endswith(
        "reference 'mian' does not exist (did you mean main?)"
    )
    assert error_line(run("sql", "--ref", "mian", "SELECT 1")).endswith("(did you mean main?)")


@pytest.mark.parametrize(
    "args",
    [
        ("-o", "json", "log", "--ref", "mian"),
        ("log", "--ref", "mian", "-o", "json"),
        ("--output", "json", "sql", "--ref", "mian", "SELECT 1"),
        ("sql", "--ref", "mian", "SELECT 1", "--output", "json"),
    ],
    ids=["global", "command", "sql-global", "sql-command"],
)
def test_json_output_reports_errors_as_json_on_stderr(lh: Lakehouse, args: tuple[str]) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(result.stderr) == {
        "error": {
            "type": "ReferenceNotFoundError",
            "message": "reference 'mian' does not exist",
            "hint": "did you mean main?",
        }
    }


def test_json_error_without_a_hint_has_hint_null(lh: Lakehouse) -> None:
    result = run("-o", "json", "sql", "SELECT o_orderky FROM silver.orders")
    error = json.loads(result.stderr)["error"]
    assert (error["type"], error["hint"]) == ("QueryExecutionError", None)
    assert "Candidate bindings" in error["message"]


def test_text_errors_stay_text_with_sql_csv_output(lh: Lakehouse) -> None:
    error_line(run("sql", "SELECT * FROM nowhere.nothing", "-o", "csv"))
