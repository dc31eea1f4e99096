"""Sources from ``sources:`` entries of pipeline.yaml (docs/pipelines-spec.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.errors import ConfigError
from lakehouse.ingest import (
    FolderSource,
    HttpSource,
    SchemaPolicy,
    SourceConfigError,
    SqlSource,
    TableMapping,
    parse_source,
)

SPEC = """
sources:
  - name: tpch
    type: folder
    path: ${TPCH_DATA:-data/tpch}
    format: csv
    options: {delimiter: "|", header: true}
    tables:
      - {table: orders, pattern: "orders*.csv"}
      - {table: lineitem, pattern: "lineitem*.csv"}
"""


def test_the_spec_example_parses_into_a_folder_source(tmp_path: Path) -> None:
    [entry] = yaml.safe_load(SPEC)["sources"]

    source = parse_source(entry, base_dir=tmp_path, env={})

    assert isinstance(source, FolderSource)
    assert source.name == "tpch"
    assert source.path == str(tmp_path / "data/tpch")
    assert source.format == "csv"
    assert source.options.delimiter == "|" and source.options.header is True
    assert source.tables == (
        TableMapping(table="bronze.orders", pattern="orders*.csv"),
        TableMapping(table="bronze.lineitem", pattern="lineitem*.csv"),
    )
    assert source.targets() == ["bronze.orders", "bronze.lineitem"]


def test_environment_variables_are_expanded(tmp_path: Path) -> None:
    [entry] = yaml.safe_load(SPEC)["sources"]

    source = parse_source(entry, base_dir=tmp_path, env={"TPCH_DATA": "/srv/tpch"})

    assert isinstance(source, FolderSource) and source.path == "/srv/tpch"


def test_a_missing_variable_without_default_is_an_error() -> None:
    entry = {"name": "s", "type": "http", "url": "${RATES_URL}", "table": "rates"}

    with pytest.raises(SourceConfigError, match="RATES_URL is not set"):
        parse_source(entry, env={})


def test_http_and_sql_sources() -> None:
    http = parse_source(
        {"name": "rates", "type": "http", "url": "https://example.org/r.jsonl", "table": "rates"}
    )
    sql = parse_source(
        {
            "name": "crm",
            "type": "sql",
            "url": "postgresql+psycopg://u:${PW}@db/crm",
            "source_table": "public.accounts",
            "cursor": "updated_at",
            "table": "bronze.accounts",
        },
        env={"PW": "hunter2"},
    )

    assert isinstance(http, HttpSource) and http.table == "bronze.rates"
    assert isinstance(sql, SqlSource) and sql.cursor == "updated_at"
    assert sql.url.get_secret_value() == "postgresql+psycopg://u:hunter2@db/crm"
    assert "hunter2" not in repr(sql) and "hunter2" not in sql.describe()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "type": "kafka"}, "type must be folder, http or sql"),
        ({"name": "x"}, "missing 'type'"),
        ({"name": "x", "type": "folder", "path": "p", "table": "t", "colour": 1}, "'colour'"),
        ({"name": "x", "type": "folder", "path": "p"}, "give either 'table'"),
        ({"name": "../x", "type": "folder", "path": "p", "table": "t"}, "invalid source name"),
        ({"name": "x", "type": "folder", "path": "p", "table": "a b"}, "invalid table name"),
        (
            {
                "name": "x",
                "type": "folder",
                "path": "p",
                "table": "t",
                "options": {"encoding": "?"},
            },
            "unknown encoding",
        ),
        (
            {"name": "x", "type": "sql", "url": "sqlite://", "table": "t"},
            "give either 'source_table' or 'query'",
        ),
        (
            {
                "name": "x",
                "type": "folder",
                "path": "p",
                "table": "t",
                "schema_policy": {"new_columns": "sometimes"},
            },
            "new_columns",
        ),
        (
            {
                "name": "x",
                "type": "folder",
                "path": "p",
                "table": "t",
                "schema_policy": {"keys": ["id"]},
            },
            "keys",
        ),
    ],
)
def test_invalid_entries_are_one_line_config_errors(entry: dict[str, object], message: str) -> None:
    with pytest.raises(SourceConfigError, match=message) as caught:
        parse_source(entry)

    assert isinstance(caught.value, ConfigError)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"source '{entry['name']}': ")


def test_a_schema_policy_is_part_of_a_source_and_defaults_to_half_the_columns() -> None:
    default = parse_source({"name": "x", "type": "folder", "path": "p", "table": "t"})
    assert default.schema_policy == SchemaPolicy(
        new_columns="add", key_columns=(), min_shared_columns=0.5
    )
    strict = parse_source(
        {
            "name": "x",
            "type": "http",
            "url": "https://example.com/a.csv",
            "table": "t",
            "schema_policy": {"key_columns": ["id"], "new_columns": "reject"},
        }
    )
    assert strict.schema_policy.key_columns == ("id",)
    assert strict.schema_policy.new_columns == "reject"
