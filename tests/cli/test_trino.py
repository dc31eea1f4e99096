"""``lakehouse trino-catalog``: a Trino catalog file or statement from the settings."""

from __future__ import annotations

import json

from typer.testing import CliRunner, Result

from lakehouse.cli.main import app

CLUSTER = {
    "LAKEHOUSE_PROFILE": "cluster",
    "LAKEHOUSE_WAREHOUSE": "s3://{bucket}/lake",
    "LAKEHOUSE_CATALOG__URI": "http://catalog:19120/api/v2",
    "LAKEHOUSE_S3__ENDPOINT": "http://minio:9000",
    "LAKEHOUSE_S3__ACCESS_KEY_ID": "AK",
    "LAKEHOUSE_S3__SECRET_ACCESS_KEY": "s3cret!",
}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["trino-catalog", *args], env=env or CLUSTER)


def test_prints_a_catalog_file_for_a_branch_without_secrets() -> None:
    result = run("--ref", "dev")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "connector.name=iceberg",
        "iceberg.catalog.type=rest",
        "iceberg.rest-catalog.uri=http://catalog:19120/iceberg/",
        "iceberg.rest-catalog.warehouse=dev|warehouse",
    ]
    assert "s3.aws-secret-key=${ENV:LAKEHOUSE_S3__SECRET_ACCESS_KEY}" in lines
    assert "s3cret!" not in result.stdout


def test_sql_for_dynamic_catalogs_over_the_nessie_api() -> None:
    result = run("--api", "nessie", "--format", "sql", "--name", "lh_main", "--secrets", "inline")
    assert result.exit_code == 0, result.output
    sql = result.stdout.strip()
    assert sql.startswith("CREATE CATALOG lh_main USING iceberg WITH (")
    assert "\"iceberg.nessie-catalog.uri\" = 'http://catalog:19120/api/v2'" in sql
    assert "\"s3.aws-secret-key\" = 's3cret!'" in sql


def test_json_output_has_the_properties_and_the_statement() -> None:
    result = run("--output", "json", "--server", "http://other:8181/api/v2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["properties"]["iceberg.rest-catalog.uri"] == "http://other:8181/iceberg/"
    assert data["sql"].startswith("CREATE CATALOG lakehouse USING iceberg")


def test_a_local_warehouse_is_a_one_line_error() -> None:
    result = run(env={"LAKEHOUSE_CATALOG__URI": "http://catalog:19120/api/v2"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Trino reads the warehouse over S3")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_names_are_refused() -> None:
    for args, message in (
        (("--name", "Bad-Name"), "invalid Trino catalog name"),
        (("--ref", "../x"), "Error:"),
        (("--api", "hive"), "Invalid value"),
    ):
        result = run(*args)
        assert result.exit_code != 0 and message in result.output + result.stderr, args
