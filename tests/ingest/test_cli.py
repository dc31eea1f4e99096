"""``lakehouse ingest …`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from lakehouse.cli.main import app
from lakehouse.client import connect

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def home(_isolate_lakehouse_config: Path) -> Path:
    """An initialized lakehouse home (LAKEHOUSE_HOME points at it)."""
    assert run("init").exit_code == 0
    return _isolate_lakehouse_config


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_ingest_folder_loads_and_reruns_load_nothing(home: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "exports"
    inbox.mkdir()
    (inbox / "orders.tbl").write_text("1|alice\n2|bob\n")
    args = ["ingest", "folder", str(inbox), "--table", "bronze.orders", "--format", "csv"]
    args += ["--delimiter", "|", "--no-header", "-O", "column_names=[id, customer]"]

    first = run(*args)
    again = run(*args, "--output", "json")

    assert first.exit_code == 0, (first.stdout, first.stderr)
    assert "Loaded batch" in first.stdout and "source 'exports' into bronze.orders" in first.stdout
    assert "rows:     2" in first.stdout
    assert again.exit_code == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["batch_id"] is None and data["rows_loaded"] == 0
    assert [s["reason"] for s in data["skipped"]] == ["already loaded"]
    with connect(home) as lh:
        rows = lh.table("bronze.orders").scan().to_arrow().select(["id", "customer"]).to_pylist()
    assert rows == [{"id": 1, "customer": "alice"}, {"id": 2, "customer": "bob"}]


def test_ingest_folder_on_a_branch(home: Path, tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text("id\n1\n")
    assert run("branch", "create", "dev").exit_code == 0

    result = run("ingest", "folder", str(tmp_path), "-p", "*.csv", "-t", "orders", "--ref", "dev")

    assert result.exit_code == 0, result.stderr
    assert "into bronze.orders on dev" in result.stdout
    with connect(home) as lh:
        assert lh.tables("main") == []
        assert [str(e.key) for e in lh.tables("dev")] == ["bronze.orders"]


def test_bad_input_is_one_error_line_with_exit_code_1(home: Path, tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_bytes(b"id,name\n1,caf\xe9\n")

    result = run("ingest", "folder", str(tmp_path), "--table", "bronze.orders")

    assert_one_line_error(result, "orders.csv", "not valid utf-8")
    assert result.stdout == ""
    with connect(home) as lh:
        assert lh.tables() == []


def test_a_missing_folder_is_one_error_line(home: Path, tmp_path: Path) -> None:
    result = run("ingest", "folder", str(tmp_path / "nowhere"), "--table", "orders")

    assert_one_line_error(result, "nowhere", "does not exist")


def test_a_quarantined_batch_prints_the_result_and_exits_1(home: Path, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    assert run("ingest", "folder", str(tmp_path), "-t", "orders").exit_code == 0
    (tmp_path / "b.csv").write_text("id\nnot-a-number\n")

    result = run("ingest", "folder", str(tmp_path), "-t", "orders")

    line = assert_one_line_error(result, "was not loaded into bronze.orders", "_rejected")
    assert "Quarantined batch" in result.stdout
    assert "long" in line


def test_invalid_options_are_config_errors(home: Path, tmp_path: Path) -> None:
    result = run("ingest", "folder", str(tmp_path), "-t", "orders", "-O", "colour=red")

    assert_one_line_error(result, "unknown field 'options.colour'")


def test_ingest_http_reports_a_server_that_is_down(home: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = run("ingest", "http", f"http://127.0.0.1:{port}/a.csv", "-t", "a", "--timeout", "5")

    assert_one_line_error(result, "is unavailable", f"127.0.0.1:{port}/a.csv")


def test_ingest_sql_requires_a_table_or_a_query(home: Path) -> None:
    result = run("ingest", "sql", "sqlite://", "--table", "bronze.x")

    assert_one_line_error(result, "give either 'source_table' or 'query'")


def test_ingest_sql_from_sqlite_table(home: Path, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(1, "alice"), (2, "bob")])
    conn.close()
    url = f"sqlite:///{db}"

    first = run("ingest", "sql", url, "--from-table", "orders", "--cursor", "id", "-t", "orders")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO orders VALUES (3, 'carol')")
    conn.close()
    second = run(
        "ingest",
        "sql",
        url,
        "--from-table",
        "orders",
        "--cursor",
        "id",
        "-t",
        "orders",
        "-o",
        "json",
    )

    assert first.exit_code == 0, first.stderr
    assert "rows:     2" in first.stdout
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout)["rows_loaded"] == 1
