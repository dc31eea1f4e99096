"""The pipeline's SQL models and checks, run directly in DuckDB (no catalog, no runner).

A small harness plays the framework's part as ``docs/pipelines-spec.md`` describes it:
it lands each batch into ``bronze.<table>`` (the source's file patterns, ingestion
columns, new columns added by name), builds silver then gold (full refresh, or merge
on the unique key with the delete condition; an incremental model reads only the bronze
rows of the batches landed since its last build) and evaluates every check of
``pipeline.yaml`` plus ``checks/*.sql``. That pins the SQL itself; ``test_pipeline.py``
runs the same pipeline through the real runner.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml

from lakehouse import tpch
from tests.pipelines_tpch import reference
from tests.pipelines_tpch.conftest import PIPELINE_DIR


class Harness:
    """An in-memory DuckDB standing in for the lakehouse, driven by ``pipeline.yaml``."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] = yaml.safe_load((PIPELINE_DIR / "pipeline.yaml").read_text())
        self.con = duckdb.connect()
        for schema in ("bronze", "silver", "gold"):
            self.con.execute(f"CREATE SCHEMA {schema}")
        self.batches = 0
        #: Batch id each incremental model was last built through.
        self.built_through: dict[str, str] = {}

    def close(self) -> None:
        self.con.close()

    def _read(self, path: Path) -> pa.Table:
        # As the folder source reads CSV: pyarrow's type inference.
        return pacsv.read_csv(path)

    def ingest(self, folder: Path) -> None:
        self.batches += 1
        batch_id = f"batch-{self.batches:04d}"
        ingested_at = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
            hours=self.batches
        )
        (source,) = self.spec["sources"]
        for entry in source["tables"]:
            files = sorted(p for p in folder.iterdir() if fnmatch.fnmatch(p.name, entry["pattern"]))
            for file in files:
                data = self._read(file)
                n = data.num_rows
                data = (
                    data.append_column("_batch_id", pa.array([batch_id] * n))
                    .append_column("_source_file", pa.array([file.name] * n))
                    .append_column(
                        "_ingested_at", pa.array([ingested_at] * n, pa.timestamp("us", "UTC"))
                    )
                )
                self._append(f"bronze.{entry['table']}", data)

    def _append(self, name: str, data: pa.Table) -> None:
        self.con.register("incoming", data)
        try:
            schema, table = name.split(".")
            existing = self.con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchall()
            if not existing:
                self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
                return
            have = {c for (c,) in existing}
            for field in data.schema:
                if field.name not in have:
                    self.con.execute(f'ALTER TABLE {name} ADD COLUMN "{field.name}" VARCHAR')
            self.con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming")
        finally:
            self.con.unregister("incoming")

    def build(self) -> None:
        for layer in ("silver", "gold"):
            for path in sorted((PIPELINE_DIR / layer).glob("*.sql")):
                self._materialize(f"{layer}.{path.stem}", path.read_text())

    def _incremental_sql(self, name: str, sql: str) -> str:
        """``sql`` reading only the bronze rows landed since ``name`` was last built."""
        since = self.built_through.get(name, "")
        self.built_through[name] = f"batch-{self.batches:04d}"
        source = "bronze." + name.split(".")[1]
        view = f"new_{name.split('.')[1]}"
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS "
            f"SELECT * FROM {source} WHERE _batch_id > '{since}'"
        )
        assert sql.count(source) == 1, f"{name} reads {source} once"
        return sql.replace(source, view)

    def _materialize(self, name: str, sql: str) -> None:
        config = self.spec.get("models", {}).get(name, {})
        materialized = config.get("materialized", "full_refresh")
        if materialized == "incremental":
            sql = self._incremental_sql(name, sql)
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema || '.' || table_name = ?",
            [name],
        ).fetchone()
        deleted = config.get("delete_condition") or "false"
        keyed = materialized in ("merge", "incremental")
        if not keyed or exists == (0,):
            self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM ({sql}) AS m")
            if keyed:
                self.con.execute(f"DELETE FROM {name} WHERE {deleted}")
            return
        keys = config["unique_key"]
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        self.con.execute(f"CREATE TEMP TABLE source AS SELECT * FROM ({sql}) AS m")
        self.con.execute(f"DELETE FROM {name} AS t USING source AS s WHERE {on}")
        self.con.execute(f"INSERT INTO {name} SELECT * FROM source WHERE NOT ({deleted})")
        self.con.execute("DROP TABLE source")

    def failed_checks(self) -> dict[str, int]:
        """Blocking checks that fail -> number of offending rows (or 1)."""
        failed: dict[str, int] = {}
        checks = list(self.spec["checks"])
        checks += [
            {"name": p.stem, "type": "sql", "sql": p.read_text()}
            for p in sorted((PIPELINE_DIR / "checks").glob("*.sql"))
        ]
        for check in checks:
            if check.get("severity", "error") != "error":
                continue
            name = check.get("name") or f"{check['type']}:{check['model']}:" + ",".join(
                check.get("columns") or [check.get("column", "")]
            )
            bad = self._violations(check)
            if bad:
                failed[name] = bad
        return failed

    def _count(self, sql: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM ({sql}) AS q").fetchone()
        assert row is not None
        return int(row[0])

    def _violations(self, check: dict[str, Any]) -> int:
        kind = check["type"]
        model = check.get("model")
        if kind == "sql":
            return self._count(check["sql"])
        if kind == "not_null":
            cond = " OR ".join(f"{c} IS NULL" for c in check["columns"])
            return self._count(f"SELECT * FROM {model} WHERE {cond}")
        if kind == "unique":
            cols = ", ".join(check["columns"])
            return self._count(f"SELECT {cols} FROM {model} GROUP BY {cols} HAVING count(*) > 1")
        if kind == "accepted_values":
            values = ", ".join("'" + str(v).replace("'", "''") + "'" for v in check["values"])
            col = check["column"]
            return self._count(f"SELECT * FROM {model} WHERE {col} NOT IN ({values})")
        if kind == "relationships":
            return self._count(
                f"SELECT * FROM {model} AS c WHERE c.{check['column']} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {check['to']} AS p WHERE p.{check['field']} = c.{check['column']})"
            )
        if kind == "row_count":
            n = self._count(f"SELECT * FROM {model}")
            low, high = check.get("min", 0), check.get("max", float("inf"))
            return 0 if low <= n <= high else 1
        if kind == "freshness":
            row = self.con.execute(f"SELECT max({check['column']}) FROM {model}").fetchone()
            return 0 if row is not None and row[0] is not None else 1
        raise AssertionError(f"unknown check type {kind}")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()


def _first_load(data: Path) -> Iterator[Harness]:
    h = Harness()
    h.ingest(data)
    h.build()
    yield h
    h.close()


@pytest.fixture(scope="module")
def loaded(tpch_data: Path) -> Iterator[Harness]:
    """The harness after the first load, shared by the tests that only read it."""
    yield from _first_load(tpch_data)


@pytest.fixture
def harness(tpch_data: Path) -> Iterator[Harness]:
    """A harness of its own after the first load, for tests that add batches."""
    yield from _first_load(tpch_data)


def _q1(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # The averages are doubles: compare them approximately, everything else exactly.
    return [(*r[:6], *(pytest.approx(v, rel=1e-12) for v in r[6:9]), r[9]) for r in rows]


def test_first_load_passes_every_check(loaded: Harness) -> None:
    assert loaded.failed_checks() == {}


def test_gold_q1_matches_the_standard_query(loaded: Harness, tpch_data: Path) -> None:
    expected = reference.reference_rows(tpch_data, reference.Q1)
    cols = ", ".join(reference.Q1_COLUMNS)
    actual = loaded.rows(f"SELECT {cols} FROM gold.q1_pricing_summary ORDER BY 1, 2")
    assert len(expected) == 4
    assert actual == _q1(expected)


def test_gold_q3_matches_the_standard_query(loaded: Harness, tpch_data: Path) -> None:
    expected = reference.reference_rows(tpch_data, reference.Q3)
    cols = ", ".join(reference.Q3_COLUMNS)
    actual = loaded.rows(f"SELECT {cols} FROM gold.q3_shipping_priority ORDER BY 2 DESC, 3")
    assert len(expected) == 10
    assert actual == expected


def test_silver_types(loaded: Harness) -> None:
    types = dict(
        loaded.rows(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'silver'"
        )
    )
    for table, columns in tpch.COLUMNS.items():
        for column, type_ in columns.items():
            assert types[f"{table}.{column}"] == type_, (table, column)


def test_change_batch_is_merged(
    harness: Harness, tpch_data: Path, change_batch: tpch.ChangeBatch
) -> None:
    assert change_batch.updated_orders > 0 and change_batch.deleted_orders > 0
    harness.ingest(change_batch.path)
    harness.build()
    assert harness.failed_checks() == {}

    cols = ", ".join(reference.ORDER_COLUMNS)
    actual = {r[0]: r for r in harness.rows(f"SELECT {cols} FROM silver.orders")}
    orders_changes = change_batch.path / "orders_changes.csv"
    expected = reference.expected_orders(tpch_data, [orders_changes])
    assert actual == expected

    lineitem_changes = change_batch.path / "lineitem_changes.csv"
    keys = set(harness.rows("SELECT l_orderkey, l_linenumber FROM silver.lineitem"))
    assert keys == reference.expected_lineitem_keys(tpch_data, [lineitem_changes])


def test_broken_batch_fails_the_checks(harness: Harness, broken_batch: tpch.BrokenBatch) -> None:
    harness.ingest(broken_batch.path)
    harness.build()
    b = broken_batch
    assert harness.failed_checks() == {
        "no_negative_prices": b.negative_price_orders,
        "no_negative_amounts": b.negative_price_orders + b.negative_quantity_lineitems,
        "not_null:silver.orders:o_orderkey,o_custkey,o_orderdate,o_totalprice": (
            b.null_customer_orders
        ),
        "accepted_values:silver.orders:o_orderstatus": b.bad_status_orders,
        "relationships:silver.lineitem:l_orderkey": b.orphan_lineitems,
    }
