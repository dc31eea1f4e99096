"""The file walker shared by the integrity check, backups and garbage collection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
)
from pyiceberg.schema import Schema
from pyiceberg.typedef import Record
from pyiceberg.types import NestedField, StringType
from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion

from lakehouse.catalog.files import (
    FileKind,
    TableFile,
    TableWalker,
    catalog_points,
    history_contents,
    point_contents,
    reachable_files,
    snapshot_ancestry,
)
from lakehouse.catalog.model import ContentKey, IcebergTable
from lakehouse.client import Lakehouse, connect

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
ORDERS = ContentKey.of("bronze", "orders")


def rows(*ids: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "name": str(i)} for i in ids], schema=SCHEMA)


def local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


@pytest.fixture
def lh(tmp_path: Path) -> Iterator[Lakehouse]:
    """bronze.orders on main: two appends and a delete of one row."""
    lake = connect(tmp_path / "home", create=True)
    main = lake.catalog("main")
    main.create_namespace("bronze")
    table = main.create_table("bronze.orders", SCHEMA)
    table.append(rows(1, 2))
    lake.table("bronze.orders", "main").append(rows(3))
    lake.table("bronze.orders", "main").delete("id == 1")
    yield lake
    lake.close()


def walk(lh: Lakehouse, ref: str = "main", **kwargs: object) -> list[TableFile]:
    table = lh.table("bronze.orders", ref)
    walker = TableWalker(table.io)
    return list(walker.table_files(ORDERS, ref, table.metadata_location, **kwargs))  # type: ignore[arg-type]


def test_every_file_of_a_table_version_is_listed_with_kind_and_size(lh: Lakehouse) -> None:
    table = lh.table("bronze.orders", "main")
    files = walk(lh)
    by_kind: dict[FileKind, list[TableFile]] = {}
    for f in files:
        by_kind.setdefault(f.kind, []).append(f)
        assert f.table == ORDERS and f.ref == "main"
        assert f.metadata_location == table.metadata_location
        assert f.error is None
    assert files[0].kind is FileKind.TABLE_METADATA and files[0].size is None
    assert len(by_kind[FileKind.MANIFEST_LIST]) == len(table.snapshots()) == 3
    # every data file the table ever had, each with its real size
    data = by_kind[FileKind.DATA]
    for f in data:
        assert f.size == local(f.path).stat().st_size
    for f in by_kind[FileKind.MANIFEST]:
        assert f.size == local(f.path).stat().st_size
    live = {f["file_path"] for f in table.inspect.files().to_pylist()}
    required = {f.path for f in data if f.required}
    assert live <= required
    # the delete's manifests list the file it removed as a DELETED entry (not needed to read
    # that snapshot); the file stays required because older snapshots still read it
    walker = TableWalker(table.io)
    removed = {
        e.path
        for m in walker.manifests(table.snapshots()[-1])
        for e in walker.entries(m)
        if e.deleted
    }
    assert removed and removed <= required - live
    # each path once
    assert len({f.path for f in files}) == len(files)


def test_previous_metadata_files_only_when_asked(lh: Lakehouse) -> None:
    assert not [f for f in walk(lh) if f.kind is FileKind.PREVIOUS_METADATA]
    previous = [f for f in walk(lh, previous_metadata=True) if f.kind is FileKind.PREVIOUS_METADATA]
    table = lh.table("bronze.orders", "main")
    assert [f.path for f in previous] == [e.metadata_file for e in table.metadata.metadata_log]
    assert all(not f.required for f in previous)


def test_seen_paths_are_skipped_and_not_walked_again(lh: Lakehouse) -> None:
    table = lh.table("bronze.orders", "main")
    walker = TableWalker(table.io)
    seen: set[str] = set()
    first = list(walker.table_files(ORDERS, "main", table.metadata_location, seen=seen))
    assert {f.path for f in first} == seen
    assert list(walker.table_files(ORDERS, "main", table.metadata_location, seen=seen)) == []


def test_an_unreadable_file_is_yielded_with_its_error_and_the_walk_goes_on(lh: Lakehouse) -> None:
    table = lh.table("bronze.orders", "main")
    first_snapshot = table.snapshots()[0]
    local(first_snapshot.manifest_list).unlink()
    files = walk(lh)
    broken = [f for f in files if f.error is not None]
    assert [(f.path, f.kind) for f in broken] == [
        (first_snapshot.manifest_list, FileKind.MANIFEST_LIST)
    ]
    assert broken[0].snapshot_id == first_snapshot.snapshot_id
    assert any(f.kind is FileKind.DATA for f in files)  # later snapshots were walked

    missing = TableWalker(table.io)
    (only,) = list(missing.table_files(ORDERS, "main", table.metadata_location + ".gone"))
    assert only.kind is FileKind.TABLE_METADATA and only.error is not None


def test_delete_files_are_classified_by_content(lh: Lakehouse, tmp_path: Path) -> None:
    table = lh.table("bronze.orders", "main")

    class DeleteManifestWriter(ManifestWriterV2):
        def content(self) -> ManifestContent:
            return ManifestContent.DELETES

    path = str(tmp_path / f"{uuid.uuid4().hex}-m0.avro")
    writer = DeleteManifestWriter(
        table.metadata.spec(), table.schema(), table.io.new_output(path), 1, "null"
    )
    with writer:
        for n, content in enumerate(
            (DataFileContent.POSITION_DELETES, DataFileContent.EQUALITY_DELETES)
        ):
            data_file = DataFile.from_args(
                _table_format_version=2,
                content=content,
                file_path=f"file:///x/delete-{n}.parquet",
                file_format=FileFormat.PARQUET,
                partition=Record(),
                record_count=1,
                file_size_in_bytes=100 + n,
                equality_ids=[1] if n else None,
            )
            data_file.spec_id = 0
            writer.add_entry(
                ManifestEntry.from_args(
                    status=ManifestEntryStatus.ADDED,
                    snapshot_id=1,
                    sequence_number=None,
                    file_sequence_number=None,
                    data_file=data_file,
                )
            )
    entries = TableWalker(table.io).entries(writer.to_manifest_file())
    assert [(e.kind, e.size, e.deleted) for e in entries] == [
        (FileKind.POSITION_DELETES, 100, False),
        (FileKind.EQUALITY_DELETES, 101, False),
    ]


def test_views_reference_their_metadata_file(lh: Lakehouse) -> None:
    view = lh.catalog("main").create_view(
        ("bronze", "v"),
        Schema(NestedField(1, "name", StringType(), required=False)),
        ViewVersion(
            version_id=1,
            schema_id=0,
            timestamp_ms=1,
            summary={},
            representations=[SQLViewRepresentation(type="sql", sql="SELECT 1", dialect="duckdb")],
            default_namespace=["bronze"],
        ),
    )
    location = lh.store.get_content("main", ContentKey.of("bronze", "v"))
    walker = TableWalker(lh.table("bronze.orders").io)
    (f,) = list(walker.content_files(ContentKey.of("bronze", "v"), location, "main"))
    assert f.kind is FileKind.VIEW_METADATA and f.error is None
    assert view.metadata.view_uuid


# -- across the catalog ---------------------------------------------------------------------


def test_reachable_files_cover_every_commit_of_every_live_reference_once(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    lh.table("bronze.orders", "dev").append(rows(10))
    lh.create_branch("merged", "dev")
    lh.table("bronze.orders", "merged").append(rows(20))
    lh.merge("merged", "dev")
    lh.delete_branch("merged")  # its commits stay reachable through the merge
    lh.create_branch("gone")
    gone = lh.catalog("gone").create_table("bronze.gone", SCHEMA)
    gone.append(rows(30))
    gone_metadata = gone.metadata_location
    lh.delete_branch("gone")  # never merged: unreachable

    walker = TableWalker(lh.table("bronze.orders").io)
    files = list(reachable_files(lh.store, walker))
    paths = [f.path for f in files]
    assert len(paths) == len(set(paths))
    metadata = {f.path for f in files if f.kind is FileKind.TABLE_METADATA}
    # every metadata location any commit of main or dev ever pointed at
    expected = {
        c.content.metadata_location
        for ref in ("main", "dev")
        for e in lh.log(ref, None)
        for c in lh.store.entries("@" + (e.meta.hash or ""), with_content=True)
        if isinstance(c.content, IcebergTable)
    }
    assert metadata == expected
    assert gone_metadata not in metadata
    # shared files are attributed to the first reference that reached them
    assert {f.ref for f in files} <= {"dev", "main"}


def test_history_contents_match_a_full_read_of_every_commit(lh: Lakehouse) -> None:
    lh.create_branch("dev")
    lh.table("bronze.orders", "dev").append(rows(10))
    lh.merge("dev", "main")
    refs = lh.references()
    via_operations = {
        (k, c.metadata_location)  # type: ignore[union-attr]
        for _, k, c in history_contents(lh.store, refs)
    }
    via_full_reads = {
        (k, c.metadata_location)  # type: ignore[union-attr]
        for _, k, c in point_contents(lh.store, catalog_points(lh.store, refs))
    }
    assert via_operations == via_full_reads


def test_a_cutoff_keeps_the_state_at_the_cutoff_and_everything_after(lh: Lakehouse) -> None:
    import time

    old = lh.table("bronze.orders", "main").metadata_location
    time.sleep(0.01)
    cutoff = datetime.now(UTC)
    time.sleep(0.01)
    lh.table("bronze.orders", "main").append(rows(40))
    lh.table("bronze.orders", "main").append(rows(41))
    points = list(catalog_points(lh.store, cutoff=cutoff))
    assert len(points) == 3  # two commits after the cutoff, one current at it
    assert points[-1].commit_time is not None and points[-1].commit_time <= cutoff
    contents = {
        c.metadata_location  # type: ignore[union-attr]
        for _, _, c in history_contents(lh.store, cutoff=cutoff)
    }
    assert old in contents
    assert len(contents) == 3
    first_metadata = lh.log("main", None)[-2]  # the create-table commit
    assert first_metadata.meta.hash not in {p.hash for p in points}


def test_snapshot_ancestry_is_newest_first(lh: Lakehouse) -> None:
    table = lh.table("bronze.orders", "main")
    ancestry = snapshot_ancestry(table.metadata)
    assert [s.snapshot_id for s in ancestry] == [s.snapshot_id for s in reversed(table.snapshots())]
    assert snapshot_ancestry(table.metadata, ancestry[1].snapshot_id) == ancestry[1:]
