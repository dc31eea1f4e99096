"""The Spark engine without a JVM: SQL translation, catalog and session settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakehouse.config import Settings, load_settings
from lakehouse.pipelines.engines import get_engine
from lakehouse.pipelines.engines.duckdb import MergeError
from lakehouse.pipelines.engines.spark import (
    SparkEngine,
    SparkQueryError,
    catalog_properties,
    catalog_server_uri,
    session_conf,
    to_spark_expression,
    to_spark_sql,
)
from lakehouse.pipelines.errors import PipelineConfigError

PG = "postgresql+psycopg://u:pw@db:5432/lake"
S3 = {"endpoint": "http://s3.local:9000", "access_key_id": "AK", "secret_access_key": "s3cret!"}


def _jars(tmp_path: Path) -> Path:
    folder = tmp_path / "jars"
    folder.mkdir()
    for name in ("iceberg-spark-runtime-4.1_2.13-1.12.0.jar", "iceberg-aws-bundle-1.12.0.jar"):
        (folder / name).write_bytes(b"")
    return folder


def _cluster(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "profile": "cluster",
        "catalog": {"uri": "http://catalog:19120/api/v2"},
        "s3": S3,
    }
    return load_settings(**{**base, **overrides})


# -- translation -----------------------------------------------------------------------------


def test_tables_are_qualified_with_the_catalog() -> None:
    sql = to_spark_sql(
        "SELECT o.id FROM silver.orders AS o JOIN bronze.c USING (id) WHERE o.x > 1", "lh"
    )
    assert sql == "SELECT o.id FROM lh.silver.orders AS o JOIN lh.bronze.c USING (id) WHERE o.x > 1"


def test_ctes_and_one_part_names_are_left_alone() -> None:
    sql = to_spark_sql("WITH t AS (SELECT * FROM gold.a) SELECT * FROM t, v", "lh")
    assert sql == "WITH t AS (SELECT * FROM lh.gold.a) SELECT * FROM t, v"


def test_quoted_names_stay_quoted_in_spark_syntax() -> None:
    sql = to_spark_sql('SELECT "a b" FROM "silver"."my table"', "lh")
    assert sql == "SELECT `a b` FROM lh.`silver`.`my table`"


def test_duckdb_dialect_is_translated() -> None:
    sql = to_spark_sql(
        "SELECT x::INTEGER AS i, a // 2 AS h, DATE '2020-01-01' - INTERVAL '9' DAY AS d "
        "FROM s.t ORDER BY i",
        "lh",
    )
    assert "CAST(x AS INT) AS i" in sql and "a DIV 2" in sql
    assert "CAST('2020-01-01' AS DATE)" in sql
    assert sql.endswith("ORDER BY i NULLS LAST")  # DuckDB sorts NULLs last, Spark first


def test_avg_is_computed_in_double_as_duckdb_does() -> None:
    # Spark would average a DECIMAL as a DECIMAL rounded to 6 places.
    sql = to_spark_sql("SELECT avg(p) AS a, avg(p) OVER (PARTITION BY k) AS w FROM s.t", "lh")
    assert sql == (
        "SELECT AVG(CAST(p AS DOUBLE)) AS a, AVG(CAST(p AS DOUBLE)) OVER (PARTITION BY k) AS w "
        "FROM lh.s.t"
    )
    already = to_spark_sql("SELECT avg(CAST(p AS DOUBLE)) AS a FROM s.t", "lh")
    assert already == "SELECT AVG(CAST(p AS DOUBLE)) AS a FROM lh.s.t"


def test_the_tpch_models_translate(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3] / "pipelines" / "tpch"
    files = sorted(root.glob("*/*.sql"))
    assert len(files) >= 11
    for path in files:
        sql = to_spark_sql(path.read_text(encoding="utf-8"), "lh")
        assert " lh.silver." in sql or " lh.bronze." in sql or " lh.gold." in sql, path


def test_untranslatable_sql_is_a_one_line_error() -> None:
    with pytest.raises(SparkQueryError, match="cannot parse the query"):
        to_spark_sql("SELECT FROM WHERE (", "lh")
    with pytest.raises(SparkQueryError, match="expected one SQL statement, got 2"):
        to_spark_sql("SELECT 1; SELECT 2", "lh")


def test_delete_conditions_are_translated() -> None:
    assert to_spark_expression("_op = 'D' AND x::INTEGER > 1") == "_op = 'D' AND CAST(x AS INT) > 1"
    with pytest.raises(MergeError, match="delete_condition"):
        to_spark_expression("_op = = 'D'")


# -- catalog and session settings ------------------------------------------------------------


def test_nessie_catalog_on_the_branch_with_s3_settings() -> None:
    props = catalog_properties(_cluster(), "run/tpch/1")
    assert props[""] == "org.apache.iceberg.spark.SparkCatalog"
    assert props["catalog-impl"] == "org.apache.iceberg.nessie.NessieCatalog"
    assert props["uri"] == "http://catalog:19120/api/v2"
    assert props["ref"] == "run/tpch/1"
    assert props["warehouse"] == "s3://iceberg-metadata"
    assert props["io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert props["s3.endpoint"] == "http://s3.local:9000"
    assert props["s3.path-style-access"] == "true"
    assert props["client.region"] == "us-east-1"
    assert (props["s3.access-key-id"], props["s3.secret-access-key"]) == ("AK", "s3cret!")
    assert props["cache-enabled"] == "false"


def test_the_catalog_token_is_sent_as_a_bearer_token() -> None:
    settings = _cluster(catalog={"uri": "https://cat/api/v2", "token": "t0k"})
    props = catalog_properties(settings, "main")
    assert (props["authentication.type"], props["authentication.token"]) == ("BEARER", "t0k")


def test_oauth2_client_credentials_become_nessie_client_properties() -> None:
    oauth2 = {
        "issuer": "https://idp/realms/lakehouse",
        "client_id": "lakehouse-etl",
        "client_secret": "s3cret",
        "scope": "openid",
    }
    settings = _cluster(catalog={"uri": "https://cat/api/v2", "oauth2": oauth2})
    props = catalog_properties(settings, "main")
    assert {k: v for k, v in props.items() if k.startswith("authentication.")} == {
        "authentication.type": "OAUTH2",
        "authentication.oauth2.issuer-url": "https://idp/realms/lakehouse",
        "authentication.oauth2.client-id": "lakehouse-etl",
        "authentication.oauth2.client-secret": "s3cret",
        "authentication.oauth2.client-scopes": "openid",
    }


def test_the_rest_catalog_refuses_oauth2_settings_it_cannot_use() -> None:
    oauth2 = {"token_url": "https://idp/token", "client_id": "c", "client_secret": "s3cret"}
    catalog = {"uri": "http://catalog:19120/api/v2", "oauth2": oauth2}
    settings = _cluster(spark={"catalog_type": "rest"}, catalog=catalog)
    with pytest.raises(PipelineConfigError, match="CATALOG_TYPE=nessie") as raised:
        catalog_properties(settings, "main")
    assert "s3cret" not in str(raised.value)


def test_rest_catalog_puts_the_branch_in_the_prefix() -> None:
    settings = _cluster(spark={"catalog_type": "rest"})
    props = catalog_properties(settings, "run/tpch/1")
    assert props["type"] == "rest"
    assert props["uri"] == "http://catalog:19120/iceberg/run%2Ftpch%2F1"


def test_an_explicit_catalog_uri_wins() -> None:
    settings = _cluster(catalog={"uri": PG}, spark={"catalog_uri": "http://server:8080/api/v2/"})
    assert catalog_server_uri(settings) == "http://server:8080/api/v2"


def test_a_catalog_database_is_not_a_catalog_server(tmp_path: Path) -> None:
    for settings in (_cluster(catalog={"uri": PG}), load_settings(home=tmp_path)):
        with pytest.raises(PipelineConfigError, match="needs a catalog server") as info:
            catalog_server_uri(settings)
        assert "\n" not in str(info.value) and "pw" not in str(info.value)


def test_the_nessie_catalog_needs_the_api_v2_url() -> None:
    settings = _cluster(spark={"catalog_uri": "http://server/api/v1"})
    with pytest.raises(PipelineConfigError, match="API v2"):
        catalog_properties(settings, "main")


def test_session_settings_jars_defaults_and_overrides(tmp_path: Path) -> None:
    jars = _jars(tmp_path)
    settings = _cluster(
        spark={"master": "local[3]", "jars_dir": str(jars), "conf": {"spark.ui.enabled": "true"}}
    )
    conf = session_conf(settings)
    assert conf["spark.master"] == "local[3]"
    assert conf["spark.jars"].split(",") == [
        str(jars / "iceberg-aws-bundle-1.12.0.jar"),
        str(jars / "iceberg-spark-runtime-4.1_2.13-1.12.0.jar"),
    ]
    assert conf["spark.sql.extensions"].endswith("IcebergSparkSessionExtensions")
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.ui.enabled"] == "true"  # conf comes last


def test_missing_jars_are_a_one_line_error(tmp_path: Path) -> None:
    settings = _cluster(spark={"jars_dir": str(tmp_path)})
    with pytest.raises(PipelineConfigError, match=r"spark\.sh jars"):
        session_conf(settings)


def test_the_engine_is_registered_and_fails_before_starting_a_jvm(tmp_path: Path) -> None:
    from lakehouse.client import connect

    assert get_engine("spark") is SparkEngine
    with (
        connect(tmp_path / "home", create=True) as lh,
        pytest.raises(PipelineConfigError, match="needs a catalog server"),
    ):
        SparkEngine(lh, "main")


def test_without_pyspark_the_engine_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    from types import SimpleNamespace

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    settings = load_settings(catalog={"uri": "http://127.0.0.1:19120/api/v2"})
    lakehouse: Any = SimpleNamespace(settings=settings)
    with pytest.raises(PipelineConfigError, match=r"install lakehouse\[spark\]"):
        SparkEngine(lakehouse, "main")
