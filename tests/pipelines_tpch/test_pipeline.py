"""The TPC-H pipeline through the real runner: correctness of gold, merges, and rejection.

One lakehouse per module (scale factor 0.01, about 20 s): the first load is published and
tagged ``initial``, the change batch is published and tagged ``changes``, the broken batch
is run last and must be rejected. Expected results never come from the pipeline's own SQL:
gold is compared with the standard TPC-H queries run by DuckDB on the generated CSV files
(:mod:`tests.pipelines_tpch.reference`), silver with the change batch replayed in Python.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import query, tpch
from lakehouse.client import Lakehouse, connect
from lakehouse.pipelines import RunResult, run_pipeline
from lakehouse.pipelines.runner import RUN_STATUS
from tests.pipelines_tpch import reference
from tests.pipelines_tpch.conftest import PIPELINE_DIR


@dataclass
class Runs:
    lh: Lakehouse
    data: Path
    changes: tpch.ChangeBatch
    broken: tpch.BrokenBatch
    initial: RunResult
    changed: RunResult
    rejected: RunResult
    #: (hash, entries) of main before and after the broken batch.
    main_before: tuple[str, list[Any]]
    main_after: tuple[str, list[Any]]


def _run(lh: Lakehouse, data: Path) -> RunResult:
    os.environ["TPCH_DATA"] = str(data)
    return run_pipeline(lh, PIPELINE_DIR)


def _main_state(lh: Lakehouse) -> tuple[str, list[Any]]:
    return lh.resolve("main").hash, lh.store.entries("main")


@pytest.fixture(scope="module")
def runs(
    tpch_data: Path,
    change_batch: tpch.ChangeBatch,
    broken_batch: tpch.BrokenBatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Runs]:
    home = tmp_path_factory.mktemp("tpch-lakehouse")
    with pytest.MonkeyPatch.context() as mp:
        # As the autouse isolation fixture, for the whole module: no developer settings.
        for name in list(os.environ):
            ours = name.startswith(("LAKEHOUSE_", "PYICEBERG_")) or name == "NESSIE_REF"
            if ours and not name.startswith("LAKEHOUSE_TEST_"):
                mp.delenv(name)
        mp.chdir(home)
        mp.setenv("TPCH_DATA", str(tpch_data))
        with connect(home / "home", create=True) as lh:
            initial = _run(lh, tpch_data)
            assert initial.ok, initial.error or [c.name for c in initial.failed_checks]
            lh.create_tag("initial", ref="main")
            changed = _run(lh, change_batch.path)
            assert changed.ok, changed.error or [c.name for c in changed.failed_checks]
            lh.create_tag("changes", ref="main")
            before = _main_state(lh)
            rejected = _run(lh, broken_batch.path)
            after = _main_state(lh)
            yield Runs(
                lh, tpch_data, change_batch, broken_batch, initial, changed, rejected,
                before, after,
            )  # fmt: skip


def _sql(runs: Runs, sql: str, ref: str) -> list[tuple[Any, ...]]:
    table: pa.Table = query.sql(runs.lh, sql, ref)
    return [tuple(row.values()) for row in table.to_pylist()]


def _q1(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # The three averages are doubles: approximately; the sums are decimals: exactly.
    return [(*r[:6], *(pytest.approx(v, rel=1e-12) for v in r[6:9]), r[9]) for r in rows]


Q1_GOLD = f"SELECT {', '.join(reference.Q1_COLUMNS)} FROM gold.q1_pricing_summary ORDER BY 1, 2"
Q3_GOLD = (
    f"SELECT {', '.join(reference.Q3_COLUMNS)} FROM gold.q3_shipping_priority "
    "ORDER BY revenue DESC, o_orderdate"
)


# -- first load -----------------------------------------------------------------------------


def test_first_load_is_published(runs: Runs) -> None:
    assert runs.initial.merged and runs.initial.branch_deleted
    assert {i.table for i in runs.initial.ingested} == {f"bronze.{t}" for t in tpch.TABLES}
    assert not runs.initial.failed_checks
    assert len(runs.initial.models) == 11


def test_gold_q1_equals_the_standard_query(runs: Runs) -> None:
    expected = reference.reference_rows(runs.data, reference.Q1)
    assert len(expected) == 4
    assert _sql(runs, Q1_GOLD, "initial") == _q1(expected)


def test_gold_q3_equals_the_standard_query(runs: Runs) -> None:
    expected = reference.reference_rows(runs.data, reference.Q3)
    assert len(expected) == 10
    assert _sql(runs, Q3_GOLD, "initial") == expected


def test_silver_has_tpch_types(runs: Runs) -> None:
    schema = runs.lh.table("silver.lineitem", ref="initial").schema()
    types = {f.name: str(f.field_type) for f in schema.fields}
    assert types["l_orderkey"] == "long"
    assert types["l_linenumber"] == "int"
    assert types["l_extendedprice"] == "decimal(15, 2)"
    assert types["l_shipdate"] == "date"
    assert types["l_shipmode"] == "string"


def test_silver_orders_after_first_load_equals_the_source(runs: Runs) -> None:
    cols = ", ".join(reference.ORDER_COLUMNS)
    actual = {r[0]: r for r in _sql(runs, f"SELECT {cols} FROM silver.orders", "initial")}
    assert actual == reference.expected_orders(runs.data)


# -- change batch ---------------------------------------------------------------------------


def test_change_batch_is_merged(runs: Runs) -> None:
    batch = runs.changes
    writes = {m.model: m.write for m in runs.changed.models}
    orders = writes["silver.orders"]
    assert (orders.inserted, orders.updated, orders.deleted) == (
        batch.inserted_orders, batch.updated_orders, batch.deleted_orders,
    )  # fmt: skip
    lineitem = writes["silver.lineitem"]
    assert (lineitem.inserted, lineitem.updated, lineitem.deleted) == (
        batch.inserted_lineitems, 0, batch.deleted_lineitems,
    )  # fmt: skip


def test_silver_orders_equals_the_source_with_the_changes_applied(runs: Runs) -> None:
    cols = ", ".join(reference.ORDER_COLUMNS)
    actual = {r[0]: r for r in _sql(runs, f"SELECT {cols} FROM silver.orders", "changes")}
    expected = reference.expected_orders(runs.data, [runs.changes.path / "orders_changes.csv"])
    assert len(actual) == len(expected)
    assert actual == expected


def test_silver_lineitem_keys_follow_the_changes(runs: Runs) -> None:
    actual = set(_sql(runs, "SELECT l_orderkey, l_linenumber FROM silver.lineitem", "changes"))
    expected = reference.expected_lineitem_keys(
        runs.data, [runs.changes.path / "lineitem_changes.csv"]
    )
    assert actual == expected


def test_gold_after_the_changes_equals_the_standard_queries(runs: Runs) -> None:
    changes = [runs.changes.path]
    assert _sql(runs, Q1_GOLD, "changes") == _q1(
        reference.reference_rows(runs.data, reference.Q1, changes)
    )
    assert _sql(runs, Q3_GOLD, "changes") == reference.reference_rows(
        runs.data, reference.Q3, changes
    )


def test_time_travel_still_sees_the_first_load(runs: Runs) -> None:
    before = reference.expected_orders(runs.data)
    after = reference.expected_orders(runs.data, [runs.changes.path / "orders_changes.csv"])
    deleted = min(set(before) - set(after))
    sql = f"SELECT count(*) FROM silver.orders WHERE o_orderkey = {deleted}"
    assert _sql(runs, sql, "initial") == [(1,)]
    assert _sql(runs, sql, "changes") == [(0,)]


# -- broken batch ---------------------------------------------------------------------------


def test_broken_batch_is_rejected_by_the_checks(runs: Runs) -> None:
    run = runs.rejected
    b = runs.broken
    assert run.status == "failed" and not run.merged
    failed = {c.name: c.failing_rows for c in run.failed_checks}
    assert failed == {
        "not_null(silver.orders: o_orderkey, o_custkey, o_orderdate, o_totalprice)": (
            b.null_customer_orders
        ),
        "accepted_values(silver.orders: o_orderstatus)": b.bad_status_orders,
        "relationships(silver.lineitem.l_orderkey -> silver.orders.o_orderkey)": (
            b.orphan_lineitems
        ),
        "no_negative_prices": b.negative_price_orders,
        "no_negative_amounts": b.negative_price_orders + b.negative_quantity_lineitems,
    }


def test_broken_batch_leaves_main_exactly_as_it_was(runs: Runs) -> None:
    assert runs.main_after == runs.main_before
    assert runs.main_before[0] == runs.lh.resolve("changes").hash
    log = runs.lh.log("main", limit=1)[0]
    assert log.meta.properties[RUN_STATUS] == "success"


def test_broken_batch_stays_on_its_branch_for_inspection(runs: Runs) -> None:
    branch = runs.rejected.branch
    assert branch in {b.name for b in runs.lh.branches()}
    assert runs.lh.log(branch, limit=1)[0].meta.properties[RUN_STATUS] == "failed"
    negative = "SELECT count(*) FROM silver.orders WHERE o_totalprice < 0"
    assert _sql(runs, negative, branch) == [(runs.broken.negative_price_orders,)]
    assert _sql(runs, negative, "main") == [(0,)]


def test_the_pipeline_plans_clean_on_main_and_a_misspelled_column_is_caught(
    runs: Runs, tmp_path: Path
) -> None:
    from lakehouse.pipelines import load_pipeline
    from lakehouse.pipelines.definition import display_path
    from lakehouse.pipelines.plan import plan_pipeline

    plan = plan_pipeline(runs.lh, load_pipeline(PIPELINE_DIR))
    assert plan.errors == []
    assert {s.status for s in plan.steps} == {"ok"}
    orders = next(s for s in plan.steps if s.name == "silver.orders")
    assert ("o_totalprice", "DECIMAL(15,2)") in orders.columns
    copy = tmp_path / "tpch"
    shutil.copytree(PIPELINE_DIR, copy)
    q1 = copy / "gold" / "q1_pricing_summary.sql"
    q1.write_text(q1.read_text().replace("    l_returnflag,", "    l_retrunflag,", 1))
    bad = plan_pipeline(runs.lh, load_pipeline(copy))
    assert [(s.name, s.where) for s in bad.errors] == [
        ("gold.q1_pricing_summary", f"{display_path(q1)}:4:5")
    ]
    assert 'Candidate bindings: "l_returnflag"' in bad.errors[0].detail
