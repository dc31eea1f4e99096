"""Loading pipelines: pipeline.yaml validation, model discovery, dependencies, build order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lakehouse.pipelines import (
    DependencyCycleError,
    PipelineConfigError,
    PipelineNotFoundError,
    load_pipeline,
)
from lakehouse.pipelines.config import FreshnessCheck, SqlCheck, parse_duration
from tests.pipelines.conftest import write_pipeline

MODELS = {
    "silver/orders.sql": "SELECT * FROM bronze.orders",
    "silver/customers.sql": "SELECT * FROM bronze.customers;",
    "silver/enriched.sql": """
        -- orders with their customer
        SELECT o.*, c.name FROM silver.orders o JOIN silver.customers c ON c.id = o.customer
    """,
    "gold/revenue.sql": "SELECT name, sum(amount) AS revenue FROM silver.enriched GROUP BY name",
    "gold/counts.sql": "SELECT count(*) AS n FROM silver.orders",
}


def test_models_are_discovered_with_dependencies_and_ordered(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "shop", "name: shop\n", MODELS)
    pipeline = load_pipeline(tmp_path / "shop")
    assert pipeline.name == "shop"
    order = [m.name for m in pipeline.models]
    assert order == [
        "silver.customers",
        "silver.orders",
        "silver.enriched",
        "gold.counts",
        "gold.revenue",
    ]
    enriched = pipeline.model("silver.enriched")
    assert enriched.depends_on == ("silver.orders", "silver.customers")
    assert set(enriched.reads) == {"silver.orders", "silver.customers"}
    assert pipeline.model("silver.orders").depends_on == ()  # bronze is not a model
    assert pipeline.model("silver.orders").reads == ("bronze.orders",)
    assert pipeline.model("silver.customers").sql == "SELECT * FROM bronze.customers"
    assert pipeline.model("gold.revenue").config.materialized == "full_refresh"


def test_a_step_keeps_only_its_sources_models_or_checks() -> None:
    tpch = load_pipeline(Path(__file__).resolve().parents[2] / "pipelines" / "tpch")
    assert tpch.sources and tpch.checks and tpch.models

    ingest = tpch.step(sources=True)
    assert ingest.sources == tpch.sources and not ingest.models and not ingest.checks
    silver = tpch.step(layers=["silver"])
    assert [m.name for m in silver.models] == [
        m.name for m in tpch.models if m.name.startswith("silver.")
    ]
    assert not silver.sources and not silver.checks
    audit = tpch.step(checks=True)
    assert audit.checks == tpch.checks and not audit.models and not audit.sources
    everything = tpch.step(sources=True, layers=["silver", "gold"], checks=True)
    assert everything.models == tpch.models
    with pytest.raises(PipelineConfigError, match=r"unknown layer.*'bronze'"):
        tpch.step(layers=["bronze"])


def test_a_pipeline_is_found_by_name_in_the_pipelines_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pipeline(tmp_path / "elsewhere", "shop", "name: shop\n", MODELS)
    assert load_pipeline("shop", tmp_path / "elsewhere").name == "shop"
    assert load_pipeline(tmp_path / "elsewhere" / "shop" / "pipeline.yaml").name == "shop"
    write_pipeline(tmp_path / "work" / "pipelines", "sales", "name: sales\n")
    monkeypatch.chdir(tmp_path / "work")
    assert load_pipeline("sales").name == "sales"  # ./pipelines/<name> by default
    with pytest.raises(PipelineNotFoundError, match="no pipeline 'shop'") as info:
        load_pipeline("shop")
    assert "pipelines/shop/pipeline.yaml" in str(info.value)


def test_the_name_defaults_to_the_folder(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "sales", "description: no name given\n")
    assert load_pipeline(tmp_path / "sales").name == "sales"


def test_a_cycle_is_one_error_naming_it(tmp_path: Path) -> None:
    write_pipeline(
        tmp_path,
        "loop",
        "name: loop\n",
        {
            "silver/a.sql": "SELECT * FROM silver.b",
            "silver/b.sql": "SELECT * FROM gold.c",
            "gold/c.sql": "SELECT * FROM silver.a",
            "gold/d.sql": "SELECT 1 AS x",
        },
    )
    with pytest.raises(DependencyCycleError) as info:
        load_pipeline(tmp_path / "loop")
    message = str(info.value)
    assert message.startswith("dependency cycle between models: ")
    assert "gold.c -> silver.a -> silver.b -> gold.c" in message
    assert "\n" not in message
    assert info.value.cycle == ["gold.c", "silver.a", "silver.b", "gold.c"]


def test_a_model_reading_its_own_table_is_not_a_cycle(tmp_path: Path) -> None:
    write_pipeline(
        tmp_path,
        "inc",
        "name: inc\nmodels:\n  silver.events: {materialized: append}\n",
        {
            "silver/events.sql": """
                SELECT * FROM bronze.events
                WHERE id > (SELECT coalesce(max(id), 0) FROM silver.events)
            """
        },
    )
    assert load_pipeline(tmp_path / "inc").model("silver.events").depends_on == ()


def test_a_syntax_error_names_the_model_file(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "bad", "name: bad\n", {"silver/orders.sql": "SELECT * FRM x.y"})
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline(tmp_path / "bad")
    message = str(info.value)
    assert message.startswith("model silver.orders (")
    assert "silver/orders.sql" in message
    assert "SQL syntax error" in message


def test_a_model_must_be_one_query(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "two", "name: two\n", {"silver/x.sql": "SELECT 1; SELECT 2"})
    with pytest.raises(PipelineConfigError, match=r"silver/x\.sql.*2 statements"):
        load_pipeline(tmp_path / "two")


@pytest.mark.parametrize(
    ("yaml", "fragment"),
    [
        ("name: p\nowner: me\n", "pipeline.yaml: owner: unknown field"),
        (
            "name: p\nchecks:\n  - {model: silver.x, type: not_null, colums: [a]}\n",
            "checks[0].colums: unknown field",
        ),
        (
            "name: p\nchecks:\n  - {model: silver.x, type: not_null}\n",
            "checks[0].columns: field required",
        ),
        ("name: p\nchecks:\n  - {model: silver.x, type: nope}\n", "checks[0]: Input tag 'nope'"),
        (
            "name: p\nchecks:\n  - {model: x, type: row_count, min: 1}\n",
            "checks[0].model: 'x' is not a table name",
        ),
        (
            "name: p\nchecks:\n  - {model: silver.x, type: row_count}\n",
            "checks[0]: row_count needs min, max or both",
        ),
        (
            "name: p\nchecks:\n  - {model: s.x, type: freshness, column: t, max_age: soon}\n",
            "checks[0].max_age",
        ),
        (
            "name: p\nchecks:\n  - {model: s.x, type: unique, columns: [a], severity: fatal}\n",
            "checks[0].severity",
        ),
        ("name: p\nmodels:\n  silver.x: {materialized: merge}\n", "merge needs unique_key"),
        (
            "name: p\nmodels:\n  silver.x: {materialized: append, delete_condition: 'a'}\n",
            "delete_condition is only used with materialized: merge",
        ),
        (
            "name: p\nmodels:\n  silver.x: {materialized: merge, unique_key: [a], "
            "delete_condition: \"a = (SELECT count(*) FROM read_csv('/etc/passwd'))\"}\n",
            "table function read_csv is not allowed here",
        ),
        (
            "name: p\nmodels:\n  silver.x: {materialized: merge, unique_key: [a], "
            "delete_condition: \"true); COPY (SELECT 1) TO 'x'; SELECT (1\"}\n",
            "3 statements given",
        ),
        ("name: p\nmodels:\n  silver.x: {materialize: append}\n", "materialize: unknown field"),
        ("name: p\nmodels:\n  silver.nope: {}\n", "models[silver.nope]: no model file"),
        ("name: 'bad name'\n", "name: 'bad name' is not a pipeline name"),
        ("name: p\nchecks: [{type: sql, name: c, sql: 'SELEC 1'}]\n", "check c: SQL syntax"),
        ("name: [unclosed\n", "invalid YAML (line 2)"),
        ("- a list\n", "expected a mapping at the top level"),
    ],
)
def test_invalid_definitions_name_the_file_and_the_field(
    tmp_path: Path, yaml: str, fragment: str
) -> None:
    write_pipeline(tmp_path, "p", yaml, {"silver/x.sql": "SELECT 1 AS a"})
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline(tmp_path / "p")
    message = str(info.value)
    assert "pipeline.yaml" in message
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv"),
        ("SELECT current_setting('allowed_paths') AS a", "function current_setting"),
        ("EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO 'x.csv'", "not COPY"),
    ],
)
def test_a_model_that_reads_files_or_writes_is_refused_at_load(
    tmp_path: Path, sql: str, fragment: str
) -> None:
    write_pipeline(tmp_path, "p", "name: p\n", {"silver/x.sql": sql})
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline(tmp_path / "p")
    assert "model silver.x" in str(info.value) and fragment in str(info.value)
    assert not (tmp_path / "x.csv").exists()


def test_checks_come_from_the_yaml_and_the_checks_folder(tmp_path: Path) -> None:
    write_pipeline(
        tmp_path,
        "p",
        """
        name: p
        checks:
          - {model: bronze.x, type: freshness, column: t, max_age: 1d12h}
          - {name: positive, type: sql, sql: "SELECT * FROM silver.x WHERE a < 0"}
        """,
        {
            "silver/x.sql": "SELECT 1 AS a",
            "checks/b_warn.sql": "-- just a warning\n-- severity: warn\nSELECT 1 AS a WHERE false;",
            "checks/a_error.sql": "SELECT * FROM silver.x WHERE a IS NULL",
        },
    )
    checks = load_pipeline(tmp_path / "p").checks
    assert [c.display_name for c in checks] == [
        "freshness(bronze.x.t)",
        "positive",
        "a_error",
        "b_warn",
    ]
    fresh = checks[0]
    assert isinstance(fresh, FreshnessCheck) and fresh.max_age == timedelta(days=1, hours=12)
    assert [c.severity for c in checks] == ["error", "error", "error", "warn"]
    warn = checks[3]
    assert isinstance(warn, SqlCheck) and warn.sql.endswith("WHERE false")


def test_durations() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("P1D") == "P1D"  # left to pydantic


def test_sources_are_validated_by_the_ingest_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DATA", str(tmp_path / "landing"))
    write_pipeline(
        tmp_path,
        "p",
        """
        name: p
        sources:
          - name: shop
            type: folder
            path: ${SHOP_DATA:-data}
            format: csv
            tables: [{table: orders, pattern: "orders*.csv"}]
        """,
    )
    [source] = load_pipeline(tmp_path / "p").sources
    assert source.name == "shop"

    write_pipeline(
        tmp_path, "q", "name: q\nsources:\n  - {name: s, type: ftp, path: x, format: csv}\n"
    )
    with pytest.raises(PipelineConfigError, match=r"pipeline.yaml: sources\[0\]: source 's'"):
        load_pipeline(tmp_path / "q")
