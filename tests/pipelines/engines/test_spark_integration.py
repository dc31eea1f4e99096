"""The Spark engine against real services: MinIO, our catalog server on PostgreSQL, Nessie.

One Spark session for the module (``local[2]``, two shuffle partitions). Needs
``scripts/services/spark.sh install`` and ``jars`` (``make test-integration`` runs them):

* the TPC-H demo pipeline (scale factor 0.01) on Spark, on S3, through our catalog server
  over a fresh PostgreSQL database: both batches are published to ``main`` and every gold
  table equals, row for row, a DuckDB run of the same pipeline on the same inputs; the
  broken batch fails a blocking check and leaves ``main`` exactly as it was;
* a small pipeline on the real Nessie server, on the branch ``NESSIE_REF`` names: the
  three materializations, the write counts, the layout, safety and snapshot properties.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")

from lakehouse import query, tpch
from lakehouse.catalog.iceberg import SAFETY_PROPERTIES
from lakehouse.client import Lakehouse, connect
from lakehouse.pipelines import RunResult, run_pipeline
from lakehouse.pipelines.engines.spark import stop_spark_session
from lakehouse.pipelines.runner import RUN_ID, SNAPSHOT_MODEL
from tests.conftest import POSTGRES_URL_ENV, S3_ENV, new_database
from tests.pipelines.conftest import bronze, write_pipeline

pytestmark = [
    pytest.mark.integration,
    # py4j (PySpark's bridge to the JVM) leaves sockets of finished calls to the GC
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

SCALE_FACTOR = 0.01
PIPELINE_DIR = Path(__file__).resolve().parents[3] / "pipelines" / "tpch"
NESSIE_URL_ENV = "LAKEHOUSE_TEST_NESSIE_URL"
GOLD = ("gold.q1_pricing_summary", "gold.q3_shipping_priority", "gold.revenue_by_nation_month")
#: Spark settings of the tests: small shuffles on two cores.
SPARK: dict[str, Any] = {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "2"}}


def _need(*names: str) -> list[str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: run `make test-integration` (scripts/services/)",
            pytrace=False,
        )
    return [os.environ[n] for n in names]


def _s3() -> dict[str, str]:
    endpoint, access_key, secret_key = _need(*S3_ENV)
    return {"endpoint": endpoint, "access_key_id": access_key, "secret_access_key": secret_key}


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """As the autouse isolation fixture, for the whole module; stops Spark at the end."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            ours = name.startswith(("LAKEHOUSE_", "PYICEBERG_")) or name == "NESSIE_REF"
            if ours and not name.startswith("LAKEHOUSE_TEST_"):
                mp.delenv(name)
        mp.chdir(tmp_path_factory.mktemp("spark"))
        try:
            yield mp
        finally:
            stop_spark_session()


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A new PostgreSQL database for the module (dropped at the end)."""
    (url,) = _need(POSTGRES_URL_ENV)
    with new_database(url, f"lh_spark_{uuid.uuid4().hex[:8]}") as fresh:
        yield fresh


@pytest.fixture(scope="module")
def catalog_server(postgres_database: str) -> Iterator[str]:
    """Our catalog server (uvicorn in a thread) over the PostgreSQL database: its API v2 URL."""
    from lakehouse.catalog import open_store
    from lakehouse.server.app import make_server, serving

    store = open_store(postgres_database)
    server = make_server(store, "127.0.0.1", 0, log_level="warning")
    with serving(server) as port:
        yield f"http://127.0.0.1:{port}/api/v2"
    store.close()


# -- the TPC-H pipeline: Spark on PostgreSQL + S3 vs DuckDB -----------------------------------


@dataclass
class Runs:
    spark: Lakehouse
    duck: Lakehouse
    spark_initial: RunResult
    spark_changed: RunResult
    duck_initial: RunResult
    duck_changed: RunResult
    rejected: RunResult
    main_before: tuple[str, list[Any]]
    main_after: tuple[str, list[Any]]


def _state(lh: Lakehouse) -> tuple[str, list[Any]]:
    return lh.resolve("main").hash, lh.store.entries("main")


@pytest.fixture(scope="module")
def runs(
    isolated: pytest.MonkeyPatch,
    postgres_database: str,
    catalog_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Runs]:
    data = tpch.generate(SCALE_FACTOR).path
    batches = tmp_path_factory.mktemp("batches")
    changes = tpch.write_change_batch(data, batches / "changes").path
    broken = tpch.write_broken_batch(data, batches / "broken").path
    home = tmp_path_factory.mktemp("homes")
    spark = connect(
        postgres_database,
        profile="cluster",
        home=home / "spark",
        warehouse=f"s3://{{bucket}}/spark-test-{uuid.uuid4().hex[:8]}",
        s3=_s3(),
        spark={**SPARK, "catalog_uri": catalog_server},
    )
    duck = connect(home / "duck", create=True)

    def run(lh: Lakehouse, folder: Path, engine: str | None = None) -> RunResult:
        isolated.setenv("TPCH_DATA", str(folder))
        return run_pipeline(lh, PIPELINE_DIR, engine=engine)

    with spark, duck:
        spark_initial = run(spark, data)  # the cluster profile's default engine: spark
        spark.create_tag("initial", ref="main")
        duck_initial = run(duck, data, "duckdb")
        duck.create_tag("initial", ref="main")
        spark_changed = run(spark, changes, "spark")
        duck_changed = run(duck, changes, "duckdb")
        before = _state(spark)
        rejected = run(spark, broken)
        after = _state(spark)
        yield Runs(
            spark, duck, spark_initial, spark_changed, duck_initial, duck_changed, rejected,
            before, after,
        )  # fmt: skip


def _sorted_rows(lh: Lakehouse, table: str, ref: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    result: pa.Table = query.sql(lh, f"SELECT * FROM {table}", ref)
    rows = [tuple(r.values()) for r in result.to_pylist()]
    return result.column_names, sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        return left is not None and right is not None and math.isclose(left, right, rel_tol=1e-9)
    return bool(left == right)


def _assert_gold_equal(runs: Runs, ref: str) -> None:
    for table in GOLD:
        columns, spark_rows = _sorted_rows(runs.spark, table, ref)
        duck_columns, duck_rows = _sorted_rows(runs.duck, table, ref)
        assert columns == duck_columns, table
        assert len(spark_rows) == len(duck_rows) > 0, table
        for s, d in zip(spark_rows, duck_rows, strict=True):
            differ = [
                f"{c}: spark {a!r} != duckdb {b!r}"
                for c, a, b in zip(columns, s, d, strict=True)
                if not _same(a, b)
            ]
            assert not differ, f"{table}: {'; '.join(differ)}"


def test_both_batches_are_published_by_spark(runs: Runs) -> None:
    for result in (runs.spark_initial, runs.spark_changed):
        assert result.ok and result.merged, result.error or [c.name for c in result.failed_checks]
    gold = runs.spark.table("gold.q1_pricing_summary", "main").current_snapshot()
    assert gold is not None and gold.summary is not None
    assert gold.summary.get("engine-name") == "spark"


def test_gold_after_the_first_load_equals_duckdb(runs: Runs) -> None:
    assert runs.duck_initial.ok
    _assert_gold_equal(runs, "initial")


def test_gold_after_the_changes_equals_duckdb(runs: Runs) -> None:
    assert runs.duck_changed.ok
    _assert_gold_equal(runs, "main")


def test_write_counts_equal_duckdb(runs: Runs) -> None:
    # not `rows`: Spark reads incremental models' sources in full (it has no incremental
    # reads) where DuckDB reads only the new rows, or does not run a model with none
    def counts(result: RunResult) -> dict[str, tuple[Any, ...]]:
        return {
            m.model: (
                m.write.inserted,
                m.write.updated,
                m.write.deleted,
                m.write.created,
                m.write.committed,
            )
            for m in result.models
        }

    assert counts(runs.spark_initial) == counts(runs.duck_initial)
    assert counts(runs.spark_changed) == counts(runs.duck_changed)
    orders = next(m.write for m in runs.spark_changed.models if m.model == "silver.orders")
    assert orders.updated and orders.deleted and orders.inserted  # the batch does all three


def test_tables_keep_the_catalog_layout_and_safety_properties(runs: Runs) -> None:
    buckets = runs.spark.warehouse.buckets
    for entry in runs.spark.tables("main"):
        name = str(entry.key)
        table = runs.spark.table(name, "main")
        for prop, value in SAFETY_PROPERTIES.items():
            assert table.properties.get(prop) == value, (name, prop)
        zone = name.split(".")[0]
        assert table.properties["write.data.path"].startswith(buckets[zone] + "/"), name
        assert table.metadata_location.startswith(buckets["iceberg-metadata"] + "/"), name


def test_snapshots_record_the_run_and_the_model(runs: Runs) -> None:
    for name in ("silver.orders", "gold.q3_shipping_priority"):
        snapshot = runs.spark.table(name, "main").current_snapshot()
        assert snapshot is not None and snapshot.summary is not None
        assert snapshot.summary.get(SNAPSHOT_MODEL) == name
        assert snapshot.summary.get(RUN_ID) == runs.spark_changed.run_id


def test_a_failing_blocking_check_leaves_main_unchanged(runs: Runs) -> None:
    rejected = runs.rejected
    assert rejected.status == "failed" and not rejected.merged
    assert {c.name for c in rejected.failed_checks} >= {"no_negative_prices"}
    assert runs.main_after == runs.main_before
    assert rejected.branch in [b.name for b in runs.spark.branches()]


# -- the real Nessie server, on the branch NESSIE_REF names -----------------------------------

NESSIE_YAML = """
name: shop
models:
  silver.items: {materialized: merge, unique_key: [id], delete_condition: "op = 'D'"}
  silver.log: {materialized: append}
  gold.totals: {materialized: full_refresh}
checks:
  - {model: silver.items, type: unique, columns: [id]}
  - {model: gold.totals, type: row_count, min: 1}
"""
NESSIE_MODELS = {
    "silver/items.sql": "SELECT id, name, price, op FROM bronze.items",
    "silver/log.sql": "SELECT count(*) AS n, max(price) AS top FROM bronze.items",
    "gold/totals.sql": """
        SELECT name, sum(price) AS total, avg(price) AS mean FROM silver.items GROUP BY name
    """,
}


def _items(ids: list[int], names: list[str], prices: list[float], ops: list[str]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array(names, pa.string()),
            "price": pa.array(prices, pa.float64()),
            "op": pa.array(ops, pa.string()),
        }
    )


@pytest.fixture(scope="module")
def nessie(
    isolated: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Lakehouse, str, Path]]:
    """A lakehouse on the real Nessie server with NESSIE_REF set to a new branch."""
    (url,) = _need(NESSIE_URL_ENV)
    branch = f"spark-{uuid.uuid4().hex[:8]}"
    isolated.setenv("NESSIE_REF", branch)
    root = tmp_path_factory.mktemp("nessie")
    lh = connect(
        url,
        profile="cluster",
        home=root / "home",
        warehouse=f"s3://{{bucket}}/spark-test-{uuid.uuid4().hex[:8]}",
        s3=_s3(),
        spark=SPARK,  # catalog URI derived from the lakehouse's
    )
    with lh:
        lh.create_branch(branch, "main")
        folder = write_pipeline(root / "pipelines", "shop", NESSIE_YAML, NESSIE_MODELS)
        try:
            yield lh, branch, folder
        finally:
            isolated.delenv("NESSIE_REF")
            lh.delete_branch(branch)


def test_spark_on_nessie_writes_on_the_nessie_ref_branch(
    nessie: tuple[Lakehouse, str, Path],
) -> None:
    lh, branch, folder = nessie
    main_before = lh.resolve("main").hash
    bronze(
        lh, "bronze.items", _items([1, 2, 3], ["a", "b", "a"], [1.0, 2.0, 3.0], list("III")), branch
    )
    first = run_pipeline(lh, folder)
    # audited on a child run branch, merged into the NESSIE_REF branch (issue 14 item 4)
    assert first.ok and first.target == branch, first.error
    assert first.branch.startswith("run/shop/"), first.branch
    writes = {m.model: m.write for m in first.models}
    assert writes["silver.items"].created and writes["silver.items"].inserted == 3
    assert writes["gold.totals"].rows == 2

    # second batch: 1 unchanged, 2 updated, 3 deleted, 4 new
    bronze_table = lh.catalog(branch).load_table("bronze.items")
    bronze_table.overwrite(
        _items([1, 2, 3, 4], ["a", "b", "a", "c"], [1.0, 20.0, 3.0, 4.0], list("IUDI"))
    )
    second = run_pipeline(lh, folder)
    assert second.ok, second.error
    writes = {m.model: m.write for m in second.models}
    merged = writes["silver.items"]
    assert (merged.rows, merged.inserted, merged.updated, merged.deleted) == (4, 1, 1, 1)
    assert merged.committed and not merged.created
    assert writes["silver.log"].inserted == 1 and writes["gold.totals"].deleted == 2

    items = query.sql(lh, "SELECT id, name, price FROM silver.items ORDER BY id", branch)
    assert items.to_pylist() == [
        {"id": 1, "name": "a", "price": 1.0},
        {"id": 2, "name": "b", "price": 20.0},
        {"id": 4, "name": "c", "price": 4.0},
    ]
    totals = query.sql(lh, "SELECT name, total, mean FROM gold.totals ORDER BY name", branch)
    assert totals.to_pylist() == [
        {"name": "a", "total": 1.0, "mean": 1.0},
        {"name": "b", "total": 20.0, "mean": 20.0},
        {"name": "c", "total": 4.0, "mean": 4.0},
    ]
    assert query.sql(lh, "SELECT count(*) AS n FROM silver.log", branch).column(0)[0].as_py() == 2

    # the merge's snapshot carries the run's properties; nothing reached main
    snapshot = lh.table("silver.items", branch).current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.get(SNAPSHOT_MODEL) == "silver.items"
    assert snapshot.summary.get(RUN_ID) == second.run_id
    assert lh.resolve("main").hash == main_before
    assert not lh.catalog("main").table_exists("silver.items")

    # a third run with the same input changes nothing in the merged table: no commit
    third = run_pipeline(lh, folder)
    merged = next(m.write for m in third.models if m.model == "silver.items")
    assert not merged.committed and (merged.inserted, merged.updated, merged.deleted) == (0, 0, 0)
