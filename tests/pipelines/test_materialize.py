"""Materializations through the DuckDB engine: one Iceberg commit per model write."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.client import Lakehouse, connect
from lakehouse.pipelines import get_engine
from lakehouse.pipelines.config import ModelConfig
from lakehouse.pipelines.engines.base import Engine
from lakehouse.pipelines.engines.duckdb import DuckDBEngine, MergeError
from lakehouse.pipelines.materialize import iceberg_compatible
from tests.pipelines.conftest import bronze, rows

FULL = ModelConfig()
APPEND = ModelConfig(materialized="append")
MERGE = ModelConfig(materialized="merge", unique_key=["id"], delete_condition="_op = 'D'")


def changes(ids: list[int], values: list[str], ops: list[str]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "value": pa.array(values, pa.string()),
            "_op": pa.array(ops, pa.string()),
        }
    )


@pytest.fixture
def engine(lh: Lakehouse) -> Engine:
    lh.create_branch("work")
    return get_engine("duckdb")(lh, "work")


def commits(lh: Lakehouse, ref: str = "work") -> int:
    return len(lh.log(ref, None))


def table_rows(lh: Lakehouse, name: str, ref: str = "work") -> list[dict[str, object]]:
    return rows(lh, f"SELECT * FROM {name} ORDER BY ALL", ref)


def test_engine_registry() -> None:
    assert get_engine("duckdb") is DuckDBEngine
    from lakehouse.pipelines import PipelineConfigError

    with pytest.raises(PipelineConfigError, match="unknown engine 'flink'"):
        get_engine("flink")
    assert get_engine("spark").name == "spark"  # imports without pyspark (used lazily)


def test_full_refresh_creates_then_replaces_in_one_commit_each(
    lh: Lakehouse, engine: Engine
) -> None:
    before = commits(lh)
    created = engine.write("silver.numbers", "SELECT range AS n FROM range(3)", FULL)
    assert created.created and created.rows == 3
    after_create = commits(lh)
    assert after_create - before == 2  # the namespace, then the table with its rows

    replaced = engine.write(
        "silver.numbers", "SELECT range AS n, 'x' AS label FROM range(5, 7)", FULL
    )
    assert not replaced.created and replaced.inserted == 2 and replaced.deleted == 3
    assert commits(lh) - after_create == 1
    assert table_rows(lh, "silver.numbers") == [{"n": 5, "label": "x"}, {"n": 6, "label": "x"}]

    # a dropped column disappears; a narrower type is written into the wider column
    engine.write("silver.numbers", "SELECT CAST(range AS INTEGER) AS n FROM range(1)", FULL)
    assert table_rows(lh, "silver.numbers") == [{"n": 0}]
    assert not lh.catalog("main").table_exists("silver.numbers")  # all of it on the branch


def test_full_refresh_with_an_incompatible_type_recreates_the_table(
    lh: Lakehouse, engine: Engine
) -> None:
    engine.write("silver.t", "SELECT 1 AS a", FULL)
    engine.write("silver.t", "SELECT 'text' AS a", FULL)
    assert table_rows(lh, "silver.t") == [{"a": "text"}]


def test_append_adds_rows_and_new_columns(lh: Lakehouse, engine: Engine) -> None:
    engine.write("silver.events", "SELECT 1 AS id", APPEND)
    before = commits(lh)
    result = engine.write("silver.events", "SELECT 2 AS id, 'new' AS kind", APPEND)
    assert result.inserted == 1 and commits(lh) - before == 1
    assert table_rows(lh, "silver.events") == [
        {"id": 1, "kind": None},
        {"id": 2, "kind": "new"},
    ]
    assert not engine.write("silver.events", "SELECT 3 AS id WHERE false", APPEND).committed


def test_merge_upserts_and_deletes_in_one_commit(lh: Lakehouse, engine: Engine) -> None:
    bronze(lh, "bronze.changes", changes([1, 2, 3], ["a", "b", "c"], ["I", "I", "I"]), "work")
    sql = "SELECT * FROM bronze.changes"
    first = engine.write("silver.items", sql, MERGE)
    assert first.created and first.inserted == 3

    bronze(lh, "bronze.changes", changes([2, 3, 4], ["B", "c", "d"], ["U", "D", "I"]), "work")
    latest = (
        "SELECT id, value, _op FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY id ORDER BY _op = 'I' AND id < 4) AS r"
        "  FROM bronze.changes) WHERE r = 1"
    )
    before = commits(lh)
    merged = engine.write("silver.items", latest, MERGE)
    assert commits(lh) - before == 1
    assert (merged.inserted, merged.updated, merged.deleted) == (1, 1, 1)
    assert table_rows(lh, "silver.items") == [
        {"id": 1, "value": "a", "_op": "I"},
        {"id": 2, "value": "B", "_op": "U"},
        {"id": 4, "value": "d", "_op": "I"},
    ]

    # the same input again changes nothing: no commit
    before = commits(lh)
    again = engine.write("silver.items", latest, MERGE)
    assert not again.committed and commits(lh) == before


def test_merge_with_only_new_keys_appends_and_replaces_whole_rows(
    lh: Lakehouse, engine: Engine
) -> None:
    config = ModelConfig(materialized="merge", unique_key=["id"])
    engine.write("silver.t", "SELECT 1 AS id, 'a' AS v, 'x' AS extra", config)
    inserted = engine.write("silver.t", "SELECT 2 AS id, 'b' AS v", config)
    assert (inserted.inserted, inserted.updated, inserted.deleted) == (1, 0, 0)
    updated = engine.write("silver.t", "SELECT 1 AS id, 'A' AS v", config)
    assert (updated.inserted, updated.updated) == (0, 1)
    # an update replaces the whole row: columns the result lacks become NULL
    assert table_rows(lh, "silver.t") == [
        {"id": 1, "v": "A", "extra": None},
        {"id": 2, "v": "b", "extra": None},
    ]


def test_merge_on_a_composite_key_keeps_rows_sharing_the_first_column(
    lh: Lakehouse, engine: Engine
) -> None:
    config = ModelConfig(materialized="merge", unique_key=["o", "line"])
    engine.write(
        "silver.lines",
        "SELECT * FROM (VALUES (1, 1, 10.0), (1, 2, 20.0), (2, 1, 30.0)) t(o, line, price)",
        config,
    )
    result = engine.write(
        "silver.lines", "SELECT * FROM (VALUES (1, 2, 25.0), (3, 1, 5.0)) t(o, line, price)", config
    )
    assert (result.inserted, result.updated, result.deleted) == (1, 1, 0)
    assert table_rows(lh, "silver.lines") == [
        {"o": 1, "line": 1, "price": Decimal("10.0")},
        {"o": 1, "line": 2, "price": Decimal("25.0")},
        {"o": 2, "line": 1, "price": Decimal("30.0")},
        {"o": 3, "line": 1, "price": Decimal("5.0")},
    ]


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT 1 AS id, 'I' AS _op UNION ALL SELECT 1, 'U'", "id=1 appears 2 times"),
        ("SELECT NULL::BIGINT AS id, 'I' AS _op", "NULL unique_key"),
        ("SELECT 1 AS other, 'I' AS _op", "unique_key column(s) id not in the result"),
        ("SELECT 1 AS id", "delete_condition \"_op = 'D'\""),
    ],
)
def test_merge_refuses_bad_keys(engine: Engine, sql: str, fragment: str) -> None:
    with pytest.raises(MergeError) as info:
        engine.write("silver.items", sql, MERGE)
    assert fragment in str(info.value)


def test_arrow_types_iceberg_cannot_store_are_converted() -> None:
    data = pa.table(
        {
            "u8": pa.array([1], pa.uint8()),
            "u64": pa.array([2**63], pa.uint64()),
            "ns": pa.array([1_000], pa.timestamp("ns", tz="Europe/Paris")),
            "view": pa.array(["x"], pa.string_view()),
            "nothing": pa.array([None], pa.null()),
            "cat": pa.array(["a"]).dictionary_encode(),
        }
    )
    converted = iceberg_compatible(data)
    assert converted.schema == pa.schema(
        [
            ("u8", pa.int32()),
            ("u64", pa.decimal128(20, 0)),
            ("ns", pa.timestamp("us", tz="UTC")),
            ("view", pa.string()),
            ("nothing", pa.string()),
            ("cat", pa.string()),
        ]
    )
    assert converted.column("u64")[0].as_py() == Decimal(2**63)


def test_engine_reads_and_executes_on_its_branch(lh: Lakehouse, engine: Engine) -> None:
    bronze(lh, "bronze.changes", changes([1], ["a"], ["I"]), "work")
    assert engine.read("bronze.changes", columns=["id"]).to_pylist() == [{"id": 1}]
    assert engine.execute("SELECT count(*) AS n FROM bronze.changes").to_pylist() == [{"n": 1}]
    assert engine.table_exists("bronze.changes")
    assert not get_engine()(lh, "main").table_exists("bronze.changes")


def test_empty_results_write_without_warnings(lh: Lakehouse, engine: Engine) -> None:
    # pytest turns warnings into errors: PyIceberg's "did not match any records" must not leak
    for config in (FULL, APPEND, ModelConfig(materialized="merge", unique_key=["id"])):
        name = f"silver.empty_{config.materialized}"
        engine.write(name, "SELECT 1 AS id WHERE false", config)
        engine.write(name, "SELECT 1 AS id WHERE false", config)
        engine.write(name, "SELECT 1 AS id", config)
        assert table_rows(lh, name) == [{"id": 1}]
    engine.write("silver.empty_full_refresh", "SELECT 1 AS id WHERE false", FULL)
    assert table_rows(lh, "silver.empty_full_refresh") == []


# -- streaming: a model's result is never whole in memory ------------------------------------


class StreamSpy:
    """Records the record batches a write takes from DuckDB's result reader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from lakehouse.pipelines.engines import duckdb as engine_module

        self.batches: list[int] = []
        compatible = engine_module.compatible_stream
        spy = self

        def counting(reader: pa.RecordBatchReader) -> object:
            def batches() -> Iterator[pa.RecordBatch]:
                for batch in reader:
                    spy.batches.append(batch.num_rows)
                    yield batch

            return compatible(pa.RecordBatchReader.from_batches(reader.schema, batches()))

        monkeypatch.setattr(engine_module, "compatible_stream", counting)


@pytest.fixture
def small_batches(tmp_path: Path) -> Iterator[Engine]:
    """A DuckDB engine streaming results 100 rows at a time, within 64 MB of memory."""
    with connect(
        tmp_path / "small",
        create=True,
        compute={"batch_rows": 100, "duckdb_memory_limit": "64MB"},
    ) as opened:
        opened.create_branch("work")
        yield get_engine("duckdb")(opened, "work")


@pytest.mark.parametrize("config", [FULL, APPEND, MERGE], ids=["full_refresh", "append", "merge"])
def test_a_new_tables_rows_stream_from_duckdb_into_data_files_batch_by_batch(
    small_batches: Engine, monkeypatch: pytest.MonkeyPatch, config: ModelConfig
) -> None:
    spy = StreamSpy(monkeypatch)
    sql = "SELECT range AS id, 'v' || range AS value, 'I' AS _op FROM range(2500)"

    result = small_batches.write("silver.big", sql, config)

    assert result.created and result.rows == 2500 and result.inserted == 2500
    assert sum(spy.batches) == 2500
    assert len(spy.batches) >= 25 and max(spy.batches) <= 100  # never the whole result
    table = small_batches.lakehouse.catalog("work").load_table("silver.big")
    assert len(table.snapshots()) == 1  # one snapshot, one commit
    assert table.scan().to_arrow().num_rows == 2500


def test_a_full_refresh_of_an_existing_table_streams_and_replaces_in_one_commit(
    small_batches: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    lh = small_batches.lakehouse
    small_batches.write("silver.big", "SELECT range AS n FROM range(10)", FULL)
    before = commits(lh)
    spy = StreamSpy(monkeypatch)

    result = small_batches.write("silver.big", "SELECT range AS n FROM range(1000, 1999)", FULL)

    assert (result.inserted, result.deleted) == (999, 10)
    assert len(spy.batches) >= 10
    assert commits(lh) - before == 1
    assert table_rows(lh, "silver.big")[0] == {"n": 1000}
    assert len(table_rows(lh, "silver.big")) == 999


def test_an_empty_result_creates_the_table_without_a_snapshot(small_batches: Engine) -> None:
    result = small_batches.write("silver.none", "SELECT 1 AS n WHERE false", FULL)

    table = small_batches.lakehouse.catalog("work").load_table("silver.none")
    assert result.created and result.rows == 0
    assert table.current_snapshot() is None


def test_a_window_larger_than_the_memory_limit_spills_instead_of_failing(
    small_batches: Engine,
) -> None:
    # ~1.5 M rows of 40-byte strings sorted in a window: more than the 64 MB limit
    sql = (
        "SELECT id, value FROM (SELECT range AS id, repeat('x', 32) || range AS value, "
        "row_number() OVER (PARTITION BY range % 1000 ORDER BY range DESC) AS r "
        "FROM range(1500000)) WHERE r = 1"
    )

    result = small_batches.write("silver.spilled", sql, FULL)

    assert result.rows == 1000


def test_the_engines_duckdb_has_the_configured_memory_limit_and_spill_folder(
    tmp_path: Path,
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    with (
        connect(
            tmp_path / "home",
            create=True,
            compute={"duckdb_memory_limit": "200MB", "duckdb_temp_directory": str(spill)},
        ) as lh,
        DuckDBEngine(lh, "main")._connection("SELECT 1 AS one") as (con, sql),
    ):
        [(limit, temp)] = con.sql(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchall()
        assert con.sql(sql).fetchall() == [(1,)]
    assert limit in ("190.7 MiB", "200.0 MB", "200MB")
    assert temp == str(spill)
