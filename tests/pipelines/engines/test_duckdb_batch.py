"""The DuckDB engine's batch (the audit): every check query planned at one commit and run
in one locked connection that reads exactly the union of the planned files."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse
from lakehouse.pipelines.checks import check_queries, run_check
from lakehouse.pipelines.config import parse_check
from lakehouse.pipelines.engines.duckdb import DuckDBEngine
from lakehouse.query import sandbox
from lakehouse.query.errors import ForbiddenQueryError, TableNotFoundError
from tests.pipelines.conftest import bronze

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)

CHECKS: list[dict[str, Any]] = [
    {"type": "not_null", "model": "silver.orders", "columns": ["customer", "status"]},
    {"type": "unique", "model": "silver.orders", "columns": ["id"]},
    {"type": "accepted_values", "model": "silver.orders", "column": "status", "values": ["F"]},
    {
        "type": "relationships",
        "model": "silver.orders",
        "column": "customer",
        "to": "silver.customers",
        "field": "id",
    },
    # DuckDB fails this one while it runs: the connection goes on serving the next ones
    {"type": "unique", "model": "silver.orders", "columns": ["no_such_column"]},
    {"type": "row_count", "model": "silver.customers", "min": 5},
    {"type": "freshness", "model": "silver.orders", "column": "loaded", "max_age": "30m"},
    {"name": "big", "type": "sql", "sql": "SELECT * FROM silver.orders WHERE id > 5"},
    {"type": "not_null", "model": "silver.missing", "columns": ["id"]},
]


@pytest.fixture
def engine(lh: Lakehouse) -> DuckDBEngine:
    bronze(
        lh,
        "silver.orders",
        pa.table(
            {
                "id": pa.array([1, 2, 3, 3, 4, 5, 6, 7], pa.int64()),
                "customer": pa.array([10, 10, 11, 11, None, 12, 99, 98], pa.int64()),
                "status": ["F", "O", "P", "P", "X", None, "O", "Y"],
                "loaded": pa.array(
                    [NOW - dt.timedelta(hours=h) for h in range(8, 0, -1)],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        ),
    )
    bronze(lh, "silver.customers", pa.table({"id": pa.array([10, 11, 12], pa.int64())}))
    bronze(lh, "silver.unread", pa.table({"secret": pa.array([42], pa.int64())}))
    return DuckDBEngine(lh, "main")


def _outcome(engine: DuckDBEngine, definition: dict[str, Any]) -> dict[str, Any]:
    result = run_check(engine, parse_check(definition, "test"), now=NOW)
    return {k: v for k, v in dataclasses.asdict(result).items() if k != "seconds"}


def _queries() -> list[str]:
    return [q for d in CHECKS for q in check_queries(parse_check(d, "test"))]


def _local(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def _data_files(lh: Lakehouse, name: str) -> set[str]:
    return {_local(t.file.file_path) for t in lh.table(name).scan().plan_files()}


def test_checks_in_a_batch_report_what_they_report_alone(engine: DuckDBEngine) -> None:
    alone = [_outcome(engine, d) for d in CHECKS]
    with engine.batch(_queries()):
        batched = [_outcome(engine, d) for d in CHECKS]
    assert batched == alone
    statuses = [o["status"] for o in alone]
    assert statuses == ["fail", "fail", "fail", "fail", "error", "fail", "fail", "fail", "error"]
    assert "no_such_column" in alone[4]["message"]
    assert "silver.missing" in alone[8]["message"]


def test_a_batch_runs_every_query_in_one_locked_connection(
    engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[duckdb.DuckDBPyConnection] = []
    real = sandbox.connect

    def counting(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        con = real(*args, **kwargs)
        opened.append(con)
        return con

    monkeypatch.setattr(sandbox, "connect", counting)
    sandbox.close_cached()
    with engine.batch(_queries()):
        for d in CHECKS:
            _outcome(engine, d)
        assert len(opened) == 1
        con = opened[0]
        with pytest.raises(duckdb.Error, match="lock"):
            con.execute("SET enable_external_access = true")
    assert len(opened) == 1


def test_the_batch_connection_reads_the_planned_files_and_no_other(
    lh: Lakehouse, engine: DuckDBEngine
) -> None:
    planned = _data_files(lh, "silver.orders") | _data_files(lh, "silver.customers")
    (unread,) = _data_files(lh, "silver.unread")
    with engine.batch(_queries()):
        assert engine._batch is not None
        con = engine._batch.connection
        setting = con.execute(
            "SELECT value FROM duckdb_settings() WHERE name = 'allowed_paths'"
        ).fetchone()
        assert setting is not None
        allowed = {_local(p) for p in str(setting[0]).strip("[]").split(", ") if p}
        assert allowed == planned
        for path in planned:
            assert con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT * FROM read_parquet('{unread}')").fetchall()
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()


def test_a_hostile_query_in_a_batch_is_refused_when_it_runs(engine: DuckDBEngine) -> None:
    hostile = "SELECT * FROM read_csv('/etc/passwd')"
    with engine.batch([hostile, "SELECT count(*) AS n FROM silver.missing"]):
        with pytest.raises(ForbiddenQueryError, match="read_csv"):
            engine.execute(hostile)
        with pytest.raises(TableNotFoundError, match=r"silver\.missing"):
            engine.execute("SELECT count(*) AS n FROM silver.missing")


def test_every_query_of_a_batch_reads_the_commit_it_started_at(
    lh: Lakehouse, engine: DuckDBEngine
) -> None:
    count = "SELECT count(*) AS n FROM silver.customers"
    with engine.batch([count]):
        bronze(lh, "silver.customers", pa.table({"id": pa.array([13], pa.int64())}))
        assert engine.execute(count).to_pylist() == [{"n": 3}]
        # a query the batch was not given is planned at the same commit
        other = "SELECT max(id) AS m FROM silver.customers"
        assert engine.execute(other).to_pylist() == [{"m": 12}]
    assert engine.execute(count).to_pylist() == [{"n": 4}]


def test_a_query_not_named_up_front_reads_no_new_file_in_the_shared_connection(
    lh: Lakehouse, engine: DuckDBEngine
) -> None:
    (unread,) = _data_files(lh, "silver.unread")
    with engine.batch(["SELECT count(*) AS n FROM silver.customers"]):
        # read through PyIceberg: the shared connection's allow-list is never widened
        assert engine.execute("SELECT secret FROM silver.unread").to_pylist() == [{"secret": 42}]
        assert engine._batch is not None
        with pytest.raises(duckdb.PermissionException):
            engine._batch.connection.execute(f"SELECT * FROM read_parquet('{unread}')").fetchall()
