"""Spark signs in itself: Nessie's ``authentication.type=OAUTH2`` properties against Keycloak.

The Spark engine turns ``LAKEHOUSE_CATALOG__OAUTH2__*`` into the Nessie client's properties
(:func:`lakehouse.pipelines.engines.spark.catalog_properties`); here those very properties
configure an Iceberg ``NessieCatalog`` in a real Spark session (``local[1]``), which gets
its own tokens from the real Keycloak (client credentials of ``lakehouse-etl``, role
``engineer``) and writes, through each authenticated server of the session (ours and the
real Nessie, both with docs' rules file), a namespace and a table on a work branch, as the
rules allow an engineer. The same catalog with a wrong secret cannot even list namespaces.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed")

from lakehouse.config import Settings
from lakehouse.pipelines.engines.spark import catalog_conf, catalog_properties, session_conf
from tests.server.keycloak.conftest import Realm, Server

pytestmark = [
    pytest.mark.integration,
    # py4j (PySpark's bridge to the JVM) leaves sockets of finished calls to the GC
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

ETL = "lakehouse-etl"


def _settings(server: Server, realm: Realm, warehouse: Path, secret: str) -> Settings:
    return Settings(
        home=warehouse.parent / "home",
        warehouse=str(warehouse),
        catalog={
            "uri": server.api,
            "oauth2": {"issuer": realm.issuer, "client_id": ETL, "client_secret": secret},
        },
        compute={"engine": "spark"},
        spark={"master": "local[1]", "catalog_type": "nessie"},
    )


@pytest.fixture(scope="module")
def spark(realm: Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    folder = tmp_path_factory.mktemp("spark-oauth2")
    conf = session_conf(
        _settings(Server("x", "http://127.0.0.1:9/api/v2"), realm, folder / "w", "x")
    )
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.sql.shuffle.partitions", "1").config(
        "spark.ui.enabled", "false"
    )
    session = builder.getOrCreate()
    try:
        yield session
    finally:
        session.stop()


def test_spark_signs_in_with_client_credentials_and_writes_on_a_branch(
    spark: Any, server: Server, realm: Realm, tmp_path: Path
) -> None:
    token = realm.token(f"sa:{ETL}")
    branch = f"etl/spark-{uuid.uuid4().hex[:8]}"
    with server.client(token) as http:
        main = http.get("trees/main").raise_for_status().json()["reference"]
        http.post("trees", params={"name": branch, "type": "BRANCH"}, json=main).raise_for_status()

    settings = _settings(server, realm, tmp_path / "warehouse", realm.clients[ETL])
    properties = catalog_properties(settings, branch)
    assert properties["authentication.type"] == "OAUTH2"
    assert properties["authentication.oauth2.issuer-url"] == realm.issuer
    catalog = f"oauth_{server.name}_{uuid.uuid4().hex[:6]}"
    for key, value in catalog_conf(catalog, properties).items():
        spark.conf.set(key, value)

    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog}.bronze")
    spark.sql(f"CREATE TABLE {catalog}.bronze.signed_in (id INT) USING iceberg")
    spark.sql(f"INSERT INTO {catalog}.bronze.signed_in VALUES (1), (2)")
    assert spark.sql(f"SELECT count(*) AS n FROM {catalog}.bronze.signed_in").first()["n"] == 2

    with server.client(token) as http:
        seen = http.get(f"trees/{branch.replace('/', '%2F')}%40/contents/bronze.signed_in")
        assert seen.status_code == 200, seen.text
        assert seen.json()["content"]["type"] == "ICEBERG_TABLE"
        assert http.get("trees/main/contents/bronze.signed_in").status_code == 404


def test_spark_with_a_wrong_secret_is_refused(
    spark: Any, server: Server, realm: Realm, tmp_path: Path
) -> None:
    settings = _settings(server, realm, tmp_path / "warehouse", "not-the-secret")
    catalog = f"wrong_{server.name}_{uuid.uuid4().hex[:6]}"
    for key, value in catalog_conf(catalog, catalog_properties(settings, "main")).items():
        spark.conf.set(key, value)
    with pytest.raises(Exception, match=r"(?i)unauthorized|401|invalid client"):
        spark.sql(f"SHOW NAMESPACES IN {catalog}").collect()
