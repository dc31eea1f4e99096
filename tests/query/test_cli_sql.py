"""``lakehouse sql``: table, JSON and CSV output, refs, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from tests.query.conftest import EVERY_TYPE, make_table

runner = CliRunner()


def run(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    """A lakehouse in LAKEHOUSE_HOME (what the CLI opens) with silver.orders on main."""
    with connect(create=True) as opened:
        make_table(
            opened,
            "silver.orders",
            pa.table(
                {
                    "id": pa.array([1, 2], pa.int64()),
                    "status": ["new", None],
                    "price": pa.array([Decimal("1.50"), Decimal("20.00")], pa.decimal128(10, 2)),
                }
            ),
        )
        yield opened


QUERY = "SELECT id, status, price FROM silver.orders ORDER BY id"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stdout counts as a terminal (CliRunner's is not, as a pipe's is not)."""
    import lakehouse.cli._common
    import lakehouse.cli.sql

    monkeypatch.setattr(lakehouse.cli._common, "stdout_is_terminal", lambda: True)
    monkeypatch.setattr(lakehouse.cli.sql, "stdout_is_terminal", lambda: True)


def test_table_output_is_the_default_on_a_terminal(lh: Lakehouse, terminal: None) -> None:
    result = run("sql", QUERY)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "status", "price"]
    assert lines[1].split() == ["1", "new", "1.50"]
    assert lines[2].split() == ["2", "NULL", "20.00"]
    assert lines[-1] == "(2 rows)"


def test_json_output_is_an_array_of_rows(lh: Lakehouse) -> None:
    result = run("sql", QUERY, "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"id": 1, "status": "new", "price": 1.5},
        {"id": 2, "status": None, "price": 20},
    ]
    # the global --output json applies too
    assert json.loads(run("--output", "json", "sql", QUERY).stdout)[0]["id"] == 1


def test_csv_output_has_a_header_and_empty_nulls(lh: Lakehouse) -> None:
    result = run("sql", QUERY, "-o", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["id", "status", "price"],
        ["1", "new", "1.50"],
        ["2", "", "20.00"],
    ]


def test_ref_option_reads_another_branch(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    lh.catalog("dev").load_table("silver.orders").delete("id = 1")
    dev = json.loads(
        run("sql", "SELECT id FROM silver.orders", "--ref", "dev", "-o", "json").stdout
    )
    main = json.loads(run("sql", "SELECT id FROM silver.orders", "-o", "json").stdout)
    assert dev == [{"id": 2}]
    assert sorted(r["id"] for r in main) == [1, 2]


def test_query_from_stdin(lh: Lakehouse) -> None:
    result = run("sql", "-", "-o", "json", input="SELECT count(*) AS n FROM silver.orders")
    assert json.loads(result.stdout) == [{"n": 2}]


def test_table_output_caps_the_rows_shown_on_a_terminal(lh: Lakehouse, terminal: None) -> None:
    result = run("sql", "SELECT * FROM range(5)", "--max-rows", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("(5 rows, first 2 shown")


def test_the_row_cap_also_counts_rows_of_a_table(lh: Lakehouse, terminal: None) -> None:
    result = run("sql", QUERY, "--max-rows", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("(2 rows, first 1 shown")


@pytest.mark.parametrize("output", ["table", "tsv", "json", "csv"])
def test_a_statement_prints_the_same_whether_it_reads_a_table_or_not(
    lh: Lakehouse, output: str
) -> None:
    # the first runs without pyarrow (it names no table), the second through Arrow;
    # piped, the table output is not cut to a terminal's width
    columns = ", ".join(EVERY_TYPE)
    without_table = run("sql", f"SELECT {columns}", "-o", output)
    with_table = run("sql", f"SELECT {columns} FROM silver.orders WHERE id = 1", "-o", output)
    assert without_table.exit_code == 0, without_table.output
    assert with_table.exit_code == 0, with_table.output
    assert without_table.stdout == with_table.stdout
    assert "0.10000000149011612" in with_table.stdout  # the FLOAT column, whole


def test_a_statement_without_a_table_still_resolves_the_ref(lh: Lakehouse) -> None:
    result = run("sql", "SELECT 1", "--ref", "nope")
    assert result.exit_code == 1
    assert "nope" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT * FROM silver.nope", "table 'silver.nope' does not exist on 'main'"),
        ("SELEC 1", 'SQL syntax error: syntax error at or near "SELEC"'),
        ("SELECT 1 / 'x'", "Could not convert string 'x'"),
        ("SELECT CAST('x' || range AS INTEGER) FROM range(3)", "Could not convert string 'x0'"),
        ("SELECT nope FROM silver.orders", 'Referenced column "nope" not found'),
        ("DELETE FROM silver.orders", "only queries can run here"),
    ],
)
def test_errors_are_one_line_with_exit_code_1(lh: Lakehouse, query: str, fragment: str) -> None:
    result = run("sql", query)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
