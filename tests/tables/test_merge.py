"""Three-way content merges of one table, on real Iceberg metadata written by PyIceberg."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyiceberg.types import StringType

from lakehouse.tables.merge import MERGE_PROPERTY, merge_tables, summaries


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64())})


@pytest.fixture
def sides(tmp_path: Path) -> tuple[SqlCatalog, Table]:
    """A catalog with table ns.t (rows 1, 2) to fork: register its metadata as ns.src."""
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("ns")
    table = catalog.create_table("ns.t", schema=rows(1).schema, properties={"format-version": "2"})
    table.append(rows(1, 2))
    return catalog, table


def fork(catalog: SqlCatalog, table: Table) -> Table:
    return catalog.register_table("ns.src", table.metadata_location)


def ids(metadata_table: Table) -> list[int]:
    return sorted(metadata_table.scan().to_arrow().column("id").to_pylist())


def merged_table(table: Table, metadata: object) -> Table:
    return Table(table.name(), metadata, "", table.io, table.catalog)  # type: ignore[arg-type]


def test_appends_on_both_sides_merge_into_one_new_snapshot(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    target.append(rows(3))
    source.append(rows(4))
    source.append(rows(5))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None
    assert "appends on the source (2 data file(s))" in result.description
    merged = merged_table(target, result.metadata)
    assert ids(merged) == [1, 2, 3, 4, 5]
    snapshot = merged.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary[MERGE_PROPERTY] == "content"
    assert snapshot.parent_snapshot_id == target.metadata.current_snapshot_id
    assert snapshot.summary["total-records"] == "5"


def test_the_merged_snapshot_carries_the_sources_ingestion_bookkeeping(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    target.append(rows(3))
    source.append(rows(4), snapshot_properties={"lakehouse.ingest.batch-id": "b1", "x": "1"})
    source.append(rows(5), snapshot_properties={"lakehouse.ingest.batch-id": "b2"})
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.metadata is not None
    snapshot = merged_table(target, result.metadata).current_snapshot()
    assert snapshot is not None
    # newest first, only the bookkeeping prefixes: what an ancestry walk would have found
    assert summaries(snapshot)[1:] == [
        {"lakehouse.ingest.batch-id": "b2"},
        {"lakehouse.ingest.batch-id": "b1"},
    ]


def test_appends_land_on_a_target_that_deleted_and_overwrote(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    target.delete("id = 1")
    target.overwrite(rows(7))
    source.append(rows(4))
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert result.merged and result.metadata is not None
    assert ids(merged_table(target, result.metadata)) == [4, 7]


def test_deletes_on_the_source_are_a_conflict_that_says_why(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    target.append(rows(3))
    source.delete("id = 1")
    result = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert not result.merged and result.metadata is None
    assert (
        result.conflict is not None and "the source removed or rewrote 1 file(s)" in result.conflict
    )


def test_properties_merge_key_by_key_and_clash_when_set_differently(
    sides: tuple[SqlCatalog, Table],
) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    with target.transaction() as tx:
        tx.set_properties(owner="ops")
    with source.transaction() as tx:
        tx.set_properties(team="sales")
    ok = merge_tables(ancestor, target.refresh().metadata, source.refresh().metadata, target.io)
    assert ok.metadata is not None
    assert (ok.metadata.properties["owner"], ok.metadata.properties["team"]) == ("ops", "sales")
    with source.transaction() as tx:
        tx.set_properties(owner="finance")
    clash = merge_tables(ancestor, target.metadata, source.refresh().metadata, target.io)
    assert clash.conflict == "both sides changed table properties owner"


def test_a_schema_change_on_the_source_is_a_conflict(sides: tuple[SqlCatalog, Table]) -> None:
    catalog, target = sides
    ancestor = target.metadata
    source = fork(catalog, target)
    with source.update_schema() as update:
        update.add_column("note", StringType())
    result = merge_tables(ancestor, target.metadata, source.refresh().metadata, target.io)
    assert result.conflict is not None and "changed the schema" in result.conflict
