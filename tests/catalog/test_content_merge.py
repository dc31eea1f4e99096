"""Catalog merges where both sides changed one table: merged by content when they commute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.manifest import DataFileContent
from pyiceberg.types import StringType

from lakehouse.client import Lakehouse, connect
from lakehouse.errors import MergeConflictError
from lakehouse.ops.check import check
from lakehouse.tables.rowdelta import referenced_data_files
from lakehouse.tables.upsert import SMALL_FILE_ROWS, delete_rows, upsert


@pytest.fixture
def lh(_isolate_lakehouse_config: Path) -> Iterator[Lakehouse]:
    with connect(create=True) as opened:
        catalog = opened.catalog("main")
        catalog.create_namespace("bronze")
        table = catalog.create_table("bronze.orders", schema=rows(1).schema)
        table.append(rows(1, 2))
        opened.create_branch("run")
        yield opened


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


def ids(lh: Lakehouse, ref: str) -> list[int]:
    return sorted(lh.table("bronze.orders", ref).scan().to_arrow().column("id").to_pylist())


def test_appends_on_both_sides_merge_as_one_merge_commit(lh: Lakehouse) -> None:
    lh.table("bronze.orders", "main").append(rows(3))  # ingestion on main
    lh.table("bronze.orders", "run").append(rows(4))  # the run on its branch
    dry = lh.merge("run", dry_run=True)
    assert dry.was_successful and not dry.was_applied and ids(lh, "main") == [1, 2, 3]
    result = lh.merge("run")
    assert result.was_applied
    assert ids(lh, "main") == [1, 2, 3, 4]
    assert len(lh.log("main", limit=1)[0].meta.parent_hashes) == 2
    again = lh.merge("run")  # the source is now an ancestor: nothing is re-applied
    assert not again.was_applied and ids(lh, "main") == [1, 2, 3, 4]


def test_a_dry_run_writes_no_file(lh: Lakehouse) -> None:
    lh.table("bronze.orders", "main").append(rows(3))
    lh.table("bronze.orders", "run").append(rows(4))
    warehouse = lh.settings.home / "warehouse"
    before = sorted(p for p in warehouse.rglob("*") if p.is_file())
    dry = lh.merge("run", dry_run=True)
    assert dry.was_successful and not dry.was_applied
    assert sorted(p for p in warehouse.rglob("*") if p.is_file()) == before
    assert lh.merge("run").was_applied  # the real merge writes its manifests then
    assert len([p for p in warehouse.rglob("*") if p.is_file()]) > len(before)


def test_a_column_added_on_the_run_branch_publishes_over_appends_on_main(lh: Lakehouse) -> None:
    lh.table("bronze.orders", "main").append(rows(3))
    run = lh.table("bronze.orders", "run")
    with run.update_schema() as update:
        update.add_column("channel", StringType())
    run.append(pa.table({"id": pa.array([4], pa.int64()), "channel": ["web"]}))
    result = lh.merge("run")
    assert result.was_applied
    table = lh.table("bronze.orders", "main")
    assert table.schema().find_field("channel") is not None
    got = table.scan().to_arrow().sort_by("id").to_pylist()
    assert [r["channel"] for r in got] == [None, None, None, "web"]
    assert lh.sql("SELECT count(channel) AS n FROM bronze.orders").to_pylist() == [{"n": 1}]
    assert check(lh).ok


def test_without_content_merge_both_sides_changed_is_a_conflict(lh: Lakehouse) -> None:
    lh.table("bronze.orders", "main").append(rows(3))
    lh.table("bronze.orders", "run").append(rows(4))
    with pytest.raises(MergeConflictError):
        lh.merge("run", content_merge=False)
    assert ids(lh, "main") == [1, 2, 3]


def test_a_copy_on_write_delete_on_the_source_merges_and_the_dry_run_says_rewrite(
    lh: Lakehouse,
) -> None:
    lh.table("bronze.orders", "main").append(rows(3))
    lh.table("bronze.orders", "run").delete("id = 1")  # rewrites the file of 1, 2
    dry = lh.merge("run", dry_run=True)
    [detail] = dry.details
    assert detail.resolution is not None
    assert detail.resolution.startswith("merged by content (rewrite on the source")
    assert ids(lh, "main") == [1, 2, 3]
    assert lh.merge("run").was_applied
    assert ids(lh, "main") == [2, 3]


CUSTOMERS = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def customers(**names: str) -> pa.Table:
    pairs = sorted((int(k[1:]), v) for k, v in names.items())
    return pa.table({"id": [k for k, _ in pairs], "name": [v for _, v in pairs]}, schema=CUSTOMERS)


@pytest.fixture
def silver(lh: Lakehouse) -> Lakehouse:
    """silver.customers (ids 1..4) on main and on branch ``run2``; upserts write deletes."""
    catalog = lh.catalog("main")
    catalog.create_namespace("silver")
    table = catalog.create_table(
        "silver.customers", schema=CUSTOMERS, properties={SMALL_FILE_ROWS: "0"}
    )
    table.append(customers(c1="ann", c2="bob", c3="cid", c4="dan"))
    lh.create_branch("run2")
    return lh


def names(lh: Lakehouse, ref: str) -> list[tuple[int, str]]:
    """The rows through DuckDB (``Lakehouse.sql``) and PyIceberg, which must agree."""
    table = lh.sql("SELECT id, name FROM silver.customers ORDER BY id", ref)
    by_duckdb = list(
        zip(table.column("id").to_pylist(), table.column("name").to_pylist(), strict=True)
    )
    scanned = lh.table("silver.customers", ref).scan().to_arrow().to_pylist()
    assert sorted((r["id"], r["name"]) for r in scanned) == by_duckdb
    return by_duckdb


def test_a_run_that_upserted_with_position_deletes_publishes_over_ingestion_on_main(
    silver: Lakehouse,
) -> None:
    lh = silver
    lh.table("silver.customers", "main").append(customers(c5="eve"))  # ingestion on main
    run = lh.table("silver.customers", "run2")
    upsert(run, customers(c2="bea", c6="fay"), ["id"])
    delete_rows(lh.table("silver.customers", "run2"), pa.table({"id": [3]}), ["id"])
    # a row of the run's own new file replaced: after the merge the data file and its
    # delete file share one sequence number, and the delete must still apply
    upsert(lh.table("silver.customers", "run2"), customers(c6="fay2"), ["id"])
    dry = lh.merge("run2", dry_run=True)
    [detail] = [d for d in dry.details if str(d.key) == "silver.customers"]
    assert detail.resolution is not None and "deletes on the source" in detail.resolution
    assert lh.merge("run2").was_applied
    assert names(lh, "main") == [(1, "ann"), (2, "bea"), (4, "dan"), (5, "eve"), (6, "fay2")]


def test_both_sides_deleting_rows_of_one_file_merge_as_the_union(silver: Lakehouse) -> None:
    lh = silver
    upsert(lh.table("silver.customers", "main"), customers(c1="amy"), ["id"])
    delete_rows(lh.table("silver.customers", "run2"), pa.table({"id": [4]}), ["id"])
    assert lh.merge("run2").was_applied
    assert names(lh, "main") == [(1, "amy"), (2, "bob"), (3, "cid")]


def test_deleting_rows_of_a_file_main_rewrote_conflicts_naming_table_and_file(
    silver: Lakehouse,
) -> None:
    lh = silver
    main = lh.table("silver.customers", "main")
    [rewritten] = [t.file.file_path for t in main.scan().plan_files()]
    main.delete("id = 4")  # copy-on-write on main
    upsert(lh.table("silver.customers", "run2"), customers(c2="bea"), ["id"])
    before = lh.resolve("main").hash
    with pytest.raises(MergeConflictError) as info:
        lh.merge("run2")
    message = str(info.value)
    assert "silver.customers" in message
    assert f"the source deleted rows from data file {rewritten}" in message
    assert "which the target rewrote or removed" in message
    assert lh.resolve("main").hash == before
    dry = lh.merge("run2", dry_run=True, raise_on_conflict=False)
    assert not dry.was_successful and dry.conflicts


def test_a_delete_file_left_naming_a_file_the_source_rewrote_deletes_nothing_after_merge(
    silver: Lakehouse,
) -> None:
    """PyIceberg's copy-on-write keeps the old delete file: both readers must ignore it."""
    lh = silver
    delete_rows(lh.table("silver.customers", "run2"), pa.table({"id": [4]}), ["id"])
    lh.table("silver.customers", "run2").delete("id = 1")  # rewrites the file deleted from
    run = lh.table("silver.customers", "run2")
    live = {t.file.file_path for t in run.scan().plan_files()}
    named = {
        name
        for m in run.current_snapshot().manifests(run.io)  # type: ignore[union-attr]
        for e in m.fetch_manifest_entry(run.io, discard_deleted=True)
        if e.data_file.content == DataFileContent.POSITION_DELETES
        for name in referenced_data_files(run.io, e.data_file)
    }
    assert named and not named & live  # the delete file names only the rewritten file
    lh.table("silver.customers", "main").append(customers(c5="eve"))
    assert lh.merge("run2").was_applied
    assert names(lh, "main") == [(2, "bob"), (3, "cid"), (5, "eve")]
