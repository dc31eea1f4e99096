"""Spark's Iceberg ``RESTCatalog`` (Iceberg 1.12 on Spark 4.1) against our ``/iceberg`` API.

The same steps as the ``NessieCatalog`` Spark tests, through the Iceberg REST catalog
instead: our server is a thread over an embedded lakehouse's SQLite store, the files in
its local warehouse. One Spark session for the module, with two REST catalogs:
``rest_main`` (``uri=…/iceberg/main``) and ``rest_dev`` (``uri=…/iceberg/dev`` and
``warehouse=warehouse``, so its requests carry Nessie's ``dev|warehouse`` prefix).

* a namespace and a table created, written and read back by Spark on ``main``; the
  lakehouse reads the same rows;
* a write on ``dev`` is invisible on ``main`` until ``lakehouse merge dev``, then
  ``main`` reads it in Spark and in the lakehouse.

Needs ``scripts/services/spark.sh install`` and ``jars``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")

from typer.testing import CliRunner

from lakehouse.cli.main import app
from lakehouse.client import Lakehouse
from lakehouse.pipelines.engines.spark import catalog_properties
from tests.spark_server import served_spark

pytestmark = [
    pytest.mark.integration,
    # py4j (PySpark's bridge to the JVM) leaves sockets of finished calls to the GC
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lakehouse, Any]]:
    """An embedded lakehouse, our server over its store, Spark with two REST catalogs."""
    home: Path = tmp_path_factory.mktemp("spark-rest") / "home"
    catalogs = {"rest_main": ("main", {}), "rest_dev": ("dev", {"warehouse": "warehouse"})}
    with served_spark(home, catalogs, catalog_type="rest", branches=("dev",)) as (lh, spark):
        for ref in ("main", "dev"):
            properties = catalog_properties(lh.settings, ref)
            assert properties["type"] == "rest"
            assert properties["uri"] == f"{lh.settings.spark.catalog_uri}/{ref}"
        yield lh, spark


def spark_rows(spark: Any, table: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in spark.sql(f"SELECT id, name FROM {table}").collect())


def our_rows(lh: Lakehouse, table: str, ref: str = "main") -> list[tuple[Any, ...]]:
    return sorted(
        tuple(r.values()) for r in lh.sql(f"SELECT id, name FROM {table}", ref).to_pylist()
    )


def test_spark_creates_writes_and_reads_a_table_on_main(served: tuple[Lakehouse, Any]) -> None:
    lh, spark = served
    spark.sql("CREATE NAMESPACE rest_main.sales")
    spark.sql("CREATE TABLE rest_main.sales.orders (id BIGINT, name STRING) USING iceberg")
    spark.sql("INSERT INTO rest_main.sales.orders VALUES (1, 'a'), (2, 'b')")
    spark.sql("INSERT INTO rest_main.sales.orders VALUES (3, 'c')")

    expected = [(1, "a"), (2, "b"), (3, "c")]
    assert spark_rows(spark, "rest_main.sales.orders") == expected
    assert [tuple(r) for r in spark.sql("SHOW NAMESPACES IN rest_main").collect()] == [("sales",)]
    assert our_rows(lh, "sales.orders") == expected
    assert [str(e.key) for e in lh.tables("main")] == ["sales.orders"]
    assert lh.tables("dev") == []


def test_a_branch_write_is_invisible_on_main_until_lakehouse_merge(
    served: tuple[Lakehouse, Any],
) -> None:
    lh, spark = served
    spark.sql("CREATE NAMESPACE rest_dev.staging")
    spark.sql("CREATE TABLE rest_dev.staging.events (id BIGINT, name STRING) USING iceberg")
    spark.sql("INSERT INTO rest_dev.staging.events VALUES (10, 'x'), (11, 'y')")

    assert spark_rows(spark, "rest_dev.staging.events") == [(10, "x"), (11, "y")]
    assert our_rows(lh, "staging.events", "dev") == [(10, "x"), (11, "y")]
    assert "staging" not in [r[0] for r in spark.sql("SHOW NAMESPACES IN rest_main").collect()]
    assert not spark.catalog.tableExists("rest_main.staging.events")
    assert lh.tables("main", namespace="staging") == []

    result = CliRunner().invoke(app, ["--home", str(lh.settings.home), "merge", "dev"])
    assert result.exit_code == 0, result.output

    assert spark_rows(spark, "rest_main.staging.events") == [(10, "x"), (11, "y")]
    assert our_rows(lh, "staging.events") == [(10, "x"), (11, "y")]
