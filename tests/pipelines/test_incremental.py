"""Incremental models: only the rows appended since the last run are read, and merged.

What a model *read* is proven by the model itself: the SQL records how many source rows
it saw in each row it writes (``count(*) OVER ()``), so a run that read too much or too
little writes a different number.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from lakehouse.catalog.incremental import (
    STATE_PROPERTY,
    SUMMARY_MARKER,
    incremental_state,
)
from lakehouse.cli.main import app
from lakehouse.client import Lakehouse, connect
from lakehouse.maintenance import compact, expire_snapshots
from lakehouse.maintenance.policies import Policies
from lakehouse.pipelines import PipelineConfigError, load_pipeline, run_pipeline
from lakehouse.pipelines.engines import ENGINES
from lakehouse.pipelines.engines.duckdb import DuckDBEngine
from lakehouse.pipelines.incremental import read_source
from lakehouse.pipelines.runner import RunResult
from tests.pipelines.conftest import bronze, rows, write_pipeline

YAML = """
name: shop
models:
  silver.events:
    materialized: incremental
    unique_key: [id]
    delete_condition: "op = 'D'"
"""
#: The dedup pattern: the newest version of each key in the batch wins.
EVENTS_SQL = """
SELECT id, v, op, seq, count(*) OVER () AS seen
FROM bronze.events
QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq DESC) = 1
"""


def events(*items: tuple[int, str, str, int]) -> pa.Table:
    """Bronze rows ``(id, v, op, seq)``; ``seq`` orders the versions of a key."""
    ids, values, ops, seqs = zip(*items, strict=True)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "v": pa.array(values, pa.string()),
            "op": pa.array(ops, pa.string()),
            "seq": pa.array(seqs, pa.int64()),
        }
    )


def table_rows(lh: Lakehouse) -> list[tuple[object, ...]]:
    return [
        (r["id"], r["v"], r["seen"])
        for r in rows(lh, "SELECT id, v, seen FROM silver.events ORDER BY id")
    ]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path, "shop", YAML, {"silver/events.sql": EVENTS_SQL})


@pytest.fixture
def loaded(lh: Lakehouse) -> Lakehouse:
    """bronze.events on main with three rows (two versions of key 2)."""
    bronze(lh, "bronze.events", events((1, "a", "I", 1), (2, "b", "I", 1), (2, "b2", "U", 2)))
    return lh


def only_model(result: RunResult) -> tuple[str, int]:
    """(read mode, rows read) of the run's only model."""
    assert result.ok, result.error
    (model,) = result.models
    assert model.incremental is not None and model.materialized == "incremental"
    return model.incremental.mode, model.incremental.rows


def test_the_first_run_reads_everything_then_only_new_rows(loaded: Lakehouse, shop: Path) -> None:
    lh = loaded
    first = run_pipeline(lh, shop)
    assert only_model(first) == ("full", 3)
    (source,) = first.models[0].incremental.sources  # type: ignore[union-attr]
    assert source.reason == "first build"
    assert table_rows(lh) == [(1, "a", 3), (2, "b2", 3)]

    bronze(lh, "bronze.events", events((3, "c", "I", 3), (1, "a2", "U", 3)))
    second = run_pipeline(lh, shop)
    assert only_model(second) == ("incremental", 2)
    # the model saw exactly the two new rows: the rows it wrote say so
    assert table_rows(lh) == [(1, "a2", 2), (2, "b2", 3), (3, "c", 2)]
    write = second.models[0].write
    assert (write.inserted, write.updated, write.deleted) == (1, 1, 0)
    read = second.models[0].incremental
    assert read is not None and read.describe() == "read 2 new row(s) of bronze.events"


def test_the_state_is_in_the_summary_of_the_models_write(loaded: Lakehouse, shop: Path) -> None:
    lh = loaded
    run_pipeline(lh, shop)
    source = lh.table("bronze.events").current_snapshot()
    written = lh.table("silver.events").current_snapshot()
    assert source is not None and written is not None and written.summary is not None
    props = written.summary.additional_properties
    assert props[SUMMARY_MARKER] == "full"
    assert props["lakehouse.incremental.bronze.events"] == str(source.snapshot_id)
    assert props["lakehouse.model"] == "silver.events"


def test_nothing_new_reads_nothing_and_commits_nothing(loaded: Lakehouse, shop: Path) -> None:
    lh = loaded
    run_pipeline(lh, shop)
    before = lh.table("silver.events").current_snapshot()
    again = run_pipeline(lh, shop)
    assert only_model(again) == ("incremental", 0)
    read = again.models[0].incremental
    assert read is not None and read.describe() == "nothing new in bronze.events: not run"
    assert not again.models[0].write.committed
    assert lh.table("silver.events").current_snapshot() == before


def test_the_latest_version_in_a_batch_wins_and_deletes_remove_keys(
    loaded: Lakehouse, shop: Path
) -> None:
    lh = loaded
    run_pipeline(lh, shop)
    # one batch: key 1 updated twice then deleted, key 2 deleted then inserted again
    bronze(
        lh,
        "bronze.events",
        events(
            (1, "x", "U", 5),
            (1, "y", "U", 6),
            (1, "y", "D", 7),
            (2, "gone", "D", 5),
            (2, "back", "I", 6),
        ),
    )
    result = run_pipeline(lh, shop)
    assert only_model(result) == ("incremental", 5)
    assert table_rows(lh) == [(2, "back", 5)]


def test_a_failed_run_is_read_again_by_the_next_one(lh: Lakehouse, tmp_path: Path) -> None:
    yaml = (
        YAML
        + "checks:\n  - {model: silver.events, type: accepted_values, column: v,"
        + " values: [a, b, b2, ok]}\n"
    )
    shop = write_pipeline(tmp_path, "shop", yaml, {"silver/events.sql": EVENTS_SQL})
    bronze(lh, "bronze.events", events((1, "a", "I", 1), (2, "b", "I", 1)))
    assert run_pipeline(lh, shop).ok
    bronze(lh, "bronze.events", events((3, "bad", "I", 2)))
    failed = run_pipeline(lh, shop)
    assert failed.status == "failed" and only_model_mode(failed) == ("incremental", 1)
    bronze(lh, "bronze.events", events((3, "ok", "U", 3)))
    # main's silver.events still records the first run: both new batches are read
    fixed = run_pipeline(lh, shop)
    assert only_model(fixed) == ("incremental", 2)
    assert table_rows(lh) == [(1, "a", 2), (2, "b", 2), (3, "ok", 2)]


def only_model_mode(result: RunResult) -> tuple[str, int]:
    (model,) = result.models
    assert model.incremental is not None
    return model.incremental.mode, model.incremental.rows


def test_a_snapshot_that_is_not_an_append_means_a_full_read(loaded: Lakehouse, shop: Path) -> None:
    lh = loaded
    run_pipeline(lh, shop)
    bronze(lh, "bronze.events", events((3, "c", "I", 3)))
    lh.table("bronze.events").delete("id = 1")  # a row-level change in bronze
    result = run_pipeline(lh, shop)
    assert only_model(result) == ("full", 3)
    (source,) = result.models[0].incremental.sources  # type: ignore[union-attr]
    assert source.reason is not None and "not an append" in source.reason
    # correct, not fast: every remaining row was read (key 1 is kept: merge only upserts)
    assert table_rows(lh) == [(1, "a", 3), (2, "b2", 3), (3, "c", 3)]


def test_a_recorded_snapshot_that_is_no_ancestor_means_a_full_read(loaded: Lakehouse) -> None:
    table = loaded.table("bronze.events")
    read = read_source("bronze.events", table, since=123456789)
    assert read.mode == "full" and read.rows == 3
    assert read.reason is not None and "no longer an ancestor" in read.reason


def test_after_a_content_merge_only_the_rows_the_other_side_added_are_read(
    loaded: Lakehouse, shop: Path
) -> None:
    lh = loaded
    run_pipeline(lh, shop)
    lh.create_branch("feature")
    bronze(lh, "bronze.events", events((3, "c", "I", 3)), branch="feature")
    assert only_model(run_pipeline(lh, shop, ref="feature")) == ("incremental", 1)
    bronze(lh, "bronze.events", events((4, "d", "I", 4), (5, "e", "I", 4)))  # main, meanwhile
    merged = lh.merge("feature")  # bronze.events by content; silver.events from feature
    assert merged.was_applied
    # silver.events recorded feature's bronze snapshot, which main's history does not
    # have: the merged snapshot names it, so main's own two new rows are all that is read
    result = run_pipeline(lh, shop)
    assert only_model(result) == ("incremental", 2)
    assert [r[:2] for r in table_rows(lh)] == [(1, "a"), (2, "b2"), (3, "c"), (4, "d"), (5, "e")]


def test_the_state_survives_snapshot_expiry(loaded: Lakehouse, shop: Path) -> None:
    lh = loaded
    run_pipeline(lh, shop)
    bronze(lh, "bronze.events", events((3, "c", "I", 3)))
    run_pipeline(lh, shop)
    # a compaction of silver.events writes a snapshot without the state, then expiry
    # removes every older snapshot: the state moves into a table property
    compact(
        lh,
        tables=["silver.events"],
        policies=Policies().with_changes(compaction={"min_small_files": 2}),
    )
    silver = lh.table("silver.events")
    assert silver.current_snapshot().summary.operation.value == "replace"  # type: ignore[union-attr]
    expire_snapshots(
        lh,
        tables=["silver.events"],
        policies=Policies().with_changes(snapshots={"keep_last": 1, "max_age": timedelta(0)}),
    )
    silver = lh.table("silver.events")
    assert len(silver.snapshots()) == 1
    assert STATE_PROPERTY in silver.properties
    state = incremental_state(silver)
    assert state.folded
    assert state.since("bronze.events") == lh.table("bronze.events").current_snapshot().snapshot_id  # type: ignore[union-attr]

    bronze(lh, "bronze.events", events((4, "d", "I", 4)))
    result = run_pipeline(lh, shop)
    assert only_model(result) == ("incremental", 1)
    assert table_rows(lh) == [(1, "a", 3), (2, "b2", 3), (3, "c", 1), (4, "d", 1)]


def test_an_unreadable_folded_state_means_a_full_read(loaded: Lakehouse, shop: Path) -> None:
    lh = loaded
    # the model's table exists without any recorded snapshot, and its folded state is damaged
    bronze(lh, "silver.events", events((1, "old", "I", 0)).append_column("seen", pa.array([0])))
    silver = lh.table("silver.events")
    with silver.transaction() as tx:
        tx.set_properties({STATE_PROPERTY: "{not json"})
    assert incremental_state(lh.table("silver.events")).sources == {}
    result = run_pipeline(lh, shop)
    assert only_model(result) == ("full", 3)
    (source,) = result.models[0].incremental.sources  # type: ignore[union-attr]
    assert source.reason == "no state recorded for it"
    assert table_rows(lh) == [(1, "a", 3), (2, "b2", 3)]


def test_a_source_with_nested_columns_is_read_through_arrow(lh: Lakehouse, tmp_path: Path) -> None:
    def batch(ids: list[int]) -> pa.Table:
        return pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "tags": pa.array([[str(i)] for i in ids], pa.list_(pa.string())),
            }
        )

    shop = write_pipeline(
        tmp_path,
        "shop",
        "name: shop\nmodels:\n  silver.tagged: {materialized: incremental, unique_key: [id]}\n",
        {
            "silver/tagged.sql": "SELECT id, len(tags) AS n, count(*) OVER () AS seen "
            "FROM bronze.tagged"
        },
    )
    bronze(lh, "bronze.tagged", batch([1, 2, 3]))
    assert only_model(run_pipeline(lh, shop)) == ("full", 3)
    bronze(lh, "bronze.tagged", batch([4]))
    assert only_model(run_pipeline(lh, shop)) == ("incremental", 1)
    assert rows(lh, "SELECT id, seen FROM silver.tagged ORDER BY id") == [
        {"id": 1, "seen": 3},
        {"id": 2, "seen": 3},
        {"id": 3, "seen": 3},
        {"id": 4, "seen": 1},
    ]


def test_only_the_listed_sources_are_read_incrementally(lh: Lakehouse, tmp_path: Path) -> None:
    yaml = """
    name: shop
    models:
      silver.enriched:
        materialized: incremental
        unique_key: [id]
        incremental_sources: [bronze.events]
    """
    sql = """
    SELECT e.id, n.name, count(*) OVER () AS seen
    FROM bronze.events AS e JOIN bronze.names AS n ON n.v = e.v
    """
    shop = write_pipeline(tmp_path, "shop", yaml, {"silver/enriched.sql": sql})
    bronze(lh, "bronze.names", pa.table({"v": ["a", "b"], "name": ["Ann", "Bob"]}))
    bronze(lh, "bronze.events", events((1, "a", "I", 1)))
    run_pipeline(lh, shop)
    bronze(lh, "bronze.events", events((2, "b", "I", 2)))
    result = run_pipeline(lh, shop)
    (model,) = result.models
    assert model.incremental is not None
    assert [(s.table, s.mode, s.rows) for s in model.incremental.sources] == [
        ("bronze.events", "incremental", 1)
    ]
    # the new event found its name in the dimension, which is read in full
    assert rows(lh, "SELECT id, name FROM silver.enriched ORDER BY id") == [
        {"id": 1, "name": "Ann"},
        {"id": 2, "name": "Bob"},
    ]


class WholeTableEngine(DuckDBEngine):
    """The DuckDB engine, declaring that it cannot present a table as some of its files."""

    name = "whole-tables"
    incremental_reads = False


def test_an_engine_without_incremental_reads_reads_everything(
    loaded: Lakehouse, shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ENGINES, "whole-tables", f"{__name__}:WholeTableEngine")
    lh = loaded
    run_pipeline(lh, shop)
    bronze(lh, "bronze.events", events((3, "c", "I", 3)))
    result = run_pipeline(lh, shop, engine="whole-tables")
    assert only_model(result) == ("full", 4)
    (source,) = result.models[0].incremental.sources  # type: ignore[union-attr]
    assert source.reason == "the whole-tables engine reads it all"
    assert table_rows(lh) == [(1, "a", 4), (2, "b2", 4), (3, "c", 4)]  # all were read


# -- full refresh ----------------------------------------------------------------------------

cli = CliRunner()


@pytest.fixture
def home(_isolate_lakehouse_config: Path, tmp_path: Path) -> Iterator[Lakehouse]:
    """The lakehouse the CLI opens, with bronze.events and ./pipelines/shop."""
    write_pipeline(tmp_path / "pipelines", "shop", YAML, {"silver/events.sql": EVENTS_SQL})
    with connect(create=True) as opened:
        bronze(opened, "bronze.events", events((1, "a", "I", 1), (2, "b", "I", 1)))
        yield opened


def test_full_refresh_rebuilds_from_everything_through_the_cli(home: Lakehouse) -> None:
    lh = home
    assert cli.invoke(app, ["run", "shop"]).exit_code == 0
    bronze(lh, "bronze.events", events((3, "c", "I", 2)))
    # a stray write into the model's table: an incremental run keeps it
    lh.catalog("main").load_table("silver.events").append(
        pa.table(
            {
                "id": pa.array([99], pa.int64()),
                "v": ["stray"],
                "op": ["I"],
                "seq": pa.array([0], pa.int64()),
                "seen": pa.array([0], pa.int64()),
            }
        )
    )
    assert cli.invoke(app, ["run", "shop"]).exit_code == 0
    assert [r[0] for r in table_rows(lh)] == [1, 2, 3, 99]

    result = cli.invoke(app, ["run", "shop", "--full-refresh"])
    assert result.exit_code == 0, result.output
    assert "incremental" in result.output
    assert "silver.events read bronze.events in full: full refresh" in result.output
    assert table_rows(lh) == [(1, "a", 3), (2, "b", 3), (3, "c", 3)]

    # naming the model works too; the next plain run is incremental again
    named = cli.invoke(app, ["run", "shop", "--full-refresh", "silver.events", "-o", "json"])
    assert named.exit_code == 0, named.output
    assert '"full_refresh": true' in named.output
    bronze(lh, "bronze.events", events((4, "d", "I", 3)))
    plain = cli.invoke(app, ["run", "shop", "-o", "json"])
    assert '"mode": "incremental"' in plain.output and '"rows": 1' in plain.output


def test_full_refresh_of_an_empty_result_is_not_undone(loaded: Lakehouse, tmp_path: Path) -> None:
    lh = loaded
    shop = write_pipeline(tmp_path, "shop", YAML, {"silver/events.sql": EVENTS_SQL})
    run_pipeline(lh, shop)
    (shop / "silver/events.sql").write_text(
        EVENTS_SQL.replace("FROM bronze.events", "FROM bronze.events WHERE false")
    )
    rebuilt = run_pipeline(lh, shop, full_refresh=["silver.events"])
    assert rebuilt.ok and table_rows(lh) == []
    state = incremental_state(lh.table("silver.events"))
    assert state.sources == {}  # the reset: the next run reads everything again
    (shop / "silver/events.sql").write_text(EVENTS_SQL)
    assert only_model(run_pipeline(lh, shop)) == ("full", 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "shop", "silver.events"],
            "Error: unexpected argument(s) silver.events: models are named only with "
            "--full-refresh (lakehouse run PIPELINE --full-refresh MODEL...)",
        ),
        (
            ["run", "shop", "--full-refresh", "silver.nope"],
            "Error: full refresh of silver.nope: pipeline shop has no such model "
            "(incremental models: silver.events)",
        ),
    ],
)
def test_full_refresh_usage_errors_are_one_line(
    home: Lakehouse, args: list[str], message: str
) -> None:
    before = home.resolve("main").hash
    result = cli.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.strip() == message
    assert home.resolve("main").hash == before


def test_full_refresh_of_a_model_that_is_not_incremental(loaded: Lakehouse, tmp_path: Path) -> None:
    yaml = "name: shop\nmodels:\n  silver.events: {materialized: merge, unique_key: [id]}\n"
    shop = write_pipeline(tmp_path, "shop", yaml, {"silver/events.sql": EVENTS_SQL})
    with pytest.raises(PipelineConfigError, match=r"it is not incremental \(materialized: merge\)"):
        run_pipeline(loaded, shop, full_refresh=["silver.events"])


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            "{materialized: incremental}",
            "models[silver.events]: materialized: incremental needs unique_key (the key columns)",
        ),
        (
            "{materialized: merge, unique_key: [id], incremental_sources: [bronze.events]}",
            "models[silver.events]: incremental_sources is only used with "
            "materialized: incremental",
        ),
        (
            "{materialized: incremental, unique_key: [id], incremental_sources: [bronze.other]}",
            "models[silver.events].incremental_sources: the model does not read bronze.other "
            "(it reads bronze.events)",
        ),
        (
            "{materialized: incremental, unique_key: [id], incremental_sources: [other]}",
            "models[silver.events].incremental_sources: 'other' is not a table name",
        ),
    ],
)
def test_bad_configuration_is_one_line(tmp_path: Path, settings: str, message: str) -> None:
    yaml = f"name: shop\nmodels:\n  silver.events: {settings}\n"
    shop = write_pipeline(tmp_path, "shop", yaml, {"silver/events.sql": EVENTS_SQL})
    with pytest.raises(PipelineConfigError) as caught:
        load_pipeline(shop)
    text = str(caught.value)
    assert "\n" not in text
    assert message in text, text


def test_an_incremental_model_must_read_another_table(tmp_path: Path) -> None:
    yaml = "name: shop\nmodels:\n  silver.events: {materialized: incremental, unique_key: [id]}\n"
    shop = write_pipeline(tmp_path, "shop", yaml, {"silver/events.sql": "SELECT 1 AS id"})
    with pytest.raises(PipelineConfigError, match="needs a model that reads another table"):
        load_pipeline(shop)
