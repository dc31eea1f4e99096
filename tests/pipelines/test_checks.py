"""Every check type, passing and failing, with failing row counts and samples."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse
from lakehouse.pipelines.checks import SAMPLE_ROWS, check_queries, run_check
from lakehouse.pipelines.config import parse_check
from lakehouse.pipelines.engines.base import Engine
from lakehouse.pipelines.engines.duckdb import DuckDBEngine
from tests.pipelines.conftest import bronze

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(lh: Lakehouse) -> Engine:
    bronze(
        lh,
        "silver.orders",
        pa.table(
            {
                "id": pa.array([1, 2, 3, 3, 4, 5, 6, 7, 8], pa.int64()),
                "customer": pa.array([10, 10, 11, 11, None, 12, 99, 98, 97], pa.int64()),
                "status": ["F", "O", "P", "P", "X", None, "O", "Y", "Z"],
                "loaded": pa.array(
                    [NOW - dt.timedelta(hours=h) for h in range(9, 0, -1)],
                    pa.timestamp("us", tz="UTC"),
                ),
            }
        ),
    )
    bronze(lh, "silver.customers", pa.table({"id": pa.array([10, 11, 12], pa.int64())}))
    return DuckDBEngine(lh, "main")


def check(engine: Engine, **definition: Any) -> Any:
    return run_check(engine, parse_check(definition, "test"), now=NOW)


def test_not_null(engine: Engine) -> None:
    passed = check(engine, type="not_null", model="silver.orders", columns=["id"])
    assert passed.passed and passed.failing_rows == 0 and passed.sample == []
    failed = check(engine, type="not_null", model="silver.orders", columns=["customer", "status"])
    assert failed.status == "fail" and failed.failing_rows == 2
    assert sorted(r["id"] for r in failed.sample) == [4, 5]
    assert failed.name == "not_null(silver.orders: customer, status)"
    assert failed.model == "silver.orders" and failed.blocking


def test_unique(engine: Engine) -> None:
    assert check(engine, type="unique", model="silver.orders", columns=["id", "loaded"]).passed
    failed = check(engine, type="unique", model="silver.orders", columns=["id"])
    assert failed.failing_rows == 1
    assert failed.sample == [{"id": 3, "duplicates": 2}]
    # NULLs are not compared (SQL UNIQUE semantics)
    assert check(engine, type="unique", model="silver.customers", columns=["id"]).passed


def test_accepted_values(engine: Engine) -> None:
    values = ["F", "O", "P", "X", "Y", "Z"]
    assert check(
        engine, type="accepted_values", model="silver.orders", column="status", values=values
    ).passed
    failed = check(
        engine,
        type="accepted_values",
        model="silver.orders",
        column="status",
        values=["F", "O", "P"],
    )
    assert failed.failing_rows == 3  # X, Y, Z; NULL is not judged
    assert sorted(r["status"] for r in failed.sample) == ["X", "Y", "Z"]


def test_relationships(engine: Engine) -> None:
    failed = check(
        engine,
        type="relationships",
        model="silver.orders",
        column="customer",
        to="silver.customers",
        field="id",
    )
    assert failed.failing_rows == 3
    assert sorted(r["customer"] for r in failed.sample) == [97, 98, 99]
    assert check(
        engine,
        type="relationships",
        model="silver.orders",
        column="id",
        to="silver.orders",
        field="id",
    ).passed


def test_row_count(engine: Engine) -> None:
    assert check(engine, type="row_count", model="silver.orders", min=1, max=9).passed
    low = check(engine, type="row_count", model="silver.orders", min=10)
    assert low.status == "fail" and low.message == "9 row(s), expected at least 10"
    assert low.sample == [{"row_count": 9, "min": 10, "max": None}]
    high = check(engine, type="row_count", model="silver.customers", max=2)
    assert high.message == "3 row(s), expected at most 2"


def test_freshness(engine: Engine) -> None:
    assert check(
        engine, type="freshness", model="silver.orders", column="loaded", max_age="2h"
    ).passed
    stale = check(engine, type="freshness", model="silver.orders", column="loaded", max_age="30m")
    assert stale.status == "fail"
    assert stale.message == "newest loaded is 1h old, more than 30m"
    assert stale.sample[0]["max_age"] == "0:30:00"


def test_freshness_of_an_empty_table_fails(lh: Lakehouse, engine: Engine) -> None:
    catalog = lh.catalog("main")
    catalog.create_table("silver.empty", schema=pa.schema([("t", pa.timestamp("us"))]))
    empty = check(engine, type="freshness", model="silver.empty", column="t", max_age="1d")
    assert empty.status == "fail" and "empty" in empty.message


def test_custom_sql_fails_when_it_returns_rows(engine: Engine) -> None:
    assert check(
        engine, type="sql", name="none", sql="SELECT * FROM silver.orders WHERE id < 0"
    ).passed
    failed = check(
        engine,
        type="sql",
        name="many",
        sql="SELECT id FROM silver.orders WHERE id > 0 ORDER BY id -- trailing comment",
    )
    assert failed.failing_rows == 9
    assert len(failed.sample) == SAMPLE_ROWS
    assert failed.name == "many" and failed.model is None


def test_warn_severity_does_not_block(engine: Engine) -> None:
    warned = check(engine, type="row_count", model="silver.orders", min=100, severity="warn")
    assert warned.status == "fail" and not warned.blocking


def test_a_check_that_cannot_run_is_an_error_that_blocks(engine: Engine) -> None:
    broken = check(engine, type="not_null", model="silver.orders", columns=["nope"])
    assert broken.status == "error" and broken.blocking
    assert 'Referenced column "nope" not found' in broken.message
    missing = check(engine, type="row_count", model="silver.gone", min=1)
    assert missing.message == "table 'silver.gone' does not exist on 'main'"
    as_json = missing.to_json()
    assert as_json["status"] == "error" and as_json["failing_rows"] == 0


def test_a_row_level_check_reads_its_rows_only_when_some_fail(engine: Engine) -> None:
    ran: list[str] = []
    execute = engine.execute

    def recording(sql: str) -> pa.Table:
        ran.append(sql)
        return execute(sql)

    engine.execute = recording  # type: ignore[method-assign]
    definition = {"type": "not_null", "model": "silver.orders", "columns": ["id"]}
    assert check(engine, **definition).passed
    assert ran == check_queries(parse_check(definition, "test"))
    assert ran[0].startswith("SELECT count(*)")  # no column but the condition's is read
    ran.clear()
    failed = check(engine, type="not_null", model="silver.orders", columns=["customer"])
    assert failed.failing_rows == 1 and [r["id"] for r in failed.sample] == [4]
    assert len(ran) == 2 and ran[1].endswith(f"LIMIT {SAMPLE_ROWS}")


def test_a_sample_holds_at_most_sample_rows_and_the_count_all_of_them(engine: Engine) -> None:
    failed = check(engine, type="sql", name="everything", sql="SELECT * FROM silver.orders")
    assert failed.failing_rows == 9 and len(failed.sample) == SAMPLE_ROWS
    assert set(failed.sample[0]) == {"id", "customer", "status", "loaded"}
