"""Row-level deletes both ways between the lakehouse and Spark (Iceberg 1.12 on Spark 4.1).

Spark reads tables through Iceberg's NessieCatalog on our catalog server (a thread over
the lakehouse's SQLite store), the files in the lakehouse's local warehouse:

* the lakehouse writes merge-on-read position deletes (one delete file per data file, or
  one for many); Spark reads exactly its rows;
* Spark writes merge-on-read deletes and updates (``write.*.mode=merge-on-read``); the
  lakehouse (DuckDB and PyIceberg) reads exactly Spark's rows, and an upsert of ours on
  top of Spark's delete files reads back the same in both engines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")

from lakehouse.client import Lakehouse
from lakehouse.ops.check import check
from lakehouse.tables import DEFAULT_TABLE_PROPERTIES, upsert
from lakehouse.tables.upsert import SMALL_FILE_ROWS
from tests.spark_server import served_spark
from tests.tables.conftest import SCHEMA, keys, make_rows

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

CATALOG = "lh"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lakehouse, Any]]:
    """An embedded lakehouse, our server over its store, and a Spark session bound to main."""
    home: Path = tmp_path_factory.mktemp("interop") / "home"
    with served_spark(home, {CATALOG: ("main", {})}) as (lh, spark):
        lh.catalog("main").create_namespace("s")
        yield lh, spark


def spark_rows(spark: Any, table: str) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(r) for r in spark.sql(f"SELECT id, name, amount FROM {CATALOG}.{table}").collect()
    )


def our_rows(lh: Lakehouse, table: str) -> list[tuple[Any, ...]]:
    sql = lh.sql(f"SELECT id, name, amount FROM {table}").to_pylist()
    pyiceberg = lh.catalog("main").load_table(table).scan().to_arrow().to_pylist()
    ours = sorted(tuple(r.values()) for r in sql)
    assert ours == sorted(tuple(r[c] for c in ("id", "name", "amount")) for r in pyiceberg)
    return ours


def test_spark_reads_our_position_deletes(served: tuple[Lakehouse, Any]) -> None:
    lh, spark = served
    catalog = lh.catalog("main")
    # Positional deletes are what this checks, so small-file rewrites are off.
    properties = {**DEFAULT_TABLE_PROPERTIES, SMALL_FILE_ROWS: "0"}
    table = catalog.create_table("s.ours", schema=SCHEMA, properties=properties)
    table.append(make_rows(list(range(50))))
    upsert(catalog.load_table("s.ours"), make_rows([3, 60], tag="up"), ["id"],
           delete_keys=keys([4, 5]))  # fmt: skip
    summary = catalog.load_table("s.ours").current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None and summary["added-position-delete-files"] == "1"

    assert spark_rows(spark, "s.ours") == our_rows(lh, "s.ours")
    assert len(our_rows(lh, "s.ours")) == 49


def test_spark_reads_our_delete_files_shared_by_many_data_files(
    served: tuple[Lakehouse, Any],
) -> None:
    lh, spark = served
    catalog = lh.catalog("main")
    properties = {**DEFAULT_TABLE_PROPERTIES, SMALL_FILE_ROWS: "0"}
    table = catalog.create_table("s.shared", schema=SCHEMA, properties=properties)
    for start in range(0, 100, 10):  # ten data files
        table.append(make_rows(list(range(start, start + 10))))
    for i in range(3):  # one row of each file per write: shared delete files, one folded
        upsert(catalog.load_table("s.shared"), make_rows(list(range(i, 100, 10)), tag=f"w{i}"),
               ["id"])  # fmt: skip
    summary = catalog.load_table("s.shared").current_snapshot().summary  # type: ignore[union-attr]
    assert summary is not None and summary["total-position-deletes"] == "30"
    assert summary["total-delete-files"] == "2"  # 20 positions (two writes folded), then 10

    assert spark_rows(spark, "s.shared") == our_rows(lh, "s.shared")
    assert len(our_rows(lh, "s.shared")) == 100


def test_we_read_spark_merge_on_read_deletes(served: tuple[Lakehouse, Any]) -> None:
    lh, spark = served
    catalog = lh.catalog("main")
    table = catalog.create_table("s.theirs", schema=SCHEMA, properties=DEFAULT_TABLE_PROPERTIES)
    table.append(make_rows(list(range(40))))
    spark.sql(
        f"ALTER TABLE {CATALOG}.s.theirs SET TBLPROPERTIES ("
        "'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read', "
        "'write.merge.mode'='merge-on-read')"
    )
    spark.sql(f"DELETE FROM {CATALOG}.s.theirs WHERE id < 5")
    spark.sql(f"UPDATE {CATALOG}.s.theirs SET name = 'spark' WHERE id = 7")
    snapshot = catalog.load_table("s.theirs").current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert int(snapshot.summary["total-position-deletes"]) > 0, "Spark wrote no delete file"

    assert our_rows(lh, "s.theirs") == spark_rows(spark, "s.theirs")
    # and a row-level write of ours on top of Spark's delete files
    upsert(catalog.load_table("s.theirs"), make_rows([7, 8], tag="ours"), ["id"])
    assert spark_rows(spark, "s.theirs") == our_rows(lh, "s.theirs")
    assert [r for r in our_rows(lh, "s.theirs") if r[0] in (7, 8)] == [
        (7, "ours7", 3.5),
        (8, "ours8", 4.0),
    ]


def test_spark_reads_a_content_merged_table_as_we_do(served: tuple[Lakehouse, Any]) -> None:
    lh, spark = served
    catalog = lh.catalog("main")
    properties = {**DEFAULT_TABLE_PROPERTIES, SMALL_FILE_ROWS: "0"}
    catalog.create_table("s.merged", schema=SCHEMA, properties=properties).append(
        make_rows(list(range(30)))
    )
    lh.create_branch("interop-dev")
    try:
        # the branch upserts and deletes (position delete files), main appends meanwhile
        dev = lh.catalog("interop-dev").load_table("s.merged")
        upsert(dev, make_rows([3, 40], tag="dev"), ["id"], delete_keys=keys([5]))
        catalog.load_table("s.merged").append(make_rows([50, 51], tag="main"))
        result = lh.merge("interop-dev", "main")
        assert result.was_applied
        merged = [d.resolution for d in result.details if d.resolution]
        assert merged and merged[0].startswith("merged by content (appends on the source")
        assert "deletes on the source" in merged[0]
        assert check(lh, ["main"]).ok
    finally:
        lh.delete_branch("interop-dev")
    ours = our_rows(lh, "s.merged")
    assert spark_rows(spark, "s.merged") == ours
    ids = sorted(r[0] for r in ours)
    assert ids == sorted([i for i in range(30) if i != 5] + [40, 50, 51])
    assert [r for r in ours if r[0] == 3] == [(3, "dev3", 1.5)]
