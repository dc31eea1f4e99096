"""Spark's Iceberg ``RESTCatalog`` with an OIDC token whose rules allow reads only.

Our server (a thread over an embedded lakehouse's store) validates tokens of a mock
issuer and applies Nessie's authorization rules to the Iceberg REST routes. Spark
(Iceberg 1.12 on Spark 4.1) signs in with a reader's token: it lists and reads the
table, and its ``INSERT`` and ``CREATE NAMESPACE`` are refused (``ForbiddenException``)
without changing the catalog. Needs ``scripts/services/spark.sh install`` and ``jars``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")

import httpx
import uvicorn

from lakehouse.client import Lakehouse, connect
from lakehouse.pipelines.engines.spark import (
    catalog_properties,
    spark_session,
    stop_spark_session,
)
from lakehouse.server import ServerSettings
from lakehouse.server.app import create_app, serving
from lakehouse.server.iceberg_rest import IcebergRestSettings
from lakehouse.server.oidc import OidcSettings, OidcVerifier
from tests.server.test_oidc import ISSUER, Clock, Issuer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

RULES = {
    "readers": "op in ['VIEW_REFERENCE', 'READ_ENTRIES', 'READ_CONTENT_KEY', "
    "'READ_ENTITY_VALUE'] && 'readers' in roles",
}
ROWS = pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["a", "b"]})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lakehouse, Any]]:
    """A lakehouse with sales.orders on main, our server with rules, Spark as a reader."""
    home: Path = tmp_path_factory.mktemp("spark-rest-authz") / "home"
    first = connect(home, create=True)
    main = first.catalog("main")
    main.create_namespace("sales")
    main.create_table("sales.orders", schema=ROWS.schema).append(ROWS)
    issuer = Issuer()
    oidc = OidcSettings(issuer=ISSUER, audience="lakehouse", roles_claim="realm_access.roles")
    verifier = OidcVerifier(
        oidc, client=httpx.Client(transport=httpx.MockTransport(issuer.handler)), clock=Clock()
    )
    app = create_app(
        first.store,
        settings=ServerSettings(oidc=oidc, authorization_rules=RULES),
        oidc_verifier=verifier,
        iceberg=IcebergRestSettings.from_settings(first.settings),
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    with serving(uvicorn.Server(config)) as port:
        lh = connect(
            home,
            spark={
                "master": "local[2]",
                "catalog_type": "rest",
                "catalog_uri": f"http://127.0.0.1:{port}/iceberg",
                "conf": {"spark.sql.shuffle.partitions": "2"},
            },
        )
        spark = spark_session(lh.settings)
        reader_token = issuer.token(
            preferred_username="rita",
            realm_access={"roles": ["readers"]},
            exp=int(time.time()) + 3600,  # outlives a slow Spark start
        )
        properties = {**catalog_properties(lh.settings, "main"), "token": reader_token}
        for key, value in properties.items():
            spark.conf.set("spark.sql.catalog.reader" + (f".{key}" if key else ""), value)
        try:
            yield lh, spark
        finally:
            stop_spark_session()
            lh.close()
            first.close()


def test_a_reader_token_reads_through_spark(served: tuple[Lakehouse, Any]) -> None:
    _, spark = served
    rows = spark.sql("SELECT id, name FROM reader.sales.orders ORDER BY id").collect()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
    assert [tuple(r) for r in spark.sql("SHOW TABLES IN reader.sales").collect()] == [
        ("sales", "orders", False)
    ]


def test_a_reader_token_cannot_write_and_nothing_changes(served: tuple[Lakehouse, Any]) -> None:
    lh, spark = served
    before = lh.resolve("main").hash
    with pytest.raises(Exception, match="COMMIT_CHANGE_AGAINST_REFERENCE") as insert:
        spark.sql("INSERT INTO reader.sales.orders VALUES (3, 'c')")
    assert "ForbiddenException" in str(insert.value)
    with pytest.raises(Exception, match="is not allowed for role 'rita'"):
        spark.sql("CREATE NAMESPACE reader.gold")
    assert lh.resolve("main").hash == before
    assert sorted(r["id"] for r in lh.sql("SELECT id FROM sales.orders").to_pylist()) == [1, 2]
