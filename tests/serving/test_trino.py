"""Trino catalog properties from the lakehouse's settings (no Trino needed).

What Trino 476 does with them is the integration tier's job
(``tests/serving/test_trino_integration.py``).
"""

from __future__ import annotations

import pytest

from lakehouse.config import Settings, load_settings
from lakehouse.errors import ConfigError, InvalidInputError
from lakehouse.serving.trino import (
    TrinoCatalogError,
    catalog_file,
    catalog_properties,
    create_catalog_sql,
    server_root,
)

S3 = {"endpoint": "http://minio:9000", "access_key_id": "AK", "secret_access_key": "s3cret!"}


def _cluster(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "profile": "cluster",
        "catalog": {"uri": "http://catalog:19120/api/v2"},
        "warehouse": "s3://{bucket}/lake",
        "s3": S3,
    }
    return load_settings(**{**base, **overrides})


def test_rest_on_the_default_branch_names_no_warehouse() -> None:
    props = catalog_properties(_cluster())
    assert props == {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "rest",
        "iceberg.rest-catalog.uri": "http://catalog:19120/iceberg/",
        "fs.native-s3.enabled": "true",
        "s3.endpoint": "http://minio:9000",
        "s3.region": "us-east-1",
        "s3.path-style-access": "true",
        "s3.aws-access-key": "AK",
        "s3.aws-secret-key": "s3cret!",
    }


def test_rest_on_a_branch_sends_nessies_ref_and_warehouse_prefix() -> None:
    props = catalog_properties(_cluster(), ref="etl/dev")
    assert props["iceberg.rest-catalog.uri"] == "http://catalog:19120/iceberg/"
    assert props["iceberg.rest-catalog.warehouse"] == "etl/dev|warehouse"


def test_nessie_names_the_api_v2_the_ref_and_the_metadata_bucket() -> None:
    props = catalog_properties(_cluster(), ref="dev", catalog_type="nessie")
    assert props["iceberg.catalog.type"] == "nessie"
    assert props["iceberg.nessie-catalog.uri"] == "http://catalog:19120/api/v2"
    assert props["iceberg.nessie-catalog.ref"] == "dev"
    assert props["iceberg.nessie-catalog.default-warehouse-dir"] == "s3://iceberg-metadata/lake"
    assert "iceberg.rest-catalog.uri" not in props


def test_the_server_url_may_be_given_in_any_of_its_forms() -> None:
    on_pg = _cluster(catalog={"uri": "postgresql+psycopg://u:pw@db/lake"})
    for given in (
        "http://h:8080",
        "http://h:8080/",
        "http://h:8080/api/v2",
        "http://h:8080/iceberg/main",
    ):
        props = catalog_properties(on_pg, server=given)
        assert props["iceberg.rest-catalog.uri"] == "http://h:8080/iceberg/", given
    assert server_root("https://h/lake/api/v1?x=1") == "https://h/lake"


def test_a_catalog_database_without_a_server_url_is_refused_with_the_fix() -> None:
    on_pg = _cluster(catalog={"uri": "postgresql+psycopg://u:pw@db/lake"})
    with pytest.raises(TrinoCatalogError, match=r"lakehouse serve.*--server") as info:
        catalog_properties(on_pg)
    assert "pw" not in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_a_local_warehouse_has_no_trino_catalog() -> None:
    local = load_settings(catalog={"uri": "http://catalog:19120/api/v2"})
    with pytest.raises(TrinoCatalogError, match="over S3"):
        catalog_properties(local)


def test_invalid_reference_names_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        catalog_properties(_cluster(), ref="../main")


def test_secrets_can_stay_in_trinos_environment() -> None:
    settings = _cluster(catalog={"uri": "http://catalog:19120/api/v2", "token": "t0k"})
    for kind in ("rest", "nessie"):
        props = catalog_properties(settings, catalog_type=kind, secrets="env")  # type: ignore[arg-type]
        text = catalog_file(props)
        assert "s3cret!" not in text and "t0k" not in text and "=AK" not in text
        assert "s3.aws-secret-key=${ENV:LAKEHOUSE_S3__SECRET_ACCESS_KEY}" in text
        assert "${ENV:LAKEHOUSE_CATALOG__TOKEN}" in text


def test_a_catalog_token_is_a_bearer_token_on_both_apis() -> None:
    settings = _cluster(catalog={"uri": "http://catalog:19120/api/v2", "token": "t0k"})
    rest = catalog_properties(settings)
    assert rest["iceberg.rest-catalog.security"] == "OAUTH2"
    assert rest["iceberg.rest-catalog.oauth2.token"] == "t0k"
    nessie = catalog_properties(settings, catalog_type="nessie")
    assert nessie["iceberg.nessie-catalog.authentication.type"] == "BEARER"
    assert nessie["iceberg.nessie-catalog.authentication.token"] == "t0k"


def test_oauth2_client_credentials_are_not_rendered() -> None:
    oauth2 = {"issuer": "https://idp/realms/lh", "client_id": "etl", "client_secret": "x"}
    settings = _cluster(catalog={"uri": "http://catalog:19120/api/v2", "oauth2": oauth2})
    with pytest.raises(TrinoCatalogError, match="static bearer token"):
        catalog_properties(settings)


def test_without_an_endpoint_aws_s3_is_used_with_its_region() -> None:
    settings = _cluster(s3={"region": "eu-west-1", "path_style_access": False})
    props = catalog_properties(settings)
    assert "s3.endpoint" not in props and "s3.aws-access-key" not in props
    assert (props["s3.region"], props["s3.path-style-access"]) == ("eu-west-1", "false")


def test_the_catalog_file_is_one_property_a_line() -> None:
    assert catalog_file({"connector.name": "iceberg", "a.b": "c=d"}) == (
        "connector.name=iceberg\na.b=c=d\n"
    )
    with pytest.raises(TrinoCatalogError, match="spans lines"):
        catalog_file({"a": "x\nb=y"})


def test_create_catalog_quotes_keys_and_values() -> None:
    sql = create_catalog_sql("lh_dev", {"connector.name": "iceberg", "s3.aws-secret-key": "it's"})
    assert sql == "CREATE CATALOG lh_dev USING iceberg WITH (\"s3.aws-secret-key\" = 'it''s')"


@pytest.mark.parametrize("name", ["Lh", "1lh", "lh-dev", "lh dev; DROP", ""])
def test_create_catalog_refuses_names_trino_would_misread(name: str) -> None:
    with pytest.raises(TrinoCatalogError, match="invalid Trino catalog name"):
        create_catalog_sql(name, {"connector.name": "iceberg"})
